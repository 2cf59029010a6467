package receiver

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Context keys under which handlers leave fields for the request log line.
const (
	logSource  = "hookline.source"
	logEventID = "hookline.event_id"
	// Only on the request's span: the event's type, from a verified body.
	logEventType = "hookline.event_type"
	logOutcome   = "hookline.outcome"
	logReason    = "hookline.reason"
	// Only on signature failures.
	logSecretsTried = "hookline.secrets_tried"
	logBodySHA256   = "hookline.body_sha256"
	// Only when an address is refused (ip_denied). An address is not a
	// secret, and an operator needs it to tell a misconfigured allowlist
	// from a probe.
	logClientIP = "hookline.client_ip"
)

// logRequests writes one structured line per request, and reports each
// webhook request to rec, if set. It logs what a handler chose to record,
// never headers or bodies, which may carry secrets.
func logRequests(logger *slog.Logger, rec Recorder) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // writes the response, so the status below is final
			}
			latency := time.Since(start)
			path := c.Path()
			if path == "/healthz" || path == "/readyz" || path == metricsPath {
				return nil // probes and scrapes would drown out the events
			}
			// Only the webhook handler sets an outcome, and only to one of a
			// fixed set, so other paths (404s, 405s) never make new series.
			if outcome, _ := c.Get(logOutcome).(string); rec != nil && outcome != "" {
				source, _ := c.Get(logSource).(string)
				rec.Request(source, outcome, latency)
			}
			keys := [...]string{logSource, logEventID, logOutcome, logReason, logSecretsTried, logBodySHA256, logClientIP}
			// Room for every field at once: appending past four would
			// reallocate on every webhook request.
			attrs := make([]slog.Attr, 0, 4+len(keys))
			attrs = append(attrs,
				slog.String("method", c.Request().Method),
				slog.String("path", c.Request().URL.Path),
				slog.Int("status", c.Response().Status),
				slog.Duration("latency", latency),
			)
			for _, k := range keys {
				if v, ok := c.Get(k).(string); ok && v != "" {
					attrs = append(attrs, slog.String(k[len("hookline."):], v))
				}
			}
			level := slog.LevelInfo
			if c.Response().Status >= http.StatusInternalServerError {
				level = slog.LevelWarn
			}
			// As slog.Logger.LogAttrs does, without the runtime.Callers it
			// makes for a source location that every request line shares.
			ctx := c.Request().Context()
			if h := logger.Handler(); h.Enabled(ctx, level) {
				r := slog.NewRecord(time.Now(), level, "request", 0)
				r.AddAttrs(attrs...)
				_ = h.Handle(ctx, r)
			}
			return nil
		}
	}
}
