-- +goose Up
-- Used by the example business logic (internal/balances). Its effects are
-- additions, not idempotent by nature, so an event applied twice shows at once.
CREATE TABLE account_balances (
    account       text   PRIMARY KEY,
    balance_cents bigint NOT NULL
);

-- +goose Down
DROP TABLE account_balances;
