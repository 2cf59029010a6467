package logging

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is how often Failures repeats a failure that goes on, and
// how often the worker's LimitRepeats passes one of River's repeated
// messages.
const DefaultEvery = time.Minute

// Failures logs a failure that recurs, such as a poll of a database that
// is down, without flooding the log: at most one line per Every, the first
// at once, and later ones with the number of failures since the line
// before; then one line when the operation succeeds again. A poll every
// second would otherwise write 3,600 identical lines an hour, and push the
// line that says why out of sight. A flapping operation (fails, succeeds,
// fails) also writes at most one failure line per Every.
//
// A Failures is safe for concurrent use, and OK costs an atomic load while
// nothing fails, so that a request path may call it every time.
type Failures struct {
	logger *slog.Logger
	msg    string
	every  time.Duration
	now    func() time.Time

	// failing is read without mu by OK.
	failing atomic.Bool

	mu        sync.Mutex
	lastLine  time.Time // of the last failure line; zero before the first
	unlogged  int       // failures since that line, of any run
	since     time.Time // the first failure of the current run
	total     int       // failures in the current run
	runLogged bool      // a line was written for the current run
}

// NewFailures returns a Failures that logs msg, as a warning, with the
// error, at most once per every (DefaultEvery when every is 0).
func NewFailures(logger *slog.Logger, msg string, every time.Duration) *Failures {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Failures{logger: logger, msg: msg, every: every, now: time.Now}
}

// Fail records a failure, and logs it, with attrs, unless a failure line
// was written less than Every ago. A line after the first carries
// "repeated", the failures since the line before, this one included, and
// "failing_for". Repeated lines of err's message are dropped
// (DropRepeatedLines).
func (f *Failures) Fail(err error, attrs ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if !f.failing.Load() {
		f.failing.Store(true)
		f.since, f.total, f.runLogged = now, 0, false
	}
	f.unlogged++
	f.total++
	if !f.lastLine.IsZero() && now.Sub(f.lastLine) < f.every {
		return
	}
	line := []any{"error", DropRepeatedLines(err)}
	if f.unlogged > 1 {
		line = append(line, "repeated", f.unlogged, "failing_for", now.Sub(f.since).Round(time.Second))
	}
	f.logger.Warn(f.msg, append(line, attrs...)...)
	f.lastLine, f.unlogged, f.runLogged = now, 0, true
}

// OK records a success. After failures that were logged, it logs that the
// operation has recovered, with how many failures there were and for how
// long.
func (f *Failures) OK() {
	if !f.failing.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing.Load() {
		return
	}
	f.failing.Store(false)
	if f.runLogged {
		f.unlogged = 0 // counted in this line's failures
		f.logger.Info("recovered", "from", f.msg, "failures", f.total, "failing_for", f.now().Sub(f.since).Round(time.Second))
	}
}
