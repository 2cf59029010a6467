package logging

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Buffered gathers log lines and writes them to the underlying writer in
// chunks: when its buffer fills, every interval, when a line at Warn or
// above is logged through FlushAbove, and on Close. It is safe for
// concurrent use.
//
// The receiver logs a line per request. Written one by one, each is a
// write system call (and, through a pipe to a log collector, a wake-up of
// the reader): a few percent of the receiver's CPU at thousands of
// requests a second. Buffered, as nginx's access_log buffer= does, a
// chunk carries hundreds of lines; the price is that the last interval's
// lines are lost if the process is killed.
type Buffered struct {
	mu   sync.Mutex
	dst  io.Writer
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBuffered returns a Buffered writing to w through a buffer of size
// bytes, flushed every interval. Close it to stop its flusher and write
// what is left.
func NewBuffered(w io.Writer, size int, every time.Duration) *Buffered {
	b := &Buffered{dst: w, w: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(every)
	return b
}

func (b *Buffered) flushEvery(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p. A line is never split between two chunks unless it is
// larger than the buffer: if p does not fit in what is left, the buffer is
// written out first.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	n, err := b.w.Write(p)
	if err != nil {
		b.w.Reset(b.dst)
	}
	return n, err
}

// Flush writes out what is buffered.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// flushLocked writes out the buffer. A failed write (a full disk, a
// closed pipe) loses what was buffered, as unbuffered writes would lose
// their lines, and the buffer starts afresh: bufio's error would otherwise
// stick, and every later line be lost too.
func (b *Buffered) flushLocked() error {
	err := b.w.Flush()
	if err != nil {
		b.w.Reset(b.dst)
	}
	return err
}

// Close stops the periodic flush and writes out what is buffered. Later
// lines are still buffered, and written by a Flush or a warning.
func (b *Buffered) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	return b.Flush()
}

// FlushAbove returns a handler that passes records to h and, after any at
// level or above, flushes b: warnings and errors are written at once, so
// that an operator watching the logs sees a failure when it happens.
func FlushAbove(h slog.Handler, b *Buffered, level slog.Level) slog.Handler {
	return &flushHandler{Handler: h, b: b, level: level}
}

type flushHandler struct {
	slog.Handler
	b     *Buffered
	level slog.Level
}

func (h *flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.level {
		_ = h.b.Flush()
	}
	return err
}

func (h *flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithAttrs(attrs), b: h.b, level: h.level}
}

func (h *flushHandler) WithGroup(name string) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithGroup(name), b: h.b, level: h.level}
}
