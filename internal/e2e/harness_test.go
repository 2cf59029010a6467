package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
)

const (
	stripeSecret = clustertest.StripeSecret
	bankSecret   = clustertest.BankSecret
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// pipeline is a receiver and a worker on a fresh database.
type pipeline struct {
	*clustertest.Cluster
	receiverURL string
	receiver    *clustertest.Proc
	worker      *clustertest.Proc
}

func newPipeline(t *testing.T, workerEnv ...string) *pipeline {
	t.Helper()
	c := clustertest.New(t)
	p := &pipeline{Cluster: c, receiver: c.StartReceiver(t)}
	p.receiverURL = p.receiver.URL
	p.worker = c.StartWorker(t, workerEnv...)
	return p
}

func (p *pipeline) balance(t *testing.T, account string) int64 {
	t.Helper()
	var cents int64
	err := p.DB.Pool.QueryRow(context.Background(),
		`SELECT coalesce((SELECT balance_cents FROM account_balances WHERE account = $1), 0)`, account).Scan(&cents)
	require.NoError(t, err)
	return cents
}

// waitBlockedOn waits until one session of the pipeline's database is
// waiting for a lock in a statement on table: the sign that a request or a
// job is provably in flight, held by a lock the test took.
func (p *pipeline) waitBlockedOn(t *testing.T, table string, within time.Duration, what string) {
	t.Helper()
	clustertest.WaitFor(t, within, what, func() bool {
		var waiting int
		require.NoError(t, p.DB.Pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, table).Scan(&waiting))
		return waiting == 1
	})
}
