package receiver_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

type recorded struct{ source, outcome string }

type fakeRecorder struct {
	mu    sync.Mutex
	calls []recorded
}

func (r *fakeRecorder) Request(source, outcome string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d > 0 {
		r.calls = append(r.calls, recorded{source, outcome})
	}
}

func (r *fakeRecorder) recorded() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.calls...)
}

type acceptAll struct{}

func (acceptAll) Ingest(context.Context, inbox.NewEvent) (ingest.Outcome, error) {
	return ingest.Accepted, nil
}

type alwaysUp struct{}

func (alwaysUp) Ping(context.Context) error { return nil }

func TestRecorderHearsEveryWebhookRequestButNoProbeOrScrape(t *testing.T) {
	t.Parallel()
	bankV, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret})
	require.NoError(t, err)
	rec := &fakeRecorder{}
	logs := &logtest.Buffer{}
	h := receiver.New(slog.New(slog.NewJSONHandler(logs, nil)), []receiver.Source{{Name: "bank", Verifier: bankV}}, acceptAll{}, alwaysUp{}, receiver.Options{
		MaxBodyBytes: maxBody, IngestTimeout: time.Second, RetryAfter: time.Second,
		Recorder: rec,
		Metrics:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "# metrics\n") }),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body := bankEvent("tr_rec", 100)

	requireReceived(t, post(t, srv.URL+"/api/webhooks/bank", body, http.Header{verify.HMACHeader: {verify.SignHMAC(bankSecret, body)}}))
	requireError(t, post(t, srv.URL+"/api/webhooks/bank", body, http.Header{verify.HMACHeader: {verify.SignHMAC("wrong", body)}}), http.StatusBadRequest, "Invalid signature")
	requireError(t, post(t, srv.URL+"/api/webhooks/evil", body, nil), http.StatusNotFound, "Unknown source")
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/nowhere"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}

	require.Equal(t, []recorded{{"bank", "accepted"}, {"bank", "bad_signature"}, {"", "unknown_source"}}, rec.recorded(),
		"an unknown source must not become a label value: the sender chooses it")
	require.NotContains(t, logs.String(), `"path":"/metrics"`, "scrapes would drown out the events")
}

func TestMetricsRouteIsAbsentWithoutAHandler(t *testing.T) {
	t.Parallel()
	h := receiver.New(slog.New(slog.DiscardHandler), nil, acceptAll{}, alwaysUp{}, receiver.Options{MaxBodyBytes: maxBody})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, rec.Code)
}
