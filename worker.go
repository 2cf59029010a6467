package hookline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/dispatch"
	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/httpserver"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/retention"
	"github.com/hookline/hookline/internal/schema"
	"github.com/hookline/hookline/internal/throttle"
	"github.com/hookline/hookline/internal/tracing"
)

// maxAutoConns caps a worker's automatic pool size: a worker at any
// concurrency fits in 20 connections, so that several fit in Postgres's
// default max_connections of 100.
const maxAutoConns = 20

// WorkerConfig is a worker's configuration. LoadWorkerConfig reads it from
// the environment; docs/CONFIGURATION.md is generated from these fields'
// tags and comments (go generate ./internal/configdoc), where a line
// "Example: v" gives the example.
type WorkerConfig struct {
	// DatabaseURL is the Postgres URL or DSN. pgx pool parameters such as
	// pool_max_conns may be added to it.
	// Example: postgres://hookline:secret@db.internal:5432/hookline?sslmode=require
	DatabaseURL string `env:"DATABASE_URL,required,notEmpty"`
	// MaxConns is the pool size. 0 means automatic: WORKER_CONCURRENCY + 6,
	// at most 20, unless DATABASE_URL sets pool_max_conns. 6 serve River
	// and the process; the rest, WORKER_TRANSACTIONS, serve handler
	// transactions. Budget it against Postgres's max_connections across
	// every process (docs/SCALING.md).
	// Example: 20
	MaxConns int `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	// Transactions is the most handler transactions open at once, single
	// events and groups together; more jobs wait for one, within their
	// timeout. 0 means the pool size less 6.
	Transactions int `env:"WORKER_TRANSACTIONS" envDefault:"0"`
	// GroupMaxSize closes a group of grouped handlers' events (one
	// transaction for all) when it holds this many events; 1 turns
	// grouping off (1 to 10000).
	GroupMaxSize int `env:"WORKER_GROUP_MAX_SIZE" envDefault:"100"`
	// GroupMaxWait closes a group this long after its first event arrived;
	// a lone event waits at most this long.
	GroupMaxWait time.Duration `env:"WORKER_GROUP_MAX_WAIT" envDefault:"2ms"`
	// Addr is the admin server's address: /healthz, /readyz, /metrics and
	// /riverui.
	Addr string `env:"WORKER_ADDR" envDefault:":9091"`
	// AdminIdleTimeout is how long a keep-alive connection to the admin
	// server may wait for its next request. The admin server's other
	// limits are the receiver's defaults: 5s for headers, 30s to read a
	// request and to answer it, and 64 KiB of headers.
	AdminIdleTimeout time.Duration `env:"WORKER_ADMIN_IDLE_TIMEOUT" envDefault:"120s"`
	// Concurrency is River's MaxWorkers for the events queue in this
	// process: the jobs it works at once (1 to 10000); cmd/worker's
	// --concurrency flag overrides it. Jobs are cheap goroutines and share the
	// WORKER_TRANSACTIONS connections, so a high value costs no
	// connections; it lets groups of grouped handlers fill while others
	// commit.
	Concurrency int `env:"WORKER_CONCURRENCY" envDefault:"200"`
	// JobTimeout cancels a job's context after this long.
	JobTimeout time.Duration `env:"WORKER_JOB_TIMEOUT" envDefault:"1m"`
	// RescueAfter is when a job still running is presumed dead (its worker
	// crashed) and retried. It must exceed WORKER_JOB_TIMEOUT plus
	// WORKER_THROTTLE_MAX_WAIT.
	RescueAfter time.Duration `env:"WORKER_RESCUE_AFTER" envDefault:"5m"`
	// SoftStopTimeout is how long jobs in flight may take to finish after
	// SIGTERM before they are cancelled. Kubernetes'
	// terminationGracePeriodSeconds must cover it plus
	// WORKER_HARD_STOP_TIMEOUT.
	SoftStopTimeout time.Duration `env:"WORKER_SOFT_STOP_TIMEOUT" envDefault:"20s"`
	// HardStopTimeout is how long to wait, after cancelling the jobs still
	// running, for them to return.
	HardStopTimeout time.Duration `env:"WORKER_HARD_STOP_TIMEOUT" envDefault:"5s"`
	// FetchCooldown is River's smallest gap between fetches; it caps a
	// worker at WORKER_CONCURRENCY jobs per cooldown.
	FetchCooldown time.Duration `env:"WORKER_FETCH_COOLDOWN" envDefault:"10ms"`
	// ThrottleMaxWait is the longest a job waits at the throttle gate
	// (hookctl throttle) before it is snoozed back to the queue, with no
	// attempt used.
	ThrottleMaxWait time.Duration `env:"WORKER_THROTTLE_MAX_WAIT" envDefault:"30s"`
	// PruneInterval is how often the inbox retention runs as a River
	// periodic job (queue maintenance); 0 turns it off.
	PruneInterval time.Duration `env:"WORKER_PRUNE_INTERVAL" envDefault:"1h"`
	// PrunePayloadsAge empties the payload and headers of processed events
	// older than this; their key stays.
	PrunePayloadsAge time.Duration `env:"WORKER_PRUNE_PAYLOADS_AFTER" envDefault:"720h"`
	// PruneKeysAge deletes processed events older than this, key and all.
	// It must exceed every provider's retry window (Stripe retries for 3
	// days), or a late redelivery is applied again, and exceed
	// WORKER_PRUNE_PAYLOADS_AFTER.
	PruneKeysAge time.Duration `env:"WORKER_PRUNE_KEYS_AFTER" envDefault:"2160h"`
	// CatchupInterval is how often the worker lists Stripe's events of the
	// last WORKER_CATCHUP_LOOKBACK from its API and stores those the inbox
	// lacks (as hookctl catchup stripe does), as a River periodic job run
	// by one worker at a time; 0 turns it off. Each recovered event counts
	// in hookline_catchup_recovered_events_total. Needs STRIPE_API_KEY.
	// Example: 15m
	CatchupInterval time.Duration `env:"WORKER_CATCHUP_INTERVAL" envDefault:"0"`
	// CatchupLookback is how far back each periodic catch-up lists: at
	// least WORKER_CATCHUP_INTERVAL, at most 720h (Stripe lists 30 days).
	// Stripe retries a delivery for 3 days, so the default covers every
	// event it has given up on since the last run, and then some.
	CatchupLookback time.Duration `env:"WORKER_CATCHUP_LOOKBACK" envDefault:"72h"`
	// CatchupSource is the receiver's Stripe source, under which recovered
	// events are stored.
	CatchupSource string `env:"WORKER_CATCHUP_SOURCE" envDefault:"stripe"`
	// CatchupFailedOnly lists only events some endpoint has not received
	// (Stripe's delivery_success=false): fewer API calls, but events of a
	// disabled endpoint are not among them.
	CatchupFailedOnly bool `env:"WORKER_CATCHUP_FAILED_ONLY" envDefault:"false"`
	// StripeAPIKey is the Stripe API key that catch-up lists events with:
	// the worker's periodic catch-up (WORKER_CATCHUP_INTERVAL), and hookctl
	// catchup stripe. A restricted key with read access to Events alone is
	// enough (docs/SECURITY.md). Never logged or printed.
	// Example: STRIPE_API_KEY_FILE=/run/secrets/stripe_api_key
	StripeAPIKey string `env:"STRIPE_API_KEY"`
	// StripeAPIURL is Stripe's API base URL; empty is
	// https://api.stripe.com. For stripe-mock or an egress proxy.
	// Example: http://127.0.0.1:12111
	StripeAPIURL string `env:"STRIPE_API_URL"`
	// FetchPollInterval is River's fallback poll when no insert
	// notification arrives.
	FetchPollInterval time.Duration `env:"WORKER_FETCH_POLL_INTERVAL" envDefault:"1s"`
	// LogFormat is json for production or text for a terminal.
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"LOG_LEVEL" envDefault:"info"`

	// River UI is served on the admin server only with a credential:
	// basic auth, a bearer token, or both.

	// RiverUIUsername is the basic-auth user for River UI at /riverui; set
	// it together with RIVERUI_PASSWORD.
	// Example: oncall
	RiverUIUsername string `env:"RIVERUI_USERNAME"`
	// RiverUIPassword is the basic-auth password for River UI.
	// Example: RIVERUI_PASSWORD_FILE=/run/secrets/riverui_password
	RiverUIPassword string `env:"RIVERUI_PASSWORD"`
	// RiverUIToken is a bearer token for River UI, instead of or as well as
	// basic auth. With no credential at all, River UI is not served.
	// Example: RIVERUI_TOKEN_FILE=/run/secrets/riverui_token
	RiverUIToken string `env:"RIVERUI_TOKEN"`

	// Logger, if set, receives the worker's logs; otherwise they go to
	// standard error as LOG_FORMAT and LOG_LEVEL say.
	Logger *slog.Logger `env:"-"`
	// Getenv is where the standard OTEL_* variables are read, when the
	// worker starts: LoadWorkerConfig sets it to its own getenv, and
	// RunWorker uses os.Getenv when it is nil.
	Getenv func(string) string `env:"-"`
	// TracerProvider, if set, receives the worker's spans, and the OTEL_*
	// variables are not read; its owner shuts it down.
	TracerProvider trace.TracerProvider `env:"-"`
}

