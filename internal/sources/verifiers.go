package sources

import (
	"cmp"

	"github.com/hookline/hookline/internal/verify"
)

// newVerifier builds the verifier of c's type, and names any extra headers
// worth keeping that only the configuration knows (the generic HMAC's).
func newVerifier(c Config, secrets []verify.Secret) (verify.Verifier, []string, error) {
	tol := cmp.Or(c.Tolerance, DefaultTolerance)
	switch c.Type {
	case "stripe":
		v, err := verify.NewStripeWith(secrets, verify.StripeOptions{Tolerance: tol, Livemode: c.Livemode})
		return v, nil, err
	case "github":
		v, err := verify.NewGitHub(secrets)
		return v, nil, err
	case "shopify":
		v, err := verify.NewShopify(secrets)
		return v, nil, err
	case "slack":
		v, err := verify.NewSlack(secrets, verify.SlackOptions{Tolerance: tol})
		return v, nil, err
	case "standardwebhooks":
		v, err := verify.NewStandardWebhooks(secrets, verify.StandardWebhooksOptions{Tolerance: tol})
		return v, nil, err
	default: // hmac
		h := HMACConfig{Header: verify.HMACHeader}
		if c.HMAC != nil {
			h = *c.HMAC
		}
		opts := verify.HMACOptions{
			Header: h.Header, Prefix: h.Prefix, Algorithm: h.Algorithm, Encoding: h.Encoding,
			TimestampHeader: h.TimestampHeader, Template: h.Template,
		}
		keep := []string{h.Header}
		if h.TimestampHeader != "" {
			opts.Tolerance = tol
			keep = append(keep, h.TimestampHeader)
		}
		v, err := verify.NewHMACWith(secrets, opts)
		return v, keep, err
	}
}
