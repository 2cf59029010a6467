package riverdb

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// JobCounts is what CountJobs reads of a queue.
type JobCounts struct {
	// ByState counts the jobs in each of the states asked for; a state
	// with no job is absent.
	ByState map[rivertype.JobState]int64
	// OldestAvailableSeconds is how long the oldest available job has been
	// ready to run (now - scheduled_at, by the database's clock, so that no
	// process's clock skew counts), or nil when no job is available or
	// available was not asked for. It is never negative: a job snoozed for
	// less than River's scheduler interval is available with a scheduled_at
	// just ahead, and is not yet waiting.
	OldestAvailableSeconds *float64
}

// CountJobs counts the jobs of queue in each of states, in one index-only
// pass over river_job_prioritized_fetching_index, (state, queue, priority,
// scheduled_at, id), which covers every column it reads. It reads every
// job it counts: the live states are cheap, but completed jobs can number
// millions until River's cleaner removes them.
func CountJobs(ctx context.Context, q Querier, queue string, states []rivertype.JobState) (JobCounts, error) {
	rows, err := q.Query(ctx, `
		SELECT state::text, count(*), extract(epoch FROM now() - min(scheduled_at))::float8
		FROM river_job
		WHERE state = ANY($1) AND queue = $2
		GROUP BY state`, Names(states), queue)
	if err != nil {
		return JobCounts{}, fmt.Errorf("count jobs by state: %w", err)
	}
	c := JobCounts{ByState: make(map[rivertype.JobState]int64, len(states))}
	var (
		state rivertype.JobState
		n     int64
		age   float64
	)
	_, err = pgx.ForEachRow(rows, []any{&state, &n, &age}, func() error {
		c.ByState[state] = n
		if state == rivertype.JobStateAvailable {
			// A copy: age is scanned over by the next row.
			oldest := max(age, 0)
			c.OldestAvailableSeconds = &oldest
		}
		return nil
	})
	if err != nil {
		return JobCounts{}, fmt.Errorf("count jobs by state: %w", err)
	}
	return c, nil
}

// CompletedRecently counts the jobs of queue completed in the last minute
// and in the last five, from River's (state, finalized_at) index.
func CompletedRecently(ctx context.Context, q Querier, queue string) (lastMinute, last5Minutes int64, err error) {
	rows, err := q.Query(ctx, `
		SELECT count(*) FILTER (WHERE finalized_at > now() - interval '1 minute'), count(*)
		FROM river_job
		WHERE state = 'completed' AND finalized_at > now() - interval '5 minutes' AND queue = $1`, queue)
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&lastMinute, &last5Minutes}, func() error { return nil })
	}
	if err != nil {
		return 0, 0, fmt.Errorf("count jobs completed in the last 5 minutes: %w", err)
	}
	return lastMinute, last5Minutes, nil
}

// WorkerActivity is one River client (identified by River's client id,
// by default "<hostname>_<start time>") that worked the queue recently:
// it is running jobs now, or finalized some in the last five minutes.
type WorkerActivity struct {
	ClientID string `json:"client_id"`
	// Running is the jobs it holds now.
	Running int64 `json:"running"`
	// CompletedLast5m and FailedLast5m are the jobs it completed, and those
	// it cancelled or discarded (DeadStates), in the last five minutes.
	CompletedLast5m int64     `json:"completed_last_5m"`
	FailedLast5m    int64     `json:"failed_last_5m"`
	LastActivityAt  time.Time `json:"last_activity_at"`
}

