-- +goose Up
-- Live settings that operators change at run time (hookctl throttle, shed)
-- and processes read without a restart. A change is announced with
-- NOTIFY hookline_settings in the same transaction; processes also poll.
CREATE TABLE hookline_settings (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL DEFAULT current_user
);

-- Worker processes announce themselves here every few seconds, so that a
-- global concurrency limit can be shared among the live ones and on-call
-- can see who is working.
CREATE TABLE worker_processes (
    id                text        PRIMARY KEY,
    host              text        NOT NULL,
    pid               integer     NOT NULL,
    configured_limit  integer     NOT NULL,
    effective_limit   integer     NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE worker_processes;
DROP TABLE hookline_settings;
