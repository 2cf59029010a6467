-- +goose Up
-- The inbox: one row per (source, event id) ever accepted. Its primary key is
-- the idempotency guard; the raw body is kept byte-exact so that it can be
-- re-verified, replayed or audited.
CREATE TABLE inbox_events (
    -- Surrogate key, referenced by River job args so that they stay tiny.
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL DEFAULT '',
    -- Stripe's api_version; NULL for senders that have none.
    api_version  text,
    payload      bytea       NOT NULL,
    -- The request headers that matter for audit and re-verification.
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- Set, in the same transaction as the business effect, when a handler
    -- has applied the event.
    processed_at timestamptz,
    CONSTRAINT inbox_events_pkey PRIMARY KEY (source, event_id),
    CONSTRAINT inbox_events_id_key UNIQUE (id),
    CONSTRAINT inbox_events_source_check CHECK (source ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    CONSTRAINT inbox_events_event_id_check CHECK (octet_length(event_id) BETWEEN 1 AND 255)
);

CREATE INDEX inbox_events_received_at_idx ON inbox_events USING brin (received_at);

-- +goose Down
DROP TABLE inbox_events;
