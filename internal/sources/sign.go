package sources

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/verify"
)

// Sender signs deliveries as one source's sender does: the other half of
// the verifier Build makes for the source. hookctl send uses it, so that
// what it sends passes the receiver's check for the same configuration.
type Sender struct {
	// Name and Type are the source's.
	Name, Type string
	// ID and EventType are where the receiver reads the event id and
	// type: a header, which Sign sets, or a JSON path in the body.
	ID, EventType envelope.Locator
	secret        string
	hmac          verify.HMACOptions
}

// IDHeader is the header the receiver reads the event id from, or "" when
// the id is in the body. For Standard Webhooks it is webhook-id, which the
// signature covers.
func (s Sender) IDHeader() string {
	if s.ID.Signed != nil {
		return verify.StandardWebhooksIDHeader
	}
	return s.ID.Header
}

// Sign returns the headers of a delivery of body at now, signed with the
// source's first secret, carrying id and eventType in the headers the
// source reads them from (they are ignored when they are in the body).
func (s Sender) Sign(body []byte, id, eventType string, now time.Time) (http.Header, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	if name := s.IDHeader(); name != "" {
		if id == "" {
			return nil, fmt.Errorf("source %s reads the event id from header %s: give one", s.Name, name)
		}
		h.Set(name, id)
	}
	if s.EventType.Header != "" {
		if eventType == "" {
			return nil, fmt.Errorf("source %s reads the event type from header %s: give one", s.Name, s.EventType.Header)
		}
		h.Set(s.EventType.Header, eventType)
	}
	switch s.Type {
	case "stripe":
		h.Set(verify.StripeHeader, verify.SignStripe(s.secret, body, now))
	case "github":
		h.Set(verify.GitHubSignatureHeader, verify.SignGitHub(s.secret, body))
	case "shopify":
		h.Set(verify.ShopifyHMACHeader, verify.SignShopify(s.secret, body))
	case "slack":
		sig, ts := verify.SignSlack(s.secret, now, body)
		h.Set(verify.SlackSignatureHeader, sig)
		h.Set(verify.SlackTimestampHeader, ts)
	case "standardwebhooks":
		sig, err := verify.SignStandardWebhooks(s.secret, id, now, body)
		if err != nil {
			return nil, fmt.Errorf("sign for source %s: %w", s.Name, err)
		}
		h.Set(verify.StandardWebhooksTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		h.Set(verify.StandardWebhooksSignatureHeader, sig)
	default: // hmac
		sig, ts, err := verify.SignHMACWith(s.secret, s.hmac, now, body)
		if err != nil {
			return nil, fmt.Errorf("sign for source %s: %w", s.Name, err)
		}
		h.Set(s.hmac.Header, sig)
		if s.hmac.TimestampHeader != "" {
			h.Set(s.hmac.TimestampHeader, ts)
		}
	}
	return h, nil
}

// LoadSender returns the Sender of the source called name: from the
// sources file at path (HOOKLINE_SOURCES), or, when path is empty, stripe
// or bank from STRIPE_WEBHOOK_SECRET or BANK_WEBHOOK_SECRET, of which only
// the one named is needed. A non-empty secret replaces the source's own.
// The source is checked as Build checks it, so a source the receiver would
// refuse is refused here too, with the same message.
func LoadSender(getenv func(string) string, path, name, secret string) (Sender, error) {
	var c Config
	if path == "" {
		i := slices.IndexFunc(envSources, func(s envSource) bool { return s.name == name })
		if i < 0 {
			return Sender{}, fmt.Errorf("unknown source %q: without HOOKLINE_SOURCES the sources are stripe and bank", name)
		}
		env := envSources[i]
		c = Config{Name: name, Type: env.typ}
		if secret == "" {
			values, err := config.Secrets(getenv, env.env)
			if err != nil {
				return Sender{}, err
			}
			if len(values) == 0 {
				return Sender{}, fmt.Errorf("no secret for source %s: pass --secret or set %s", name, env.env)
			}
			secret = values[0]
		}
	} else {
		f, err := ReadFile(path)
		if err != nil {
			return Sender{}, fmt.Errorf("HOOKLINE_SOURCES=%s: %w", path, err)
		}
		i := slices.IndexFunc(f.Sources, func(c Config) bool { return c.Name == name })
		if i < 0 {
			var names []string
			for _, c := range f.Sources {
				names = append(names, c.Name)
			}
			return Sender{}, fmt.Errorf("unknown source %q: HOOKLINE_SOURCES=%s declares %v", name, path, names)
		}
		c = f.Sources[i]
	}
	if secret != "" {
		c.Secrets = []SecretRef{{Label: "given", value: secret}}
	}
	// Build checks the whole source, and resolves every secret: a source
	// that would not start the receiver cannot be sent to either.
	if _, _, err := Build(getenv, []Config{c}); err != nil {
		if path != "" {
			return Sender{}, fmt.Errorf("HOOKLINE_SOURCES=%s: %w", path, err)
		}
		return Sender{}, err
	}
	first, err := c.Secrets[0].resolve(getenv)
	if err != nil {
		return Sender{}, fmt.Errorf("source %s: secrets[0]: %w", name, err)
	}
	defaults := typeDefaults[c.Type]
	s := Sender{Name: c.Name, Type: c.Type, ID: defaults.id, EventType: defaults.eventType, secret: first}
	if c.ID != nil {
		s.ID = envelope.Locator{Header: c.ID.Header, JSON: c.ID.JSON}
	}
	if c.EventType != nil {
		s.EventType = envelope.Locator{Header: c.EventType.Header, JSON: c.EventType.JSON}
	}
	if c.Type == "hmac" {
		h := HMACConfig{Header: verify.HMACHeader}
		if c.HMAC != nil {
			h = *c.HMAC
		}
		s.hmac = verify.HMACOptions{
			Header: h.Header, Prefix: h.Prefix, Algorithm: h.Algorithm, Encoding: h.Encoding,
			TimestampHeader: h.TimestampHeader, Template: h.Template,
		}
	}
	return s, nil
}
