// Package envelope reads the few fields Hookline needs from a verified
// event body: its id, its type and, for Stripe, its API version.
//
// It runs only after the signature has passed, so an unsigned body is never
// parsed. It checks the fields strictly, because they become database keys:
// a value Postgres cannot store in a text column (a NUL byte) or an id that
// does not fit the key would otherwise turn into a database error, a 503 and
// a provider retrying the same bad event forever.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// MaxIDLen is the longest event id accepted, in bytes.
const MaxIDLen = 255

// MaxTypeLen is the longest event type accepted, in bytes.
const MaxTypeLen = 255

// ErrMalformed is matched by every error Parse returns.
var ErrMalformed = errors.New("malformed event body")

// Envelope holds the routing fields of an event.
type Envelope struct {
	// ID is the sender's event id, the idempotency key.
	ID string
	// Type is the event type, such as "charge.succeeded"; may be empty.
	Type string
	// APIVersion is Stripe's api_version; empty for other senders.
	APIVersion string
}

// Parse reads the envelope of body, a JSON object with a string "id".
func Parse(body []byte) (Envelope, error) {
	var raw struct {
		ID         *string `json:"id"`
		Type       *string `json:"type"`
		APIVersion *string `json:"api_version"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Envelope{}, fmt.Errorf("%w: not a JSON object with string id and type: %v", ErrMalformed, err)
	}
	if raw.ID == nil || *raw.ID == "" {
		return Envelope{}, fmt.Errorf("%w: missing id", ErrMalformed)
	}
	env := Envelope{ID: *raw.ID, Type: deref(raw.Type), APIVersion: deref(raw.APIVersion)}
	if err := checkField("id", env.ID, MaxIDLen); err != nil {
		return Envelope{}, err
	}
	if err := checkField("type", env.Type, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	if err := checkField("api_version", env.APIVersion, MaxTypeLen); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

func checkField(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrMalformed, name, len(v), max)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%w: %s has a control character at byte %d", ErrMalformed, name, i)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
