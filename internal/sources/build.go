package sources

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

// DefaultTolerance is the signed-timestamp window when a source sets none,
// the one Stripe, Slack and Standard Webhooks document.
const DefaultTolerance = 5 * time.Minute

// Summary describes a built source for `hookctl sources`. It holds secret
// labels, never secrets.
type Summary struct {
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Type         string   `json:"type"`
	SecretLabels []string `json:"secret_labels"`
	ID           string   `json:"id_from"`
	EventType    string   `json:"event_type_from"`
	// Object and Time say where the object key and the event time are
	// read from; "received time" when the source has no time.
	Object        string `json:"object_from,omitempty"`
	Time          string `json:"time_from"`
	FailureStatus int    `json:"failure_status"`
	MaxBodyBytes  int64  `json:"max_body_bytes,omitempty"`
	// ReplayGuard is off, body or body_and_type (receiver.ReplayGuard).
	ReplayGuard string `json:"replay_guard"`
	// EventTypes are the only types accepted; empty means any.
	EventTypes []string `json:"event_types,omitempty"`
	// AllowIPs are the networks allowed to send, in canonical form; empty
	// means any address.
	AllowIPs []string `json:"allow_ips,omitempty"`
	// Warnings name what an attacker holding a captured delivery could
	// change: an id or a type read from a header the scheme does not sign.
	Warnings []string `json:"warnings,omitempty"`
}

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	// A label is shown in logs and hookctl output, so it must look like a
	// name, not like a secret pasted into the wrong field (see
	// looksLikeSecret).
	labelRe = regexp.MustCompile(`^[A-Za-z0-9_.#-]{1,64}$`)
	// envRe is an environment variable name as POSIX shells accept it, and
	// envNameRe one written as names usually are, which errors may show.
	envRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	envNameRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

// signedID reads the Standard Webhooks id that the signature covered.
var signedID = &envelope.SignedHeader{Name: "webhook-id or svix-id, whichever set is signed", Read: verify.StandardWebhooksID}

// signedTimestamp reads the Standard Webhooks timestamp that the signature
// covered.
var signedTimestamp = &envelope.SignedHeader{Name: "webhook-timestamp or svix-timestamp, whichever set is signed", Read: verify.StandardWebhooksTimestamp}

// typeDefaults is where each provider puts its idempotency key and event
// type, the objects its handlers read, the headers worth keeping for audit
// and re-verification, and the replay guard a header id needs.
var typeDefaults = map[string]struct {
	id, eventType, apiVersion envelope.Locator
	// object is the key of the object an event is about, and time the
	// provider's event time, first present first (docs/SOURCES.md).
	object      envelope.Locator
	time        []envelope.Locator
	readObjects []string
	keep        []string
	// guard applies when the id comes from a header the scheme does not
	// sign. Shopify sends one payload under several topics
	// (products/create and products/update), so a body alone would
	// refuse genuine events; see docs/SOURCES.md.
	guard receiver.ReplayGuard
}{
	"stripe": {id: envelope.Locator{JSON: "id"}, eventType: envelope.Locator{JSON: "type"}, apiVersion: envelope.Locator{JSON: "api_version"},
		object: envelope.Locator{JSON: "data.object.id"}, time: []envelope.Locator{{JSON: "created"}},
		readObjects: []string{"data.object"}, keep: []string{"Stripe-Signature"}, guard: receiver.GuardBody},
	"github": {id: envelope.Locator{Header: "X-GitHub-Delivery"}, eventType: envelope.Locator{Header: "X-GitHub-Event"},
		keep: []string{"X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event", "X-GitHub-Hook-ID"}, guard: receiver.GuardBody},
	"shopify": {id: envelope.Locator{Header: "X-Shopify-Webhook-Id"}, eventType: envelope.Locator{Header: "X-Shopify-Topic"},
		object: envelope.Locator{JSON: "admin_graphql_api_id"}, time: []envelope.Locator{{Header: "X-Shopify-Triggered-At"}},
		keep:  []string{"X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Triggered-At", "X-Shopify-Event-Id"},
		guard: receiver.GuardBodyAndType},
	"slack": {id: envelope.Locator{JSON: "event_id"}, eventType: envelope.Locator{JSON: "event.type"},
		time:        []envelope.Locator{{JSON: "event_time"}},
		readObjects: []string{"event"}, keep: []string{"X-Slack-Signature", "X-Slack-Request-Timestamp"}, guard: receiver.GuardBody},
	"standardwebhooks": {id: envelope.Locator{Signed: signedID}, eventType: envelope.Locator{JSON: "type"},
		// The body's timestamp is when the event happened; the signed
		// header is when this attempt was sent, later on every retry.
		time:        []envelope.Locator{{JSON: "timestamp"}, {Signed: signedTimestamp}},
		readObjects: []string{"data"},
		keep:        []string{"webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature"}, guard: receiver.GuardBody},
	"hmac": {id: envelope.Locator{JSON: "id"}, eventType: envelope.Locator{JSON: "type"}, guard: receiver.GuardBody},
}

