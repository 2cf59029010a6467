package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDurationsAreLoggedAsStrings(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger, err := New(&buf, format, slog.LevelInfo)
			require.NoError(t, err)
			logger.Info("stop",
				"timeout", 20*time.Second,
				slog.Duration("latency", 1500*time.Microsecond),
				slog.Any("wait", 2*time.Minute),
				slog.Group("batch", slog.Duration("max_wait", 2*time.Millisecond)),
				"count", 3)
			line := buf.String()
			if format == "text" {
				for _, want := range []string{"timeout=20s", "latency=1.5ms", "wait=2m0s", "batch.max_wait=2ms", "count=3"} {
					require.Contains(t, line, want)
				}
				return
			}
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &got), line)
			require.Equal(t, "20s", got["timeout"], line)
			require.Equal(t, "1.5ms", got["latency"], line)
			require.Equal(t, "2m0s", got["wait"], line)
			require.Equal(t, map[string]any{"max_wait": "2ms"}, got["batch"], line)
			require.Equal(t, 3.0, got["count"], "other numbers stay numbers")
		})
	}
}

// clock is a fake time for Failures and LimitRepeats.
type clock struct{ t time.Time }

// jsonLogger returns a JSON logger writing to buf, and a fake clock for
// what it is given to, set to 2026-12-01 12:00 UTC.
func jsonLogger(t *testing.T) (logger *slog.Logger, buf *bytes.Buffer, c *clock) {
	t.Helper()
	buf = &bytes.Buffer{}
	logger, err := New(buf, "json", slog.LevelInfo)
	require.NoError(t, err)
	return logger, buf, &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func lines(buf *bytes.Buffer) []string   { return strings.Split(strings.TrimSpace(buf.String()), "\n") }
func decode(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &m), line)
	return m
}

func TestFailuresLogTheFirstThenOncePerIntervalWithACountThenTheRecovery(t *testing.T) {
	t.Parallel()
	logger, buf, c := jsonLogger(t)
	f := NewFailures(logger, "could not refresh shed limits", time.Minute)
	f.now = c.now
	down := errors.New("connection refused")

	// A poll every second while the database is down for 150 s.
	for range 150 {
		f.Fail(down)
		c.advance(time.Second)
	}
	f.OK()
	f.OK()

	got := lines(buf)
	require.Len(t, got, 4, "the first failure, one line a minute (at 60 s and 120 s), the recovery:\n%s", buf.String())
	first := decode(t, got[0])
	require.Equal(t, "could not refresh shed limits", first["msg"])
	require.Equal(t, "WARN", first["level"])
	require.Equal(t, "connection refused", first["error"])
	require.NotContains(t, first, "repeated")

	for i, want := range []struct {
		repeated float64
		for_     string
	}{{60, "1m0s"}, {60, "2m0s"}} {
		m := decode(t, got[1+i])
		require.Equal(t, "could not refresh shed limits", m["msg"])
		require.Equal(t, want.repeated, m["repeated"], "failures since the line before: %s", got[1+i])
		require.Equal(t, want.for_, m["failing_for"])
	}

	rec := decode(t, got[3])
	require.Equal(t, "recovered", rec["msg"])
	require.Equal(t, "INFO", rec["level"])
	require.Equal(t, "could not refresh shed limits", rec["from"])
	require.Equal(t, 150.0, rec["failures"])
	require.Equal(t, "2m30s", rec["failing_for"])

	// A new outage, a while later, is logged at once again.
	buf.Reset()
	c.advance(time.Minute)
	f.Fail(down)
	require.Len(t, lines(buf), 1)
	require.NotContains(t, decode(t, lines(buf)[0]), "repeated")
}

