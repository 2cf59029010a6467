package hookline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/stripemocktest"
)

func TestRunWorkerRecoversMissedStripeEventsWhenCatchupIsOn(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	f := stripemocktest.NewFake(t, 12)
	env := map[string]string{
		"DATABASE_URL": db.URL, "WORKER_ADDR": "127.0.0.1:0", "WORKER_PRUNE_INTERVAL": "0",
		"WORKER_CATCHUP_INTERVAL": "1h", "STRIPE_API_KEY": f.Key, "STRIPE_API_URL": f.Start(),
	}
	cfg, err := LoadWorkerConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	cfg.Logger = slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWorker(ctx, cfg, NewMux()) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	// The run at start stores the 12 events, and the worker applies them
	// (no handler is registered for charge.succeeded, so each completes).
	require.Eventually(t, func() bool {
		var stored, audited, processed int
		require.NoError(t, db.Pool.QueryRow(context.Background(), `
			SELECT (SELECT count(*) FROM inbox_events WHERE source = 'stripe'),
			       (SELECT count(*) FROM recovery_audit WHERE recovered_by LIKE 'hookline-worker@%'),
			       (SELECT count(*) FROM inbox_events WHERE processed_at IS NOT NULL)`).Scan(&stored, &audited, &processed))
		return stored == 12 && audited == 12 && processed == 12
	}, 30*time.Second, 50*time.Millisecond)
}
