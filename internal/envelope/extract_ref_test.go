package envelope

import (
	"net/http"
	"testing"
)

// FuzzExtractAgreesWithReference holds Extract to the first Extract, on
// any body, for extractors that read the body, headers, or both: the same
// envelope, or the same error message.
func FuzzExtractAgreesWithReference(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt_1","object":"event","api_version":"2023-10-16","created":1700000000,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":1250,"metadata":{"Plan":"a","plan":"b"}}}}`,
		`{"id":"a","ID":"b"}`, `{"data":{"id":"e","object":{}},"Data":1}`, ` [{"id":1}]`, "{\"id\":\"a\xff\"}", `{"event_id":"E","event":{"Type":"x"}}`,
		`{"id":"e","at":"2026-11-30T10:00:00Z","obj":7}`, `payload=%7B%7D`, `{"id":"\ud800"}`, "\x01{\"id\":\"e\"}",
	} {
		f.Add([]byte(s))
	}
	signed := &SignedHeader{Name: "signed id", Read: func(h http.Header) string { return h.Get("Svix-Id") }}
	extractors := []Extractor{
		Default,
		{
			ID: Locator{JSON: "id"}, Type: Locator{JSON: "type"}, APIVersion: Locator{JSON: "api_version"},
			Object: Locator{JSON: "data.object.id"}, Time: []Locator{{JSON: "created"}}, ReadObjects: []string{"data.object"},
		},
		{ID: Locator{JSON: "event_id"}, Type: Locator{JSON: "event.type"}},
		{ID: Locator{Header: "X-GitHub-Delivery"}, Type: Locator{Header: "X-GitHub-Event"}, Object: Locator{JSON: "repository.id"}},
		{ID: Locator{Signed: signed}, Time: []Locator{{JSON: "at"}, {Header: "X-At"}}, Object: Locator{JSON: "obj"}},
		{ID: Locator{JSON: "data.id"}, ReadObjects: []string{"Data.object", "data"}},
	}
	header := http.Header{"X-Github-Delivery": {"d1"}, "X-Github-Event": {"push"}, "Svix-Id": {"msg_1"}, "X-At": {"1796032800.5"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		for i, x := range extractors {
			want, wantErr := refExtract(x, header, body)
			got, err := x.Extract(header, body)
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("extractor %d on %q: error %v, the reference %v", i, body, err, wantErr)
			}
			if got != want {
				t.Fatalf("extractor %d on %q: %+v, the reference %+v", i, body, got, want)
			}
		}
	})
}

// FuzzDepthAgreesWithReference holds Depth to the first Depth, on any
// bytes and limit.
func FuzzDepthAgreesWithReference(f *testing.F) {
	for _, s := range []string{`{}`, `[[["[[["]]]`, `{"a":"\\\"{{{"}`, `]]]][`, `"\`, `["\\\\"[[`} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint8) {
		depth, at := Depth(body, int(limit))
		wantDepth, wantAt := refDepth(body, int(limit))
		if depth != wantDepth || at != wantAt {
			t.Fatalf("Depth(%q, %d) = %d at %d, the reference %d at %d", body, limit, depth, at, wantDepth, wantAt)
		}
	})
}
