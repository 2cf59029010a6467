package hookline

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/httpserver"
)

// riverUIPrefix is where River UI is mounted on the admin server.
const riverUIPrefix = "/riverui"

// admin is what the worker's admin server serves.
type admin struct {
	// db answers the readiness probe, with ready's checks after its ping.
	db    health.Pinger
	ready []health.Check
	// metrics is served at /metrics.
	metrics http.Handler
	// riverUI is served under riverUIPrefix, behind auth; nil leaves it off.
	riverUI http.Handler
	auth    uiAuth
	// logger receives errors that are not meant for the client; nil
	// discards them.
	logger *slog.Logger
}

// newAdmin returns the worker's admin HTTP handler, every route listed here.
func newAdmin(a admin) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	logger := a.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Error bodies in the style of the receiver's: {"error": "Not found"}.
	e.HTTPErrorHandler = httpserver.ErrorHandler(logger)
	e.GET("/healthz", health.Live())
	e.GET("/readyz", health.Ready(a.db, a.ready...))
	if a.metrics != nil {
		e.GET("/metrics", echo.WrapHandler(a.metrics))
	}
	// River UI can cancel, retry and delete jobs and pause queues, so it is
	// mounted only with a credential to guard it: never open.
	if a.riverUI != nil && a.auth.configured() {
		// Browsers send basic credentials with cross-site requests too; this
		// rejects the cross-origin POSTs and PUTs that would turn them
		// against River UI's API.
		cop := http.NewCrossOriginProtection()
		cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"Cross-origin requests to River UI are refused"}`+"\n")
		}))
		ui := echo.WrapHandler(cop.Handler(a.riverUI))
		e.Any(riverUIPrefix, ui, a.auth.middleware)
		e.Any(riverUIPrefix+"/*", ui, a.auth.middleware)
	}
	return e
}

// newRiverUI returns a started River UI handler for rc; it stops when ctx
// ends.
func newRiverUI(ctx context.Context, rc *river.Client[pgx.Tx], logger *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(rc, nil),
		Logger:    logger,
		Prefix:    riverUIPrefix,
		// Args hold only the inbox id and the event's key, never a payload.
		JobListHideArgsByDefault: false,
	})
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// msgUnauthorized answers a request for River UI without the right
// credential. It does not say which part was wrong.
const msgUnauthorized = "Missing or wrong credentials for River UI"

// uiAuth holds River UI's credentials: a username and password for basic
// auth, a bearer token, or both. Empty fields are not accepted.
type uiAuth struct {
	username, password, token string
}

func (a uiAuth) configured() bool { return a.username != "" || a.token != "" }

// middleware answers 401 unless the request carries a configured
// credential.
func (a uiAuth) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.allows(c.Request()) {
			return next(c)
		}
		h := c.Response().Header()
		if a.username != "" {
			h.Add(echo.HeaderWWWAuthenticate, `Basic realm="hookline"`)
		}
		if a.token != "" {
			h.Add(echo.HeaderWWWAuthenticate, `Bearer realm="hookline"`)
		}
		return echo.NewHTTPError(http.StatusUnauthorized, msgUnauthorized)
	}
}

func (a uiAuth) allows(r *http.Request) bool {
	if a.username != "" {
		if user, pass, ok := r.BasicAuth(); ok {
			// & rather than &&: a wrong username must take as long as a
			// wrong password.
			if secretEqual(user, a.username)&secretEqual(pass, a.password) == 1 {
				return true
			}
		}
	}
	if a.token != "" {
		scheme, token, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
		if ok && strings.EqualFold(scheme, "Bearer") && secretEqual(token, a.token) == 1 {
			return true
		}
	}
	return false
}

// secretEqual compares in constant time, 1 for equal. Hashing first hides
// the secret's length too, which ConstantTimeCompare alone would reveal.
func secretEqual(got, want string) int {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}
