package verify

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// DefaultTolerance is how far a signed timestamp may be from the receiver's
// clock, in either direction, for the schemes that sign one (Slack, Standard
// Webhooks, and HMACOptions with a TimestampHeader). Five minutes is what
// Slack's documentation and the Standard Webhooks libraries use.
const DefaultTolerance = 5 * time.Minute

// maxCandidates caps how many well-formed signatures of one header are
// compared. A sender lists one per live secret, two during a rotation, so
// 64 leaves a wide margin. Without a cap, a header of thousands of entries
// would cost a comparison per entry and per secret, and memory to hold
// them; with it, the work per request is bounded whatever the header says.
// Entries past the cap are skipped, never an error: the header is still
// read to its end for the fields that matter (such as Stripe's t).
const maxCandidates = 64

// maxUnix is 9999-12-31T23:59:59Z. Larger timestamps are far in the future
// for any clock; capping them keeps time.Unix clear of overflow.
const maxUnix = 253402300799

// parseUnix parses Unix seconds written the one way senders write them:
// ASCII digits, no sign, no leading zero. Accepting other spellings ("+1",
// "01") would let one signed value have several header forms, and the
// libraries disagree on whether the raw or the reformatted value is signed.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, false // 18 digits cannot overflow int64.
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// window is a two-sided replay window around the receiver's clock.
type window struct {
	tolerance time.Duration
	now       func() time.Time
}

// newWindow applies the shared rules for a tolerance option: zero means def,
// negative is a mistake, and a nil clock is time.Now.
func newWindow(scheme string, tolerance, def time.Duration, now func() time.Time) (window, error) {
	switch {
	case tolerance < 0:
		return window{}, fmt.Errorf("verify: %s: tolerance %s is negative", scheme, tolerance)
	case tolerance == 0:
		tolerance = def
	}
	if now == nil {
		now = time.Now
	}
	return window{tolerance: tolerance, now: now}, nil
}

// check returns the reason unix falls outside the window, or "".
func (w window) check(unix int64) Reason {
	if unix > maxUnix {
		return ReasonTooNew
	}
	t, now := time.Unix(unix, 0), w.now()
	switch {
	case now.Sub(t) > w.tolerance:
		return ReasonTooOld
	case t.Sub(now) > w.tolerance:
		return ReasonTooNew
	}
	return ""
}

// decodeHex decodes a hex signature of exactly size bytes. Upper and lower
// case digits are both accepted: they are the same bytes, and the bytes are
// what is compared.
func decodeHex(s string, size int) ([]byte, bool) {
	if len(s) != 2*size {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// decodeBase64 decodes a standard, padded base64 signature of exactly size
// bytes, in its one canonical spelling: Strict rejects stray padding bits,
// and CR and LF, which the decoder would otherwise skip, are refused.
func decodeBase64(s string, size int) ([]byte, bool) {
	if len(s) != base64.StdEncoding.EncodedLen(size) || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil && len(b) == size
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !isTokenChar[c] {
			return false
		}
	}
	return true
}

var isTokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
