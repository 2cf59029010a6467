package logging

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often Failures repeats a failure that goes on.
const DefaultEvery = time.Minute

// Failures logs a failure that recurs, such as a poll of a database that
// is down, without flooding the log: the first failure at once, then at
// most one line per Every, which counts the failures since the line before,
// and one line when the operation succeeds again. A poll every second
// would otherwise write 3,600 identical lines an hour, and push the line
// that says why out of sight.
//
// A Failures is safe for concurrent use.
type Failures struct {
	logger *slog.Logger
	msg    string
	every  time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failing  bool
	since    time.Time // the first failure of the current run
	lastLine time.Time
	unlogged int // failures since the last line
	total    int // failures in the current run
}

// NewFailures returns a Failures that logs msg, as a warning, with the
// error, at most once per every (DefaultEvery when every is 0).
func NewFailures(logger *slog.Logger, msg string, every time.Duration) *Failures {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Failures{logger: logger, msg: msg, every: every, now: time.Now}
}

// Fail records a failure. It logs the first of a run, and later ones once
// Every has passed since the last line, with "repeated": the failures
// since then, this one included, and "failing_for".
func (f *Failures) Fail(err error, attrs ...any) {
	err = DropRepeatedLines(err)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.unlogged++
	f.total++
	if !f.failing {
		f.failing, f.since, f.lastLine, f.unlogged = true, now, now, 0
		f.logger.Warn(f.msg, append([]any{"error", err}, attrs...)...)
		return
	}
	if now.Sub(f.lastLine) < f.every {
		return
	}
	f.logger.Warn(f.msg, append([]any{"error", err, "repeated", f.unlogged, "failing_for", now.Sub(f.since).Round(time.Second)}, attrs...)...)
	f.lastLine, f.unlogged = now, 0
}

// OK records a success. After failures, it logs that the operation has
// recovered, with how many failures there were and for how long.
func (f *Failures) OK() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	f.logger.Info("recovered", "from", f.msg, "failures", f.total, "failing_for", f.now().Sub(f.since).Round(time.Second))
	f.failing, f.unlogged, f.total = false, 0, 0
}
