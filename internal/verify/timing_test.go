package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/verify"
)

// The timing check (the Timing section of docs/SECURITY.md): the time to
// refuse a signature must not depend on how many of its leading bytes are
// right, or a forger could find a valid MAC a byte at a time. It measures
// verification of a signature wrong in its first byte against one wrong only
// in its last, in many interleaved batches, and compares medians and trimmed
// means.
//
// It is skipped unless HOOKLINE_TIMING=1, since wall-clock statistics
// cannot be trusted on a shared CI machine:
//
//	HOOKLINE_TIMING=1 go test -run TestSignatureTiming -count=1 -v ./internal/verify
//
// HOOKLINE_TIMING_SAMPLES (default 2000 batches per side) and
// HOOKLINE_TIMING_THRESHOLD (default 0.15, a relative difference) tune it.
// A control runs the same statistics on a deliberately leaky, early-exit
// comparison, to show the method does see a leak when there is one.

type timingCase struct {
	name        string
	early, late func() bool // each runs one operation; true means it refused
}

func TestSignatureTiming(t *testing.T) {
	if os.Getenv("HOOKLINE_TIMING") != "1" {
		t.Skip("set HOOKLINE_TIMING=1 to run the timing check (docs/SECURITY.md)")
	}
	samples := envInt(t, "HOOKLINE_TIMING_SAMPLES", 2000)
	threshold := envFloat(t, "HOOKLINE_TIMING_THRESHOLD", 0.15)

	for _, tc := range []timingCase{hmacTiming(t), stripeTiming(t), equalTiming("hmac.Equal (the comparison itself)", hmac.Equal)} {
		r := measure(tc, samples)
		t.Logf("%-40s %s", tc.name, r)
		if r.relMedian > threshold || r.relTrimmed > threshold {
			t.Errorf("%s: refusing a signature wrong in its first byte and one wrong in its last differ by %.1f%% (median) / %.1f%% (trimmed mean), over %.0f%%",
				tc.name, 100*r.relMedian, 100*r.relTrimmed, 100*threshold)
		}
	}
	control := measure(equalTiming("control: early-exit loop (leaky)", leakyEqual), samples)
	t.Logf("%-40s %s", "control: early-exit loop (leaky)", control)
	if control.relMedian < threshold {
		t.Errorf("the control, a comparison that leaks, differs by only %.1f%%: the measurement is too noisy to show anything", 100*control.relMedian)
	}
}

// hmacTiming is the bank scheme: hex HMAC-SHA256 of the body.
func hmacTiming(t testing.TB) timingCase {
	body := []byte(`{"id":"tr_1","type":"transfer.settled","account":"acc_9","amount_cents":1250}`)
	v, err := verify.NewHMAC(verify.HMACHeader, []string{"timing-secret"})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := hex.DecodeString(verify.SignHMAC("timing-secret", body))
	early := http.Header{verify.HMACHeader: {hex.EncodeToString(flip(mac, 0))}}
	late := http.Header{verify.HMACHeader: {hex.EncodeToString(flip(mac, len(mac)-1))}}
	return timingCase{"HMAC Verify (bank)", refuses(t, v, early, body), refuses(t, v, late, body)}
}

