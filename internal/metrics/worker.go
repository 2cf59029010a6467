package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// The outcomes of one job attempt, as recorded by Worker.
const (
	OutcomeCompleted = "completed"
	// OutcomeFailed is an error that River will retry.
	OutcomeFailed = "failed"
	// OutcomeDiscarded is an error on the last attempt: a dead letter.
	OutcomeDiscarded = "discarded"
	OutcomeCancelled = "cancelled"
	OutcomeSnoozed   = "snoozed"
	// OutcomeInterrupted is a job whose context the client cancelled as it
	// stopped: River makes it available again without using an attempt, so
	// counting it as failed would fake errors on every deploy.
	OutcomeInterrupted = "interrupted"
)

var outcomes = []string{OutcomeCompleted, OutcomeFailed, OutcomeDiscarded, OutcomeCancelled, OutcomeSnoozed, OutcomeInterrupted}

// Worker holds the worker's job metrics, and is the River worker middleware
// that records them: install it through river.Config.Middleware.
//
// It counts in middleware rather than from client.Subscribe events because
// a subscription drops events when read slowly, and counters must not.
type Worker struct {
	river.MiddlewareDefaults
	jobs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	concurrency prometheus.Gauge
}

// NewWorker registers the job metrics with reg. The series of kinds start
// at zero, so that rates over them exist before the first job of each
// outcome.
func NewWorker(reg prometheus.Registerer, kinds ...string) *Worker {
	w := &Worker{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_worker_jobs_total",
			Help: "Job attempts worked by this process, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_worker_job_duration_seconds",
			Help: "Time spent working one job attempt, including its transaction, by kind.",
			// Up to WORKER_JOB_TIMEOUT's default of one minute.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
		concurrency: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_worker_concurrency_limit",
			Help: "Jobs this process may work at once.",
		}),
	}
	reg.MustRegister(w.jobs, w.duration, w.concurrency)
	for _, kind := range kinds {
		for _, o := range outcomes {
			w.jobs.WithLabelValues(kind, o)
		}
		w.duration.WithLabelValues(kind)
	}
	return w
}

// SetConcurrencyLimit reports the number of jobs this process may work at
// once, whenever it changes.
func (w *Worker) SetConcurrencyLimit(n int) { w.concurrency.Set(float64(n)) }

// Work implements rivertype.WorkerMiddleware.
func (w *Worker) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	returned := false
	defer func() {
		// A panic passes through to River, which records it as an error;
		// count it as one without swallowing it.
		if !returned {
			w.record(job.Kind, errorOutcome(job), time.Since(start))
		}
	}()
	err := doInner(ctx)
	returned = true
	w.record(job.Kind, outcome(ctx, job, err), time.Since(start))
	return err
}

func (w *Worker) record(kind, outcome string, d time.Duration) {
	w.jobs.WithLabelValues(kind, outcome).Inc()
	w.duration.WithLabelValues(kind).Observe(d.Seconds())
}

// outcome mirrors how River's job executor turns a Work error into the
// job's next state.
func outcome(ctx context.Context, job *rivertype.JobRow, err error) string {
	var (
		snooze *rivertype.JobSnoozeError
		cancel *rivertype.JobCancelError
	)
	switch {
	case err == nil:
		return OutcomeCompleted
	case errors.As(err, &snooze):
		return OutcomeSnoozed
	case errors.As(err, &cancel), errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely):
		return OutcomeCancelled
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		// The job timeout is applied inside doInner, so the context seen
		// here ends only when the client stops.
		return OutcomeInterrupted
	}
	return errorOutcome(job)
}

func errorOutcome(job *rivertype.JobRow) string {
	if job.Attempt >= job.MaxAttempts {
		return OutcomeDiscarded
	}
	return OutcomeFailed
}
