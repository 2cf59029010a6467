-- +goose Up
-- Operator tooling (hookctl replay, hookctl prune; SQL in internal/ops).

-- Adding a nullable column with no default only changes the catalog, but it
-- needs a brief ACCESS EXCLUSIVE lock on the inbox. Fail fast rather than
-- queue every receiver insert behind a long-running transaction; rerun
-- `hookctl migrate` when it is quiet.
SET LOCAL lock_timeout = '5s';

-- When hookctl prune emptied the row's payload and headers. The row itself,
-- and so its (source, event_id) idempotency key, stays until the key's own
-- retention ends. A pruned event can no longer be replayed.
ALTER TABLE inbox_events ADD COLUMN pruned_at timestamptz;

-- One row per event that an operator re-enqueued with hookctl replay,
-- written in the same transaction as the replay job. There is deliberately
-- no foreign key to inbox_events: the audit must outlive the inbox row,
-- which prune deletes once its key retention has passed.
CREATE TABLE replay_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox_id    bigint      NOT NULL,
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    -- The river_job id of the replay job (Args.Replay = true).
    job_id      bigint      NOT NULL,
    replayed_by text        NOT NULL CHECK (replayed_by <> ''),
    replayed_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL DEFAULT ''
);

-- hookctl events get lists an event's replays by its key, which (unlike the
-- inbox id) survives the row being deleted and the event delivered again.
CREATE INDEX replay_audit_source_event_id_idx ON replay_audit (source, event_id);

-- No index is added on river_job for the join from an inbox row to its
-- jobs. internal/ops finds them with
--     args @> jsonb_build_object('inbox_id', e.id)
-- which River's own GIN index river_job_args_index already serves. Measured
-- on PG 15 with 500,000 events and 500,000 jobs (EXPLAIN ANALYZE):
--   * get, event 1,001 of 500,000: Bitmap Index Scan on
--     river_job_args_index, 0.22 ms. (With ORDER BY id DESC LIMIT 1 in the
--     lateral subquery, the planner instead walked river_job_pkey backwards,
--     849 ms; internal/ops fences the subquery with OFFSET 0 for this.)
--   * list, newest 50: Index Only Scan Backward on inbox_events_id_key plus
--     50 bitmap scans of river_job_args_index, 4.5 ms.
--   * list --status failed: Index Scan on river_job_prioritized_fetching_index
--     (state, queue), then inbox_events_id_key per job, 263 ms cold for 500
--     discarded jobs: it grows with the jobs in that state, not the inbox.
--   * list --since 1h: Bitmap Index Scan on inbox_events_received_at_idx
--     (BRIN) and a top-N sort, under 2 ms.
-- An expression b-tree on river_job ((args->>'inbox_id')) WHERE kind =
-- 'process_event' would also answer the join, but every job insert and each
-- of its state changes (none of which are HOT, since state is indexed) would
-- pay for one more index: bulk inserts of 200,000 jobs took 13-23% longer
-- with it. Those writes are the receiver's and the worker's hot path, and
-- these reads are an operator's, so the existing GIN index is used instead.
-- Likewise no b-tree is added on inbox_events (received_at) (the README
-- explains the BRIN); lists are ordered by the id index, newest first.

-- +goose Down
DROP TABLE replay_audit;
ALTER TABLE inbox_events DROP COLUMN pruned_at;