// Build validates cfgs and builds the receiver's sources, reading each
// secret from the environment variable or file it names. Each source's
// first problem is reported, for every source, in one *Error that names
// the source and the field (and its line, for sources from a file).
func Build(getenv func(string) string, cfgs []Config) ([]receiver.Source, []Summary, error) {
	first := map[string]int{} // name -> index of the source that declares it
	var out []receiver.Source
	var sums []Summary
	var problems []Problem
	for i, c := range cfgs {
		var src receiver.Source
		var sum Summary
		var err error
		if !nameRe.MatchString(c.Name) {
			err = fieldError(c, i, "name", "%q must be 1-63 of a-z, 0-9, _ and -, starting with a letter or digit", c.Name)
		} else if j, dup := first[c.Name]; dup {
			err = fieldError(c, i, "name", "%q is declared twice%s", c.Name, firstAt(cfgs[j].node))
		} else {
			first[c.Name] = i
			src, sum, err = build(getenv, c, i)
		}
		var e *Error
		switch {
		case errors.As(err, &e):
			problems = append(problems, e.Problems...)
		case err != nil:
			problems = append(problems, Problem{Line: lineOf(c.node, ""), Path: sourcePath(c.Name, i), Msg: err.Error()})
		default:
			out, sums = append(out, src), append(sums, sum)
		}
	}
	if err := errorOf(problems); err != nil {
		return nil, nil, err
	}
	return out, sums, nil
}

// firstAt says where the source n is, for a name declared twice.
func firstAt(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf(" (first at line %d)", lineOf(n, "name"))
}

