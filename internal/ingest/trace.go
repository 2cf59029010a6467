package ingest

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/tracing"
)

// Span names of the ingest's part of an event's trace.
const (
	// SpanBatchWait is the time an event waited for its batch to begin.
	SpanBatchWait = "hookline.batch.wait"
	// SpanCommit is the transaction that stored the event and enqueued its
	// job; the job's trace context is this span's.
	SpanCommit = "hookline.commit"
)

// startCommit starts the commit span of the request whose span is in ctx,
// at start, for a transaction of size events, and returns it with the job
// metadata that carries it. With no span in ctx (tracing off) it returns
// the no-op span and no metadata, at the cost of one context lookup.
//
// Each request's trace gets a commit span of its own, even when a batch's
// one transaction serves many: sampling decides trace by trace, and a
// single batch span linked from each request would be kept or dropped
// with one trace's decision, leaving the others without their commit.
func startCommit(ctx context.Context, start time.Time, size int) (trace.Span, []byte) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return parent, nil
	}
	// The request's own provider: its spans, and so its sampling, decide.
	_, span := parent.TracerProvider().Tracer(tracing.Name).Start(ctx, SpanCommit,
		trace.WithTimestamp(start), trace.WithAttributes(attribute.Int("hookline.batch.size", size)))
	return span, tracing.JobMetadata(span.SpanContext())
}

// endCommit ends a commit span with the event's outcome or the error.
func endCommit(span trace.Span, outcome Outcome, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if err != nil {
		// Errors name the source and event id, nothing of the body.
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.String("hookline.outcome", outcome.String()))
	}
	span.End()
}

// recordBatchWait records, in the request's trace, the time its event
// waited from arriving at the batcher until its batch began.
func recordBatchWait(ctx context.Context, arrived, began time.Time) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return
	}
	_, span := parent.TracerProvider().Tracer(tracing.Name).Start(ctx, SpanBatchWait, trace.WithTimestamp(arrived))
	span.End(trace.WithTimestamp(began))
}

// insertOpts returns the options that store a job's trace context, or nil.
func insertOpts(metadata []byte) *river.InsertOpts {
	if metadata == nil {
		return nil
	}
	return &river.InsertOpts{Metadata: metadata}
}