// RecentWorkers lists the River clients that hold running jobs of queue,
// or finalized some in the last five minutes, from river_job.attempted_by.
// Running jobs come from River's fetching index on (state, queue, ...) and
// finalized ones from its (state, finalized_at) index, so this reads only
// recent work. A retryable job's failure is not counted: its row keeps no
// finalization time.
func RecentWorkers(ctx context.Context, q Querier, queue string) ([]WorkerActivity, error) {
	rows, err := q.Query(ctx, `
		SELECT attempted_by[array_length(attempted_by, 1)] AS client_id,
		       count(*) FILTER (WHERE state = 'running'),
		       count(*) FILTER (WHERE state = 'completed'),
		       count(*) FILTER (WHERE state = ANY($2)),
		       max(coalesce(finalized_at, attempted_at))
		FROM river_job
		WHERE queue = $1 AND attempted_by IS NOT NULL
		  AND (state = 'running'
		       OR (state = ANY($3) AND finalized_at > now() - interval '5 minutes'))
		GROUP BY 1
		ORDER BY 1`, queue, Names(DeadStates()), Names(FinalStates()))
	if err != nil {
		return nil, fmt.Errorf("list workers active in the last 5 minutes: %w", err)
	}
	workers, err := pgx.CollectRows(rows, pgx.RowToStructByPos[WorkerActivity])
	if err != nil {
		return nil, fmt.Errorf("list workers active in the last 5 minutes: %w", err)
	}
	return workers, nil
}

