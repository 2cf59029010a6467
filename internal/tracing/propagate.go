package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The keys of a job's metadata that carry its trace context: W3C
// traceparent and tracestate, as otelriver writes them, so that either
// side may be otelriver's.
const (
	metaTraceparent = "traceparent"
	metaTracestate  = "tracestate"
)

// JobMetadata returns River job metadata carrying sc, the span the job's
// trace continues from, or nil when sc is invalid (tracing off).
func JobMetadata(sc trace.SpanContext) []byte {
	if !sc.IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	b, err := json.Marshal(carrier)
	if err != nil {
		return nil // a map of strings always marshals
	}
	return b
}

// FromJobMetadata returns the span context stored by JobMetadata, invalid
// if there is none.
func FromJobMetadata(metadata []byte) trace.SpanContext {
	if len(metadata) == 0 {
		return trace.SpanContext{}
	}
	r := gjson.GetManyBytes(metadata, metaTraceparent, metaTracestate)
	if r[0].Type != gjson.String {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{metaTraceparent: r[0].Str}
	if r[1].Type == gjson.String {
		carrier[metaTracestate] = r[1].Str
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}

// JobContext is a River worker middleware that makes the span stored in a
// job's metadata the parent of the spans its work starts, so the job and
// its handler join the trace of the request that stored the event. It must
// come before otelriver's middleware, whose work span then becomes that
// span's child.
type JobContext struct {
	river.MiddlewareDefaults
}

// Work implements rivertype.WorkerMiddleware.
func (*JobContext) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if sc := FromJobMetadata(job.Metadata); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return doInner(ctx)
}

// Incoming says what a receiver does with a request's traceparent header.
type Incoming string

// The choices for RECEIVER_TRACE_INCOMING.
const (
	// IncomingIgnore starts a new trace: a header from the internet could
	// otherwise force sampling, or graft events onto someone's trace.
	IncomingIgnore Incoming = "ignore"
	// IncomingLink starts a new trace linked to the incoming one.
	IncomingLink Incoming = "link"
	// IncomingParent continues the incoming trace, for a receiver behind a
	// trusted gateway that starts it.
	IncomingParent Incoming = "parent"
)

// ParseIncoming checks a RECEIVER_TRACE_INCOMING value; empty is ignore.
func ParseIncoming(s string) (Incoming, error) {
	switch in := Incoming(s); in {
	case "":
		return IncomingIgnore, nil
	case IncomingIgnore, IncomingLink, IncomingParent:
		return in, nil
	}
	return "", fmt.Errorf("RECEIVER_TRACE_INCOMING=%q: want ignore, link or parent", s)
}

// StartOptions returns the context a request's span starts from, and the
// options that start it, as mode says to treat its trace headers.
func (mode Incoming) StartOptions(ctx context.Context, h http.Header) (context.Context, []trace.SpanStartOption) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	if mode != IncomingLink && mode != IncomingParent {
		return ctx, append(opts, trace.WithNewRoot())
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return ctx, append(opts, trace.WithNewRoot())
	}
	if mode == IncomingParent {
		return trace.ContextWithRemoteSpanContext(ctx, sc), opts
	}
	return ctx, append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
}
