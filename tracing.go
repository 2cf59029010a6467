package hookline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/tracing"
)

// tracingShutdownTimeout bounds the export of the last spans on exit.
const tracingShutdownTimeout = 5 * time.Second

// setupTracing returns tp if set, and otherwise tracing as the OTEL_*
// variables read through getenv ask: off when they ask for no exporter.
// Spans of the console exporter go to standard output, logs to standard
// error.
func setupTracing(ctx context.Context, getenv func(string) string, tp trace.TracerProvider, service string) (*tracing.Tracing, error) {
	if tp != nil {
		return tracing.FromProvider(tp), nil
	}
	tr, err := tracing.New(ctx, getenv, service, os.Stdout)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return tr, nil
}

// shutdownTracing exports the spans still buffered.
func shutdownTracing(ctx context.Context, logger *slog.Logger, tr *tracing.Tracing) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		logger.Warn("could not export the last spans", "error", err)
	}
}
