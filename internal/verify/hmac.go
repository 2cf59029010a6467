package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HMACHeader is the header that carries the bank's signature.
const HMACHeader = "X-Hmac-Signature"

// HMACOptions describes a generic HMAC scheme: one header holding
// Prefix + encode(HMAC(secret, signed content)). The bank scheme is
// HMACOptions{Header: HMACHeader} with every other field left at its
// default.
type HMACOptions struct {
	// Header carries the signature. Required.
	Header string
	// Prefix precedes the encoded signature in the header, such as
	// "sha256=". It must match exactly, case included. Empty means none.
	Prefix string
	// Algorithm is "sha1", "sha256" or "sha512". Empty means "sha256".
	Algorithm string
	// Encoding is "hex" or "base64" (standard alphabet, padded). Empty
	// means "hex". Hex is accepted in either case, since the decoded bytes
	// are what is compared.
	Encoding string
	// TimestampHeader, if set, carries the signing time in Unix seconds.
	// The request must then carry it, it must be signed (see Template),
	// and it must be within Tolerance of the receiver's clock.
	TimestampHeader string
	// Template is the signed content, built from {timestamp} and {body}.
	// Empty means "{body}", or "{timestamp}.{body}" if TimestampHeader is
	// set.
	Template string
	// Tolerance is the replay window, in both directions. It applies only
	// with a TimestampHeader. Zero means DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// HMAC verifies a generic HMAC scheme (see HMACOptions). GitHub, Shopify,
// Slack and the bank are all instances of it.
type HMAC struct {
	scheme  *hmacScheme
	secrets []Secret
}

// hmacScheme is a validated HMACOptions, shared by HMAC and SignHMACWith.
type hmacScheme struct {
	header, prefix, tsHeader string
	newHash                  func() hash.Hash
	size                     int
	base64                   bool
	content                  signedContent
	window                   window
}

// NewHMACWith returns a verifier for the scheme opts describes that accepts
// a signature under any of secrets, whose values are the raw HMAC keys.
func NewHMACWith(secrets []Secret, opts HMACOptions) (*HMAC, error) {
	return newHMAC("hmac", secrets, opts)
}

// NewHMAC returns a verifier that reads the hex HMAC-SHA256 of the body from
// header and accepts it under any of secrets. Several secrets let a sender
// rotate with no downtime: add the new secret, switch the sender, then drop
// the old one. It is NewHMACWith with string secrets, kept for its callers.
func NewHMAC(header string, secrets []string) (*HMAC, error) {
	return NewHMACWith(secretsFromStrings(secrets), HMACOptions{Header: header})
}

func newHMAC(name string, secrets []Secret, opts HMACOptions) (*HMAC, error) {
	ss, err := checkSecrets(name, secrets)
	if err != nil {
		return nil, err
	}
	s, err := compileHMAC(name, opts)
	if err != nil {
		return nil, err
	}
	return &HMAC{scheme: s, secrets: ss}, nil
}

func compileHMAC(name string, o HMACOptions) (*hmacScheme, error) {
	s := &hmacScheme{header: o.Header, prefix: o.Prefix, tsHeader: o.TimestampHeader}
	if !validHeaderName(o.Header) {
		return nil, fmt.Errorf("verify: %s: Header %q is not a valid header name", name, o.Header)
	}
	if o.TimestampHeader != "" && !validHeaderName(o.TimestampHeader) {
		return nil, fmt.Errorf("verify: %s: TimestampHeader %q is not a valid header name", name, o.TimestampHeader)
	}
	switch o.Algorithm {
	case "sha256", "":
		s.newHash, s.size = sha256.New, sha256.Size
	case "sha512":
		s.newHash, s.size = sha512.New, sha512.Size
	case "sha1":
		s.newHash, s.size = sha1.New, sha1.Size
	default:
		return nil, fmt.Errorf("verify: %s: Algorithm %q is not one of sha1, sha256, sha512", name, o.Algorithm)
	}
	switch o.Encoding {
	case "hex", "":
	case "base64":
		s.base64 = true
	default:
		return nil, fmt.Errorf("verify: %s: Encoding %q is not one of hex, base64", name, o.Encoding)
	}
	tpl := o.Template
	if tpl == "" {
		tpl = "{body}"
		if o.TimestampHeader != "" {
			tpl = "{timestamp}.{body}"
		}
	}
	var err error
	if s.content, err = compileTemplate(tpl, o.TimestampHeader != ""); err != nil {
		return nil, fmt.Errorf("verify: %s: %w", name, err)
	}
	if o.TimestampHeader == "" {
		if o.Tolerance != 0 {
			return nil, fmt.Errorf("verify: %s: Tolerance needs TimestampHeader", name)
		}
		return s, nil
	}
	s.window, err = newWindow(name, o.Tolerance, DefaultTolerance, o.Now)
	return s, err
}

// Verify implements Verifier.
func (v *HMAC) Verify(header http.Header, body []byte) error {
	s := v.scheme
	raw := header.Get(s.header)
	var ts string
	if s.tsHeader != "" {
		ts = header.Get(s.tsHeader)
	}
	if raw == "" || (s.tsHeader != "" && ts == "") {
		return &Error{Reason: ReasonMissingHeader}
	}
	enc, ok := strings.CutPrefix(raw, s.prefix)
	if !ok {
		return &Error{Reason: ReasonMalformedHeader}
	}
	got, ok := s.decode(enc)
	if !ok {
		return &Error{Reason: ReasonMalformedHeader}
	}
	if s.tsHeader != "" {
		unix, ok := parseUnix(ts)
		if !ok {
			return &Error{Reason: ReasonMalformedHeader}
		}
		if r := s.window.check(unix); r != "" {
			return &Error{Reason: r}
		}
	}
	for _, secret := range v.secrets {
		// hmac.Equal takes constant time for equal lengths, and decode
		// checked the length, so timing reveals nothing about the MAC.
		if hmac.Equal(s.sum(secret.Value, ts, body), got) {
			return nil
		}
	}
	return &Error{Reason: ReasonNoMatch, SecretsTried: len(v.secrets)}
}

func (s *hmacScheme) decode(enc string) ([]byte, bool) {
	if s.base64 {
		return decodeBase64(enc, s.size)
	}
	return decodeHex(enc, s.size)
}

func (s *hmacScheme) sum(key []byte, ts string, body []byte) []byte {
	m := hmac.New(s.newHash, key)
	s.content.write(m, ts, body)
	return m.Sum(nil)
}

// SignHMACWith returns the signature header value, and the timestamp header
// value (empty without a TimestampHeader), that a sender using the scheme
// opts describes would send for body under secret at time ts.
func SignHMACWith(secret string, opts HMACOptions, ts time.Time, body []byte) (signature, timestamp string, err error) {
	s, err := compileHMAC("hmac", opts)
	if err != nil {
		return "", "", err
	}
	if s.tsHeader != "" {
		timestamp = strconv.FormatInt(ts.Unix(), 10)
	}
	mac := s.sum([]byte(secret), timestamp, body)
	if s.base64 {
		return s.prefix + base64.StdEncoding.EncodeToString(mac), timestamp, nil
	}
	return s.prefix + hex.EncodeToString(mac), timestamp, nil
}

// SignHMAC returns the header value a sender using the bank scheme would
// send for body under secret. It is used by `hookctl send` and by tests.
func SignHMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
