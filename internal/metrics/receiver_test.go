package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

const bankSecret = "bank_test_secret"

func TestReceiverMetricsEndpointExposesRequestAndBatchMetrics(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: discard})
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	b := ingest.NewBatcher(db.Pool, rc, discard, ingest.BatchOptions{MaxWait: time.Millisecond, Observer: metrics.NewIngest(reg)})
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	bankV, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret})
	require.NoError(t, err)
	h := receiver.New(discard, []receiver.Source{{Name: "bank", Verifier: bankV}}, b, db.Pool, receiver.Options{
		MaxBodyBytes: 4096, IngestTimeout: 5 * time.Second, RetryAfter: time.Second,
		Recorder: metrics.NewReceiver(reg),
		Metrics:  metrics.Handler(reg, discard),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	event := []byte(`{"id":"tr_1","type":"transfer.settled"}`)
	postWebhook(t, srv.URL+"/api/webhooks/bank", event, verify.SignHMAC(bankSecret, event), http.StatusOK)
	postWebhook(t, srv.URL+"/api/webhooks/bank", event, verify.SignHMAC(bankSecret, event), http.StatusOK)
	postWebhook(t, srv.URL+"/api/webhooks/bank", event, verify.SignHMAC("wrong", event), http.StatusBadRequest)
	postWebhook(t, srv.URL+"/api/webhooks/nobody", event, "", http.StatusNotFound)

	status, body := get(t, srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, status)
	for _, line := range []string{
		`hookline_receiver_requests_total{outcome="accepted",source="bank"} 1`,
		`hookline_receiver_requests_total{outcome="duplicate",source="bank"} 1`,
		`hookline_receiver_requests_total{outcome="bad_signature",source="bank"} 1`,
		`hookline_receiver_requests_total{outcome="unknown_source",source=""} 1`,
		`hookline_receiver_request_duration_seconds_count{source="bank"} 3`,
		`hookline_ingest_batch_size_count 2`,
		`hookline_ingest_batch_size_sum 2`,
		`hookline_ingest_commit_duration_seconds_count 2`,
		`hookline_ingest_batch_wait_seconds_count 2`,
		`hookline_ingest_batch_failures_total 0`,
		`# TYPE hookline_receiver_request_duration_seconds histogram`,
		`# TYPE go_goroutines gauge`,
		`# TYPE process_cpu_seconds_total counter`,
	} {
		require.Contains(t, body, line+"\n")
	}
}

func postWebhook(t *testing.T, url string, body []byte, signature string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(verify.HMACHeader, signature)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, want, resp.StatusCode)
}

func TestIngestObserverRecordsSizeOfEachBatchTheBatcherCommits(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: discard})
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	// A long wait and a size of 5 close the batch on size, with all five.
	b := ingest.NewBatcher(db.Pool, rc, discard, ingest.BatchOptions{
		MaxSize: 5, MaxWait: 10 * time.Second, Observer: metrics.NewIngest(reg),
	})
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Go(func() {
			_, err := b.Ingest(context.Background(), inbox.NewEvent{Source: "bank", EventID: fmt.Sprint("ev_", i), Payload: []byte(`{}`)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	size := sample(t, gather(t, reg), "hookline_ingest_batch_size", nil).GetHistogram()
	require.Equal(t, uint64(1), size.GetSampleCount())
	require.Equal(t, 5.0, size.GetSampleSum())
	commit := sample(t, gather(t, reg), "hookline_ingest_commit_duration_seconds", nil).GetHistogram()
	require.Equal(t, uint64(1), commit.GetSampleCount())
	require.Positive(t, commit.GetSampleSum())
}

func TestIngestObserverCountsFailedBatches(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := metrics.NewIngest(reg)
	m.ObserveFlush(3, time.Millisecond, 2*time.Millisecond, nil)
	m.ObserveFlush(7, time.Millisecond, time.Second, errors.New("connection refused"))

	require.Equal(t, 1.0, sample(t, gather(t, reg), "hookline_ingest_batch_failures_total", nil).GetCounter().GetValue())
	size := sample(t, gather(t, reg), "hookline_ingest_batch_size", nil).GetHistogram()
	require.Equal(t, uint64(2), size.GetSampleCount())
	require.Equal(t, 10.0, size.GetSampleSum())
}
