package envelope_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/envelope"
)

func TestDepthCountsOnlyBracketsOutsideStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		limit     int
		depth, at int
	}{
		{"empty", ``, 64, 0, -1},
		{"scalar", `"x"`, 64, 0, -1},
		{"flat object", `{"id":"a"}`, 64, 1, -1},
		{"stripe-like", `{"data":{"object":{"lines":{"data":[{"price":{"recurring":{}}}]}}}}`, 64, 8, -1},
		{"brackets inside a string do not count", `{"id":"[[[[{{{{"}`, 1, 1, -1},
		{"escaped quote keeps the string open", `{"id":"\"[[[["}`, 1, 1, -1},
		{"escaped backslash closes the string", `{"id":"\\","x":[[]]}`, 2, 3, 16},
		{"siblings do not add up", `[[],[],[],[]]`, 2, 2, -1},
		{"exactly at the limit", strings.Repeat("[", 3) + strings.Repeat("]", 3), 3, 3, -1},
		{"one past the limit stops at that byte", strings.Repeat("[", 4), 3, 4, 3},
		{"unbalanced closers never go negative", `]]]][`, 0, 1, 4},
		{"100000 brackets", strings.Repeat("[", 100000), envelope.MaxDepth, envelope.MaxDepth + 1, envelope.MaxDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			depth, at := envelope.Depth([]byte(tt.body), tt.limit)
			require.Equal(t, tt.depth, depth, "depth")
			require.Equal(t, tt.at, at, "offset")
		})
	}
}

func TestExtractRefusesDeepNestingBeforeParsing(t *testing.T) {
	t.Parallel()
	ok := `{"id":"evt_1","a":` + strings.Repeat("[", envelope.MaxDepth-1) + strings.Repeat("]", envelope.MaxDepth-1) + `}`
	_, err := envelope.Parse([]byte(ok))
	require.NoError(t, err, "a body exactly MaxDepth deep is accepted")

	deep := `{"id":"evt_1","a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	_, err = envelope.Parse([]byte(deep))
	require.ErrorIs(t, err, envelope.ErrMalformed)
	require.ErrorContains(t, err, "JSON nested deeper than 64 levels (at byte 81)")

	// Header-located sources do not parse the body, but the worker will:
	// the depth limit applies to them too.
	github := envelope.Extractor{ID: envelope.Locator{Header: "X-GitHub-Delivery"}}
	_, err = github.Extract(map[string][]string{"X-Github-Delivery": {"d1"}}, []byte(strings.Repeat("{", 1000)))
	require.ErrorContains(t, err, "nested deeper")
}

// FuzzDepth checks Depth against encoding/json's tokenizer, which tracks
// strings and escapes by the book, on every input the fuzzer finds valid.
func FuzzDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[["[[["]]]`, `{"a":"\\\"{{{"}`, `{"a":[{"b":[]}]}`, `"\u005b"`, `[1,[2,[3]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, at := envelope.Depth(body, envelope.MaxDepth)
		if got > envelope.MaxDepth+1 || (got > envelope.MaxDepth) != (at >= 0) {
			t.Fatalf("Depth = %d at %d: inconsistent with limit %d", got, at, envelope.MaxDepth)
		}
		if at >= 0 && body[at] != '[' && body[at] != '{' {
			t.Fatalf("offset %d points at %q, not an opening bracket", at, body[at])
		}
		if !json.Valid(body) {
			return
		}
		want := referenceDepth(t, body)
		if min(want, envelope.MaxDepth+1) != got {
			t.Fatalf("Depth(%q) = %d, want %d", body, got, want)
		}
	})
}

func referenceDepth(t *testing.T, body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	// Numbers stay text: valid JSON such as 1E1000 overflows a float64.
	dec.UseNumber()
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest
		}
		if err != nil {
			t.Fatalf("tokenize valid JSON %q: %v", body, err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}
