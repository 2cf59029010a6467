package receiver

import "crypto/sha256"

// ReplayGuard says what, beside the event id, keeps one signed delivery
// from being stored as two events. It matters for schemes that sign only
// the body (GitHub, Shopify, plain HMAC with the id in a header): anyone
// holding one captured delivery can send its body and signature again
// under a new id, and without a guard that is a new event, applied again.
type ReplayGuard int

// The replay guards a source can have.
const (
	// GuardOff keys events on their id alone. Right when the signature
	// covers the id (Stripe, Slack, Standard Webhooks, ids in the body).
	GuardOff ReplayGuard = iota
	// GuardBody also refuses a body the source has stored before, under
	// any id: a delivery's body and signature can then apply only once.
	GuardBody
	// GuardBodyAndType refuses a body stored before under the same type.
	// For providers that send one body under several types (Shopify fires
	// products/create and products/update with one payload): a captured
	// delivery then applies at most once per type, and handlers that route
	// on the unsigned type must check the body agrees.
	GuardBodyAndType
)

// String returns the guard as the sources file spells it.
func (g ReplayGuard) String() string {
	switch g {
	case GuardBody:
		return "body"
	case GuardBodyAndType:
		return "body_and_type"
	}
	return "off"
}

// key returns the inbox's replay key for an event, nil for GuardOff. The
// type is followed by a NUL, which the envelope refuses in a type, so no
// type and body can run together into another's key.
func (g ReplayGuard) key(eventType string, body []byte) []byte {
	h := sha256.New()
	switch g {
	case GuardBody:
	case GuardBodyAndType:
		h.Write([]byte(eventType))
		h.Write([]byte{0})
	default:
		return nil
	}
	h.Write(body)
	return h.Sum(nil)
}
