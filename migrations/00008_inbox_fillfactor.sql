-- +goose Up
-- Leave half of each new inbox page free. Every row is updated once, when
-- its event is applied (processed_at, processed_by_job); with room on its
-- page the update is HOT: it writes no new entry in any of the inbox's
-- indexes, and the old version is pruned in place. Pages filled to the
-- brim (the default, 100) made every update a new tuple elsewhere plus an
-- entry in each index: hookbench's worker drained about 16% faster with
-- this (docs/BENCHMARKS.md).
--
-- It changes only the catalog, under a lock that does not block inserts
-- or updates, and applies to pages written from now on.
ALTER TABLE inbox_events SET (fillfactor = 50);

-- +goose Down
ALTER TABLE inbox_events RESET (fillfactor);
