-- +goose Up
-- One row per event that catch-up (hookctl catchup, or the worker's
-- periodic catch-up) stored after listing it from the provider's API
-- rather than receiving a signed delivery. It is written in the same
-- transaction as the inbox row and the event's job: an event recovered
-- from an API always has its row, and an event with no row here came
-- through the receiver. Like replay_audit it has no foreign key to
-- inbox_events, so that the record outlives the row that prune deletes.
CREATE TABLE recovery_audit (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox_id     bigint      NOT NULL,
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    -- The river_job id of the job that processes the recovered event.
    job_id       bigint      NOT NULL,
    -- Where the event came from instead of a delivery, such as stripe_api.
    origin       text        NOT NULL CHECK (origin <> ''),
    recovered_by text        NOT NULL CHECK (recovered_by <> ''),
    recovered_at timestamptz NOT NULL DEFAULT now(),
    reason       text        NOT NULL DEFAULT ''
);

-- hookctl events get shows an event's origin by its key, as for replays.
CREATE INDEX recovery_audit_source_event_id_idx ON recovery_audit (source, event_id);

-- +goose Down
DROP TABLE recovery_audit;
