-- +goose Up
-- The example's one table. IF NOT EXISTS because databases migrated before
-- the example had a set of its own got this table from Hookline's chain
-- (its 00002, now empty).
CREATE TABLE IF NOT EXISTS account_balances (
    account       text   PRIMARY KEY,
    balance_cents bigint NOT NULL
);

-- +goose Down
DROP TABLE account_balances;
