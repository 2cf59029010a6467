package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// StripeHeader is the header that carries Stripe's signature.
const StripeHeader = "Stripe-Signature"

// DefaultStripeTolerance is how far a Stripe signature's timestamp may be
// from the receiver's clock, the same as stripe-go's default.
const DefaultStripeTolerance = webhook.DefaultTolerance

// StripeOptions configures NewStripeWith.
type StripeOptions struct {
	// Tolerance is the replay window, in both directions. Zero means
	// DefaultStripeTolerance.
	Tolerance time.Duration
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
	// Livemode, if set, is the value the event's top-level "livemode" must
	// have. It guards an endpoint against events of the other mode, such
	// as test-mode events sent with a reused secret.
	Livemode *bool
}

// Stripe verifies Stripe's webhook signatures, as specified at
// https://docs.stripe.com/webhooks#verify-manually: the Stripe-Signature
// header is a comma-separated list of key=value elements, in which t is the
// signing time in Unix seconds and each v1 is the hex HMAC-SHA256 of
// t + "." + raw body, keyed with the endpoint secret's bytes ("whsec_..." as
// is, not decoded). Stripe sends several v1 elements while a secret is being
// rolled; other schemes (v0, test schemes) are ignored.
//
// It deliberately validates only the signature, the timestamp and, if asked,
// livemode, never the event's api_version: a Stripe account sends whatever
// version its endpoint is pinned to, which need not match the one stripe-go
// was built for, and refusing such an event would lose it.
type Stripe struct {
	secrets  []Secret
	window   window
	livemode *bool
}

// NewStripeWith returns a verifier that accepts a signature under any of
// secrets whose timestamp is within the window.
func NewStripeWith(secrets []Secret, opts StripeOptions) (*Stripe, error) {
	ss, err := checkSecrets("stripe", secrets)
	if err != nil {
		return nil, err
	}
	w, err := newWindow("stripe", opts.Tolerance, DefaultStripeTolerance, opts.Now)
	if err != nil {
		return nil, err
	}
	v := &Stripe{secrets: ss, window: w}
	if opts.Livemode != nil {
		lm := *opts.Livemode // a copy: the caller's bool may change later.
		v.livemode = &lm
	}
	return v, nil
}

// NewStripe returns a verifier that accepts a signature under any of secrets
// whose timestamp is at most tolerance from now. It is NewStripeWith with
// string secrets, kept for its callers.
func NewStripe(secrets []string, tolerance time.Duration) (*Stripe, error) {
	if tolerance <= 0 {
		return nil, errors.New("stripe tolerance must be positive")
	}
	return NewStripeWith(secretsFromStrings(secrets), StripeOptions{Tolerance: tolerance})
}

// Verify implements Verifier.
func (v *Stripe) Verify(header http.Header, body []byte) error {
	raw := header.Get(StripeHeader)
	if raw == "" {
		return &Error{Reason: ReasonMissingHeader}
	}
	sh, ok := parseStripeHeader(raw)
	if !ok {
		return &Error{Reason: ReasonMalformedHeader}
	}
	if r := v.window.check(sh.unix); r != "" {
		return &Error{Reason: r}
	}
	for i, secret := range v.secrets {
		want := stripeMAC(secret.Value, sh.t, body)
		for _, got := range sh.sigs {
			if !hmac.Equal(want, got) {
				continue
			}
			if v.livemode != nil {
				if lm, ok := stripeLivemode(body); !ok || lm != *v.livemode {
					return &Error{Reason: ReasonLivemodeMismatch, SecretsTried: i + 1}
				}
			}
			return nil
		}
	}
	return &Error{Reason: ReasonNoMatch, SecretsTried: len(v.secrets)}
}

// stripeHeader is a parsed Stripe-Signature value.
type stripeHeader struct {
	t    string // as sent; parseUnix guarantees one spelling per value
	unix int64
	sigs [][]byte // well-formed v1 signatures, at most maxCandidates
}

// parseStripeHeader reads the header in one pass, without regexps or
// splitting into a slice, so its cost is linear in the header's length.
// It is more lenient than stripe-go's parser, which refuses a header with
// an element lacking '=' or holding a second '=' (a base64 value, say),
// and stricter where leniency could hide a forgery:
//   - elements are split at the first '=', and spaces around them are
//     dropped, as stripe-ruby does; elements without '=' are ignored;
//   - exactly one t is required, in canonical digits: stripe-node takes
//     the last t and stripe-ruby the first, so two are refused;
//   - v1 values that are not 64 hex digits are ignored, as in stripe-go,
//     but at least one well-formed v1 is required.
func parseStripeHeader(s string) (stripeHeader, bool) {
	var h stripeHeader
	var seenT bool
	for rest, more := s, true; more; {
		var elem string
		elem, rest, more = strings.Cut(rest, ",")
		key, val, ok := strings.Cut(strings.Trim(elem, " \t"), "=")
		if !ok {
			continue
		}
		switch key {
		case "t":
			if seenT {
				return h, false
			}
			seenT = true
			if h.unix, ok = parseUnix(val); !ok {
				return h, false
			}
			h.t = val
		case "v1":
			if len(h.sigs) < maxCandidates {
				if sig, ok := decodeHex(val, sha256.Size); ok {
					h.sigs = append(h.sigs, sig)
				}
			}
		}
	}
	return h, seenT && len(h.sigs) > 0
}

func stripeMAC(secret []byte, t string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, t)
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// stripeLivemode returns the event's top-level livemode, and false if the
// body is not a JSON object or livemode is absent or not a boolean. A map
// of raw values matches keys exactly, where decoding into a struct would
// also accept "LiveMode".
func stripeLivemode(body []byte) (livemode, ok bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false, false
	}
	switch raw := top["livemode"]; {
	case bytes.Equal(raw, []byte("true")):
		return true, true
	case bytes.Equal(raw, []byte("false")):
		return false, true
	}
	return false, false
}

// SignStripe returns the Stripe-Signature header value Stripe would send for
// body under secret at time t. It is used by `hookctl send` and by tests.
func SignStripe(secret string, body []byte, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: body, Secret: secret, Timestamp: t,
	}).Header
}