// RunWorker runs a worker until ctx ends: a River client that applies
// stored events through mux, the throttle that hookctl throttle drives,
// retention, and the admin server (/healthz, /readyz, /metrics, and River
// UI when a credential is set). On ctx's end it stops fetching, lets the
// jobs in flight finish within SoftStopTimeout, then cancels the rest.
//
// It binds Addr before anything else starts, and fails at once if it
// cannot, or if the database is unreachable or lacks migrations of this
// build (River's and Hookline's: run Migrate, or hookctl migrate); River
// never starts then. The tables mux's handlers write to must exist too.
// Everything it starts is stopped when it returns.
//
// cfg must have been loaded by LoadWorkerConfig, or checked with Validate.
func RunWorker(ctx context.Context, cfg WorkerConfig, mux *Mux) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		var err error
		if logger, err = logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel); err != nil {
			return fmt.Errorf("LOG_FORMAT: %w", err)
		}
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	tr, err := setupTracing(ctx, getenv, cfg.TracerProvider, "hookline-worker")
	if err != nil {
		return err
	}
	defer shutdownTracing(ctx, logger, tr)
	var (
		tracer     trace.Tracer
		middleware []rivertype.Middleware
	)
	if tr.Enabled() {
		logger = logging.WithTrace(logger)
		tracer = tr.Tracer()
		// JobContext first: otelriver's work span then continues the trace
		// stored with the job, as a child, and the handler's span is its
		// child. otelriver's own propagation would only link to it.
		middleware = append(middleware, &tracing.JobContext{}, otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
			EnableWorkSpanJobKindSuffix: true,
			TracerProvider:              tr.Provider,
			// Metrics stay Prometheus's (/metrics); these would go nowhere.
			MeterProvider: metricnoop.NewMeterProvider(),
		}))
		logger.Info("tracing on", "exporters", tr.Exporters)
	}

	// Bind first: a port in use fails before River starts, and "listening"
	// is logged only once it is true.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin server: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // if serving never starts; Close closes it otherwise

	// Connections do not follow concurrency: handler transactions share
	// WORKER_TRANSACTIONS slots, and grouped events share transactions.
	pool, err := dbpool.New(ctx, cfg.DatabaseURL, cfg.MaxConns, min(cfg.Concurrency+dispatch.RiverConns, maxAutoConns), "hookline-worker")
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkTransactions(cfg.Transactions, int(pool.Config().MaxConns)); err != nil {
		return err
	}
	// River would fail to start on an unmigrated database with "relation
	// river_queue does not exist", which does not say what to do.
	if err := schema.Check(ctx, pool); err != nil {
		return err
	}

	// This process's own registry: nothing is registered globally.
	reg := metrics.NewRegistry()

	workers := river.NewWorkers()
	river.AddWorker(workers, dispatch.NewWorker(pool, mux, logger, dispatch.WorkerOpts{
		Transactions: cfg.Transactions, GroupMaxSize: cfg.GroupMaxSize, GroupMaxWait: cfg.GroupMaxWait,
		Observer: metrics.NewGroup(reg), Stale: metrics.NewOrder(reg), Tracer: tracer,
	}))
	queues := map[string]river.QueueConfig{hooklinetype.Queue: {MaxWorkers: cfg.Concurrency}}
	var periodic []*river.PeriodicJob
	if cfg.PruneInterval > 0 {
		rw, err := retention.NewWorker(pool, ops.PruneOpts{OlderThan: cfg.PrunePayloadsAge, KeepKeysFor: cfg.PruneKeysAge}, logger)
		if err != nil {
			return fmt.Errorf("WORKER_PRUNE_PAYLOADS_AFTER / WORKER_PRUNE_KEYS_AFTER: %w", err)
		}
		river.AddWorker(workers, rw)
		queues[retention.Queue] = river.QueueConfig{MaxWorkers: 1}
		periodic = append(periodic, retention.Periodic(cfg.PruneInterval))
	}

	if cfg.CatchupInterval > 0 {
		host, _ := os.Hostname()
		cw, err := catchup.NewWorker(pool, catchup.JobOpts{
			Stripe:   catchup.StripeOptions{Key: cfg.StripeAPIKey, URL: cfg.StripeAPIURL, FailedOnly: cfg.CatchupFailedOnly},
			Lookback: cfg.CatchupLookback, Source: cfg.CatchupSource, By: "hookline-worker@" + host,
			// Under the rescuer's limit, so that no run is started twice.
			Timeout: cfg.RescueAfter - time.Minute,
		}, logger, metrics.NewCatchup(reg))
		if err != nil {
			return fmt.Errorf("WORKER_CATCHUP_INTERVAL: %w", err)
		}
		river.AddWorker(workers, cw)
		// Room for a retention run beside a catch-up run: each kind is
		// unique, so neither runs twice at once.
		queues[catchup.Queue] = river.QueueConfig{MaxWorkers: 2}
		periodic = append(periodic, catchup.Periodic(cfg.CatchupInterval))
	}

	jobMetrics := metrics.NewWorker(reg, hooklinetype.JobKind)
	jobMetrics.SetConcurrencyLimit(cfg.Concurrency)
	reg.MustRegister(metrics.NewQueue(pool, hooklinetype.Queue, 2*time.Second, logger))

	// The gate admits jobs up to this process's share of the live global
	// limit (hookctl throttle). It comes before the job metrics, so that time
	// spent waiting at the gate does not count as job duration.
	gate := throttle.NewGate(hooklinetype.Queue, cfg.Concurrency, cfg.ThrottleMaxWait)
	reg.MustRegister(metrics.NewGate(gate))
	ctl := throttle.NewController(pool, gate, cfg.Concurrency, logger)
	ctl.OnChange = jobMetrics.SetConcurrencyLimit
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		if err := ctl.Run(ctlCtx); err != nil {
			logger.Error("throttle controller stopped; the concurrency limit is frozen", "error", err)
		}
	}()
	// Withdraw from worker_processes only after River has stopped, so the
	// others take over this process's share once its jobs are done.
	defer func() { stopCtl(); <-ctlDone }()

	// River logs every failed poll: about four errors a second while the
	// database is down. Each of its messages is passed once a minute.
	riverLogger := slog.New(logging.LimitRepeats(logger.Handler(), logging.DefaultEvery))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInterval,
		JobTimeout:        cfg.JobTimeout,
		Logger:            riverLogger,
		// ingest.JobIDs: periodic catch-up stores events as the receiver
		// does, each job with the id its inbox row reserved.
		Middleware:           append(middleware, gate, jobMetrics, &ingest.JobIDs{}),
		PeriodicJobs:         periodic,
		Queues:               queues,
		RescueStuckJobsAfter: cfg.RescueAfter,
		Workers:              workers,
	})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}

	adm := admin{
		db: pool, ready: []health.Check{schema.NewChecker(pool, logger).Check},
		metrics: metrics.Handler(reg, logger), auth: cfg.riverUIAuth(), logger: logger,
	}
	if adm.auth.configured() {
		// River UI's background services stop when RunWorker returns, for
		// whatever reason, not only when ctx ends.
		uiCtx, stopUI := context.WithCancel(ctx)
		defer stopUI()
		if adm.riverUI, err = newRiverUI(uiCtx, rc, riverLogger); err != nil {
			return fmt.Errorf("river ui: %w", err)
		}
	}
	admin := httpserver.New(cfg.Addr, newAdmin(adm), httpserver.Timeouts{Idle: cfg.AdminIdleTimeout})
	adminErr := make(chan error, 1)
	logger.Info("admin server listening", "addr", ln.Addr().String())
	go func() { adminErr <- admin.Serve(ln) }()
	defer admin.Close()

	// Start with a context that outlives ctx: River treats a cancelled start
	// context as a hard stop, and the shutdown below wants a soft one first.
	if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	logger.Info("worker started", "queue", hooklinetype.Queue, "concurrency", cfg.Concurrency, "admin_addr", cfg.Addr, "river_ui", adm.riverUI != nil,
		"catchup_interval", cfg.CatchupInterval)

	select {
	case <-ctx.Done():
	case err := <-adminErr:
		stopRiver(context.WithoutCancel(ctx), logger, rc, cfg)
		return fmt.Errorf("admin server on %s: %w", cfg.Addr, err)
	}
	return stopRiver(context.WithoutCancel(ctx), logger, rc, cfg)
}

