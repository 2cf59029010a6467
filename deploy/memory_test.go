// Memory: the memory limit of each process, as each kind of deployment
// writes it (Kubernetes resources.limits.memory, Compose mem_limit or
// deploy.resources.limits.memory, systemd MemoryMax=), GOMEMLIMIT as the Go
// runtime reads it, and the check that ties them together.

package deploy_test

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/configdoc"
)

const mib = 1 << 20

// parseGoByteCount parses GOMEMLIMIT as the runtime does (parseByteCount in
// runtime/string.go; see go doc runtime/debug.SetMemoryLimit): a
// non-negative integer with an optional suffix B, KiB, MiB, GiB or TiB.
// Anything else makes every Go binary throw at start-up ("malformed
// GOMEMLIMIT"), so "400MB" or "400M" is not a typo to shrug off.
func parseGoByteCount(s string) (int64, bool) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok || num == "" || num[len(num)-1] < '0' || num[len(num)-1] > '9' {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/u.mult {
			return 0, false
		}
		return n * u.mult, true
	}
	return 0, false
}

// k8sQuantity matches a Kubernetes resource quantity: a decimal number with
// a binary (Ki, Mi, ...) or decimal (k, M, ...) suffix, or an exponent.
var k8sQuantity = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$`)

// parseK8sQuantity returns a quantity as a number of bytes, rounded up as
// Kubernetes rounds a memory quantity's value.
func parseK8sQuantity(s string) (int64, error) {
	m := k8sQuantity.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a Kubernetes quantity", s)
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("%q is not a Kubernetes quantity", s)
	}
	pow := func(base, exp int64) *big.Rat {
		n := new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
		return new(big.Rat).SetInt(n)
	}
	switch suf := m[2]; {
	case suf == "":
	case len(suf) == 2 && suf[1] == 'i':
		r.Mul(r, pow(1024, int64(strings.Index("KMGTPE", suf[:1])+1)))
	case len(suf) > 1 && (suf[0] == 'e' || suf[0] == 'E'):
		exp, _ := strconv.ParseInt(suf[1:], 10, 64)
		if exp < 0 {
			r.Quo(r, pow(10, -exp))
		} else {
			r.Mul(r, pow(10, exp))
		}
	default:
		exps := map[string]int64{"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
		if e := exps[suf]; e < 0 {
			r.Quo(r, pow(10, -e))
		} else {
			r.Mul(r, pow(10, e))
		}
	}
	return ceilRat(r, s)
}

func ceilRat(r *big.Rat, s string) (int64, error) {
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return q.Int64(), nil
}

// composeBytes matches a Compose byte value (mem_limit,
// deploy.resources.limits.memory): a number with an optional b, k, m, g
// (kb, mb, gb, also Mi or MiB) suffix, in any case, all powers of 1024, as
// Docker's units.RAMInBytes reads it.
var composeBytes = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

func parseComposeBytes(s string) (int64, error) {
	m := composeBytes.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a byte value (512m, 1g)", s)
	}
	return scaled(m[1], power("kmgtp", strings.ToLower(m[2])), s)
}

// systemdBytes matches MemoryMax= as an absolute size: bytes with an
// optional K, M, G, T, P or E suffix, powers of 1024 (systemd.resource-control(5)).
var systemdBytes = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]|B)?$`)

// parseSystemdBytes returns MemoryMax= in bytes; 0 with no error for
// "infinity", a percentage of the host's memory or an empty value (which
// resets it), none of which is an absolute limit to compare with.
func parseSystemdBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "infinity" || strings.HasSuffix(s, "%") || strings.HasSuffix(s, "‰") || strings.HasSuffix(s, "‱") {
		return 0, nil
	}
	m := systemdBytes.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (512M, 1G), a percentage or infinity", s)
	}
	suf := m[2]
	if suf == "B" {
		suf = ""
	}
	return scaled(m[1], power("KMGTPE", suf), s)
}

// power is the power of 1024 of a one-letter unit among units, 0 for none.
func power(units, unit string) int {
	if unit == "" {
		return 0
	}
	return strings.Index(units, unit) + 1
}

// scaled returns num x 1024^power, rounded down.
func scaled(num string, power int, s string) (int64, error) {
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(1024), big.NewInt(int64(power)), nil)))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return q.Int64(), nil
}

