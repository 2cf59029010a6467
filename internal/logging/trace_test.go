package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hookline/hookline/internal/logging"
)

func TestWithTrace(t *testing.T) {
	t.Parallel()
	tracer := sdktrace.NewTracerProvider().Tracer("test")

	type testBundle struct {
		buf    *bytes.Buffer
		logger *slog.Logger
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		var buf bytes.Buffer
		logger, err := logging.New(&buf, "json", slog.LevelInfo)
		require.NoError(t, err)
		return &testBundle{buf: &buf, logger: logging.WithTrace(logger)}
	}
	line := func(t *testing.T, b *testBundle) map[string]any {
		t.Helper()
		var m map[string]any
		require.NoError(t, json.Unmarshal(b.buf.Bytes(), &m))
		return m
	}

	t.Run("a line logged inside a span carries its trace and span ids", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, span := tracer.Start(context.Background(), "request")
		defer span.End()
		b.logger.With("source", "bank").InfoContext(ctx, "request")
		m := line(t, b)
		require.Equal(t, span.SpanContext().TraceID().String(), m["trace_id"])
		require.Equal(t, span.SpanContext().SpanID().String(), m["span_id"])
		require.Equal(t, "bank", m["source"])
	})
	t.Run("a line logged outside any span carries no ids", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.logger.InfoContext(context.Background(), "startup")
		m := line(t, b)
		require.NotContains(t, m, "trace_id")
		require.NotContains(t, m, "span_id")
	})
}