// stripeTiming is Stripe's scheme, one v1 signature.
func stripeTiming(t testing.TB) timingCase {
	body := []byte(`{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":2000,"customer":"cus_1"}}}`)
	v, err := verify.NewStripe([]string{"whsec_timing"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ts, v1, _ := strings.Cut(verify.SignStripe("whsec_timing", body, time.Now()), ",v1=")
	mac, _ := hex.DecodeString(v1)
	early := http.Header{verify.StripeHeader: {ts + ",v1=" + hex.EncodeToString(flip(mac, 0))}}
	late := http.Header{verify.StripeHeader: {ts + ",v1=" + hex.EncodeToString(flip(mac, len(mac)-1))}}
	return timingCase{"Stripe Verify", refuses(t, v, early, body), refuses(t, v, late, body)}
}

// equalTiming times a comparison function alone on 32-byte MACs.
func equalTiming(name string, eq func(a, b []byte) bool) timingCase {
	want := sha256.Sum256([]byte("timing"))
	early, late := flip(want[:], 0), flip(want[:], len(want)-1)
	return timingCase{name, func() bool { return !eq(want[:], early) }, func() bool { return !eq(want[:], late) }}
}

func refuses(t testing.TB, v verify.Verifier, h http.Header, body []byte) func() bool {
	if err := v.Verify(h, body); err == nil || !strings.Contains(err.Error(), "no_match") {
		t.Fatalf("the altered signature should fail with no_match, got %v", err)
	}
	return func() bool { return v.Verify(h, body) != nil }
}

func flip(b []byte, i int) []byte {
	out := slices.Clone(b)
	out[i] ^= 0x01
	return out
}

//go:noinline
func leakyEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type timingResult struct {
	earlyMedian, lateMedian   float64 // ns per operation
	earlyTrimmed, lateTrimmed float64
	relMedian, relTrimmed     float64
	welchT                    float64
}

func (r timingResult) String() string {
	return fmt.Sprintf("median %.1f vs %.1f ns (%.2f%%), trimmed mean %.1f vs %.1f ns (%.2f%%), Welch t %.2f",
		r.earlyMedian, r.lateMedian, 100*r.relMedian, r.earlyTrimmed, r.lateTrimmed, 100*r.relTrimmed, r.welchT)
}

// measure times batches of each operation, alternating which side goes
// first so that drift (frequency scaling, other load) hits both alike.
func measure(tc timingCase, samples int) timingResult {
	const batch = 200
	run := func(op func() bool) float64 {
		start := time.Now()
		for range batch {
			if !op() {
				panic("a timing operation accepted its input")
			}
		}
		return float64(time.Since(start).Nanoseconds()) / batch
	}
	for range samples / 10 { // warm up
		run(tc.early)
		run(tc.late)
	}
	early, late := make([]float64, 0, samples), make([]float64, 0, samples)
	for i := range samples {
		if i%2 == 0 {
			early = append(early, run(tc.early))
			late = append(late, run(tc.late))
		} else {
			late = append(late, run(tc.late))
			early = append(early, run(tc.early))
		}
	}
	r := timingResult{
		earlyMedian: quantile(early, 0.5), lateMedian: quantile(late, 0.5),
		earlyTrimmed: trimmedMean(early, 0.1), lateTrimmed: trimmedMean(late, 0.1),
	}
	r.relMedian = relDiff(r.earlyMedian, r.lateMedian)
	r.relTrimmed = relDiff(r.earlyTrimmed, r.lateTrimmed)
	r.welchT = welch(early, late)
	return r
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[int(q*float64(len(s)-1))]
}

func trimmedMean(xs []float64, cut float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	k := int(cut * float64(len(s)))
	s = s[k : len(s)-k]
	var sum float64
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Min(a, b) }

// welch is Welch's t statistic, reported for information: with thousands
// of samples even a harmless nanosecond of drift makes it large, which is
// why the verdict rests on the relative difference.
func welch(a, b []float64) float64 {
	ma, va := meanVar(a)
	mb, vb := meanVar(b)
	return (ma - mb) / math.Sqrt(va/float64(len(a))+vb/float64(len(b)))
}

func meanVar(xs []float64) (mean, variance float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(xs)-1)
}

func envInt(t *testing.T, key string, def int) int {
	if v := os.Getenv(key); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("%s=%q: want an integer of at least 10", key, v)
		}
		return n
	}
	return def
}

func envFloat(t *testing.T, key string, def float64) float64 {
	if v := os.Getenv(key); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.Fatalf("%s=%q: want a positive number", key, v)
		}
		return f
	}
	return def
}

// The same pair as benchmarks, for benchstat:
//
//	go test -run '^$' -bench SignatureMismatch -count 10 ./internal/verify
func BenchmarkSignatureMismatch(b *testing.B) {
	for _, tc := range []timingCase{hmacTiming(b), stripeTiming(b)} {
		for _, side := range []struct {
			name string
			op   func() bool
		}{{"first_byte_wrong", tc.early}, {"last_byte_wrong", tc.late}} {
			b.Run(strings.ReplaceAll(tc.name, " ", "_")+"/"+side.name, func(b *testing.B) {
				for b.Loop() {
					side.op()
				}
			})
		}
	}
}
