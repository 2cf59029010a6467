package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is the log's destination: the flusher and writers reach it
// from several goroutines.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	// split counts the writes that end inside a line: a reader of the
	// stream (a log collector) would see half a line.
	split int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	if !bytes.HasSuffix(p, []byte("\n")) {
		l.split++
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBufferedHoldsLinesUntilTheIntervalThenWritesThemInOneChunk(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	buf := NewBuffered(dst, 64<<10, 50*time.Millisecond)
	defer buf.Close()
	logger, err := New(buf, "json", slog.LevelInfo)
	require.NoError(t, err)

	for i := range 100 {
		logger.Info("request", "n", i)
	}
	require.Empty(t, dst.String(), "lines must wait for the interval")
	require.Eventually(t, func() bool { return strings.Count(dst.String(), "\n") == 100 }, 5*time.Second, 5*time.Millisecond)
	dst.mu.Lock()
	defer dst.mu.Unlock()
	require.Equal(t, 1, dst.writes, "100 lines, one write")
}

func TestBufferedWritesWarningsAtOnceThroughFlushAbove(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	buf := NewBuffered(dst, 64<<10, time.Hour)
	defer buf.Close()
	logger, err := New(buf, "json", slog.LevelInfo)
	require.NoError(t, err)
	logger = slog.New(FlushAbove(logger.Handler(), buf, slog.LevelWarn)).With("component", "receiver")

	logger.Info("request")
	require.Empty(t, dst.String(), "an info line waits")
	logger.Warn("could not store event")
	out := dst.String()
	require.Contains(t, out, `"msg":"request"`, "a warning writes out what came before it too")
	require.Contains(t, out, `"msg":"could not store event"`)
	require.Contains(t, out, `"component":"receiver"`, "With keeps the flushing handler")
}

func TestBufferedCloseWritesWhatIsLeft(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	buf := NewBuffered(dst, 64<<10, time.Hour)
	_, err := buf.Write([]byte("last line\n"))
	require.NoError(t, err)
	require.NoError(t, buf.Close())
	require.Equal(t, "last line\n", dst.String())
	require.NoError(t, buf.Close(), "a second Close is harmless")
}

// Lines from many goroutines, through a buffer that holds only a few,
// arrive whole: a chunk never ends inside a line, and a line larger than
// the buffer is written in one piece.
func TestBufferedNeverSplitsALine(t *testing.T) {
	t.Parallel()
	dst := &lockedBuffer{}
	buf := NewBuffered(dst, 256, time.Millisecond)
	logger, err := New(buf, "json", slog.LevelInfo)
	require.NoError(t, err)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				logger.Info("request", "g", g, "i", i, "pad", strings.Repeat("x", i%300))
			}
		})
	}
	wg.Wait()
	require.NoError(t, buf.Close())

	require.Zero(t, dst.split, "writes that end inside a line")
	lines := strings.Split(strings.TrimSuffix(dst.String(), "\n"), "\n")
	require.Len(t, lines, 8*200)
	for _, line := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), fmt.Sprintf("a split line: %.80q", line))
	}
}

// failingOnce fails its first write, as a full disk or a closed pipe
// would, and takes the rest.
type failingOnce struct {
	lockedBuffer
	failed bool
}

func (f *failingOnce) Write(p []byte) (int, error) {
	f.mu.Lock()
	if !f.failed {
		f.failed = true
		f.mu.Unlock()
		return 0, errors.New("no space left on device")
	}
	f.mu.Unlock()
	return f.lockedBuffer.Write(p)
}

// A failed write loses the lines it carried, and only those.
func TestBufferedKeepsLoggingAfterAFailedWrite(t *testing.T) {
	t.Parallel()
	dst := &failingOnce{}
	buf := NewBuffered(dst, 64<<10, time.Hour)
	defer buf.Close()
	_, err := buf.Write([]byte("lost\n"))
	require.NoError(t, err, "buffered, not yet written")
	require.Error(t, buf.Flush())
	_, err = buf.Write([]byte("kept\n"))
	require.NoError(t, err)
	require.NoError(t, buf.Flush())
	require.Equal(t, "kept\n", dst.String())
}
