-- +goose Up
-- Empty on purpose. This version once created the example's
-- account_balances table, which now comes with the example's own migrations
-- (examples/balances/migrations), so that applications do not inherit it.
-- The version stays so that the chain's numbers, already recorded in
-- deployed databases, keep their meaning; those databases keep the table.
SELECT 1;

-- +goose Down
SELECT 1;
