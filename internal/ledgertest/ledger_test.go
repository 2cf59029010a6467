package ledgertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// TestCheckCatchesEveryBrokenInvariant runs a small real pipeline, checks
// that the ledger finds nothing wrong, then breaks the database in each way
// the invariant forbids and checks that Check names it. A checker that
// cannot fail would prove nothing in the scenarios that rely on it.
func TestCheckCatchesEveryBrokenInvariant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	r := c.StartReceiver(t)
	c.StartWorker(t)

	l := ledgertest.New()
	s := ledgertest.NewSender(l, r.URL)
	gen := ledgertest.NewGenerator("chk")
	var valid []ledgertest.Event
	for range 6 {
		ev := gen.Next(ledgertest.Valid)
		require.True(t, s.Deliver(ctx, ev), "deliver %s", ev.Key())
		require.True(t, s.Deliver(ctx, ev), "redeliver %s", ev.Key())
		valid = append(valid, ev)
	}
	require.False(t, s.Deliver(ctx, gen.Next(ledgertest.Tampered)), "a tampered event is refused")
	require.False(t, s.Deliver(ctx, gen.Next(ledgertest.Stale)), "a stale event is refused")
	require.Equal(t, map[string]int{"completed": 6}, c.WaitDrained(t, 30*time.Second))

	rep, err := l.Check(ctx, c.DB.Pool)
	require.NoError(t, err)
	require.Empty(t, rep.Violations)
	require.Equal(t, 8, rep.Events)
	require.Equal(t, 6, rep.Acked)
	require.Equal(t, 6, rep.DuplicateAcks)
	require.Equal(t, 6, rep.Effects)
	require.Equal(t, 2, rep.Statuses[400])

	// Each breakage is applied inside a transaction that is rolled back
	// after Check has seen it, so they do not add up.
	tests := []struct {
		name string
		sql  string
		args []any
		want string
	}{
		{"effect applied twice", `UPDATE account_balances SET balance_cents = balance_cents * 2 WHERE account = $1`,
			[]any{valid[0].Account}, "effect applied 2.00 times"},
		{"effect never applied", `DELETE FROM account_balances WHERE account = $1`,
			[]any{valid[1].Account}, "effect was never applied"},
		{"acknowledged event lost", `DELETE FROM inbox_events WHERE event_id = $1`,
			[]any{valid[2].ID}, "but is not in the inbox: lost"},
		{"event stored that was never sent", `INSERT INTO inbox_events (source, event_id, payload) VALUES ('bank', 'phantom', '')`,
			nil, "inbox holds bank/phantom, which was never sent"},
		{"job run twice", `INSERT INTO river_job (kind, args, state, max_attempts, queue, finalized_at)
			SELECT kind, args, state, max_attempts, queue, finalized_at FROM river_job WHERE args->>'event_id' = $1`,
			[]any{valid[3].ID}, `has event jobs "completed,completed"`},
		{"job stuck", `UPDATE river_job SET state = 'running', finalized_at = NULL WHERE args->>'event_id' = $1`,
			[]any{valid[4].ID}, "event jobs are left running"},
		{"payload changed", `UPDATE inbox_events SET payload = '\x7b7d' WHERE event_id = $1`,
			[]any{valid[5].ID}, "payload that differs"},
		{"effect without an event", `INSERT INTO account_balances VALUES ('bank:nobody', 5)`,
			nil, "account bank:nobody has 5 from no event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := c.DB.Pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			_, err = tx.Exec(ctx, tt.sql, tt.args...)
			require.NoError(t, err)

			rep, err := l.Check(ctx, tx)
			require.NoError(t, err)
			require.NotEmpty(t, rep.Violations)
			require.True(t, strings.Contains(strings.Join(rep.Violations, "\n"), tt.want),
				"violations %q should mention %q", rep.Violations, tt.want)
		})
	}
}
