package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/hookline/hookline/internal/tracing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("with no OTEL variables no exporter starts and nothing is recorded", func(t *testing.T) {
		t.Parallel()
		var stdout bytes.Buffer
		// OTEL_SERVICE_NAME alone names a service but no destination.
		tr, err := tracing.New(ctx, env(map[string]string{"OTEL_SERVICE_NAME": "x"}), "hookline-test", &stdout)
		require.NoError(t, err)
		require.False(t, tr.Enabled())
		require.Empty(t, tr.Exporters)
		require.IsType(t, noop.TracerProvider{}, tr.Provider)
		_, span := tr.Tracer().Start(ctx, "request")
		require.False(t, span.IsRecording())
		require.False(t, span.SpanContext().IsValid())
		span.End()
		require.NoError(t, tr.Shutdown(ctx))
		require.Empty(t, stdout.String())
	})
	t.Run("none, or OTEL_SDK_DISABLED, turns tracing off even with an endpoint", func(t *testing.T) {
		t.Parallel()
		for _, m := range []map[string]string{
			{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
			{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
		} {
			tr, err := tracing.New(ctx, env(m), "hookline-test", io.Discard)
			require.NoError(t, err)
			require.False(t, tr.Enabled(), "%v", m)
		}
	})
	t.Run("the console exporter writes spans to stdout by the time Shutdown returns", func(t *testing.T) {
		t.Parallel()
		var stdout bytes.Buffer
		tr, err := tracing.New(ctx, env(map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "svc-under-test"}), "hookline-test", &stdout)
		require.NoError(t, err)
		require.Equal(t, []string{"console"}, tr.Exporters)
		_, span := tr.Tracer().Start(ctx, "hookline.receive")
		span.End()
		require.NoError(t, tr.Shutdown(ctx))
		require.Contains(t, stdout.String(), `"Name":"hookline.receive"`)
		require.Contains(t, stdout.String(), "svc-under-test")
	})
	t.Run("an OTLP endpoint alone turns tracing on, and Shutdown flushes to it", func(t *testing.T) {
		t.Parallel()
		var posts atomic.Int32
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
				posts.Add(1)
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer collector.Close()
		tr, err := tracing.New(ctx, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}), "hookline-test", io.Discard)
		require.NoError(t, err)
		require.Equal(t, []string{"otlp"}, tr.Exporters)
		_, span := tr.Tracer().Start(ctx, "hookline.receive")
		span.End()
		require.Zero(t, posts.Load(), "the batcher holds spans until it flushes")
		require.NoError(t, tr.Shutdown(ctx))
		require.Equal(t, int32(1), posts.Load())
	})
	t.Run("OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports over gRPC", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		collector := &grpcCollector{}
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, collector)
		go func() { _ = srv.Serve(l) }()
		defer srv.Stop()
		tr, err := tracing.New(ctx, env(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + l.Addr().String(),
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		}), "hookline-test", io.Discard)
		require.NoError(t, err)
		_, span := tr.Tracer().Start(ctx, "hookline.receive")
		span.End()
		require.NoError(t, tr.Shutdown(ctx))
		require.Equal(t, int32(1), collector.spans.Load())
	})
	t.Run("bad values are refused naming their variable", func(t *testing.T) {
		t.Parallel()
		for m, want := range map[*map[string]string]string{
			{"OTEL_TRACES_EXPORTER": "zipkin"}:                                                                         "OTEL_TRACES_EXPORTER",
			{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "sometimes"}:                                    "OTEL_TRACES_SAMPLER",
			{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}: "OTEL_TRACES_SAMPLER_ARG",
			{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}:                               "OTEL_EXPORTER_OTLP_PROTOCOL",
			{"OTEL_TRACES_EXPORTER": "console", "OTEL_RESOURCE_ATTRIBUTES": "novalue"}:                                 "OTEL_RESOURCE_ATTRIBUTES",
		} {
			_, err := tracing.New(ctx, env(*m), "hookline-test", io.Discard)
			require.ErrorContains(t, err, want)
		}
	})
	t.Run("the sampler follows OTEL_TRACES_SAMPLER", func(t *testing.T) {
		t.Parallel()
		sampled := func(m map[string]string) bool {
			m["OTEL_TRACES_EXPORTER"] = "console"
			tr, err := tracing.New(ctx, env(m), "hookline-test", io.Discard)
			require.NoError(t, err)
			defer func() { require.NoError(t, tr.Shutdown(ctx)) }()
			_, span := tr.Tracer().Start(ctx, "x")
			defer span.End()
			return span.SpanContext().IsSampled()
		}
		require.True(t, sampled(map[string]string{}), "default parentbased_always_on")
		require.False(t, sampled(map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}))
		require.False(t, sampled(map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}))
		require.True(t, sampled(map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}))
	})
}

