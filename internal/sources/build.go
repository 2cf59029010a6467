package sources

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

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
	Name          string   `json:"name"`
	Path          string   `json:"path"`
	Type          string   `json:"type"`
	SecretLabels  []string `json:"secret_labels"`
	ID            string   `json:"id_from"`
	EventType     string   `json:"event_type_from"`
	FailureStatus int      `json:"failure_status"`
	MaxBodyBytes  int64    `json:"max_body_bytes,omitempty"`
	// AllowIPs are the networks allowed to send, in canonical form; empty
	// means any address.
	AllowIPs []string `json:"allow_ips,omitempty"`
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	labelRe = regexp.MustCompile(`^[A-Za-z0-9_.#-]{1,64}$`)
)

// typeDefaults is where each provider puts its idempotency key and event
// type, and the headers worth keeping for audit and re-verification.
var typeDefaults = map[string]struct {
	id, eventType, apiVersion envelope.Locator
	keep                      []string
}{
	"stripe": {envelope.Locator{JSON: "id"}, envelope.Locator{JSON: "type"}, envelope.Locator{JSON: "api_version"},
		[]string{"Stripe-Signature"}},
	"github": {envelope.Locator{Header: "X-GitHub-Delivery"}, envelope.Locator{Header: "X-GitHub-Event"}, envelope.Locator{},
		[]string{"X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event", "X-GitHub-Hook-ID"}},
	"shopify": {envelope.Locator{Header: "X-Shopify-Webhook-Id"}, envelope.Locator{Header: "X-Shopify-Topic"}, envelope.Locator{},
		[]string{"X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Triggered-At"}},
	"slack": {envelope.Locator{JSON: "event_id"}, envelope.Locator{JSON: "event.type"}, envelope.Locator{},
		[]string{"X-Slack-Signature", "X-Slack-Request-Timestamp"}},
	"standardwebhooks": {envelope.Locator{Header: "webhook-id", FallbackHeader: "svix-id"}, envelope.Locator{JSON: "type"}, envelope.Locator{},
		[]string{"webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature"}},
	"hmac": {envelope.Locator{JSON: "id"}, envelope.Locator{JSON: "type"}, envelope.Locator{}, nil},
}

// Build validates cfgs and builds the receiver's sources, reading each
// secret from the environment variable or file it names. Every error names
// the source and the field.
func Build(getenv func(string) string, cfgs []Config) ([]receiver.Source, []Summary, error) {
	seen := map[string]bool{}
	var out []receiver.Source
	var sums []Summary
	for i, c := range cfgs {
		if !nameRe.MatchString(c.Name) {
			return nil, nil, fieldError(c, i, "name", "%q must be 1-63 of a-z, 0-9, _ and -, starting with a letter or digit", c.Name)
		}
		if seen[c.Name] {
			return nil, nil, fieldError(c, i, "name", "declared twice")
		}
		seen[c.Name] = true
		src, sum, err := build(getenv, c, i)
		if err != nil {
			return nil, nil, err
		}
		out, sums = append(out, src), append(sums, sum)
	}
	return out, sums, nil
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
	if c.MaxBodyBytes < 0 {
		return receiver.Source{}, Summary{}, fieldError(c, i, "max_body_bytes", "must be positive")
	}

	allowIPs, err := parseAllowIPs(c, i)
	if err != nil {
		return receiver.Source{}, Summary{}, err
	}

	v, keep, err := newVerifier(c, secrets)
	if err != nil {
		return receiver.Source{}, Summary{}, fieldError(c, i, "type options", "%v", err)
	}
	ext := envelope.Extractor{ID: defaults.id, Type: defaults.eventType, APIVersion: defaults.apiVersion}
	if ext.ID, err = locator(c, i, "id", c.ID, ext.ID); err != nil {
		return receiver.Source{}, Summary{}, err
	}
	if ext.Type, err = locator(c, i, "event_type", c.EventType, ext.Type); err != nil {
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
	}
	sum := Summary{
		Name: c.Name, Path: "/api/webhooks/" + c.Name, Type: c.Type, SecretLabels: labels,
		ID: ext.ID.String(), EventType: ext.Type.String(),
		FailureStatus: max(c.FailureStatus, http.StatusBadRequest), MaxBodyBytes: c.MaxBodyBytes,
	}
	for _, p := range allowIPs {
		sum.AllowIPs = append(sum.AllowIPs, p.String())
	}
	return src, sum, nil
}

// parseAllowIPs reads allow_ips: each entry a network in CIDR notation
// ("192.0.2.0/24", "2001:db8::/32") or a single address ("203.0.113.7",
// taken as /32 or /128). A network with host bits set, such as
// 192.0.2.5/24, is refused rather than silently widened or narrowed: the
// operator probably meant something else.
func parseAllowIPs(c Config, i int) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for j, entry := range c.AllowIPs {
		field := fmt.Sprintf("allow_ips[%d]", j)
		p, err := ParseNetwork(entry)
		if err != nil {
			return nil, fieldError(c, i, field, "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseNetwork parses one allowlist or trusted-proxy entry: a CIDR network
// or a single IP address. IPv4-mapped IPv6 forms are unmapped, and zones
// are refused.
func ParseNetwork(entry string) (netip.Prefix, error) {
	s := strings.TrimSpace(entry)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR network", entry)
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", entry)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR network: %v", entry, err)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped network must be /96 or longer", entry)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", entry, p.Masked())
	}
	return p, nil
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
		if !labelRe.MatchString(ref.Label) {
			return nil, nil, fieldError(c, i, field+".label", "%q must be 1-64 of A-Z, a-z, 0-9, _ . # -", ref.Label)
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
	case ref.Env != "":
		v := getenv(ref.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", ref.Env)
		}
		return v, nil
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
	for _, s := range []struct{ name, typ, env string }{
		{"stripe", "stripe", "STRIPE_WEBHOOK_SECRET"},
		{"bank", "hmac", "BANK_WEBHOOK_SECRET"},
	} {
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
	var cfgs []Config
	if path != "" {
		f, err := ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		cfgs = f.Sources
	} else {
		var err error
		if cfgs, err = FromEnv(getenv, stripeTolerance); err != nil {
			return nil, nil, err
		}
	}
	return Build(getenv, cfgs)
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