func build(getenv func(string) string, c Config, i int) (receiver.Source, Summary, error) {
	defaults, ok := typeDefaults[c.Type]
	if !ok {
		return receiver.Source{}, Summary{}, fieldError(c, i, "type", "unknown type %q; want stripe, github, shopify, slack, standardwebhooks or hmac", c.Type)
	}
	secrets, labels, err := resolveSecrets(getenv, c, i)
	if err != nil {
		return receiver.Source{}, Summary{}, err
	}
	if c.Tolerance < 0 {
		return receiver.Source{}, Summary{}, fieldError(c, i, "tolerance", "must be positive")
	}
	if c.Tolerance > 0 && !signsTimestamp(c) {
		return receiver.Source{}, Summary{}, fieldError(c, i, "tolerance", "type %s signs no timestamp (for hmac, set hmac.timestamp_header)", c.Type)
	}
	if c.Livemode != nil && c.Type != "stripe" {
		return receiver.Source{}, Summary{}, fieldError(c, i, "livemode", "applies only to type stripe")
	}
	if c.HMAC != nil && c.Type != "hmac" {
		return receiver.Source{}, Summary{}, fieldError(c, i, "hmac", "applies only to type hmac")
	}
	switch c.FailureStatus {
	case 0, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		return receiver.Source{}, Summary{}, fieldError(c, i, "failure_status", "%d; want 400, 401 or 403", c.FailureStatus)
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > receiver.MaxBodyLimit {
		return receiver.Source{}, Summary{}, fieldError(c, i, "max_body_bytes", "%d must be between 1 and %d (32 MiB; GitHub, the largest sender, caps payloads at 25 MB)", c.MaxBodyBytes, receiver.MaxBodyLimit)
	}

	allowIPs, err := parseAllowIPs(c, i)
	if err != nil {
		return receiver.Source{}, Summary{}, err
	}

	v, keep, err := newVerifier(c, secrets)
	if err != nil {
		// The verifier refuses its options (hmac's) or, for the other
		// types, a secret's form (Standard Webhooks' whsec_ and base64).
		field := "secrets"
		if c.Type == "hmac" {
			field = "hmac"
		}
		msg, _ := strings.CutPrefix(err.Error(), "verify: "+c.Type+": ") // the path says as much
		return receiver.Source{}, Summary{}, fieldError(c, i, field, "%s", msg)
	}
	ext := envelope.Extractor{ID: defaults.id, Type: defaults.eventType, APIVersion: defaults.apiVersion, ReadObjects: defaults.readObjects,
		Object: defaults.object, Time: defaults.time}
	if ext.ID, err = locator(c, i, "id", c.ID, ext.ID); err != nil {
		return receiver.Source{}, Summary{}, err
	}
	if ext.Type, err = locator(c, i, "event_type", c.EventType, ext.Type); err != nil {
		return receiver.Source{}, Summary{}, err
	}
	if ext.Object, err = locator(c, i, "object", c.Object, ext.Object); err != nil {
		return receiver.Source{}, Summary{}, err
	}
	if c.Time != nil {
		t, err := locator(c, i, "time", c.Time, envelope.Locator{})
		if err != nil {
			return receiver.Source{}, Summary{}, err
		}
		ext.Time = []envelope.Locator{t}
	}
	guard, err := replayGuard(c, i, ext.ID, defaults.guard)
	if err != nil {
		return receiver.Source{}, Summary{}, err
	}
	types, err := eventTypes(c, i)
	if err != nil {
		return receiver.Source{}, Summary{}, err
	}
	src := receiver.Source{
		Name:           c.Name,
		Verifier:       v,
		KeepHeaders:    append(append([]string{"Content-Type", "User-Agent"}, defaults.keep...), keep...),
		Envelope:       ext,
		MaxBodyBytes:   c.MaxBodyBytes,
		FailureStatus:  c.FailureStatus,
		SlackChallenge: c.Type == "slack",
		AllowIPs:       allowIPs,
		ReplayGuard:    guard,
		EventTypes:     types,
	}
	sum := Summary{
		Name: c.Name, Path: "/api/webhooks/" + c.Name, Type: c.Type, SecretLabels: labels,
		ID: ext.ID.String(), EventType: ext.Type.String(), Object: locatorString(ext.Object), Time: timeString(ext.Time),
		FailureStatus: max(c.FailureStatus, http.StatusBadRequest), MaxBodyBytes: c.MaxBodyBytes,
		ReplayGuard: guard.String(), EventTypes: c.EventTypes, Warnings: warnings(c, ext, guard),
	}
	for _, p := range allowIPs {
		sum.AllowIPs = append(sum.AllowIPs, p.String())
	}
	return src, sum, nil
}

// replayGuard returns the source's replay guard: the one set in the file,
// or, when the id comes from a header the scheme does not sign, the type's
// default. A signed id needs none.
func replayGuard(c Config, i int, id envelope.Locator, def receiver.ReplayGuard) (receiver.ReplayGuard, error) {
	switch c.ReplayGuard {
	case "":
		if unsignedHeader(id) {
			return def, nil
		}
		return receiver.GuardOff, nil
	case "off":
		return receiver.GuardOff, nil
	case "body":
		return receiver.GuardBody, nil
	case "body_and_type":
		return receiver.GuardBodyAndType, nil
	}
	return 0, fieldError(c, i, "replay_guard", "%q; want body, body_and_type or off", c.ReplayGuard)
}

// unsignedHeader reports whether l reads a request header that no scheme
// signs. Every scheme Hookline knows signs the body, and the headers it
// signs besides (timestamps; Standard Webhooks' id) are never plain
// locators: an id there is read through envelope.SignedHeader.
func unsignedHeader(l envelope.Locator) bool { return l.Header != "" }

// warnings says what a captured delivery's holder could change in c.
func warnings(c Config, ext envelope.Extractor, guard receiver.ReplayGuard) []string {
	var out []string
	if unsignedHeader(ext.ID) {
		w := fmt.Sprintf("source %q takes its event id from header %s, which the %s scheme does not sign: a captured delivery could be sent again under a new id", c.Name, ext.ID.Header, c.Type)
		if guard == receiver.GuardOff {
			w += ", and with replay_guard off it would be stored and applied again"
		} else {
			w += fmt.Sprintf("; replay_guard %s refuses it", guard)
		}
		out = append(out, w)
	}
	// No scheme signs a header that could name an object, and only the
	// headers signedTimeHeader knows hold a signed time. An attacker who
	// can alter a delivery in flight could, through an unsigned one, file
	// an event under another object or make it look older (stale) or
	// newer; a captured delivery sent again is refused by the replay
	// guard or its id, whatever its headers.
	if unsignedHeader(ext.Object) {
		out = append(out, fmt.Sprintf("source %q takes its object key from header %s, which the %s scheme does not sign: ordered handlers would trust it to order and serialise the event", c.Name, ext.Object.Header, c.Type))
	}
	for _, l := range ext.Time {
		if unsignedHeader(l) && !signedTimeHeader(c, l.Header) {
			out = append(out, fmt.Sprintf("source %q takes its event time from header %s, which the %s scheme does not sign: ordered handlers would trust it to tell a stale event from a new one", c.Name, l.Header, c.Type))
		}
	}
	if unsignedHeader(ext.Type) {
		w := fmt.Sprintf("source %q takes its event type from header %s, which the %s scheme does not sign: a captured delivery could be sent under another type; handlers that route on the type must check that the body agrees", c.Name, ext.Type.Header, c.Type)
		if guard == receiver.GuardBodyAndType && len(c.EventTypes) == 0 {
			w += "; with replay_guard body_and_type it is stored once per type, so set event_types to the types you subscribe to"
		}
		out = append(out, w)
	}
	return out
}

// locatorString describes l, or "" for a field the source does not read.
func locatorString(l envelope.Locator) string {
	if l == (envelope.Locator{}) {
		return ""
	}
	return l.String()
}

// timeString describes where a source's event time comes from.
func timeString(ls []envelope.Locator) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.String())
	}
	return strings.Join(append(parts, "received time"), ", else ")
}

