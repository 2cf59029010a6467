package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/tracing"
)

func TestEachRequestOfABatchGetsACommitSpanInItsOwnTraceAndItsJobCarriesIt(t *testing.T) {
	t.Parallel()
	// A long wait, so that the three requests share one batch.
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 3, MaxWait: 5 * time.Second})
	sr := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)).Tracer("test")

	evs := events("evt_traced", 3)
	requests := make([]trace.SpanContext, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() {
			ctx, span := tracer.Start(context.Background(), "hookline.receive")
			defer span.End()
			requests[i] = span.SpanContext()
			out, err := b.batcher.Ingest(ctx, ev)
			require.NoError(t, err)
			require.Equal(t, ingest.Accepted, out)
		})
	}
	wg.Wait()
	sizes, _ := b.observer.snapshot()
	require.Equal(t, []int{3}, sizes, "the requests did not share a batch")

	commits := map[trace.TraceID]sdktrace.ReadOnlySpan{}
	waits := map[trace.TraceID]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		switch s.Name() {
		case ingest.SpanCommit:
			commits[s.SpanContext().TraceID()] = s
		case ingest.SpanBatchWait:
			waits[s.SpanContext().TraceID()] = s
		}
	}
	rows, err := b.db.Pool.Query(context.Background(), `SELECT metadata FROM river_job`)
	require.NoError(t, err)
	stored := map[trace.TraceID]trace.SpanID{}
	for rows.Next() {
		var md []byte
		require.NoError(t, rows.Scan(&md))
		sc := tracing.FromJobMetadata(md)
		require.True(t, sc.IsValid(), "a job without its trace context: %s", md)
		stored[sc.TraceID()] = sc.SpanID()
	}
	require.NoError(t, rows.Err())
	require.Len(t, stored, 3)

	for _, req := range requests {
		c := commits[req.TraceID()]
		require.NotNil(t, c, "request %s has no commit span", req.TraceID())
		require.Equal(t, req.SpanID(), c.Parent().SpanID())
		var size int64
		for _, kv := range c.Attributes() {
			if kv.Key == "hookline.batch.size" {
				size = kv.Value.AsInt64()
			}
		}
		require.Equal(t, int64(3), size)
		require.Equal(t, c.SpanContext().SpanID(), stored[req.TraceID()], "the job does not continue from its request's commit")
		w := waits[req.TraceID()]
		require.NotNil(t, w, "request %s has no batch wait span", req.TraceID())
		require.False(t, w.EndTime().After(c.StartTime()), "the wait ends when the commit begins")
	}
}
