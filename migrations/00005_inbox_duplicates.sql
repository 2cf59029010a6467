-- +goose Up
-- Duplicate deliveries, counted for hookctl status. A duplicate writes
-- nothing to the inbox, so it is counted here instead: one append-only row
-- per transaction that saw duplicates (per batch in batch mode). Appending,
-- rather than incrementing a counter row, keeps concurrent batches from
-- queueing on one row lock. The worker's retention deletes old rows.
CREATE TABLE inbox_duplicates (
    at     timestamptz NOT NULL DEFAULT now(),
    source text        NOT NULL,
    count  integer     NOT NULL CHECK (count > 0)
);

CREATE INDEX inbox_duplicates_at_idx ON inbox_duplicates USING brin (at);

-- +goose Down
DROP TABLE inbox_duplicates;
