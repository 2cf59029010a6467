package flood_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
)

const (
	stormDeliveries = 500
	stormReceivers  = 3
)

// TestDuplicateStormStoresOneRowOneJobOneEffect is the duplicate storm of
// docs/RELIABILITY.md: 500 deliveries of one event, released together and
// spread over three receiver processes that share the database, must all be
// acknowledged, and leave one inbox row, one process_event job and one
// effect. The 499 others are duplicates: counted in inbox_duplicates and
// logged as such, with exactly one "accepted" among the three receivers'
// request logs. It runs for a bank event (HMAC: every delivery carries the
// same signature) and a Stripe event (each delivery signed when it is sent).
func TestDuplicateStormStoresOneRowOneJobOneEffect(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"bank", "stripe"} {
		t.Run(source, func(t *testing.T) {
			storm(t, source)
		})
	}
}

func storm(t *testing.T, source string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	var receivers []*clustertest.Proc
	var urls []string
	for range stormReceivers {
		r := c.StartReceiver(t)
		receivers = append(receivers, r)
		urls = append(urls, r.URL)
	}
	c.StartWorker(t)

	gen := ledgertest.NewGenerator("storm_" + source)
	ev := gen.Next(ledgertest.Valid)
	for ev.Source != source {
		ev = gen.Next(ledgertest.Valid)
	}
	l := ledgertest.New()
	s := ledgertest.NewSender(l, urls...)

	// Every goroutine waits at the barrier; closing it releases them all
	// at once. The sender spreads their first attempts over the receivers
	// in turn, and each retries, if it must, until it gets a 2xx.
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var acked atomic.Int64
	for range stormDeliveries {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			if s.Deliver(ctx, ev) {
				acked.Add(1)
			}
		}()
	}
	ready.Wait()
	released := time.Now()
	close(start)
	done.Wait()
	answered := time.Since(released)
	require.EqualValues(t, stormDeliveries, acked.Load(), "every delivery of the storm is acknowledged")

	require.Equal(t, map[string]int{"completed": 1}, c.WaitDrained(t, time.Minute))

	rep, err := l.Check(ctx, c.DB.Pool)
	require.NoError(t, err)
	rep.Scenario = "duplicate_storm_" + source

	// The same, asked of the database directly rather than through the
	// ledger: one row, one job, one effect, and the rest counted as
	// duplicates, in as many transactions as saw one.
	var rows, jobs, dupTx, dups int
	var balance int64
	db := c.DB.Pool
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM inbox_events`).Scan(&rows))
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'process_event'`).Scan(&jobs))
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*), coalesce(sum(count), 0) FROM inbox_duplicates WHERE source = $1`, source).Scan(&dupTx, &dups))
	require.NoError(t, db.QueryRow(ctx, `SELECT coalesce(sum(balance_cents), 0) FROM account_balances`).Scan(&balance))

	// Which receiver accepted it, and how many duplicates each absorbed,
	// from their request logs.
	perReceiver := make([]map[string]int, len(receivers))
	accepted := 0
	for i, r := range receivers {
		perReceiver[i] = outcomes(r.Out.String())
		accepted += perReceiver[i]["accepted"]
	}

	rep.Extra = map[string]any{
		"deliveries":             stormDeliveries,
		"receivers":              stormReceivers,
		"all_answered_s":         round1(answered.Seconds()),
		"inbox_rows":             rows,
		"jobs":                   jobs,
		"duplicates_recorded":    dups,
		"duplicate_transactions": dupTx,
		"outcomes_per_receiver":  perReceiver,
	}
	rep.Require(t)
	rep.Save(t)

	require.Equal(t, 1, rep.Events)
	require.Equal(t, 1, rep.Acked)
	require.Equal(t, 1, rep.Stored)
	require.Equal(t, 1, rep.Effects)
	require.Equal(t, 1, rows, "inbox rows")
	require.Equal(t, 1, jobs, "process_event jobs")
	require.Equal(t, ev.Cents, balance, "the effect is applied once")
	require.Equal(t, 1, accepted, "receivers that logged the event as accepted")
	// Every 2xx but the one that inserted the row was a duplicate, counted
	// in the transaction that answered it. An attempt whose answer was lost
	// (none expected here) may have been counted without a 2xx.
	require.GreaterOrEqual(t, dups, rep.DuplicateAcks, "duplicates recorded")
	require.LessOrEqual(t, dups, rep.DuplicateAcks+rep.NoAnswer, "duplicates recorded")
	if rep.NoAnswer == 0 {
		require.Equal(t, stormDeliveries-1, dups, "duplicates recorded")
	}
	for i, o := range perReceiver {
		require.Positive(t, o["accepted"]+o["duplicate"], "receiver %d took part in the storm", i)
	}
}

// outcomes counts the outcome field of a receiver's request log lines.
func outcomes(log string) map[string]int {
	out := map[string]int{}
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `"msg":"request"`) {
			continue
		}
		if _, rest, ok := strings.Cut(line, `"outcome":"`); ok {
			if o, _, ok := strings.Cut(rest, `"`); ok {
				out[o]++
			}
		}
	}
	return out
}
