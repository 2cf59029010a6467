package shed_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/shed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestLimiterFollowsTheSettingsLive(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	l := shed.NewLimiter()
	admitted := func(source string, n int) int {
		ok := 0
		for range n {
			if l.Allow(source) {
				ok++
			}
		}
		return ok
	}

	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 100, admitted("stripe", 100), "no limit set: everything passes")

	require.NoError(t, shed.Set(ctx, db.Pool, "stripe", 5, "test"))
	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 5, admitted("stripe", 100), "a burst of one second's worth, then shed")
	require.Equal(t, 100, admitted("bank", 100), "other sources are not limited")

	require.NoError(t, shed.Set(ctx, db.Pool, "stripe", -1, "test"))
	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 100, admitted("stripe", 100), "lifting the limit admits everything again")
}

func TestRunLogsAnUnreachableDatabaseOnceNotEveryRefresh(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: every refresh fails at once.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l := shed.NewLimiter()
	q := &countingQuerier{q: pool}
	go func() { defer close(done); l.Run(ctx, q, 5*time.Millisecond, logger) }()
	require.Eventually(t, func() bool { return q.n.Load() >= 20 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, "%d refreshes failed, but only the first is logged within the minute:\n%s", q.n.Load(), logs.String())
	require.Contains(t, lines[0], `"msg":"could not refresh shed limits"`)
	require.Contains(t, lines[0], "connect")
}

// countingQuerier counts the queries made through it.
type countingQuerier struct {
	q shed.Querier
	n atomic.Int64
}

func (c *countingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n.Add(1)
	return c.q.Query(ctx, sql, args...)
}
