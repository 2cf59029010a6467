-- +goose Up
-- The River job that last applied the event. The worker no longer
-- completes its job in the effect's transaction (river.JobCompleteTx cost a
-- non-batched river_job update per event); River's batch completer
-- completes it after the commit. A job run again after a crash between the
-- two finds processed_at set and applies nothing. A replay job applies an
-- event that was processed before, by design, so it is recognised by its
-- own id here: run again, it finds processed_by_job = its id and applies
-- nothing either.
--
-- A nullable column with no default changes only the catalog, under a
-- brief lock that gives up after 5s rather than queue the receivers'
-- inserts behind a long transaction (rerun `hookctl migrate`).
SET LOCAL lock_timeout = '5s';
ALTER TABLE inbox_events ADD COLUMN processed_by_job bigint;

-- +goose Down
ALTER TABLE inbox_events DROP COLUMN processed_by_job;
