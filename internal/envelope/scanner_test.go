package envelope

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// collidingScanner hashes every key alike, so that every lookup in an
// object's hash table probes past keys that differ.
func collidingScanner() *keyScanner {
	s := newKeyScanner()
	s.hash = func([]byte) uint64 { return 7 }
	return s
}

func checkKeysWith(s *keyScanner, body string, paths []string) (KeyProblem, int) {
	s.reset()
	for _, p := range paths {
		s.addPath(p)
	}
	s.setPaths()
	return s.scan([]byte(body))
}

// object returns an object of n keys k0... then extra.
func object(n int, extra string) string {
	var b strings.Builder
	b.WriteString(`{`)
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(extra + `}`)
	return b.String()
}

// members returns n members named prefix0..., each followed by a comma.
func members(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"%s%d":%d,`, prefix, i, i)
	}
	return b.String()
}

func TestCheckKeysAcrossTheIndexThreshold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		paths   []string
		problem KeyProblem
	}{
		{"an escaped repeat among 16 keys", object(15, `"k\u0033":0`), nil, DuplicateKey},
		{"an escaped repeat after 16 keys", object(20, `"k\u0033":0`), nil, DuplicateKey},
		{"an escaped first key repeated plain after 16 keys", `{"\u006b":1,` + object(20, `"k":0`)[1:], nil, DuplicateKey},
		{"a repeat as the 17th key", object(16, `"k0":0`), nil, DuplicateKey},
		{"a repeat as the 18th key", object(17, `"k16":0`), nil, DuplicateKey},
		{"a case variant after 16 keys at the root", object(20, `"K7":0`), nil, FoldedKey},
		{"an escaped case variant after 16 keys", object(20, `"\u004b7":0`), nil, FoldedKey},
		{"a case variant after 16 keys off the read paths", `{"x":` + object(20, `"K7":0`) + `}`, nil, ""},
		{"a read path's case variant after 16 keys", object(20, `"ID":0`), []string{"id"}, CaseVariantKey},
		{"the parent's keys survive an indexed child", `{"x":` + object(20, `"c":`+object(20, `"z":0`)+`,"k5":0`) + `}`, nil, DuplicateKey},
		{"an indexed child's keys go when it closes", `{"x":` + object(20, `"c":`+object(20, `"z":0`)+`,"z":0`) + `}`, nil, ""},
		{"indexed siblings are separate", `[` + object(20, `"z":0`) + `,` + object(20, `"z":0`) + `]`, nil, ""},
		{"20 distinct keys", object(20, `"z":0`), nil, ""},
		{"a repeat after the table grows twice", object(150, `"k\u0031\u0034\u0039":0`), nil, DuplicateKey},
		{"150 distinct keys", object(150, `"z":0`), nil, ""},
		{"the parent's keys survive a child's growing table", `{"x":` + object(40, `"c":`+object(150, `"z":0`)+`,"k39":0`) + `}`, nil, DuplicateKey},
		{"a parent's table grows after an indexed child closes", `{"x":{` + members("a", 20) + `"c":` + object(20, `"z":0`) + `,` + members("b", 100) + `"a5":0}}`, nil, DuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, gjson.Valid(tt.body), "test body must be valid JSON")
			wantProblem, wantAt := refCheckKeys([]byte(tt.body), tt.paths)
			require.Equal(t, tt.problem, wantProblem, "the reference")
			problem, at := CheckKeys([]byte(tt.body), tt.paths)
			require.Equal(t, wantProblem, problem)
			require.Equal(t, wantAt, at)
			problem, at = checkKeysWith(collidingScanner(), tt.body, tt.paths)
			require.Equal(t, wantProblem, problem, "with every hash colliding")
			require.Equal(t, wantAt, at, "with every hash colliding")
		})
	}
}

// TestCheckKeysScannerReuse shows a scanner left mid-body by a report
// starts the next body clean.
func TestCheckKeysScannerReuse(t *testing.T) {
	t.Parallel()
	s := newKeyScanner()
	problem, _ := checkKeysWith(s, `{"x":`+object(20, `"c":`+object(20, `"k1":0`)), []string{"x.c"})
	require.Equal(t, DuplicateKey, problem)
	problem, at := checkKeysWith(s, `{"c":`+object(20, `"z":0`)+`,"k1":0}`, nil)
	require.Equal(t, KeyProblem(""), problem)
	require.Equal(t, -1, at)

	// The read paths built for one body are rebuilt when the next body's
	// differ, and only then.
	for _, tt := range []struct {
		paths   []string
		problem KeyProblem
	}{
		{[]string{"id"}, CaseVariantKey},
		{[]string{"id"}, CaseVariantKey},
		{nil, ""},
		{[]string{"id"}, CaseVariantKey},
		{[]string{"type"}, ""},
		{[]string{"type", "id"}, CaseVariantKey},
		{[]string{"type"}, ""},
	} {
		problem, _ := checkKeysWith(s, `{"ID":"e"}`, tt.paths)
		require.Equal(t, tt.problem, problem, "paths %q", tt.paths)
	}
}

func TestCheckKeysAllocatesNothingOnceWarm(t *testing.T) {
	// Not parallel: AllocsPerRun counts the whole process's allocations.
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop scanners at random")
	}
	body := []byte(`{"id":"evt_1","type":"t","data":{"object":` + object(40, `"metadata":{"Plan":"a","plan":"b"}`) + `}}`)
	paths := []string{"data.object", "id", "type", "data.object.id"}
	CheckKeys(body, paths)
	allocs := testing.AllocsPerRun(100, func() {
		if problem, _ := CheckKeys(body, paths); problem != "" {
			t.Fatal(problem)
		}
	})
	require.Zero(t, allocs)
}

// TestExtractReadsLaterPathsSpelling pins the order checkKeys adds paths
// in: ReadObjects first, then the fields, and a later spelling of a step
// is the one keys are held to.
func TestExtractReadsLaterPathsSpelling(t *testing.T) {
	t.Parallel()
	x := Extractor{ID: Locator{JSON: "data.id"}, ReadObjects: []string{"Data.object"}}
	_, err := x.Extract(nil, []byte(`{"data":{"id":"e","object":{}}}`))
	require.NoError(t, err)
	_, err = x.Extract(nil, []byte(`{"Data":{"id":"e","object":{}}}`))
	require.ErrorContains(t, err, "a key that differs only in case from one Hookline reads in a JSON object (at byte 1)")
}

// FuzzCheckKeysAgreesWithReference holds CheckKeys, and a scanner whose
// hashes all collide, to the first CheckKeys on any bytes and read paths
// (paths is a comma-separated list).
func FuzzCheckKeysAgreesWithReference(f *testing.F) {
	f.Add([]byte(`{"id":"a","ID":"b"}`), "id")
	f.Add([]byte(`{"data":{"object":{"amount":1,"Amount":9}}}`), "data.object,type")
	f.Add([]byte(`{"":{"ID":1}}`), "id")
	f.Add([]byte(`{"a\u0000b":{"C":1}}`), "a.b.c")
	f.Add([]byte(object(20, `"k\u0033":0`)), "")
	f.Add([]byte(`{"x":`+object(20, `"c":`+object(20, `"z":0`)+`,"k5":0`)+`}`), "x.c")
	f.Add([]byte(`{"a\"{":"}[","a\"[":"{]","\\":1,"\\\\":2}`), "a\"{")
	f.Add([]byte("{\"x\":{\"\xa6\":0,\"\\ud800\":1}}"), "x")
	f.Add([]byte(`{"kind":"a","`+"\u212a"+`ind":"b"}`), "Kind")
	s, colliding := newKeyScanner(), collidingScanner()
	f.Fuzz(func(t *testing.T, body []byte, paths string) {
		var ps []string
		if paths != "" {
			ps = strings.Split(paths, ",")
		}
		wantProblem, wantAt := refCheckKeys(body, ps)
		problem, at := CheckKeys(body, ps)
		if problem != wantProblem || at != wantAt {
			t.Fatalf("CheckKeys(%q, %q) = %q at %d, the reference %q at %d", body, ps, problem, at, wantProblem, wantAt)
		}
		for _, s := range []*keyScanner{s, colliding} {
			if problem, at := checkKeysWith(s, string(body), ps); problem != wantProblem || at != wantAt {
				t.Fatalf("a reused scanner on (%q, %q) finds %q at %d, the reference %q at %d", body, ps, problem, at, wantProblem, wantAt)
			}
		}
	})
}

// FuzzIsObject holds isObject to what gjson parses, on any bytes.
func FuzzIsObject(f *testing.F) {
	for _, s := range []string{`{}`, ` {`, "\x01[", `[]`, ``, `  `, `"{"`, "\x7f{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := isObject(body), gjson.ParseBytes(body).IsObject(); got != want {
			t.Fatalf("isObject(%q) = %v, gjson says %v", body, got, want)
		}
	})
}
