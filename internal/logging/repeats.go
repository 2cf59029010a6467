package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxTracked bounds the messages LimitRepeats remembers; past it, it
// forgets them all, which at worst lets one more line of each through.
const maxTracked = 1000

// LimitRepeats returns a handler that passes records to h, except that a
// warning or an error whose message was passed less than every ago is
// dropped and counted; the next one passed carries "repeated", the records
// since the last one passed, itself included. Info and debug records pass
// untouched. Errors and strings among the attributes are written with
// their repeated lines dropped (DropRepeatedLines).
//
// It is for a library's logger, such as River's, which logs every failed
// poll: while the database is down River logs about four errors a second,
// the same few messages over and over.
func LimitRepeats(h slog.Handler, every time.Duration) slog.Handler {
	return &repeatsHandler{h: h, every: every, state: &repeatsState{seen: map[string]*repeat{}, now: time.Now}}
}

type repeatsHandler struct {
	h     slog.Handler
	every time.Duration
	state *repeatsState // shared by the handlers WithAttrs and WithGroup derive
}

type repeatsState struct {
	mu   sync.Mutex
	seen map[string]*repeat
	now  func() time.Time
}

type repeat struct {
	last    time.Time
	dropped int
}

// Enabled implements slog.Handler.
func (r *repeatsHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return r.h.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (r *repeatsHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelWarn {
		return r.h.Handle(ctx, rec)
	}
	s := r.state
	s.mu.Lock()
	now := s.now()
	e := s.seen[rec.Message]
	if e == nil {
		if len(s.seen) >= maxTracked {
			clear(s.seen)
		}
		e = &repeat{}
		s.seen[rec.Message] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < r.every {
		e.dropped++
		s.mu.Unlock()
		return nil
	}
	dropped := e.dropped
	e.last, e.dropped = now, 0
	s.mu.Unlock()

	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindAny:
			if err, ok := a.Value.Any().(error); ok {
				a = slog.Any(a.Key, DropRepeatedLines(err))
			}
		case slog.KindString: // River logs errors as err.Error()
			if s, ok := dropRepeatedLines(a.Value.String()); ok {
				a = slog.String(a.Key, s)
			}
		}
		out.AddAttrs(a)
		return true
	})
	if dropped > 0 {
		out.AddAttrs(slog.Int("repeated", dropped+1))
	}
	return r.h.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (r *repeatsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &repeatsHandler{h: r.h.WithAttrs(attrs), every: r.every, state: r.state}
}

// WithGroup implements slog.Handler.
func (r *repeatsHandler) WithGroup(name string) slog.Handler {
	return &repeatsHandler{h: r.h.WithGroup(name), every: r.every, state: r.state}
}
