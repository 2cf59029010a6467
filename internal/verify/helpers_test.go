package verify_test

import (
	"net/http"
	"time"

	"github.com/hookline/hookline/internal/verify"
)

// fixedNow is the clock of tests that need old timestamps to pass.
func fixedNow(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

// rotation returns secrets labelled the way an operator rotating them would:
// the first is current, the rest previous.
func rotation(values ...string) []verify.Secret {
	out := make([]verify.Secret, len(values))
	for i, v := range values {
		label := "current"
		if i > 0 {
			label = "previous"
		}
		out[i] = verify.Secret{Label: label, Value: []byte(v)}
	}
	return out
}

// headers builds an http.Header with Set, which canonicalizes names the way
// a real request's headers are.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}
