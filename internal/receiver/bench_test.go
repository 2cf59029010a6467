package receiver_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/tracing"
	"github.com/hookline/hookline/internal/verify"
)

// tracedDiscard acknowledges without a database, after doing what the
// ingesters do for a traced event: start and end a commit span, a child of
// the request's, and encode its context as the job's metadata.
type tracedDiscard struct{}

func (tracedDiscard) Ingest(ctx context.Context, ev inbox.NewEvent) (ingest.Outcome, error) {
	if ev.Release != nil {
		ev.Release()
	}
	if parent := trace.SpanFromContext(ctx); parent.SpanContext().IsValid() {
		_, span := parent.TracerProvider().Tracer(tracing.Name).Start(ctx, ingest.SpanCommit)
		_ = tracing.JobMetadata(span.SpanContext())
		span.End()
	}
	return ingest.Accepted, nil
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkWebhookTracing measures the receiver's handler path for one
// signed event (routing, body, HMAC, envelope, request log line) with
// tracing off, as with no OTEL_* variable, and on at the default sampling
// (parentbased_always_on) with the SDK's batch processor and an exporter
// that drops what it is given, so that no I/O is measured. The ingester
// acknowledges without a database (the transaction costs milliseconds;
// docs/BENCHMARKS.md), after the commit span's work.
//
//	go test -run '^$' -bench WebhookTracing -benchmem -count 6 ./internal/receiver
func BenchmarkWebhookTracing(b *testing.B) {
	body := []byte(`{"id":"tr_1","type":"transfer.settled","account":"acc_9","amount_cents":1250}`)
	v, err := verify.NewHMAC(verify.HMACHeader, []string{"secret"})
	if err != nil {
		b.Fatal(err)
	}
	sig := verify.SignHMAC("secret", body)
	srcs := []receiver.Source{{Name: "bank", Verifier: v}}
	opts := receiver.Options{MaxBodyBytes: 1 << 20, IngestTimeout: 5 * time.Second, RetryAfter: 5 * time.Second}

	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	for _, tc := range []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}} {
		b.Run(tc.name, func(b *testing.B) {
			logger, err := logging.New(nopWriter{}, "json", slog.LevelInfo)
			if err != nil {
				b.Fatal(err)
			}
			o := opts
			if tc.on {
				logger = logging.WithTrace(logger)
				o.Tracer = tp.Tracer(tracing.Name)
			}
			h := receiver.New(logger, srcs, tracedDiscard{}, nil, o)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/api/webhooks/bank", bytes.NewReader(body))
				req.Header.Set(verify.HMACHeader, sig)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
