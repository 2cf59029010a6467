-- +goose Up
-- What each worker process's throttle gate holds, written with its
-- heartbeat (every second): the jobs past the gate, executing, and the jobs
-- River has fetched (so counts as running) that wait at the gate for a
-- slot. hookctl status, drain and the queue metrics split River's running
-- count with them, so that a throttle does not look like a stall.
--
-- Adding a column with a constant default changes only the catalog, under
-- a brief lock that gives up after 5s rather than wait behind a long
-- transaction (rerun `hookctl migrate`).
SET LOCAL lock_timeout = '5s';
ALTER TABLE worker_processes
    ADD COLUMN jobs_executing integer NOT NULL DEFAULT 0,
    ADD COLUMN jobs_waiting   integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE worker_processes DROP COLUMN jobs_waiting, DROP COLUMN jobs_executing;
