// Package envelope reads the few fields Hookline needs from a verified
// event: its id, its type and, for Stripe, its API version. Each field comes
// from a request header or from a JSON path in the body, as the source's
// provider puts it.
//
// It runs only after the signature has passed, so an unsigned body is never
// parsed. It checks the fields strictly, because they become database keys:
// a value Postgres cannot store in a text column (a NUL byte) or an id that
// does not fit the key would otherwise turn into a database error, a 503 and
// a provider retrying the same bad event forever.
package envelope

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// MaxIDLen is the longest event id accepted, in bytes.
const MaxIDLen = 255

// MaxTypeLen is the longest event type accepted, in bytes.
const MaxTypeLen = 255

// ErrMalformed is matched by every error Extract returns.
var ErrMalformed = errors.New("malformed event body")

// Envelope holds the routing fields of an event.
type Envelope struct {
	// ID is the sender's event id, the idempotency key.
	ID string
	// Type is the event type, such as "charge.succeeded"; may be empty.
	Type string
	// APIVersion is Stripe's api_version; empty for other senders.
	APIVersion string
	// Time is when the provider says the event happened; zero when the
	// source has none, and the received time stands in.
	Time time.Time
	// Object is the key of the object the event is about, such as a Stripe
	// subscription's id; empty when the source locates none. Ordered
	// handlers order and serialise an object's events by it.
	Object string
}

// Locator says where a field is: in the request header named Header, at
// the JSON path JSON in the body (gjson syntax: "id", "event.type"), or in
// the headers a signature covered (Signed). Exactly one is set, or none
// for a field the source does not have.
type Locator struct {
	Header string
	JSON   string
	// Signed reads the field from the header its source's signature
	// covered, for schemes that sign a header under one of several names.
	Signed *SignedHeader
}

// SignedHeader reads a field from the header that a verifier checked.
// Standard Webhooks signs the id of whichever header set it verified,
// webhook-* or svix-*; reading webhook-id first, whatever was verified,
// would let a sender add an unsigned webhook-id to a genuine svix-*
// delivery and have it stored under any id.
type SignedHeader struct {
	// Name describes the header in messages, such as "signed webhook-id or
	// svix-id".
	Name string
	// Read returns the field's value, "" when absent.
	Read func(http.Header) string
}

// Extractor reads an Envelope from a verified request.
type Extractor struct {
	ID         Locator
	Type       Locator
	APIVersion Locator
	// Time lists where the provider's event time may be; the first that
	// is present is read (see ParseTime for the forms accepted). Empty,
	// or none present, leaves Envelope.Time zero.
	Time []Locator
	// Object locates the object key; the zero Locator reads none.
	Object Locator
	// ReadObjects lists the dotted JSON paths of the objects the source's
	// handlers read, such as Stripe's "data.object". In them, and in the
	// root and the objects that hold the fields above, two keys may not
	// differ only in case (see CheckKeys).
	ReadObjects []string
}

// IsZero reports whether x locates nothing, and so would read no id.
func (x Extractor) IsZero() bool {
	return x.ID == Locator{} && x.Type == Locator{} && x.APIVersion == Locator{} && len(x.ReadObjects) == 0 &&
		len(x.Time) == 0 && x.Object == Locator{}
}

// Default reads id, type and api_version from the top level of a JSON body,
// where Stripe and most senders put them.
var Default = Extractor{ID: Locator{JSON: "id"}, Type: Locator{JSON: "type"}, APIVersion: Locator{JSON: "api_version"}}

// Parse reads the envelope of body with the Default extractor.
func Parse(body []byte) (Envelope, error) { return Default.Extract(nil, body) }

