package riverdb_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/riverdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// recheck is what to do when a test here fails after an upgrade of River.
const recheck = "River's schema may have changed: re-check every query in internal/riverdb " +
	"(and the columns, states and indexes listed in its tests) against the new River's migrations " +
	"(`river migrate-get --version N --up` prints one) and its riverpgxv5 driver's queries, then set riverdb.RiverVersion"

// riverModule matches a River module required in go.mod, with its version.
var riverModule = regexp.MustCompile(`(?m)^\s*(?:require\s+)?(github\.com/riverqueue/river(?:/[^\s]+)?)\s+(v[^\s]+)`)

// The queries were checked against one version of River; when go.mod
// requires another, this fails and says where to look. (The test binary's
// debug.ReadBuildInfo lists no dependencies, so go.mod is read instead.)
func TestRiverVersion(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(goMod(t))
	require.NoError(t, err)
	found := riverModule.FindAllStringSubmatch(string(data), -1)
	require.NotEmpty(t, found, "no github.com/riverqueue/river module in go.mod")
	var sawRiver bool
	for _, m := range found {
		sawRiver = sawRiver || m[1] == "github.com/riverqueue/river"
		require.Equal(t, riverdb.RiverVersion, m[2],
			"go.mod requires %s %s, but internal/riverdb was checked against River %s. %s",
			m[1], m[2], riverdb.RiverVersion, recheck)
	}
	require.True(t, sawRiver, "go.mod does not require github.com/riverqueue/river itself")
}

// goMod returns the path of the module's go.mod, above the test's
// directory.
func goMod(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		path := filepath.Join(dir, "go.mod")
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test's directory")
		dir = parent
	}
}

// columns are the columns of River's tables that the queries in riverdb
// read or write.
var columns = map[string][]string{
	"river_job": {
		"id", "kind", "queue", "state", "args", "attempt", "max_attempts", "attempted_at",
		"attempted_by", "errors", "created_at", "scheduled_at", "finalized_at",
	},
	"river_queue":  {"name", "metadata", "paused_at", "created_at", "updated_at"},
	"river_leader": {"leader_id", "elected_at", "expires_at"},
}