// signedTimeHeader reports whether name is a header that c's scheme signs
// and that holds a time: Slack's request timestamp, the generic HMAC's
// timestamp header (its template must then sign it). Neither is the
// event's own time (each is when the attempt was sent), but a source may
// have nothing better.
func signedTimeHeader(c Config, name string) bool {
	switch {
	case c.Type == "slack":
		return http.CanonicalHeaderKey(name) == verify.SlackTimestampHeader
	case c.Type == "hmac" && c.HMAC != nil && c.HMAC.TimestampHeader != "":
		return http.CanonicalHeaderKey(name) == http.CanonicalHeaderKey(c.HMAC.TimestampHeader)
	}
	return false
}

// eventTypes reads event_types into a set. An entry must be a type the
// envelope could read: not empty, and without control characters.
func eventTypes(c Config, i int) (map[string]bool, error) {
	if len(c.EventTypes) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(c.EventTypes))
	for j, t := range c.EventTypes {
		if t == "" || len(t) > envelope.MaxTypeLen || strings.ContainsFunc(t, unicode.IsControl) {
			return nil, fieldError(c, i, fmt.Sprintf("event_types[%d]", j), "%q must be 1-%d bytes with no control characters", t, envelope.MaxTypeLen)
		}
		set[t] = true
	}
	return set, nil
}

func resolveSecrets(getenv func(string) string, c Config, i int) ([]verify.Secret, []string, error) {
	if len(c.Secrets) == 0 {
		return nil, nil, fieldError(c, i, "secrets", "at least one secret is required")
	}
	var secrets []verify.Secret
	var labels []string
	seen := map[string]bool{}
	for j, ref := range c.Secrets {
		field := fmt.Sprintf("secrets[%d]", j)
		// A label is printed, so one that fails is never echoed: it may be
		// a secret pasted into the wrong field.
		if !labelRe.MatchString(ref.Label) || looksLikeSecret(ref.Label) {
			return nil, nil, fieldError(c, i, field+".label", "must be a short name such as current or previous (1-64 of A-Z, a-z, 0-9, _ . # -), not a secret; the value is not shown")
		}
		if seen[ref.Label] {
			return nil, nil, fieldError(c, i, field+".label", "%q is used twice", ref.Label)
		}
		seen[ref.Label] = true
		value, err := ref.resolve(getenv)
		if err != nil {
			return nil, nil, fieldError(c, i, field, "%v", err)
		}
		secrets = append(secrets, verify.Secret{Label: ref.Label, Value: []byte(value)})
		labels = append(labels, ref.Label)
	}
	return secrets, labels, nil
}

