-- +goose Up
-- The River job enqueued when the event was received. The insert reserves
-- its id from River's sequence and the receiver inserts the job with it
-- (ingest.JobIDs), in the same transaction as the row. hookctl events
-- list and get join an event to its jobs by river_job's primary key: this
-- job, and the replay jobs that replay_audit records. Before, they searched
-- river_job.args for {"inbox_id": id} through River's GIN index, and the
-- planner often read all of river_job for each listed event instead (2.5 s
-- for a 50-row page at 23,000 jobs); docs/BENCHMARKS.md has the figures.
--
-- Rows stored before this migration, or by a receiver of an older version
-- during a rolling upgrade, keep a NULL job_id: internal/ops still finds
-- their jobs through args, one indexed lookup per such row on a page, and
-- only while none of their replay jobs is left. There is no backfill:
-- rewriting every inbox row would cost as much as the table, and River's
-- cleaner deletes these rows' jobs within days (completed after 24 hours,
-- discarded after 7 days, by default), after which there is nothing to
-- find.
--
-- No index: nothing looks an event up by its job. A nullable column with
-- no default changes only the catalog, under a brief lock that gives up
-- after 5s rather than queue the receivers' inserts behind a long
-- transaction (rerun `hookctl migrate`). An enqueuer without ingest.JobIDs
-- sets it right after the insert instead (inbox.SetJobs); that update
-- changes no indexed column, so with the room that fillfactor 50 leaves
-- (00008) it stays on the row's page (HOT).
SET LOCAL lock_timeout = '5s';
ALTER TABLE inbox_events ADD COLUMN job_id bigint;

-- +goose Down
ALTER TABLE inbox_events DROP COLUMN job_id;
