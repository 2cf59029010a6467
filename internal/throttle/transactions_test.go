package throttle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/throttle"
)

// handlerTx marks the transactions a slow handler holds open, so that
// pg_stat_activity can count them: SET LOCAL lasts until the transaction
// ends, group or single alike.
func handlerTx(ctx context.Context, tx pgx.Tx, _ hooklinetype.Event) error {
	_, err := tx.Exec(ctx, `SET LOCAL application_name = 'hookline-handler-tx'; SELECT pg_sleep(0.05)`)
	return err
}

// peakOpenTransactions samples pg_stat_activity for d and returns the most
// handler transactions seen open at once.
func peakOpenTransactions(t *testing.T, db *pgtest.DB, d time.Duration) int {
	t.Helper()
	peak := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		var n int
		require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'hookline-handler-tx' AND xact_start IS NOT NULL`).Scan(&n))
		peak = max(peak, n)
	}
	return peak
}

// TestThrottleTwoHoldsAtMostTwoHandlerTransactions: `hookctl throttle 2`
// caps the handlers running at once, and so the transactions, at 2,
// whether handlers run alone or in groups. A run without the limit shows
// that the sampling can see more.
func TestThrottleTwoHoldsAtMostTwoHandlerTransactions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		grouped bool
		limit   int
		check   func(t *testing.T, peak int)
	}{
		{"no limit, one transaction per event", false, -1, func(t *testing.T, peak int) {
			require.Greater(t, peak, 2, "without the limit more than 2 handler transactions are open")
		}},
		{"throttle 2, one transaction per event", false, 2, func(t *testing.T, peak int) {
			require.LessOrEqual(t, peak, 2)
			require.Positive(t, peak, "the handlers ran while sampled")
		}},
		{"throttle 2, grouped", true, 2, func(t *testing.T, peak int) {
			require.LessOrEqual(t, peak, 2)
			require.Positive(t, peak, "the handlers ran while sampled")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			ctx := context.Background()
			mux := hooklinetype.NewMux()
			mux.RegisterWith("bank", "slow", hooklinetype.HandlerFunc(handlerTx), hooklinetype.HandlerOpts{Group: tt.grouped})
			rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
			require.NoError(t, err)
			in := ingest.NewSingle(db.Pool, rc)
			for i := range 400 {
				_, err := in.Ingest(ctx, inbox.NewEvent{Source: "bank", EventID: fmt.Sprint("e", i), Type: "slow", Payload: []byte(`{}`)})
				require.NoError(t, err)
			}
			if tt.limit > 0 {
				require.NoError(t, throttle.SetGlobalLimit(ctx, db.Pool, tt.limit, "test"))
			}
			startWorker(t, db, mux, 8)
			if tt.limit > 0 {
				// The controller applies the limit within a poll of starting;
				// jobs admitted before that finish within one handler's sleep.
				require.Eventually(t, func() bool {
					procs, err := throttle.LiveProcesses(ctx, db.Pool, 5*time.Second)
					require.NoError(t, err)
					return len(procs) == 1 && procs[0].EffectiveLimit == tt.limit
				}, 10*time.Second, 10*time.Millisecond, "the worker takes its share of the limit")
				time.Sleep(200 * time.Millisecond)
			}
			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM inbox_events WHERE processed_at IS NOT NULL`).Scan(&n))
				return n > 0
			}, 10*time.Second, 10*time.Millisecond, "the worker starts applying events")
			tt.check(t, peakOpenTransactions(t, db, 2*time.Second))
		})
	}
}