func (ref SecretRef) resolve(getenv func(string) string) (string, error) {
	switch {
	case ref.value != "":
		return ref.value, nil
	case ref.Env != "" && ref.File != "":
		return "", fmt.Errorf("set env or file, not both")
	case ref.Env != "" && (!envRe.MatchString(ref.Env) || looksLikeSecret(ref.Env)):
		return "", fmt.Errorf("env must name an environment variable (letters, digits and _, not starting with a digit); the value is not shown, in case it is the secret itself")
	case ref.File != "" && !filepath.IsAbs(ref.File):
		return "", fmt.Errorf("file must be an absolute path; the value is not shown, in case it is the secret itself")
	case ref.Env != "":
		v := getenv(ref.Env)
		switch {
		case v != "":
			return v, nil
		case envNameRe.MatchString(ref.Env):
			return "", fmt.Errorf("environment variable %s is not set", ref.Env)
		}
		// Lower case is legal in a name, but unusual enough that the value
		// might be a secret: say so without it.
		return "", fmt.Errorf("the environment variable named by env is not set; its name is not shown, as it is not in capitals and might be a secret")
	case ref.File != "":
		b, err := os.ReadFile(ref.File)
		if err != nil {
			return "", fmt.Errorf("read secret file %q: %w", ref.File, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %q is empty", ref.File)
		}
		return v, nil
	}
	return "", fmt.Errorf("set env (a variable name) or file (a path); secrets are never written in the sources file")
}

func locator(c Config, i int, field string, l *Locator, def envelope.Locator) (envelope.Locator, error) {
	if l == nil {
		return def, nil
	}
	if (l.Header == "") == (l.JSON == "") {
		return envelope.Locator{}, fieldError(c, i, field, "set exactly one of header and json")
	}
	return envelope.Locator{Header: l.Header, JSON: l.JSON}, nil
}

// FromEnv declares the two original sources from the environment, for
// deployments without a sources file: stripe from STRIPE_WEBHOOK_SECRET and
// bank (HMAC-SHA256, hex, X-Hmac-Signature) from BANK_WEBHOOK_SECRET. Each
// may hold a comma-separated list, or be given as X_FILE.
func FromEnv(getenv func(string) string, stripeTolerance time.Duration) ([]Config, error) {
	var cfgs []Config
	for _, s := range envSources {
		values, err := config.Secrets(getenv, s.env)
		if err != nil {
			return nil, err
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("%s (or %s_FILE) is not set: the %s source needs at least one secret (or set HOOKLINE_SOURCES to a sources file)", s.env, s.env, s.name)
		}
		c := Config{Name: s.name, Type: s.typ}
		for k, v := range values {
			c.Secrets = append(c.Secrets, SecretRef{Label: fmt.Sprintf("%s#%d", s.env, k+1), value: v})
		}
		if s.typ == "stripe" {
			c.Tolerance = stripeTolerance
		}
		cfgs = append(cfgs, c)
	}
	return cfgs, nil
}

// Load builds the sources from the sources file at path (HOOKLINE_SOURCES),
// or from the environment when path is empty.
func Load(getenv func(string) string, path string, stripeTolerance time.Duration) ([]receiver.Source, []Summary, error) {
	if path == "" {
		cfgs, err := FromEnv(getenv, stripeTolerance)
		if err != nil {
			return nil, nil, err
		}
		return Build(getenv, cfgs)
	}
	// Every error names the setting and the file, as the operator wrote
	// them: HOOKLINE_SOURCES=/etc/x.yaml: line 4: sources.stripe: …
	f, err := ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("HOOKLINE_SOURCES=%s: %w", path, err)
	}
	srcs, sums, err := Build(getenv, f.Sources)
	if err != nil {
		return nil, nil, fmt.Errorf("HOOKLINE_SOURCES=%s: %w", path, err)
	}
	return srcs, sums, nil
}

// signsTimestamp reports whether c's scheme signs a timestamp, to which a
// tolerance applies.
func signsTimestamp(c Config) bool {
	switch c.Type {
	case "stripe", "slack", "standardwebhooks":
		return true
	case "hmac":
		return c.HMAC != nil && c.HMAC.TimestampHeader != ""
	}
	return false
}

// secretPrefixes begin the secrets of the providers Hookline knows and of
// common API keys.
var secretPrefixes = []string{"whsec_", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "ghp_", "gho_", "ghs_", "github_pat_", "shpss_", "shpat_", "xoxb-", "xoxp-", "xapp-"}

// looksLikeSecret reports whether a label could be a secret: it starts like
// a known kind of secret, or it is a long run of letters and digits with no
// separator, as random secrets are ("current", "previous", "2024-06" and
// "STRIPE_WEBHOOK_SECRET#1" are not).
func looksLikeSecret(s string) bool {
	lower := strings.ToLower(s)
	for _, p := range secretPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	if len(s) < 16 || strings.ContainsAny(s, "_.#-") {
		return false
	}
	return strings.ContainsAny(s, "0123456789") && strings.ContainsFunc(s, unicode.IsLetter)
}

// Extractor returns where a provider of type typ (stripe, github, …) puts
// an event's id, type and API version, as its sources read them by
// default, and whether typ is known. Catch-up reads events it lists from a
// provider's API with it, so that they get the keys a delivery would.
func Extractor(typ string) (envelope.Extractor, bool) {
	d, ok := typeDefaults[typ]
	if !ok {
		return envelope.Extractor{}, false
	}
	return envelope.Extractor{ID: d.id, Type: d.eventType, APIVersion: d.apiVersion, ReadObjects: d.readObjects}, true
}
