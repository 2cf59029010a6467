-- +goose Up
CREATE TABLE paid_invoices (
    invoice_id   text        PRIMARY KEY,
    customer_id  text        NOT NULL,
    amount_paid  bigint      NOT NULL,
    currency     text        NOT NULL,
    -- The Stripe event that recorded the payment: where to look in
    -- hookctl events get stripe <event_id>.
    event_id     text        NOT NULL,
    paid_at      timestamptz NOT NULL
);

-- +goose Down
DROP TABLE paid_invoices;
