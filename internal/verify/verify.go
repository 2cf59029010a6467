// Package verify checks that a webhook body was signed by its sender.
//
// A Verifier sees the request headers and the raw body bytes exactly as they
// arrived, before anything parses them: a signature is over bytes, and
// re-encoding a parsed body would change them.
//
// It knows Stripe's, GitHub's, Shopify's, Slack's and the Standard Webhooks
// (and Svix) schemes, each in its own file citing the provider's
// specification, and a generic HMAC scheme that also serves the bank. All
// of them share these rules:
//   - a verifier holds several secrets and accepts a signature under any
//     one, so that a sender can rotate its secret with no downtime;
//   - signatures are decoded to bytes of the expected length and compared
//     with hmac.Equal, in constant time;
//   - headers are read in one pass, in time linear in their length, and at
//     most 64 well-formed candidate signatures are compared per request;
//   - a signed timestamp must be within the tolerance of the receiver's
//     clock in both directions (too_old, too_new).
//
// Every failure is an *Error that matches ErrInvalidSignature with errors.Is.
// Its Reason is for logs and metrics only; callers must answer the sender
// with the same generic message whatever the reason, so that a forger learns
// nothing about which part of a signature was wrong.
package verify

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidSignature is matched by every verification failure.
var ErrInvalidSignature = errors.New("invalid signature")

// Verifier checks the signature of one source's requests.
type Verifier interface {
	// Verify returns nil if body carries a valid signature in header under
	// one of the verifier's secrets, and an *Error otherwise.
	Verify(header http.Header, body []byte) error
}

// Reason says why a verification failed, in a word fit for a log field or
// a metric label. It never contains secret material.
type Reason string

// The reasons a verification can fail.
const (
	ReasonMissingHeader   Reason = "missing_header"
	ReasonMalformedHeader Reason = "malformed_header"
	ReasonNoMatch         Reason = "no_match"
	ReasonTooOld          Reason = "too_old"
	// ReasonTooNew is a signed timestamp further in the future than the
	// tolerance allows: a clock far off, or a request minted to be replayed
	// later.
	ReasonTooNew Reason = "too_new"
	// ReasonLivemodeMismatch is a Stripe event whose signature matched but
	// whose livemode is not the one the source expects, such as a test-mode
	// event sent to a live endpoint that shares its secret.
	ReasonLivemodeMismatch Reason = "livemode_mismatch"
)

// Error is a verification failure.
type Error struct {
	// Reason is why the request failed.
	Reason Reason
	// SecretsTried is how many configured secrets were compared against the
	// signature before giving up; zero when the header could not be read or
	// the timestamp was outside the window, since no secret was then used.
	SecretsTried int
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid signature: %s (secrets tried: %d)", e.Reason, e.SecretsTried)
}

// Is makes every *Error match ErrInvalidSignature.
func (e *Error) Is(target error) bool { return target == ErrInvalidSignature }

// errNoSecrets is returned by constructors: a source without a secret would
// accept nothing, or worse, be mistaken for one that accepts everything.
var errNoSecrets = errors.New("no secrets configured")