// checkTransactions refuses a WORKER_TRANSACTIONS that would leave River
// and the process fewer than dispatch.RiverConns of the pool's size
// connections: River would then wait for connections that handlers hold.
// 0, the pool less dispatch.RiverConns, is always accepted.
func checkTransactions(transactions, size int) error {
	if most := size - dispatch.RiverConns; transactions > 0 && transactions > most {
		return fmt.Errorf("WORKER_TRANSACTIONS=%d leaves River too few of the pool's %d connections: keep it at most %d, or grow DATABASE_MAX_CONNS",
			transactions, size, most)
	}
	return nil
}

// LoadWorkerConfig reads a worker's configuration from the environment
// through getenv (os.Getenv, usually), where any variable X may instead be
// given as X_FILE, the path of a file holding its value, and validates it.
func LoadWorkerConfig(getenv func(string) string) (WorkerConfig, error) {
	var cfg WorkerConfig
	if err := config.Load(getenv, &cfg); err != nil {
		return cfg, err
	}
	cfg.Getenv = getenv
	return cfg, cfg.Validate()
}

// Validate reports the first setting that is out of range or inconsistent
// with another, naming its variable.
func (c WorkerConfig) Validate() error {
	if c.Concurrency < 1 || c.Concurrency > 10_000 {
		return fmt.Errorf("WORKER_CONCURRENCY=%d out of range [1, 10000]", c.Concurrency)
	}
	if c.GroupMaxSize < 1 || c.GroupMaxSize > 10_000 {
		return fmt.Errorf("WORKER_GROUP_MAX_SIZE=%d out of range [1, 10000]", c.GroupMaxSize)
	}
	if c.GroupMaxWait <= 0 {
		return fmt.Errorf("WORKER_GROUP_MAX_WAIT=%s must be positive", c.GroupMaxWait)
	}
	if c.Transactions < 0 {
		return fmt.Errorf("WORKER_TRANSACTIONS=%d must not be negative", c.Transactions)
	}
	if c.AdminIdleTimeout <= 0 {
		return fmt.Errorf("WORKER_ADMIN_IDLE_TIMEOUT=%s must be positive", c.AdminIdleTimeout)
	}
	if c.JobTimeout <= 0 {
		return fmt.Errorf("WORKER_JOB_TIMEOUT=%s must be positive", c.JobTimeout)
	}
	// A job still running when the rescuer deems it stuck would be started a
	// second time while the first attempt may yet commit.
	if c.RescueAfter <= c.JobTimeout {
		return fmt.Errorf("WORKER_RESCUE_AFTER=%s must be longer than WORKER_JOB_TIMEOUT=%s", c.RescueAfter, c.JobTimeout)
	}
	// A job waiting at the throttle gate is already "running" to River.
	if c.ThrottleMaxWait <= 0 || c.RescueAfter <= c.JobTimeout+c.ThrottleMaxWait {
		return fmt.Errorf("WORKER_RESCUE_AFTER=%s must be longer than WORKER_JOB_TIMEOUT=%s plus WORKER_THROTTLE_MAX_WAIT=%s (which must be positive)",
			c.RescueAfter, c.JobTimeout, c.ThrottleMaxWait)
	}
	if c.CatchupInterval < 0 {
		return fmt.Errorf("WORKER_CATCHUP_INTERVAL=%s must not be negative", c.CatchupInterval)
	}
	if c.CatchupInterval > 0 {
		switch {
		case c.StripeAPIKey == "":
			return errors.New("WORKER_CATCHUP_INTERVAL is set but STRIPE_API_KEY (or STRIPE_API_KEY_FILE) is not")
		case c.CatchupLookback < c.CatchupInterval || c.CatchupLookback > 720*time.Hour:
			// A look-back shorter than the interval would leave gaps
			// between runs; Stripe lists no further back than 30 days.
			return fmt.Errorf("WORKER_CATCHUP_LOOKBACK=%s must be between WORKER_CATCHUP_INTERVAL=%s and 720h", c.CatchupLookback, c.CatchupInterval)
		case c.RescueAfter <= 2*time.Minute:
			return fmt.Errorf("WORKER_RESCUE_AFTER=%s must be over 2m with catch-up on: a run may take up to a minute less", c.RescueAfter)
		}
	}
	// A username without a password would let anyone in who guessed it.
	if (c.RiverUIUsername == "") != (c.RiverUIPassword == "") {
		return errors.New("RIVERUI_USERNAME and RIVERUI_PASSWORD must be set together")
	}
	return nil
}