// checkMemory (check memory-limit): a receiver or worker sets GOMEMLIMIT, a
// soft limit at which the Go runtime's garbage collector works harder, so
// that the process slows down near its memory limit instead of being
// OOM-killed at it (a killed worker leaves its jobs "running" until
// WORKER_RESCUE_AFTER). GOMEMLIMIT must:
//   - parse as the runtime parses it, or the binary does not start;
//   - be below the process's hard limit, if it has one: at or above it the
//     kernel kills the process before the collector reacts, and the cgroup
//     also charges memory the runtime does not count (socket buffers, page
//     cache);
//   - be at least half of that limit: lower, the collector runs constantly
//     for memory the process may use anyway, and a value that low is
//     usually a unit mistake (a downward-API divisor of 1Mi gives "512",
//     which GOMEMLIMIT reads as 512 bytes);
//   - for the receiver, exceed MAX_BODY_BYTES_IN_FLIGHT, the bytes of
//     request bodies it holds at once, or the bodies alone would keep the
//     collector at the limit;
//   - for the receiver, come with GOGC: either variable leaves both to Go,
//     and without GOGC=400 the receiver collects four times as often
//     (12-20% more CPU per event, docs/BENCHMARKS.md).
func (d *deployment) checkMemory(c codeFacts, p proc, bin string, f findings) {
	check := p.id + "/memory-limit"
	f.touch(check)
	v, ok := envValue(p, "GOMEMLIMIT")
	if !ok || v == "" || v == "off" {
		what := "not set"
		if ok {
			what = fmt.Sprintf("%q (no limit)", v)
		}
		f.add(check, "GOMEMLIMIT is %s: set it to about 80%% of the memory limit%s, so that the garbage collector works harder before the kernel kills the %s", what, limitText(p), bin)
		return
	}
	soft, ok := parseGoByteCount(v)
	if !ok {
		f.add(check, "GOMEMLIMIT=%s is malformed, and the Go runtime refuses to start with it: an integer with an optional suffix B, KiB, MiB, GiB or TiB (e.g. 400MiB)", v)
		return
	}
	if p.memLimit > 0 {
		if soft >= p.memLimit {
			f.add(check, "GOMEMLIMIT=%s (%d bytes) is not below the memory limit%s: the kernel kills the %s before the garbage collector reacts; about 80%% is %dMiB", v, soft, limitText(p), bin, p.memLimit*8/10/mib)
		} else if soft < p.memLimit/2 {
			f.add(check, "GOMEMLIMIT=%s (%d bytes) is less than half the memory limit%s: the garbage collector would run constantly for memory the %s may use (a unit mistake?); about 80%% is %dMiB", v, soft, limitText(p), bin, p.memLimit*8/10/mib)
		}
	}
	if bin == configdoc.Receiver {
		if _, ok := envValue(p, "GOGC"); !ok {
			f.add(check, "GOMEMLIMIT is set without GOGC, which leaves the receiver at Go's GOGC=100: set GOGC=400, its own default when neither is set")
		}
		const name = "MAX_BODY_BYTES_IN_FLIGHT"
		ref, known := c.ref.Lookup(name)
		if _, viaFile := envValue(p, name+configdoc.FileSuffix); !known || viaFile {
			return
		}
		in, ok := envValue(p, name)
		if !ok {
			in = ref.Default
		}
		n, err := strconv.ParseInt(in, 10, 64)
		if err != nil {
			f.add(check, "%s=%q is not an integer", name, in)
		} else if n >= soft {
			f.add(check, "%s=%d is not below GOMEMLIMIT=%s (%d bytes): request bodies alone could hold the heap at the soft limit", name, n, v, soft)
		}
	}
}

func limitText(p proc) string {
	if p.memLimit == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s, %d bytes)", p.memLimitFrom, p.memLimit)
}

// TestMemoryParsers guards the parsers the memory-limit check relies on.
func TestMemoryParsers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"400MiB", 400 * mib, true}, {"1GiB", 1 << 30, true}, {"1024", 1024, true},
		{"512B", 512, true}, {"3KiB", 3072, true}, {"2TiB", 2 << 40, true},
		{"400MB", 0, false}, {"400M", 0, false}, {"400mib", 0, false}, {"MiB", 0, false},
		{"-1", 0, false}, {"1.5GiB", 0, false}, {"", 0, false}, {"off", 0, false},
		{"9999999TiB", 0, false}, {"+5MiB", 5 * mib, true},
	} {
		got, ok := parseGoByteCount(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseGoByteCount(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	type parser func(string) (int64, error)
	for _, tc := range []struct {
		name string
		p    parser
		in   string
		want int64
		ok   bool
	}{
		{"k8s", parseK8sQuantity, "512Mi", 512 * mib, true},
		{"k8s", parseK8sQuantity, "1Gi", 1 << 30, true},
		{"k8s", parseK8sQuantity, "512M", 512e6, true},
		{"k8s", parseK8sQuantity, "1.5Gi", 3 << 29, true},
		{"k8s", parseK8sQuantity, "536870912", 512 * mib, true},
		{"k8s", parseK8sQuantity, "129e6", 129e6, true},
		{"k8s", parseK8sQuantity, "1E", 1e18, true},
		{"k8s", parseK8sQuantity, "1500m", 2, true},
		{"k8s", parseK8sQuantity, "512MiB", 0, false},
		{"k8s", parseK8sQuantity, "512 Mi", 0, false},
		{"compose", parseComposeBytes, "512M", 512 * mib, true},
		{"compose", parseComposeBytes, "512m", 512 * mib, true},
		{"compose", parseComposeBytes, "1gb", 1 << 30, true},
		{"compose", parseComposeBytes, "512MiB", 512 * mib, true},
		{"compose", parseComposeBytes, "1073741824", 1 << 30, true},
		{"compose", parseComposeBytes, "0.5g", 512 * mib, true},
		{"compose", parseComposeBytes, "512x", 0, false},
		{"systemd", parseSystemdBytes, "512M", 512 * mib, true},
		{"systemd", parseSystemdBytes, "1G", 1 << 30, true},
		{"systemd", parseSystemdBytes, "1.5G", 3 << 29, true},
		{"systemd", parseSystemdBytes, "536870912", 512 * mib, true},
		{"systemd", parseSystemdBytes, "infinity", 0, true},
		{"systemd", parseSystemdBytes, "80%", 0, true},
		{"systemd", parseSystemdBytes, "512m", 0, false},
		{"systemd", parseSystemdBytes, "512MiB", 0, false},
	} {
		got, err := tc.p(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s: parse(%q) = %d, %v; want %d, ok=%v", tc.name, tc.in, got, err, tc.want, tc.ok)
		}
	}
}
