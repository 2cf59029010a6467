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
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q: want json or text", format)
}