func TestFailuresOfAFlappingOperationAreLoggedOncePerInterval(t *testing.T) {
	t.Parallel()
	logger, buf, c := jsonLogger(t)
	f := NewFailures(logger, "could not store event", time.Minute)
	f.now = c.now

	// Every other request fails, 10 a second, for 90 s.
	for i := range 900 {
		if i%2 == 0 {
			f.Fail(errors.New("timeout"))
		} else {
			f.OK()
		}
		c.advance(100 * time.Millisecond)
	}
	got := lines(buf)
	require.Len(t, got, 4, "the first failure and its recovery, then the same a minute later:\n%s", buf.String())
	require.Equal(t, "could not store event", decode(t, got[0])["msg"])
	require.Equal(t, "recovered", decode(t, got[1])["msg"])
	require.Equal(t, 300.0, decode(t, got[2])["repeated"], "every failure is counted, across the runs between lines")
	require.Equal(t, "recovered", decode(t, got[3])["msg"])
}

func TestDropRepeatedLinesPrintsPgxsTwoIdenticalAttemptsOnce(t *testing.T) {
	t.Parallel()
	refused := "127.0.0.1:5999 (127.0.0.1): dial error: dial tcp 127.0.0.1:5999: connect: connection refused"
	inner := errors.New("failed to connect to `user=postgres database=x`:\n\t" + refused + "\n\t" + refused)
	err := DropRepeatedLines(fmt.Errorf("check the database's migrations: %w", inner))
	require.Equal(t, "check the database's migrations: failed to connect to `user=postgres database=x`: "+refused, err.Error())
	require.ErrorIs(t, err, inner, "the chain is kept")

	other := "127.0.0.1:5999 (127.0.0.1): server error: FATAL: password authentication failed"
	two := errors.New("failed to connect:\n\t" + refused + "\n\t" + other)
	require.Same(t, two, DropRepeatedLines(two), "different attempts are all kept")
	one := errors.New("relation \"river_queue\" does not exist")
	require.Same(t, one, DropRepeatedLines(one))
	require.NoError(t, DropRepeatedLines(nil))
}

func TestLimitRepeatsPassesAWarningOrErrorOncePerIntervalWithACount(t *testing.T) {
	t.Parallel()
	base, buf, c := jsonLogger(t)
	h := LimitRepeats(base.Handler(), time.Minute)
	h.(*repeatsHandler).state.now = c.now
	logger := slog.New(h).With("component", "river")

	refused := "127.0.0.1:5432 (127.0.0.1): dial error: connect: connection refused"
	down := errors.New("failed to connect to `user=postgres database=x`:\n\t" + refused + "\n\t" + refused)
	// River's producers while the database is down: two errors a second
	// for 90 s, and an info line now and then.
	for i := range 180 {
		logger.Error("producer: Error fetching jobs", "err", down.Error())
		if i%60 == 0 {
			logger.Info("producer: Producer job counts")
		}
		c.advance(500 * time.Millisecond)
	}
	logger.Warn("leadership.Elector: Error attempting reelection", "err", down)
	require.Contains(t, lines(buf)[len(lines(buf))-1], `"err":"failed to connect to `+"`user=postgres database=x`: "+refused+`"`, "an error value too")

	got := lines(buf)
	var fetch []map[string]any
	infos := 0
	for _, l := range got {
		m := decode(t, l)
		require.Equal(t, "river", m["component"], "attributes of With are kept")
		switch m["msg"] {
		case "producer: Error fetching jobs":
			fetch = append(fetch, m)
		case "producer: Producer job counts":
			infos++
		}
	}
	require.Len(t, fetch, 2, "at 0 s and 60 s:\n%s", buf.String())
	require.NotContains(t, fetch[0], "repeated")
	require.Equal(t, 120.0, fetch[1]["repeated"])
	require.Equal(t, "failed to connect to `user=postgres database=x`: "+refused, fetch[0]["err"], "pgx's two identical attempts, once")
	require.Equal(t, 3, infos, "info records all pass")
	require.Equal(t, "leadership.Elector: Error attempting reelection", decode(t, got[len(got)-1])["msg"], "another message passes at once")
}
