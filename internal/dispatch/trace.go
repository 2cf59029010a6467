package dispatch

import (
	"context"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/hooklinetype"
)

// Span names of the worker's part of an event's trace.
const (
	// SpanHandle is one attempt at a job: waiting for a transaction (or a
	// group), the handler, and the commit with the inbox row.
	SpanHandle = "hookline.handle"
	// SpanGroup is a group's one transaction, linked to every member's
	// SpanHandle.
	SpanGroup = "hookline.group"
)

// startHandle starts a job's handle span, a child of the span in ctx: the
// job's work span, itself a child of the receiver's commit span whose
// context the job's metadata carries (tracing.JobContext). A child rather
// than a link, so that one trace holds an event's whole path, queue time
// included, and the receiver's sampling decision carries over: the worker
// records the events the receiver sampled, and only those.
func (w *Worker) startHandle(ctx context.Context, job *river.Job[hooklinetype.JobArgs]) (context.Context, trace.Span) {
	return w.opts.Tracer.Start(ctx, SpanHandle, trace.WithAttributes(
		attribute.String("hookline.source", job.Args.Source),
		attribute.String("hookline.event_type", job.Args.Type),
		attribute.String("hookline.event_id", job.Args.EventID),
		attribute.Int("hookline.attempt", job.Attempt),
		attribute.Int64("hookline.job_id", job.ID),
		attribute.Bool("hookline.replay", job.Args.Replay),
	))
}

// startGroup starts a group transaction's span. It belongs to no member's
// trace more than another's, so it starts a trace of its own, linked to
// each member's handle span; each member's span links back to it.
func (w *Worker) startGroup(ctx context.Context, members []*member) trace.Span {
	if w.opts.Tracer == nil {
		return trace.SpanFromContext(context.Background()) // the no-op span
	}
	links := make([]trace.Link, 0, len(members))
	for _, m := range members {
		if sc := trace.SpanContextFromContext(m.ctx); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	_, span := w.opts.Tracer.Start(ctx, SpanGroup, trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("hookline.group.size", len(members))))
	if span.SpanContext().IsValid() {
		size := attribute.Int("hookline.group.size", len(members))
		for _, m := range members {
			ms := trace.SpanFromContext(m.ctx)
			ms.AddLink(trace.Link{SpanContext: span.SpanContext(), Attributes: []attribute.KeyValue{size}})
			ms.SetAttributes(size)
		}
	}
	return span
}

// endSpan ends span with err's status.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