// riverUIAuth returns River UI's credentials; none leaves River UI off.
func (c WorkerConfig) riverUIAuth() uiAuth {
	return uiAuth{username: c.RiverUIUsername, password: c.RiverUIPassword, token: c.RiverUIToken}
}

// stopRiver stops fetching and waits for jobs in flight, up to the soft
// timeout; then it cancels the jobs still running, which River returns to
// the queue as available, and waits a little longer for them to unwind.
func stopRiver(ctx context.Context, logger *slog.Logger, rc *river.Client[pgx.Tx], cfg WorkerConfig) error {
	logger.Info("shutting down: finishing jobs in flight", "timeout", cfg.SoftStopTimeout)
	softCtx, cancel := context.WithTimeout(ctx, cfg.SoftStopTimeout)
	defer cancel()
	err := rc.Stop(softCtx)
	if err == nil {
		logger.Info("worker stopped")
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop river client: %w", err)
	}
	logger.Warn("soft stop timed out; cancelling jobs in flight", "timeout", cfg.HardStopTimeout)
	hardCtx, cancel := context.WithTimeout(ctx, cfg.HardStopTimeout)
	defer cancel()
	if err := rc.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("hard stop river client: %w", err)
	}
	logger.Info("worker stopped after cancelling jobs")
	return nil
}
