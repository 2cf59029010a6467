// Package health serves the liveness and readiness probes that every
// Hookline process exposes.
package health

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookline/hookline/internal/httpserver"
)

// Pinger reports whether the database is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Check reports why the process cannot do its work, or nil when it can.
// Its error's text is the reason /readyz gives, made a sentence.
type Check func(ctx context.Context) error

// Live serves /healthz: 200 while the process is alive, whatever the
// database is doing, because restarting the process would not bring the
// database back.
func Live() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// Ready serves /readyz: 200 only while db answers a ping and every check
// passes, within two seconds in all, so that traffic goes to processes
// that can do their work. Otherwise it answers 503 with the reason, in the
// style of every error body: {"error": "Database unreachable"}.
func Ready(db Pinger, checks ...Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			return notReady(c, "Database unreachable")
		}
		for _, check := range checks {
			if err := check(ctx); err != nil {
				return notReady(c, err.Error())
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}

func notReady(c echo.Context, reason string) error {
	return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": httpserver.Sentence(reason)})
}