// Job is a River job of an inbox row, as hookctl shows it.
type Job struct {
	ID          int64      `json:"id"`
	State       string     `json:"state"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	Replay      bool       `json:"replay"`
	CreatedAt   time.Time  `json:"created_at"`
	FinalizedAt *time.Time `json:"finalized_at"`
	// LastError is the error of the job's latest failed attempt.
	LastError string `json:"last_error"`
}

// JobColumns are the columns of a Job, in its fields' order, over a job
// aliased j. Under InboxWithLatestJob, an event without jobs has them all
// NULL but the last two: replay is false and last_error empty.
const JobColumns = `j.id, j.state::text, j.attempt, j.max_attempts, coalesce((j.args->>'replay')::boolean, false),
	j.created_at, j.finalized_at, coalesce(j.errors[array_length(j.errors, 1)]->>'error', '')`

// JobIDSequence is the sequence behind river_job.id. The inbox reserves
// each new event's job id from it (inbox.Insert), in the statement that
// stores the row, so that no job id is ever reserved twice, and River then
// inserts the job with that id (ingest.JobIDs).
const JobIDSequence = "river_job_id_seq"

// JobsOf lists the jobs of kind that belong to the inbox row inboxID,
// newest first, by searching args through River's GIN index. It is the
// fallback for rows stored before the inbox recorded its job (job_id NULL);
// JobsByID is the lookup for the others.
//
// The containment is a constant, {"inbox_id": N}, not built in SQL: the
// planner cannot fold jsonb_build_object($2) (it is only stable), and for
// the unknown value it guessed a selectivity that made it read all of
// river_job instead of the index.
func JobsOf(ctx context.Context, q Querier, kind string, inboxID int64) ([]Job, error) {
	rows, err := q.Query(ctx, `
		SELECT `+JobColumns+`
		FROM river_job j
		WHERE j.kind = $1 AND j.args @> $2::jsonb
		ORDER BY j.id DESC`, kind, fmt.Sprintf(`{"inbox_id": %d}`, inboxID))
	if err != nil {
		return nil, fmt.Errorf("list jobs of inbox row %d: %w", inboxID, err)
	}
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Job])
	if err != nil {
		return nil, fmt.Errorf("list jobs of inbox row %d: %w", inboxID, err)
	}
	return jobs, nil
}

// JobsByID returns the jobs of kind among ids that are still in river_job,
// newest first, by primary key.
func JobsByID(ctx context.Context, q Querier, kind string, ids []int64) ([]Job, error) {
	rows, err := q.Query(ctx, `
		SELECT `+JobColumns+`
		FROM river_job j
		WHERE j.id = ANY($2) AND j.kind = $1
		ORDER BY j.id DESC`, kind, ids)
	if err != nil {
		return nil, fmt.Errorf("list jobs %v: %w", ids, err)
	}
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Job])
	if err != nil {
		return nil, fmt.Errorf("list jobs %v: %w", ids, err)
	}
	return jobs, nil
}

// HasLiveJob returns an SQL condition, on an inbox row e, that is true
// while the event has a job of kind that will still run: one in
// LiveStates. kindParam and statesParam are the placeholders the caller
// binds to the kind and to Names(LiveStates()).
func HasLiveJob(kindParam, statesParam string) string {
	return `EXISTS (
		SELECT 1 FROM river_job lj
		WHERE lj.kind = ` + kindParam + `
		  AND lj.args @> jsonb_build_object('inbox_id', e.id)
		  AND lj.state = ANY(` + statesParam + `))`
}

// JobsInStatesWithInbox returns a FROM item: the jobs of kind in queue
// whose state is one of states, as j, each joined to its inbox row e,
// newest inbox row first. Filter it with IsLatestJob.
//
// The jobs are found through River's (state, queue, ...) index, so
// listing the dead letters reads only the jobs in those states, not the
// inbox. Their inbox ids (in args) are sorted before anything else is
// read, behind OFFSET 0, so that a page of 50 joins the inbox, and checks
// for later replays, about 50 times rather than once per job in the
// states; reading the jobs' rows for their args remains, one per job.
// belowParam, if not empty, is the placeholder of an inbox id that the
// rows must be below (keyset pagination). kindParam, queueParam and
// statesParam are the placeholders the caller binds to the kind, the
// queue and Names(states).
func JobsInStatesWithInbox(kindParam, queueParam, statesParam, belowParam string) string {
	below := ""
	if belowParam != "" {
		below = ` AND (args->>'inbox_id')::bigint < ` + belowParam
	}
	return `(SELECT id, (args->>'inbox_id')::bigint AS inbox_id FROM river_job
			WHERE kind = ` + kindParam + ` AND queue = ` + queueParam + ` AND state = ANY(` + statesParam + `)` + below + `
			ORDER BY inbox_id DESC, id DESC OFFSET 0) c
		JOIN inbox_events e ON e.id = c.inbox_id
		JOIN river_job j ON j.id = c.id`
}

// IsLatestJob is an SQL condition, on a job j of an inbox row e, that
// keeps j if it is the latest job of e still in river_job. A job is
// superseded only by a later replay of its event, so the condition looks
// for one in replay_audit and checks, by primary key, that its job is
// left.
const IsLatestJob = `NOT EXISTS (SELECT 1 FROM replay_audit r JOIN river_job later ON later.id = r.job_id
		WHERE r.source = e.source AND r.event_id = e.event_id AND r.inbox_id = e.id AND r.job_id > j.id)`

// JobIDsOf is an SQL array, over an inbox row e, of the ids of every job
// enqueued for it: the receiver's (e.job_id, NULL for rows stored before
// the inbox recorded it) and each replay's, from replay_audit.
const JobIDsOf = `(ARRAY(SELECT r.job_id FROM replay_audit r
		WHERE r.source = e.source AND r.event_id = e.event_id AND r.inbox_id = e.id) || e.job_id)`

// InboxWithLatestJob returns a FROM item: each inbox row e with its latest
// job of kind still in river_job as j, or with j's columns NULL when none
// is left. kindParam is the placeholder the caller binds to the kind.
//
// The jobs are read by primary key from JobIDsOf, so each row costs a probe
// of replay_audit's (source, event_id) index and one of river_job_pkey
// per job, whatever the size of river_job. A row stored before the inbox
// recorded its job (job_id NULL) and with no replay job left finds no job
// here; the caller looks it up with JobsOf.
func InboxWithLatestJob(kindParam string) string {
	return `inbox_events e
		LEFT JOIN LATERAL (
			SELECT id, state, attempt, max_attempts, args, created_at, finalized_at, errors
			FROM river_job
			WHERE id = ANY(` + JobIDsOf + `) AND kind = ` + kindParam + `
			ORDER BY id DESC LIMIT 1) j ON true`
}
