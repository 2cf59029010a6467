package envelope_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/envelope"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    envelope.Envelope
		wantErr string
	}{
		{"stripe event", `{"id":"evt_1","type":"charge.succeeded","api_version":"2023-10-16"}`, envelope.Envelope{ID: "evt_1", Type: "charge.succeeded", APIVersion: "2023-10-16"}, ""},
		{"bank event", `{"id":"tr_1","type":"transfer.settled","amount_cents":1}`, envelope.Envelope{ID: "tr_1", Type: "transfer.settled"}, ""},
		{"no type", `{"id":"x"}`, envelope.Envelope{ID: "x"}, ""},
		{"null type", `{"id":"x","type":null}`, envelope.Envelope{ID: "x"}, ""},
		{"id of 255 bytes", `{"id":"` + strings.Repeat("a", 255) + `"}`, envelope.Envelope{ID: strings.Repeat("a", 255)}, ""},
		{"not JSON", `nope`, envelope.Envelope{}, "not a JSON object"},
		{"empty body", ``, envelope.Envelope{}, "not a JSON object"},
		{"missing id", `{"type":"a"}`, envelope.Envelope{}, "missing id"},
		{"null id", `{"id":null}`, envelope.Envelope{}, "missing id"},
		{"empty id", `{"id":""}`, envelope.Envelope{}, "missing id"},
		{"numeric id", `{"id":1}`, envelope.Envelope{}, "id (JSON field id) must be a string, not a number"},
		{"object id", `{"id":{"a":1}}`, envelope.Envelope{}, "id (JSON field id) must be a string, not an object"},
		{"array id", `{"id":["a"]}`, envelope.Envelope{}, "id (JSON field id) must be a string, not an array"},
		{"boolean id", `{"id":true}`, envelope.Envelope{}, "id (JSON field id) must be a string, not a boolean"},
		{"invalid UTF-8 outside the id", "{\"id\":\"a\",\"note\":\"\xc3\x28\"}", envelope.Envelope{}, "body is not valid UTF-8 (at byte 18)"},
		{"deeply nested", `{"id":"a","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, envelope.Envelope{}, "JSON nested deeper than 64 levels"},
		{"id of 256 bytes", `{"id":"` + strings.Repeat("a", 256) + `"}`, envelope.Envelope{}, "id is 256 bytes"},
		{"NUL in id", `{"id":"a\u0000"}`, envelope.Envelope{}, "id has a control character"},
		{"invalid UTF-8 in id", "{\"id\":\"a\xffb\"}", envelope.Envelope{}, "body is not valid UTF-8 (at byte 8)"},
		{"newline in type", `{"id":"a","type":"x\ny"}`, envelope.Envelope{}, "type has a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := envelope.Parse([]byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, envelope.ErrMalformed)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","type":"t"}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := envelope.Parse(body)
		if err != nil {
			return
		}
		if env.ID == "" || len(env.ID) > envelope.MaxIDLen || strings.ContainsRune(env.ID, 0) || !utf8.ValidString(env.ID) {
			t.Fatalf("Parse accepted an id Postgres cannot key on: %q", env.ID)
		}
	})
}

func TestExtractFromHeadersAndNestedFields(t *testing.T) {
	t.Parallel()
	github := envelope.Extractor{ID: envelope.Locator{Header: "X-GitHub-Delivery"}, Type: envelope.Locator{Header: "X-GitHub-Event"}}
	slack := envelope.Extractor{ID: envelope.Locator{JSON: "event_id"}, Type: envelope.Locator{JSON: "event.type"}}
	h := http.Header{"X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}, "X-Github-Event": {"push"}}

	tests := []struct {
		name    string
		x       envelope.Extractor
		header  http.Header
		body    string
		want    envelope.Envelope
		wantErr string
	}{
		{"id and type from headers; body need not be JSON", github, h, `payload=not-json`, envelope.Envelope{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Type: "push"}, ""},
		{"missing id header", github, http.Header{}, `{}`, envelope.Envelope{}, "missing id (header X-GitHub-Delivery)"},
		{"nested JSON type", slack, nil, `{"event_id":"Ev1","event":{"type":"app_mention"}}`, envelope.Envelope{ID: "Ev1", Type: "app_mention"}, ""},
		{"nested type of the wrong kind", slack, nil, `{"event_id":"Ev1","event":{"type":7}}`, envelope.Envelope{}, "type (JSON field event.type) must be a string"},
		{"control character in a header id", github, http.Header{"X-Github-Delivery": {"a\x01b"}}, ``, envelope.Envelope{}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.x.Extract(tt.header, []byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, envelope.ErrMalformed)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestEventTimeFormsAndLimits reads the time forms providers write, takes
// the first locator present, refuses what is not a time, and keeps a time
// far ahead of the received time from ordering anything.
func TestEventTimeFormsAndLimits(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 30, 10, 0, 0, 500000000, time.UTC)
	for _, s := range []string{"1796032800.5", "2026-11-30T10:00:00.5Z", "2026-11-30T11:00:00.500+01:00"} {
		got, err := envelope.ParseTime(s)
		require.NoError(t, err, s)
		require.True(t, want.Equal(got), "%s: got %s", s, got)
	}
	for _, s := range []string{"1796032800000", "yesterday", "12", "1.2.3"} {
		_, err := envelope.ParseTime(s)
		require.Error(t, err, s)
	}

	x := envelope.Extractor{ID: envelope.Locator{JSON: "id"}, Time: []envelope.Locator{{JSON: "at"}, {Header: "X-At"}}, Object: envelope.Locator{JSON: "obj"}}
	env, err := x.Extract(http.Header{"X-At": {"1796032800.5"}}, []byte(`{"id":"e","obj":7}`))
	require.NoError(t, err)
	require.True(t, want.Equal(env.Time), "the header stands in for an absent body time")
	require.Equal(t, "7", env.Object)
	_, err = x.Extract(nil, []byte(`{"id":"e","at":{"s":1}}`))
	require.ErrorIs(t, err, envelope.ErrMalformed)
	_, err = x.Extract(nil, []byte(`{"id":"e","at":"soon"}`))
	require.ErrorIs(t, err, envelope.ErrMalformed)
	_, err = x.Extract(nil, []byte(`{"id":"e","obj":"a\u0000b"}`))
	require.ErrorIs(t, err, envelope.ErrMalformed)

	now := want.Add(time.Hour)
	require.True(t, want.Equal(envelope.Envelope{Time: want}.ClampTime(now)))
	require.True(t, now.Equal(envelope.Envelope{}.ClampTime(now)), "no time: the received time")
	require.True(t, now.Equal(envelope.Envelope{Time: now.Add(time.Hour)}.ClampTime(now)), "an hour ahead: the received time")
	require.True(t, now.Add(time.Minute).Equal(envelope.Envelope{Time: now.Add(time.Minute)}.ClampTime(now)), "a minute ahead is clock skew")
}
