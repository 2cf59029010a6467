-- +goose NO TRANSACTION
-- +goose Up
-- A second idempotency key, for sources whose signature does not cover the
-- event id (GitHub, Shopify, HMAC with the id in a header): a digest of
-- the body, or of the type and the body (receiver.ReplayGuard). Without it,
-- a captured delivery sent again under a new id would be a new event.
--
-- The inbox is written on every request, so this migration takes no long
-- lock. Adding a nullable column with no default changes only the catalog,
-- under a brief ACCESS EXCLUSIVE lock that gives up after 5s rather than
-- queue every receiver insert behind a long transaction (rerun
-- `hookctl migrate` when it is quieter). The index is built CONCURRENTLY,
-- which cannot run in a transaction, hence NO TRANSACTION above. Rows of
-- sources without a guard keep a NULL key, so the partial index neither
-- holds them nor costs their inserts anything.
-- Its own transaction, so that the lock timeout ends with it even when
-- the ALTER gives up.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE inbox_events ADD COLUMN IF NOT EXISTS replay_key bytea;
COMMIT;

-- An index left INVALID by an interrupted build would be skipped by IF NOT
-- EXISTS; this migration is recorded as applied only after the build, so
-- an index found here is one such leftover, and is rebuilt.
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_replay_key_idx;
CREATE UNIQUE INDEX CONCURRENTLY inbox_events_replay_key_idx
    ON inbox_events (source, replay_key) WHERE replay_key IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_replay_key_idx;
ALTER TABLE inbox_events DROP COLUMN IF EXISTS replay_key;
