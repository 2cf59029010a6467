package receiver

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/tracing"
)

// Span names of the receiver's part of an event's trace.
const (
	SpanReceive  = "hookline.receive"
	SpanVerify   = "hookline.verify"
	SpanEnvelope = "hookline.envelope"
)

// webhookRoute is the route of webhook requests, the only ones traced.
const webhookRoute = "/api/webhooks/:source"

// traceRequests starts a span for each webhook request, the root of its
// event's trace, and puts it in the request's context, where the request
// log line, the handler's child spans and the ingester find it.
//
// The span carries only what the handler chose to record for the log
// line, all of it checked or chosen by Hookline: the known source, the
// outcome, and the id and type from a verified body. Never a header, a
// body, or a path an attacker typed.
func traceRequests(tracer trace.Tracer, incoming tracing.Incoming) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Path() != webhookRoute {
				return next(c)
			}
			req := c.Request()
			ctx, opts := incoming.StartOptions(req.Context(), req.Header)
			ctx, span := tracer.Start(ctx, SpanReceive, append(opts, trace.WithAttributes(
				attribute.String("http.request.method", req.Method),
				attribute.String("http.route", webhookRoute),
			))...)
			defer span.End()
			c.SetRequest(req.WithContext(ctx))
			err := next(c)
			if err != nil {
				c.Error(err) // writes the answer, so the status below is final
			}
			status := c.Response().Status
			attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", status)}
			for _, k := range []string{logSource, logEventID, logEventType, logOutcome} {
				if v, ok := c.Get(k).(string); ok && v != "" {
					attrs = append(attrs, attribute.String(k, v))
				}
			}
			span.SetAttributes(attrs...)
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}

// startSpan starts a child of ctx's span, or does nothing when tracing
// is off: it then costs no allocation on the hot path.
func startSpan(ctx context.Context, tracer trace.Tracer, name string) trace.Span {
	if tracer == nil {
		return trace.SpanFromContext(context.Background()) // the no-op span
	}
	_, span := tracer.Start(ctx, name)
	return span
}
