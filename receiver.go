package hookline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/schema"
	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/sources"
	"github.com/hookline/hookline/internal/tracing"
)

// ReceiverConfig is a receiver's configuration. LoadReceiverConfig reads it
// from the environment; docs/CONFIGURATION.md is generated from these
// fields' tags and comments (go generate ./internal/configdoc), where a
// line "Example: v" gives the example.
type ReceiverConfig struct {
	// DatabaseURL is the Postgres URL or DSN. pgx pool parameters such as
	// pool_max_conns may be added to it.
	// Example: postgres://hookline:secret@db.internal:5432/hookline?sslmode=require
	DatabaseURL string `env:"DATABASE_URL,required,notEmpty"`
	// MaxConns is the pool size. 0 means automatic: INGEST_BATCH_FLUSHERS + 2
	// in batch mode, 16 in single mode, unless DATABASE_URL sets
	// pool_max_conns. Budget it against Postgres's max_connections across
	// every process (docs/SCALING.md).
	// Example: 8
	MaxConns int `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	// Addr is the listen address for webhooks, /healthz, /readyz and /metrics.
	Addr string `env:"RECEIVER_ADDR" envDefault:":8080"`
	// SourcesFile is the path of a sources file declaring any number of
	// sources (docs/SOURCES.md). When set, STRIPE_WEBHOOK_SECRET and
	// BANK_WEBHOOK_SECRET are not used.
	// Example: /etc/hookline/sources.yaml
	SourcesFile string `env:"HOOKLINE_SOURCES"`
	// StripeTolerance is the largest age of the Stripe-Signature timestamp,
	// for the stripe source declared without a sources file.
	StripeTolerance time.Duration `env:"STRIPE_TIMESTAMP_TOLERANCE" envDefault:"5m"`
	// MaxBodyBytes is the largest body accepted; larger ones get 413. A
	// source in the sources file may override it.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	// BodyBytesInFlight bounds the body bytes held by all requests at once.
	// Memory is reserved as bytes arrive, never for a declared
	// Content-Length; past the bound, requests get 503 with Retry-After.
	// At least MAX_BODY_BYTES and every source's max_body_bytes.
	BodyBytesInFlight int64 `env:"MAX_BODY_BYTES_IN_FLIGHT" envDefault:"67108864"`
	// IngestMode is batch (group commit: concurrent events share one
	// transaction) or single (one transaction per request).
	IngestMode string `env:"INGEST_MODE" envDefault:"batch"`
	// BatchMaxSize closes a batch when it holds this many events (1 to 10000).
	BatchMaxSize int `env:"INGEST_BATCH_MAX_SIZE" envDefault:"100"`
	// BatchMaxWait closes a batch this long after its first event arrived;
	// a lone event waits at most this long.
	BatchMaxWait time.Duration `env:"INGEST_BATCH_MAX_WAIT" envDefault:"2ms"`
	// BatchFlushers is the number of batch transactions in flight at once,
	// each on its own connection.
	BatchFlushers int `env:"INGEST_BATCH_FLUSHERS" envDefault:"4"`
	// BatchFlush says when a batch closes: timer closes it
	// INGEST_BATCH_MAX_WAIT after its first event (or at
	// INGEST_BATCH_MAX_SIZE); free hands it to a flusher as soon as one is
	// idle, so that a batch holds what arrived during the commits in
	// flight, with the wait and the size as bounds (docs/BENCHMARKS.md).
	BatchFlush string `env:"INGEST_BATCH_FLUSH" envDefault:"timer"`
	// IngestTimeout bounds the store-and-enqueue transaction; past it the
	// answer is 503 with Retry-After.
	IngestTimeout time.Duration `env:"INGEST_TIMEOUT" envDefault:"5s"`
	// NotifyCooldown is the smallest gap between the NOTIFYs that wake the
	// workers (River's FetchCooldown on the receiver's insert-only client).
	NotifyCooldown time.Duration `env:"INGEST_NOTIFY_COOLDOWN" envDefault:"10ms"`
	// RetryAfter is sent as Retry-After (whole seconds) with 503 and 429
	// answers.
	RetryAfter time.Duration `env:"RETRY_AFTER" envDefault:"5s"`
	// ShutdownTimeout is how long requests in flight may take to finish
	// after SIGTERM. Kubernetes' terminationGracePeriodSeconds must cover
	// it plus any preStop sleep.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"25s"`
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers. A slower client (slowloris) is disconnected.
	ReadHeaderTimeout time.Duration `env:"RECEIVER_READ_HEADER_TIMEOUT" envDefault:"5s"`
	// ReadTimeout is how long a client may take to send a whole request,
	// body included. A slower client gets 408 or is disconnected. At least
	// RECEIVER_READ_HEADER_TIMEOUT.
	ReadTimeout time.Duration `env:"RECEIVER_READ_TIMEOUT" envDefault:"30s"`
	// WriteTimeout bounds the time from the end of a request's headers to
	// the end of its answer on the probe and metrics routes, and to the end
	// of the body on webhook routes: once a webhook's body is read, its
	// answer has INGEST_TIMEOUT plus 5s of its own, so a slow body never
	// cuts off the answer to a committed event.
	WriteTimeout time.Duration `env:"RECEIVER_WRITE_TIMEOUT" envDefault:"30s"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration `env:"RECEIVER_IDLE_TIMEOUT" envDefault:"120s"`
	// TrustedProxies lists the networks (CIDR or single addresses) of the
	// proxies whose X-Forwarded-For is believed when a source has
	// allow_ips. Empty means the TCP peer is the client. Loopback and
	// private networks are trusted only if listed. List the proxies' own
	// addresses, not a whole network: any host in a trusted range can claim
	// any client address.
	// Example: 10.0.12.4,10.0.12.5
	TrustedProxies []string `env:"RECEIVER_TRUSTED_PROXIES"`
	// DebugAddr, if set, serves Go's pprof on this address; the receiver
	// does not start if it cannot bind it. Keep it private: profiles can
	// hold secrets.
	// Example: 127.0.0.1:6060
	DebugAddr string `env:"RECEIVER_DEBUG_ADDR"`
	// LogFormat is json for production or text for a terminal.
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	// LogFlushInterval is how long log lines may wait in a 64 KiB buffer
	// before they are written, so that a busy receiver writes its request
	// lines in chunks rather than with a system call each; warnings and
	// errors are written at once. 0 writes every line as it is logged. A
	// killed process loses at most this interval's lines.
	LogFlushInterval time.Duration `env:"LOG_FLUSH_INTERVAL" envDefault:"100ms"`
	// TraceIncoming says what the receiver does with a request's
	// traceparent header when tracing is on (OTEL_TRACES_EXPORTER and the
	// other standard OTEL_* variables): ignore starts a new trace, link starts one
	// linked to the sender's, parent continues the sender's. A header from
	// the internet can force sampling or graft events onto a stranger's
	// trace: use link or parent only behind a gateway that sets it.
	TraceIncoming string `env:"RECEIVER_TRACE_INCOMING" envDefault:"ignore"`

	// Getenv is where the secrets that the sources name are read, when the
	// receiver starts: LoadReceiverConfig sets it to its own getenv, and
	// RunReceiver uses os.Getenv when it is nil.
	Getenv func(string) string `env:"-"`
	// Logger, if set, receives the receiver's logs; otherwise they go to
	// standard error as LOG_FORMAT and LOG_LEVEL say.
	Logger *slog.Logger `env:"-"`
	// TracerProvider, if set, receives the receiver's spans, and the
	// OTEL_* variables are not read; its owner shuts it down.
	TracerProvider trace.TracerProvider `env:"-"`
}

// LoadReceiverConfig reads a receiver's configuration from the environment
// through getenv (os.Getenv, usually), where any variable X may instead be
// given as X_FILE, the path of a file holding its value, and validates it.
// The sources' secrets are read when the receiver starts, through getenv
// too.
func LoadReceiverConfig(getenv func(string) string) (ReceiverConfig, error) {
	var cfg ReceiverConfig
	if err := config.Load(getenv, &cfg); err != nil {
		return cfg, err
	}
	cfg.Getenv = getenv
	return cfg, cfg.Validate()
}

// RunReceiver serves webhooks until ctx ends: it verifies each request,
// stores it with its job in one transaction, and only then answers 2xx.
// On ctx's end it stops accepting connections, answers the requests in
// flight within ShutdownTimeout, and flushes the last batch.
//
// It binds Addr (and DebugAddr) before anything else starts, and fails at
// once if it cannot. It starts while the database is down or unmigrated,
// and /readyz answers 503 with the reason until the database is reachable
// and has this build's migrations (Migrate, or hookctl migrate). Everything
// it starts has stopped when it returns.
//
// It leaves the Go runtime's settings to the process: cmd/receiver sets
// GOGC=400 under a soft memory limit when GOGC and GOMEMLIMIT are unset,
// which cuts the receiver's CPU per event by 12-20% (docs/BENCHMARKS.md);
// a main of your own may do the same with runtime/debug.
//
// cfg must have been loaded by LoadReceiverConfig, or checked with
// Validate.
func RunReceiver(ctx context.Context, cfg ReceiverConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	trusted, err := cfg.trustedProxies()
	if err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		var closeLog func() error
		if logger, closeLog, err = newReceiverLogger(cfg); err != nil {
			return err
		}
		// Deferred first, so it runs last: the final lines are written.
		defer closeLog()
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	tr, err := setupTracing(ctx, getenv, cfg.TracerProvider, "hookline-receiver")
	if err != nil {
		return err
	}
	// Registered first, so it runs last: the final batch's spans are
	// flushed too.
	defer shutdownTracing(ctx, logger, tr)
	incoming, _ := tracing.ParseIncoming(cfg.TraceIncoming) // checked by Validate
	var tracer trace.Tracer
	if tr.Enabled() {
		logger = logging.WithTrace(logger)
		tracer = tr.Tracer()
		logger.Info("tracing on", "exporters", tr.Exporters, "incoming_trace", incoming)
	}
	// Without a sources file, STRIPE_WEBHOOK_SECRET and BANK_WEBHOOK_SECRET
	// (or their _FILE forms) declare the stripe and bank sources.
	srcs, summaries, err := sources.Load(getenv, cfg.SourcesFile, cfg.StripeTolerance)
	if err != nil {
		return err
	}
	for _, s := range summaries {
		logger.Info("source", "name", s.Name, "path", s.Path, "type", s.Type, "secret_labels", s.SecretLabels, "replay_guard", s.ReplayGuard)
		for _, w := range s.Warnings {
			logger.Warn(w, "source", s.Name)
		}
		if s.MaxBodyBytes > cfg.BodyBytesInFlight {
			return fmt.Errorf("MAX_BODY_BYTES_IN_FLIGHT=%d is less than source %q's max_body_bytes=%d: its largest bodies could never be accepted", cfg.BodyBytesInFlight, s.Name, s.MaxBodyBytes)
		}
	}
	for _, p := range trusted {
		// A /0 trusts everyone; anything wider than a /8 (IPv4) or a /32
		// (IPv6), such as 0.0.0.0/1 and 128.0.0.0/1 together, nearly so.
		if p.Bits() < 8 || (p.Addr().Is6() && p.Bits() < 32) {
			logger.Warn("RECEIVER_TRUSTED_PROXIES trusts a vast network: a client inside it can choose the address allow_ips sees by sending X-Forwarded-For; list only your proxies", "network", p.String())
		}
	}

	// Bind first: a port in use fails before anything starts, and
	// "listening" is logged only once it is true.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // if serving never starts; Shutdown closes it otherwise
	var debugLn net.Listener
	if cfg.DebugAddr != "" {
		if debugLn, err = net.Listen("tcp", cfg.DebugAddr); err != nil {
			return fmt.Errorf("RECEIVER_DEBUG_ADDR: listen on %s: %w", cfg.DebugAddr, err)
		}
		defer debugLn.Close()
	}

	// The pool connects lazily: the receiver starts, and reports not ready,
	// while the database is down, rather than crash-looping.
	// Batch mode needs a connection per flusher, plus headroom for
	// readiness probes; single mode, one per request in flight.
	autoConns := cfg.BatchFlushers + 2
	if cfg.IngestMode == "single" {
		autoConns = 16
	}
	pool, err := dbpool.New(ctx, cfg.DatabaseURL, cfg.MaxConns, autoConns, "hookline-receiver")
	if err != nil {
		return err
	}
	defer pool.Close()
	// An insert-only River client: never started, it only enqueues. Its
	// FetchCooldown also spaces the NOTIFYs that wake the workers: River's
	// 100ms default delayed each event by ~50ms on average, end to end.
	// ingest.JobIDs gives each job the id its inbox row reserved, so that
	// the row names its job without a second write.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown: cfg.NotifyCooldown,
		Logger:        logger,
		Middleware:    []rivertype.Middleware{&ingest.JobIDs{}},
	})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}

	// This process's own registry: nothing is registered globally.
	reg := metrics.NewRegistry()

	var ing receiver.Ingester
	switch cfg.IngestMode {
	case "single":
		ing = ingest.NewSingle(pool, rc)
	case "batch":
		b := ingest.NewBatcher(pool, rc, logger, ingest.BatchOptions{
			MaxSize: cfg.BatchMaxSize, MaxWait: cfg.BatchMaxWait, Flushers: cfg.BatchFlushers, FlushWhenFree: cfg.BatchFlush == "free", Timeout: cfg.IngestTimeout,
			Observer: metrics.NewIngest(reg),
		})
		// Runs after the HTTP server has drained: flush what its last
		// requests left in the open batch.
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.IngestTimeout)
			defer cancel()
			if err := b.Close(ctx); err != nil {
				logger.Error("flush on shutdown", "error", err)
			}
		}()
		ing = b
	}

	// The background work below stops, and is waited for, before RunReceiver
	// returns, and before the pool closes (defers run last in, first out).
	bgCtx, stopBg := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() { stopBg(); bg.Wait() }()

	// Shed limits (hookctl shed) are re-read every second.
	limiter := shed.NewLimiter()
	bg.Go(func() { limiter.Run(bgCtx, pool, time.Second, logger) })
	// The migrations are checked now, so that the log says at once whether
	// to run hookctl migrate, and then every few seconds for /readyz.
	migrated := schema.NewChecker(pool, logger)
	bg.Go(func() { migrated.Watch(bgCtx, 5*time.Second) })

	handler := receiver.New(logger, srcs, ing, pool, receiver.Options{
		Shed:           limiter,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		BodyBudget:     receiver.NewBodyBudget(cfg.BodyBytesInFlight),
		IngestTimeout:  cfg.IngestTimeout,
		RetryAfter:     cfg.RetryAfter,
		Recorder:       metrics.NewReceiver(reg),
		Metrics:        metrics.Handler(reg, logger),
		Ready:          []health.Check{migrated.Check},
		TrustedProxies: trusted,
		Tracer:         tracer,
		TraceIncoming:  incoming,
	})
	if debugLn != nil {
		debug := debugServer()
		logger.Warn("serving pprof; keep this address private", "addr", debugLn.Addr().String())
		bg.Go(func() {
			if err := debug.Serve(debugLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("debug server", "addr", debugLn.Addr().String(), "error", err)
			}
		})
		// Close, not Shutdown: a profile in progress may take 30s, and
		// nothing depends on it finishing.
		defer debug.Close()
	}
	logger.Info("ingest mode", "mode", cfg.IngestMode, "batch_max_size", cfg.BatchMaxSize, "batch_max_wait", cfg.BatchMaxWait, "batch_flushers", cfg.BatchFlushers, "batch_flush", cfg.BatchFlush)
	srv := httpserver.New(cfg.Addr, handler, httpserver.Timeouts{
		ReadHeader: cfg.ReadHeaderTimeout, Read: cfg.ReadTimeout, Write: cfg.WriteTimeout, Idle: cfg.IdleTimeout,
	})
	return serveReceiver(ctx, logger, srv, ln, cfg.ShutdownTimeout)
}

// serveReceiver runs srv on ln until ctx is cancelled, then stops accepting
// connections and lets the requests in flight finish, for at most timeout.
func serveReceiver(ctx context.Context, logger *slog.Logger, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	errc := make(chan error, 1)
	logger.Info("receiver listening", "addr", ln.Addr().String())
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", timeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("receiver stopped")
	return nil
}

// Validate reports the first setting that is out of range or inconsistent
// with another, naming its variable.
func (c ReceiverConfig) Validate() error {
	switch {
	case c.MaxBodyBytes <= 0 || c.MaxBodyBytes > receiver.MaxBodyLimit:
		return fmt.Errorf("MAX_BODY_BYTES=%d must be between 1 and %d (32 MiB; GitHub, the largest sender, caps payloads at 25 MB)", c.MaxBodyBytes, receiver.MaxBodyLimit)
	case c.BodyBytesInFlight < c.MaxBodyBytes:
		return fmt.Errorf("MAX_BODY_BYTES_IN_FLIGHT=%d must be at least MAX_BODY_BYTES=%d, or the largest bodies could never be accepted", c.BodyBytesInFlight, c.MaxBodyBytes)
	case c.IngestMode != "batch" && c.IngestMode != "single":
		return fmt.Errorf("INGEST_MODE=%q: want batch or single", c.IngestMode)
	case c.BatchMaxSize < 1 || c.BatchMaxSize > 10_000:
		return fmt.Errorf("INGEST_BATCH_MAX_SIZE=%d out of range [1, 10000]", c.BatchMaxSize)
	case c.BatchMaxWait <= 0:
		return fmt.Errorf("INGEST_BATCH_MAX_WAIT=%s must be positive", c.BatchMaxWait)
	case c.IngestTimeout <= 0:
		return fmt.Errorf("INGEST_TIMEOUT=%s must be positive", c.IngestTimeout)
	case c.BatchFlush != "timer" && c.BatchFlush != "free":
		return fmt.Errorf("INGEST_BATCH_FLUSH=%q: want timer or free", c.BatchFlush)
	case c.BatchFlushers < 1:
		return fmt.Errorf("INGEST_BATCH_FLUSHERS=%d must be at least 1", c.BatchFlushers)
	case c.ReadHeaderTimeout <= 0, c.ReadTimeout <= 0, c.WriteTimeout <= 0, c.IdleTimeout <= 0:
		return fmt.Errorf("RECEIVER_READ_HEADER_TIMEOUT=%s, RECEIVER_READ_TIMEOUT=%s, RECEIVER_WRITE_TIMEOUT=%s and RECEIVER_IDLE_TIMEOUT=%s must all be positive",
			c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout)
	case c.ReadHeaderTimeout > c.ReadTimeout:
		return fmt.Errorf("RECEIVER_READ_HEADER_TIMEOUT=%s must not exceed RECEIVER_READ_TIMEOUT=%s, which includes the headers", c.ReadHeaderTimeout, c.ReadTimeout)
	}
	if _, err := tracing.ParseIncoming(c.TraceIncoming); err != nil {
		return err
	}
	return nil
}

// trustedProxies parses RECEIVER_TRUSTED_PROXIES.
func (c ReceiverConfig) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range c.TrustedProxies {
		p, err := sources.ParseNetwork(entry)
		if err != nil {
			return nil, fmt.Errorf("RECEIVER_TRUSTED_PROXIES: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// debugServer returns a server of Go's profiler, for an address of its
// own, which must never be exposed beyond the host: profiles show memory,
// and so may show secrets.
func debugServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// newReceiverLogger returns the logger RunReceiver writes to standard
// error with, buffered as LogFlushInterval says, and what writes out its
// last lines.
func newReceiverLogger(cfg ReceiverConfig) (*slog.Logger, func() error, error) {
	if cfg.LogFlushInterval <= 0 {
		logger, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
		if err != nil {
			return nil, nil, fmt.Errorf("LOG_FORMAT: %w", err)
		}
		return logger, func() error { return nil }, nil
	}
	buf := logging.NewBuffered(os.Stderr, 64<<10, cfg.LogFlushInterval)
	logger, err := logging.New(buf, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		_ = buf.Close()
		return nil, nil, fmt.Errorf("LOG_FORMAT: %w", err)
	}
	return slog.New(logging.FlushAbove(logger.Handler(), buf, slog.LevelWarn)), buf.Close, nil
}