// A migrated database has the states, columns and indexes the queries use.
func TestRiverSchemaHasWhatTheQueriesUse(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()

	rows, err := db.Pool.Query(ctx, `SELECT unnest(enum_range(NULL::river_job_state))::text`)
	require.NoError(t, err)
	labels, err := pgx.CollectRows(rows, pgx.RowTo[rivertype.JobState])
	require.NoError(t, err)
	require.ElementsMatch(t, rivertype.JobStates(), labels,
		"river_job_state's labels are not rivertype.JobStates(). %s", recheck)

	for table, want := range columns {
		rows, err := db.Pool.Query(ctx, `
			SELECT column_name::text FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1`, table)
		require.NoError(t, err)
		have, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Subset(t, have, want, "columns of %s. %s", table, recheck)
	}

	rows, err = db.Pool.Query(ctx, `SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()`)
	require.NoError(t, err)
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Subset(t, indexes, riverdb.Indexes, "River's indexes. %s", recheck)

	// CountJobs reads only this index, and the backlog's counts stay
	// cheap only while it leads with (state, queue) and covers
	// scheduled_at.
	rows, err = db.Pool.Query(ctx, `
		SELECT a.attname::text
		FROM pg_index i
		JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indexrelid = 'river_job_prioritized_fetching_index'::regclass
		ORDER BY k.n`)
	require.NoError(t, err)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"state", "queue", "priority", "scheduled_at", "id"}, keys,
		"river_job_prioritized_fetching_index. %s", recheck)

	// The inbox reserves job ids from the sequence that River's inserts
	// draw from, so that a reserved id is never another job's.
	var seq string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('river_job', 'id')::regclass::text`).Scan(&seq))
	require.Equal(t, riverdb.JobIDSequence, seq, "river_job.id's sequence. %s", recheck)
}

// Every query and SQL fragment runs on a migrated database, so a column
// or table River renames fails here, naming the query, rather than in
// hookctl or a scrape.
func TestQueriesRunOnRiversSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	const queue, kind = "q", "k"

	_, err := riverdb.CountJobs(ctx, db.Pool, queue, rivertype.JobStates())
	require.NoError(t, err, "CountJobs")
	_, _, err = riverdb.CompletedRecently(ctx, db.Pool, queue)
	require.NoError(t, err, "CompletedRecently")
	_, err = riverdb.RecentWorkers(ctx, db.Pool, queue)
	require.NoError(t, err, "RecentWorkers")
	_, err = riverdb.JobsOf(ctx, db.Pool, kind, 1)
	require.NoError(t, err, "JobsOf")
	_, err = riverdb.Queues(ctx, db.Pool)
	require.NoError(t, err, "Queues")
	_, err = riverdb.QueuePaused(ctx, db.Pool, queue)
	require.NoError(t, err, "QueuePaused")
	_, err = riverdb.CurrentLeader(ctx, db.Pool)
	require.NoError(t, err, "CurrentLeader")

	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, found, err := riverdb.LockQueue(ctx, tx, queue)
		require.NoError(t, err, "LockQueue")
		require.False(t, found)
		created, err := riverdb.CreateQueue(ctx, tx, queue)
		require.NoError(t, err, "CreateQueue")
		require.True(t, created)
		_, found, err = riverdb.LockQueue(ctx, tx, queue)
		require.NoError(t, err, "LockQueue")
		require.True(t, found)
		return nil
	})
	require.NoError(t, err)

	live := riverdb.Names(riverdb.LiveStates())
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"HasLiveJob", `SELECT e.id FROM inbox_events e WHERE ` + riverdb.HasLiveJob("$1", "$2"), []any{kind, live}},
		{"JobsInStatesWithInbox, IsLatestJob", `SELECT e.id, ` + riverdb.JobColumns + `
			FROM ` + riverdb.JobsInStatesWithInbox("$1", "$2", "$3", "$4") + ` WHERE ` + riverdb.IsLatestJob, []any{kind, queue, live, 10}},
		{"InboxWithLatestJob", `SELECT e.id, ` + riverdb.JobColumns + ` FROM ` + riverdb.InboxWithLatestJob("$1"), []any{kind}},
	} {
		rows, err := db.Pool.Query(ctx, q.sql, q.args...)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		require.NoError(t, err, q.name)
	}
}

func TestCountJobsCountsTheStatesAskedForAndTheOldestAvailableAge(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO river_job (kind, args, queue, max_attempts, state, scheduled_at, finalized_at) VALUES
			('k', '{}', 'q', 25, 'available', now() - interval '1 hour', NULL),
			('k', '{}', 'q', 25, 'available', now() - interval '1 minute', NULL),
			('k', '{}', 'q', 25, 'available', now() + interval '1 second', NULL),
			('k', '{}', 'q', 25, 'scheduled', now() + interval '1 hour', NULL),
			('k', '{}', 'q', 25, 'completed', now() - interval '2 hours', now()),
			('k', '{}', 'other', 25, 'available', now() - interval '1 day', NULL)`)
	require.NoError(t, err)

	live, err := riverdb.CountJobs(ctx, db.Pool, "q", riverdb.LiveStates())
	require.NoError(t, err)
	require.Equal(t, map[rivertype.JobState]int64{rivertype.JobStateAvailable: 3, rivertype.JobStateScheduled: 1}, live.ByState,
		"completed is not asked for, and the other queue's job is not counted")
	require.NotNil(t, live.OldestAvailableSeconds)
	require.InDelta(t, 3600, *live.OldestAvailableSeconds, 60, "the oldest available job of q, whatever the rows' order")

	all, err := riverdb.CountJobs(ctx, db.Pool, "q", rivertype.JobStates())
	require.NoError(t, err)
	require.Equal(t, int64(1), all.ByState[rivertype.JobStateCompleted])

	none, err := riverdb.CountJobs(ctx, db.Pool, "q", []rivertype.JobState{rivertype.JobStateScheduled})
	require.NoError(t, err)
	require.Nil(t, none.OldestAvailableSeconds, "available was not asked for")

	_, err = db.Pool.Exec(ctx, `DELETE FROM river_job WHERE scheduled_at < now()`)
	require.NoError(t, err)
	ahead, err := riverdb.CountJobs(ctx, db.Pool, "q", riverdb.LiveStates())
	require.NoError(t, err)
	require.NotNil(t, ahead.OldestAvailableSeconds)
	require.Zero(t, *ahead.OldestAvailableSeconds, "an available job scheduled just ahead has not waited")
}
