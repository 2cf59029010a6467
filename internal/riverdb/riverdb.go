// Package riverdb holds Hookline's SQL against River's own tables
// (river_job, river_queue, river_leader), which River's Go API does not
// cover: the counts and listings behind hookctl's status, drain and
// events, the worker's queue metrics, the river_queue row that pause
// creates and locks, and the joins from an inbox row to its jobs. It also
// groups River's job states (LiveStates, DeadStates, FinalStates) and names
// the River indexes that these queries and River's hot paths rely on.
//
// River's schema belongs to River and may change with any release. Every
// query on it is here, checked against the River version RiverVersion
// names, so that an upgrade has one place to re-check: TestRiverVersion
// fails when go.mod requires another version of River, and the other
// tests check the states, columns and indexes used against a migrated
// database.
//
// The queries take an inbox row as inbox_events aliased e, and a job as
// river_job aliased j. A job finds its inbox row through args.inbox_id
// (hooklinetype.JobArgs) and the inbox's primary key; an inbox row finds
// its jobs by river_job's primary key, from its job_id and replay_audit
// (JobIDsOf), or, for rows stored before it had a job_id, through River's
// GIN index on args.
package riverdb

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// RiverVersion is the version of River (github.com/riverqueue/river and
// its driver and rivertype modules) whose schema the queries here were
// checked against.
const RiverVersion = "v0.51.2"

// Querier runs a query: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Indexes are River's indexes that the queries here and River's hot paths
// use: fetching (river_job_prioritized_fetching_index, also the backlog's
// counts), completion and cleaning (river_job_state_and_finalized_at_index,
// also the recent completions), uniqueness, and the GIN index on args that
// finds an inbox row's jobs. hookctl doctor requires them.
var Indexes = []string{
	"river_job_pkey", "river_job_kind", "river_job_state_and_finalized_at_index",
	"river_job_prioritized_fetching_index", "river_job_args_index", "river_job_metadata_index",
	"river_job_unique_idx", "river_queue_pkey", "river_leader_pkey",
}
