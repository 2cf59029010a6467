-- +goose Up
-- Each Stripe subscription's status and plan, as its newest event left
-- them. The handler that writes it is ordered (HandlerOpts.Ordered), so an
-- older event delivered late never overwrites a newer state; event_id and
-- event_time say which event the row holds.
CREATE TABLE IF NOT EXISTS subscriptions (
    id         text        PRIMARY KEY,
    customer   text        NOT NULL,
    status     text        NOT NULL,
    plan       text        NOT NULL DEFAULT '',
    event_id   text        NOT NULL,
    event_time timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE subscriptions;
