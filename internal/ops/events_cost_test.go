package ops_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
)

// Listing a page of events and getting one event read river_job and the
// inbox through their indexes, a few pages per event shown: the same work
// at 10,000 events and jobs as at 50,000. Each query the client runs is
// taken from the pool's tracer and run again under EXPLAIN (ANALYZE,
// BUFFERS); its plan must not scan either table, and the pages it touches
// must not grow with them. The join through River's GIN index on args that
// this replaced scanned river_job once per listed event at these sizes.
// A list by River state (failed) reads each job in that state, and is
// only held to using indexes.
func TestEventsListAndGetCostTheSameWhateverTheSizeOfRiverJob(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	log := &queryLog{}
	client := tracedClient(t, db, log)
	ctx := context.Background()

	type operation struct {
		name string
		run  func() (int, error)
		// rows is how many events (or jobs, for a get) it must return.
		rows int
		// perJobInState is set for a list by a River state: it reads each
		// job in the state (a page of river_job each, for its args), so
		// it grows with them, here 1% of the jobs. It must still not scan.
		perJobInState bool
	}
	list := func(f ops.EventFilter) func() (int, error) {
		return func() (int, error) {
			evs, err := client.ListEvents(ctx, f)
			return len(evs), err
		}
	}
	get := func(eventID string) func() (int, error) {
		return func() (int, error) {
			ev, err := client.GetEvent(ctx, "stripe", eventID, false)
			return len(ev.Jobs), err
		}
	}
	operations := []operation{
		{"list the newest page", list(ops.EventFilter{Limit: 50}), 50, false},
		{"list a page deep in the inbox", list(ops.EventFilter{Limit: 50, Before: 8_000}), 50, false},
		{"list processed events", list(ops.EventFilter{Limit: 50, Status: ops.StatusProcessed}), 50, false},
		{"list failed events", list(ops.EventFilter{Limit: 50, Status: "failed"}), 50, true},
		{"get a dead letter that was replayed", get("evt_500"), 2, false},
		{"get a processed event", get("evt_777"), 1, false},
	}

	// pagesRead runs each operation and returns the buffer pages that its
	// queries touched, checking their plans on the way.
	pagesRead := func(size int) map[string]int64 {
		pages := make(map[string]int64)
		for _, op := range operations {
			log.selects() // forget earlier queries
			n, err := op.run()
			require.NoError(t, err, op.name)
			require.Equal(t, op.rows, n, "%s at %d events", op.name, size)
			queries := log.selects()
			require.NotEmpty(t, queries, op.name)
			for _, q := range queries {
				plan := explain(t, db.Pool, q)
				plan.walk(func(n planNode) {
					if n.NodeType == "Seq Scan" {
						require.NotContains(t, []string{"river_job", "inbox_events"}, n.RelationName,
							"%s at %d events scans %s:\n%s", op.name, size, n.RelationName, q.SQL)
					}
				})
				pages[op.name] += plan.SharedHitBlocks + plan.SharedReadBlocks
			}
		}
		return pages
	}

	seedEvents(t, db.Pool, 1, 10_000)
	small := pagesRead(10_000)
	seedEvents(t, db.Pool, 10_001, 50_000)
	large := pagesRead(50_000)
	for _, op := range operations {
		if op.perJobInState {
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			// A b-tree one level deeper costs a page more per lookup; five
			// times the jobs through the GIN index cost five times the pages.
			limit := small[op.name]*3/2 + 10
			t.Logf("pages read at 10,000 events: %d, at 50,000: %d", small[op.name], large[op.name])
			require.LessOrEqual(t, large[op.name], limit,
				fmt.Sprintf("pages read at 10,000 events: %d, at 50,000: %d", small[op.name], large[op.name]))
		})
	}
}