// Extract reads the envelope of a verified request. Whatever the source, a
// body nested deeper than MaxDepth is refused, since the worker's handlers
// parse it later. If any field is located in the body, the body must also
// be valid UTF-8 and a JSON object. A JSON body, whatever the source, must
// have no ambiguous keys (CheckKeys), since the envelope and the handlers
// must read the same values.
func (x Extractor) Extract(header http.Header, body []byte) (Envelope, error) {
	// First, before any parser: the depth scan is iterative and cheap,
	// where gjson's validator recurses once per level.
	if _, at := Depth(body, MaxDepth); at >= 0 {
		return Envelope{}, fmt.Errorf("%w: JSON nested deeper than %d levels (at byte %d)", ErrMalformed, MaxDepth, at)
	}
	// The id, type and API version, when located in the body, make it a
	// JSON object. The object and time do not: they are optional, and a
	// source whose other fields come from headers (Shopify, which may send
	// XML) has them from a JSON body only.
	inBody := x.ID.JSON != "" || x.Type.JSON != "" || x.APIVersion.JSON != ""
	if inBody {
		// JSON is UTF-8 (RFC 8259); gjson would pass invalid bytes through.
		if at := invalidUTF8(body); at >= 0 {
			return Envelope{}, fmt.Errorf("%w: body is not valid UTF-8 (at byte %d)", ErrMalformed, at)
		}
		if !gjson.ValidBytes(body) || !isObject(body) {
			return Envelope{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
		}
	}
	// A source that reads nothing from the body may still be sent JSON,
	// which its handlers will parse: hold it to the same rule.
	jsonBody := inBody || looksJSON(body) && gjson.ValidBytes(body)
	if jsonBody {
		if problem, at := x.checkKeys(body); at >= 0 {
			return Envelope{}, fmt.Errorf("%w: %s in a JSON object (at byte %d)", ErrMalformed, problem, at)
		}
	}
	var env Envelope
	var err error
	if env.ID, err = field(header, body, "id", x.ID, MaxIDLen); err != nil {
		return Envelope{}, err
	}
	if env.ID == "" {
		return Envelope{}, fmt.Errorf("%w: missing id (%s)", ErrMalformed, x.ID)
	}
	if env.Type, err = field(header, body, "type", x.Type, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	if env.APIVersion, err = field(header, body, "api_version", x.APIVersion, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	if env.Object, err = objectField(header, body, jsonBody, x.Object); err != nil {
		return Envelope{}, err
	}
	if env.Time, err = timeField(header, body, jsonBody, x.Time); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// String describes where a field is read from, for error messages.
func (l Locator) String() string {
	switch {
	case l.Signed != nil:
		return "header " + l.Signed.Name
	case l.Header != "":
		return "header " + l.Header
	}
	return "JSON field " + l.JSON
}

// checkKeys is CheckKeys on what is read from a JSON body: ReadObjects, and
// the fields located in the body, in that order.
func (x Extractor) checkKeys(body []byte) (KeyProblem, int) {
	s := getScanner()
	defer putScanner(s)
	for _, p := range x.ReadObjects {
		s.addPath(p)
	}
	for _, l := range [...]Locator{x.ID, x.Type, x.APIVersion, x.Object} {
		if l.JSON != "" {
			s.addPath(l.JSON)
		}
	}
	for _, l := range x.Time {
		if l.JSON != "" {
			s.addPath(l.JSON)
		}
	}
	s.setPaths()
	return s.scan(body)
}

// isObject reports whether body, a valid JSON text, is an object: whether
// its first byte past the leading space is '{', as gjson.Parse reads it.
func isObject(body []byte) bool {
	for _, c := range body {
		if c > ' ' {
			return c == '{'
		}
	}
	return false
}

// looksJSON reports whether body starts, after whitespace, like a JSON
// object or array.
func looksJSON(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

func field(header http.Header, body []byte, name string, loc Locator, maxLen int) (string, error) {
	var v string
	switch {
	case loc.Signed != nil:
		v = loc.Signed.Read(header)
	case loc.Header != "":
		v = header.Get(loc.Header)
	case loc.JSON != "":
		return jsonField(gjson.GetBytes(body, loc.JSON), name, loc, maxLen)
	}
	return checkField(v, name, maxLen)
}

// jsonField is field for r, read at loc.JSON.
func jsonField(r gjson.Result, name string, loc Locator, maxLen int) (string, error) {
	var v string
	switch r.Type {
	case gjson.Null:
		// absent or null: the same as empty
	case gjson.String:
		if loneSurrogate(r.Raw) {
			return "", fmt.Errorf("%w: %s (%s) holds a lone UTF-16 surrogate escape, which decodes to U+FFFD like others would", ErrMalformed, name, loc)
		}
		v = r.Str
	default:
		return "", fmt.Errorf("%w: %s (%s) must be a string, not %s", ErrMalformed, name, loc, kind(r))
	}
	return checkField(v, name, maxLen)
}

// checkField checks a field's value v as read.
func checkField(v, name string, maxLen int) (string, error) {
	if len(v) > maxLen {
		return "", fmt.Errorf("%w: %s is %d bytes, more than %d", ErrMalformed, name, len(v), maxLen)
	}
	// Postgres text refuses invalid UTF-8; gjson and headers pass it through.
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, name)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("%w: %s has a control character at byte %d", ErrMalformed, name, i)
	}
	return v, nil
}

// kind names a JSON value's kind for an error message.
func kind(r gjson.Result) string {
	switch r.Type {
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Number:
		return "a number"
	case gjson.JSON:
		if r.IsArray() {
			return "an array"
		}
		return "an object"
	}
	return r.Type.String()
}

// invalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1 if b is valid.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// loneSurrogate reports whether a JSON string literal, quotes included,
// holds a \u escape of a UTF-16 surrogate that is not half of a pair.
// Decoders turn each such escape into U+FFFD, so distinct signed ids such
// as "\ud800" and "\udfff" would become one key.
func loneSurrogate(raw string) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw, i+1)
		if !ok || !utf16.IsSurrogate(r) {
			i += 4
			continue
		}
		i += 4
		if r >= 0xDC00 { // a low half with no high half before it
			return true
		}
		if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
			return true
		}
		r2, ok := hex4(raw, i+3)
		if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return true
		}
		i += 6
	}
	return false
}
