package envelope_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/envelope"
)

func TestCheckKeysFindsAmbiguousKeys(t *testing.T) {
	t.Parallel()
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{"x":{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + `}}`)
		return b.String()
	}
	stripe := []string{"data.object"}
	tests := []struct {
		name    string
		body    string
		paths   []string
		problem envelope.KeyProblem
		at      int
	}{
		{"distinct keys", `{"id":"a","type":"t","data":{"object":{"amount":1}}}`, stripe, "", -1},
		{"a second id", `{"id":"a","type":"t","id":"b"}`, nil, envelope.DuplicateKey, 21},
		{"an escaped second id", `{"id":"a","i\u0064":"b"}`, nil, envelope.DuplicateKey, 10},
		{"a second amount deep inside", `{"data":{"object":{"amount":1,"amount":999999}}}`, stripe, envelope.DuplicateKey, 30},
		{"duplicates in an object no handler reads", `{"a":[{"b":{"c":1,"c":2}}]}`, nil, envelope.DuplicateKey, 18},
		{"the same key in sibling objects", `{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}`, nil, "", -1},
		{"the same key in parent and child", `{"k":{"k":{"k":1}}}`, nil, "", -1},
		{"keys differing in case at the root", `{"id":"a","ID":"b"}`, nil, envelope.FoldedKey, 10},
		{"keys differing in case in data.object", `{"data":{"object":{"amount":1,"Amount":9}}}`, stripe, envelope.FoldedKey, 30},
		{"a case variant of the path itself", `{"data":{"object":{"amount":1}},"Data":{"Object":{"Amount":9}}}`, stripe, envelope.FoldedKey, 32},
		{"a path written in another case, alone", `{"id":"e","Data":{"Object":{"amount":1,"Amount":9}}}`, stripe, envelope.CaseVariantKey, 10},
		{"a read field written in another case", `{"id":"e","Type":"charge.succeeded"}`, []string{"id", "type"}, envelope.CaseVariantKey, 10},
		{"Slack's event in another case", `{"event_id":"Ev1","Event":{"type":"app_mention"}}`, []string{"event_id", "event.type"}, envelope.CaseVariantKey, 18},
		{"a nested read field in another case", `{"event":{"Type":"x"}}`, []string{"event.type"}, envelope.CaseVariantKey, 10},
		{"an unread key may have any case", `{"id":"e","Livemode":false}`, []string{"id", "type"}, "", -1},
		{"an invalid byte and a lone surrogate are both U+FFFD", "{\"x\":{\"\xa6\":0,\"\\ud800\":1}}", nil, envelope.DuplicateKey, 12},
		{"Kelvin sign folds with k", `{"kind":"a","` + "\u212a" + `ind":"b"}`, nil, envelope.FoldedKey, 12},
		{"case variants below the read paths are users' keys", `{"data":{"object":{"metadata":{"Plan":"a","plan":"b"}}}}`, stripe, "", -1},
		{"case variants in an array element", `{"data":{"object":{"lines":[{"a":1,"A":2}]}}}`, stripe, "", -1},
		{"two lone surrogates collide as U+FFFD", `{"\ud800":1,"\udfff":2}`, nil, envelope.DuplicateKey, 12},
		{"a surrogate pair is one character", `{"\ud83d\ude00":1,"\ud83d":2}`, nil, "", -1},
		{"quotes and brackets inside keys and values", `{"a\"{":"}[","a\"[":"{]"}`, nil, "", -1},
		{"a duplicate after 16 keys is found by the map", many(20, `"k3":0`), nil, envelope.DuplicateKey, 166},
		{"20 distinct keys", many(20, `"z":0`), nil, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, json.Valid([]byte(tt.body)), "test body must be valid JSON")
			problem, at := envelope.CheckKeys([]byte(tt.body), tt.paths)
			require.Equal(t, tt.problem, problem)
			require.Equal(t, tt.at, at)
		})
	}
}

