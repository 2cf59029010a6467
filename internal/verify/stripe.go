package verify

import (
	"errors"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// StripeHeader is the header that carries Stripe's signature.
const StripeHeader = "Stripe-Signature"

// DefaultStripeTolerance is how old a Stripe signature's timestamp may be,
// the same as stripe-go's default.
const DefaultStripeTolerance = webhook.DefaultTolerance

// Stripe verifies Stripe's scheme with stripe-go's webhook package.
//
// It deliberately validates only the signature and the timestamp, never the
// event's api_version: a Stripe account sends whatever version its endpoint
// is pinned to, which need not match the one stripe-go was built for, and
// refusing such an event would lose it.
type Stripe struct {
	secrets   []string
	tolerance time.Duration
}

// NewStripe returns a verifier that accepts a signature under any of secrets
// whose timestamp is at most tolerance old.
func NewStripe(secrets []string, tolerance time.Duration) (*Stripe, error) {
	if len(secrets) == 0 {
		return nil, errNoSecrets
	}
	if tolerance <= 0 {
		return nil, errors.New("stripe tolerance must be positive")
	}
	return &Stripe{secrets: secrets, tolerance: tolerance}, nil
}

// Verify implements Verifier.
func (v *Stripe) Verify(header http.Header, body []byte) error {
	sig := header.Get(StripeHeader)
	if sig == "" {
		return &Error{Reason: ReasonMissingHeader}
	}
	for i, secret := range v.secrets {
		err := webhook.ValidatePayloadWithTolerance(body, sig, secret, v.tolerance)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, webhook.ErrNoValidSignature):
			continue
		case errors.Is(err, webhook.ErrTooOld):
			// The timestamp is the same for every secret: trying the rest
			// would only repeat the answer.
			return &Error{Reason: ReasonTooOld, SecretsTried: i + 1}
		default: // ErrNotSigned, ErrInvalidHeader
			return &Error{Reason: ReasonMalformedHeader}
		}
	}
	return &Error{Reason: ReasonNoMatch, SecretsTried: len(v.secrets)}
}

// SignStripe returns the Stripe-Signature header value Stripe would send for
// body under secret at time t. It is used by `hookctl send` and by tests.
func SignStripe(secret string, body []byte, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: body, Secret: secret, Timestamp: t,
	}).Header
}
