package throttle_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/throttle"
)

// TestControllerListensAgainAfterItsListenConnectionDies kills only the
// LISTEN session: the controller must notice, back off, and LISTEN on a new
// connection, rather than wait on the dead one in a loop that never sleeps.
func TestControllerListensAgainAfterItsListenConnectionDies(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	pool, err := dbpool.New(ctx, db.URL, 4, 0, "")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	logs := &logtest.Buffer{}
	ctl := throttle.NewController(pool, throttle.NewGate(hooklinetype.Queue, 8, time.Second), 8, slog.New(slog.NewJSONHandler(logs, nil)))
	ctl.Interval = 100 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = ctl.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	listener := func() (pid int) {
		err := db.Pool.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN '||$1`, throttle.Channel).Scan(&pid)
		require.NoError(t, err)
		return pid
	}
	var first int
	require.Eventually(t, func() bool { first = listener(); return first != 0 }, 10*time.Second, 10*time.Millisecond)
	_, err = db.Pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, first)
	require.NoError(t, err)

	require.Eventually(t, func() bool { p := listener(); return p != 0 && p != first }, 10*time.Second, 10*time.Millisecond,
		"the controller LISTENs again on a new connection:\n%s", logs.String())
	require.Contains(t, logs.String(), "throttle controller lost its connection; retrying")
}
