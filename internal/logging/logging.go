// Package logging builds the structured logger every Hookline binary uses:
// JSON for production, where logs are machine-read, and text for a
// developer's terminal.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing to w in format "json" or "text" at level.
// Durations are written as strings ("20s") in both formats.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: DurationsAsStrings}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q: want json or text", format)
}

// DurationsAsStrings is a slog.HandlerOptions.ReplaceAttr that writes a
// time.Duration as its String ("20s", "1.5ms"). slog's JSON handler
// writes nanoseconds (20000000000), which a reader has to count the zeros
// of, and which hides the unit from anyone who does not know it.
func DurationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
