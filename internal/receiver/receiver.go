// Package receiver is Hookline's HTTP front door: it verifies each webhook
// over its raw bytes, stores it with its job in one transaction, and only
// then answers 2xx. No business logic runs here.
package receiver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/tracing"
	"github.com/hookline/hookline/internal/verify"
)

// Source is one sender of webhooks, served at /api/webhooks/<Name>.
type Source struct {
	// Name is the source's path segment and its key in the inbox.
	Name string
	// Verifier checks the sender's signature.
	Verifier verify.Verifier
	// KeepHeaders names the request headers stored with each event, for
	// audit and re-verification.
	KeepHeaders []string
	// Envelope says where the event id, type and API version are. The zero
	// value reads them from the top level of a JSON body.
	Envelope envelope.Extractor
	// MaxBodyBytes overrides Options.MaxBodyBytes for this source when set.
	MaxBodyBytes int64
	// FailureStatus is the status for a failed signature: 400 when zero.
	// Some providers' reviewers expect 401.
	FailureStatus int
	// SlackChallenge answers Slack's url_verification request, after its
	// signature has passed, instead of storing it.
	SlackChallenge bool
	// ReplayGuard, for a scheme that does not sign the event id, keeps a
	// captured delivery sent again under a new id from being a new event.
	ReplayGuard ReplayGuard
	// EventTypes, if not empty, are the only event types accepted; a
	// verified event of another type gets 400 and is not stored.
	EventTypes map[string]bool
	// AllowIPs, if not empty, are the only networks this source's requests
	// may come from; others get 403 before their body is read. The client
	// address is the TCP peer, or the X-Forwarded-For entry that
	// Options.TrustedProxies vouch for.
	AllowIPs []netip.Prefix
}

// Ingester stores a verified event and enqueues its processing.
type Ingester interface {
	Ingest(ctx context.Context, ev inbox.NewEvent) (ingest.Outcome, error)
}

// Admitter decides whether a request for a source may proceed now.
type Admitter interface {
	Allow(source string) bool
}

// Options tune the request path.
type Options struct {
	// MaxBodyBytes is the largest body accepted; larger ones get 413.
	MaxBodyBytes int64
	// BodyBudget, if set, bounds the body bytes held by all requests at
	// once; a request that would pass it gets 503 with Retry-After.
	BodyBudget *BodyBudget
	// IngestTimeout bounds the store-and-enqueue transaction, so that a
	// stalled database turns into a 503 the sender retries rather than a
	// request that hangs until the sender gives up.
	IngestTimeout time.Duration
	// RetryAfter is sent with 503 and 429 answers.
	RetryAfter time.Duration
	// Shed, if set, is asked before anything else whether a source's
	// request may proceed; if not, the answer is 429 (hookctl shed).
	Shed Admitter
	// Recorder, if set, is told about every webhook request, for metrics.
	Recorder Recorder
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// Ready are conditions /readyz checks after the database ping, such as
	// the database having this build's migrations.
	Ready []health.Check
	// TrustedProxies are the networks of the proxies (ingress, load
	// balancer) whose X-Forwarded-For the receiver believes when it decides
	// a client's address for Source.AllowIPs. Empty means the TCP peer is
	// the client and X-Forwarded-For is ignored. Loopback, link-local and
	// private addresses are trusted only if listed here.
	TrustedProxies []netip.Prefix
	// Tracer, if set, traces each webhook request (a span with children
	// for verification and envelope parsing); nil turns tracing off.
	Tracer trace.Tracer
	// TraceIncoming says what to do with a request's traceparent header:
	// ignore it (the default), link to it, or continue its trace.
	TraceIncoming tracing.Incoming
}

// Recorder receives one report per answered webhook request. It is an
// interface so that the receiver does not depend on a metrics library.
type Recorder interface {
	// Request reports a request's source (empty when the source is
	// unknown), its outcome, as in the request log line, and its latency.
	Request(source, outcome string, d time.Duration)
}

// metricsPath is where Options.Metrics is served.
const metricsPath = "/metrics"

// New returns the receiver's HTTP handler, with every route in place.
func New(logger *slog.Logger, sources []Source, ing Ingester, db health.Pinger, opts Options) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = httpserver.ErrorHandler(logger)
	e.IPExtractor = ipExtractor(opts.TrustedProxies)
	// Outside the request log, so that its line carries the trace's ids.
	if opts.Tracer != nil {
		e.Use(traceRequests(opts.Tracer, opts.TraceIncoming))
	}
	e.Use(logRequests(logger, opts.Recorder))
	// Inside the request log, so that a request that panics is still
	// logged and counted, as a 500.
	e.Use(middleware.Recover())
	addRoutes(e, logger, sources, ing, db, opts)
	return e
}

// addRoutes lists every route the receiver serves.
func addRoutes(e *echo.Echo, logger *slog.Logger, sources []Source, ing Ingester, db health.Pinger, opts Options) {
	e.GET("/healthz", health.Live())
	e.GET("/readyz", health.Ready(db, opts.Ready...))
	if opts.Metrics != nil {
		e.GET(metricsPath, echo.WrapHandler(opts.Metrics))
	}
	e.POST("/api/webhooks/:source", handleWebhook(logger, sources, ing, opts))
}

// ipExtractor returns how the client's address is found: the TCP peer, or,
// behind trusted proxies, the nearest X-Forwarded-For entry that is not one
// of them. Echo's defaults would trust every loopback, link-local and
// private address as a proxy, and without an extractor echo reads
// X-Forwarded-For from anyone; both would let a client choose its address.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