// TestExtractRefusesAmbiguousBodies shows the two readers disagreeing
// without the check: the envelope (gjson) keys the event on the first id,
// while a handler decoding with encoding/json sees the last amount.
func TestExtractRefusesAmbiguousBodies(t *testing.T) {
	t.Parallel()
	stripe := envelope.Extractor{ID: envelope.Locator{JSON: "id"}, Type: envelope.Locator{JSON: "type"}, ReadObjects: []string{"data.object"}}
	body := `{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":100}},"id":"evt_2","data":{"object":{"amount":999999}}}`
	var handler struct {
		Data struct {
			Object struct{ Amount int } `json:"object"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &handler))
	require.Equal(t, 999999, handler.Data.Object.Amount, "encoding/json takes the last value")

	tests := []struct {
		name, body, wantErr string
	}{
		{"a second id, type and amount", body, "duplicate key in a JSON object (at byte 73)"},
		{"a case variant overriding the amount", `{"id":"evt_1","data":{"object":{"amount":100,"AMOUNT":999999}}}`, "keys that differ only in case in a JSON object"},
		{"the path to the amount in another case", `{"id":"evt_1","type":"charge.succeeded","Data":{"Object":{"amount":100,"Amount":999999,"customer":"cus_1"}}}`,
			"a key that differs only in case from one Hookline reads in a JSON object"},
		{"a lone high surrogate in the id", `{"id":"evt_\ud800"}`, `id (JSON field id) holds a lone UTF-16 surrogate escape`},
		{"a lone low surrogate in the type", `{"id":"evt_1","type":"\udfff"}`, `type (JSON field type) holds a lone UTF-16 surrogate escape`},
		{"a high surrogate followed by a non-surrogate", `{"id":"a\ud800\u0041"}`, "lone UTF-16 surrogate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := stripe.Extract(nil, []byte(tt.body))
			require.ErrorIs(t, err, envelope.ErrMalformed)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	// U+FFFD written as itself, or as an escape, is a character, not a
	// broken pair; and a valid pair decodes to one rune.
	for _, ok := range []string{`{"id":"evt_\ufffd"}`, `{"id":"evt_` + "\ufffd" + `"}`, `{"id":"evt_\ud83d\ude00"}`} {
		_, err := stripe.Extract(nil, []byte(ok))
		require.NoError(t, err, ok)
	}

	// A source that reads its id from a header still gets a JSON body
	// checked, since its handlers will parse it.
	github := envelope.Extractor{ID: envelope.Locator{Header: "X-GitHub-Delivery"}}
	_, err := github.Extract(http.Header{"X-Github-Delivery": {"d1"}}, []byte(`{"action":"opened","action":"closed"}`))
	require.ErrorContains(t, err, "duplicate key")
	_, err = github.Extract(http.Header{"X-Github-Delivery": {"d1"}}, []byte(`payload=%7B%7D`))
	require.NoError(t, err, "a body that is not JSON is the handlers' to refuse")
}

func TestSignedLocatorReadsOnlyWhatTheVerifierChose(t *testing.T) {
	t.Parallel()
	x := envelope.Extractor{ID: envelope.Locator{Signed: &envelope.SignedHeader{
		Name: "signed id",
		Read: func(h http.Header) string { return h.Get("Svix-Id") },
	}}}
	env, err := x.Extract(http.Header{"Svix-Id": {"msg_1"}, "Webhook-Id": {"forged"}}, []byte(`{}`))
	require.NoError(t, err)
	require.Equal(t, "msg_1", env.ID)
	_, err = x.Extract(http.Header{"Webhook-Id": {"forged"}}, []byte(`{}`))
	require.ErrorContains(t, err, "missing id (header signed id)")
}

// FuzzCheckKeys holds CheckKeys to encoding/json's tokenizer, which
// decodes every key, escapes and invalid bytes included: inside an array,
// where no case is compared, it must find exactly the repeated keys; as
// is, also the root's keys that strings.EqualFold (encoding/json's field
// matching) finds equal.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":1},"b":2}`, `[{"x":1},{"x":1}]`, `{"i\u0064":1,"id":2}`, `{"\ud800":1,"\udfff":2}`,
		`{"a\"":[1,{"a\"":2}]}`, `{"A":1,"a":2,"A":3}`, "{\"\xa6\":0,\"\\ud800\":1}", `{"K":1,"\u212a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		wrapped := append(append([]byte("["), body...), ']')
		problem, _ := envelope.CheckKeys(wrapped, nil)
		dup := referenceDuplicate(t, body)
		if (problem != "") != dup {
			t.Fatalf("in an array, CheckKeys says %q, the reference says duplicate=%v, for %q", problem, dup, body)
		}
		problem, _ = envelope.CheckKeys(body, nil)
		if want := dup || rootFolds(t, body); (problem != "") != want {
			t.Fatalf("CheckKeys says %q, the reference says ambiguous=%v, for %q", problem, want, body)
		}
	})
}

// rootFolds reports whether body is an object with two keys equal when
// case is ignored, as encoding/json matches them.
func rootFolds(t *testing.T, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("tokenize valid JSON %q: %v", body, err)
		}
		k := tok.(string)
		for _, seen := range keys {
			if seen != k && strings.EqualFold(seen, k) {
				return true
			}
		}
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("skip a value of valid JSON %q: %v", body, err)
		}
	}
	return false
}

// referenceDuplicate reports whether any object of body repeats a key.
func referenceDuplicate(t *testing.T, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			t.Fatalf("tokenize valid JSON %q: %v", body, err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				if top != nil && top.keys != nil {
					top.expectKey = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
			case '[':
				if top != nil && top.keys != nil {
					top.expectKey = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.keys != nil {
			if top.expectKey {
				k := tok.(string)
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expectKey = false
			} else {
				top.expectKey = true
			}
		}
	}
}
