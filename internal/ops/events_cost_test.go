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
// this replaced used no sequential scan at these sizes either, but read
// about 2 pages of the index per 1,000 jobs for every event listed.
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
		{"list the newest page", list(ops.EventFilter{Limit: 50}), 50},
		{"list a page deep in the inbox", list(ops.EventFilter{Limit: 50, Before: 2_000}), 50},
		{"list processed events", list(ops.EventFilter{Limit: 50, Status: ops.StatusProcessed}), 50},
		{"get a dead letter that was replayed", get("evt_500"), 2},
		{"get a processed event", get("evt_777"), 1},
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
