-- +goose NO TRANSACTION
-- +goose Up
-- What ordered handlers order by (hooklinetype.HandlerOpts.Ordered), and
-- what they leave behind:
--   * event_time: the provider's time for the event (Stripe's created,
--     Slack's event_time, ...; docs/SOURCES.md), or the received time for
--     a source that has none. NULL on rows stored before this migration,
--     which read as their received_at.
--   * object_key: the key of the object the event is about, such as a
--     Stripe subscription's id; NULL when the source locates none.
--   * superseded_by: set when an ordered handler's event was completed as
--     stale, without running its handler: the event id of the newer event
--     of the same object that had already been applied.
--
-- The inbox is written on every request, so this migration takes no long
-- lock. Nullable columns with no default change only the catalog, under a
-- brief ACCESS EXCLUSIVE lock that gives up after 5s rather than queue
-- every receiver insert behind a long transaction (rerun `hookctl migrate`
-- when it is quieter); no existing row is rewritten. The index is built
-- CONCURRENTLY, which cannot run in a transaction, hence NO TRANSACTION.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE inbox_events
    ADD COLUMN IF NOT EXISTS event_time timestamptz,
    ADD COLUMN IF NOT EXISTS object_key text,
    ADD COLUMN IF NOT EXISTS superseded_by text;
COMMIT;

-- The high-water mark of each object that an ordered handler has applied:
-- the newest event, by (event_time, event_id), whose handler ran. It is
-- written in the handler's own transaction, so it is exactly as durable as
-- the effect. One row per (source, object) ever ordered; it is not pruned
-- with the inbox, since an event older than a forgotten mark would apply.
CREATE TABLE IF NOT EXISTS object_watermarks (
    source     text        NOT NULL,
    object_key text        NOT NULL,
    event_time timestamptz NOT NULL,
    event_id   text        NOT NULL,
    inbox_id   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, object_key)
);

-- hookctl events list --object finds an object's events with it. It holds
-- only rows that have an object key: sources without one pay nothing on
-- insert. object_key is never updated, so the worker's update of a row
-- (processed_at) stays HOT.
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_object_idx;
CREATE INDEX CONCURRENTLY inbox_events_object_idx
    ON inbox_events (source, object_key) WHERE object_key IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_object_idx;
DROP TABLE IF EXISTS object_watermarks;
ALTER TABLE inbox_events
    DROP COLUMN IF EXISTS superseded_by,
    DROP COLUMN IF EXISTS object_key,
    DROP COLUMN IF EXISTS event_time;