// grpcCollector counts the spans exported to it over OTLP/gRPC.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int32
}

func (c *grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans.Add(int32(len(ss.GetSpans())))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestJobMetadataCarriesTheSpanContext(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	_, span := tp.Tracer("test").Start(context.Background(), "commit")
	defer span.End()

	md := tracing.JobMetadata(span.SpanContext())
	require.JSONEq(t, `{"traceparent":"00-`+span.SpanContext().TraceID().String()+`-`+span.SpanContext().SpanID().String()+`-01"}`, string(md))
	got := tracing.FromJobMetadata(md)
	require.Equal(t, span.SpanContext().TraceID(), got.TraceID())
	require.Equal(t, span.SpanContext().SpanID(), got.SpanID())
	require.True(t, got.IsRemote())

	require.Nil(t, tracing.JobMetadata(trace.SpanContext{}), "tracing off stores nothing")
	for _, md := range []string{``, `{}`, `{"traceparent":7}`, `{"traceparent":"junk"}`, `not json`} {
		require.False(t, tracing.FromJobMetadata([]byte(md)).IsValid(), md)
	}
}

func TestIncoming(t *testing.T) {
	t.Parallel()
	const (
		sender   = "0af7651916cd43dd8448eb211c80319c"
		incoming = "00-" + sender + "-b7ad6b7169203331-01"
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	start := func(t *testing.T, mode tracing.Incoming, header string) sdktrace.ReadOnlySpan {
		t.Helper()
		h := http.Header{}
		if header != "" {
			h.Set("Traceparent", header)
		}
		ctx, opts := mode.StartOptions(context.Background(), h)
		_, span := tp.Tracer("test").Start(ctx, "hookline.receive", opts...)
		span.End()
		return span.(sdktrace.ReadOnlySpan)
	}

	t.Run("ignore starts a new trace and keeps nothing of the header", func(t *testing.T) {
		t.Parallel()
		s := start(t, tracing.IncomingIgnore, incoming)
		require.NotEqual(t, sender, s.SpanContext().TraceID().String())
		require.False(t, s.Parent().IsValid())
		require.Empty(t, s.Links())
	})
	t.Run("link starts a new trace linked to the sender's", func(t *testing.T) {
		t.Parallel()
		s := start(t, tracing.IncomingLink, incoming)
		require.NotEqual(t, sender, s.SpanContext().TraceID().String())
		require.False(t, s.Parent().IsValid())
		require.Len(t, s.Links(), 1)
		require.Equal(t, sender, s.Links()[0].SpanContext.TraceID().String())
	})
	t.Run("parent continues the sender's trace", func(t *testing.T) {
		t.Parallel()
		s := start(t, tracing.IncomingParent, incoming)
		require.Equal(t, sender, s.SpanContext().TraceID().String())
		require.Equal(t, "b7ad6b7169203331", s.Parent().SpanID().String())
	})
	t.Run("parent without a valid header starts a new trace", func(t *testing.T) {
		t.Parallel()
		s := start(t, tracing.IncomingParent, "00-zz-yy-01")
		require.False(t, s.Parent().IsValid())
		require.True(t, s.SpanContext().IsValid())
	})
	t.Run("an unknown mode is refused", func(t *testing.T) {
		t.Parallel()
		_, err := tracing.ParseIncoming("trust")
		require.ErrorContains(t, err, `RECEIVER_TRACE_INCOMING="trust"`)
	})
}
