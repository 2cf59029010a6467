package verify_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// pathological are header values built to be slow to parse: 64 KiB of
// separators, and 10,000 well-formed but wrong signatures. 64 KiB is the
// receiver's whole header limit.
func pathological(sep, entry string) map[string]string {
	return map[string]string{
		"64 KiB of separators":         strings.Repeat(sep, 64<<10),
		"64 KiB of '='":                strings.Repeat("=", 64<<10),
		"10,000 wrong signatures":      strings.Repeat(entry+sep, 10000),
		"10,000 empty elements then t": strings.Repeat(sep, 10000) + "t=1700000000",
	}
}

// TestPathologicalHeaders bounds the time of one Verify on each
// pathological header. The bound is generous (the real figure is well
// under a millisecond) so that it holds under -race on a loaded machine,
// and still catches any quadratic parse, which would take seconds.
func TestPathologicalHeaders(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	body := []byte(`{"id":"evt_1"}`)
	wrongHex := strings.Repeat("ab", 32)
	wrongB64 := "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

	stripe, err := verify.NewStripeWith(rotation("a", "b", "c"), verify.StripeOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	sw, err := verify.NewStandardWebhooks(rotation("c2VjcmV0", "b3RoZXI="), verify.StandardWebhooksOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	gh, err := verify.NewGitHub(rotation("a", "b"))
	require.NoError(t, err)
	slack, err := verify.NewSlack(rotation("a"), verify.SlackOptions{Now: fixedNow(now)})
	require.NoError(t, err)

	cases := map[string]func() error{}
	for name, v := range pathological(",", "v1="+wrongHex) {
		cases["stripe: "+name] = func() error {
			return stripe.Verify(headers(verify.StripeHeader, fmt.Sprintf("t=%d,", now)+v), body)
		}
	}
	for name, v := range pathological(" ", "v1,"+wrongB64) {
		cases["standardwebhooks: "+name] = func() error {
			return sw.Verify(swHeaders("webhook", "msg_1", fmt.Sprint(now), v), body)
		}
	}
	for name, v := range pathological(",", "sha256="+wrongHex) {
		cases["github: "+name] = func() error { return gh.Verify(headers(verify.GitHubSignatureHeader, v), body) }
		cases["slack: "+name] = func() error {
			return slack.Verify(headers(verify.SlackSignatureHeader, v, verify.SlackTimestampHeader, fmt.Sprint(now)), body)
		}
		cases["slack timestamp: "+name] = func() error {
			return slack.Verify(headers(verify.SlackSignatureHeader, "v0="+wrongHex, verify.SlackTimestampHeader, v), body)
		}
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := run()
			require.Less(t, time.Since(start), 250*time.Millisecond)
			require.ErrorIs(t, err, verify.ErrInvalidSignature)
		})
	}
}

// TestCandidateCap shows the cap on compared signatures: a good signature
// is found among the first 64 well-formed ones and ignored after them.
// Malformed entries do not count towards the cap.
func TestCandidateCap(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	body := []byte(`{}`)
	wrong := "v1=" + strings.Repeat("ab", 32)
	good := "v1=" + stripeSig("s", body, now)
	stripe, err := verify.NewStripeWith(rotation("s"), verify.StripeOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	header := func(wrongs, junk int) http.Header {
		return headers(verify.StripeHeader, fmt.Sprintf("t=%d,", now)+
			strings.Repeat(wrong+",", wrongs)+strings.Repeat("v1=zz,", junk)+good)
	}
	require.NoError(t, stripe.Verify(header(63, 0), body))
	require.NoError(t, stripe.Verify(header(63, 1000), body))
	requireReason(t, stripe.Verify(header(64, 0), body), verify.ReasonNoMatch)

	secret := "whsec_c2VjcmV0"
	sw, err := verify.NewStandardWebhooks(rotation(secret), verify.StandardWebhooksOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	sig, err := verify.SignStandardWebhooks(secret, "msg_1", time.Unix(now, 0), body)
	require.NoError(t, err)
	swWrong := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
	require.NoError(t, sw.Verify(swHeaders("webhook", "msg_1", fmt.Sprint(now), strings.Repeat(swWrong, 63)+sig), body))
	requireReason(t, sw.Verify(swHeaders("webhook", "msg_1", fmt.Sprint(now), strings.Repeat(swWrong, 64)+sig), body), verify.ReasonNoMatch)
}

// BenchmarkStripePathological measures Verify on a 64 KiB header of wrong
// signatures, the worst a request within the receiver's header limit can
// send. Run with: go test -run '^$' -bench Pathological ./internal/verify
func BenchmarkStripePathological(b *testing.B) {
	const now = 1700000000
	v, err := verify.NewStripeWith(rotation("a", "b"), verify.StripeOptions{Now: fixedNow(now)})
	if err != nil {
		b.Fatal(err)
	}
	entry := "v1=" + strings.Repeat("ab", 32) + ","
	h := headers(verify.StripeHeader, fmt.Sprintf("t=%d,", now)+strings.Repeat(entry, (64<<10)/len(entry)))
	body := []byte(`{"id":"evt_1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if v.Verify(h, body) == nil {
			b.Fatal("accepted")
		}
	}
}
