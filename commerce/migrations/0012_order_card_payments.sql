-- A buyer paying a pending order with a saved card: one row per (order, idempotency key), so a retry with the
-- same key answers the first outcome instead of confirming the PaymentIntent again; at most one confirming at once.
CREATE TABLE order_card_payments (
    order_id bigint NOT NULL REFERENCES orders (id),
    idempotency_key text NOT NULL,
    payment_method_id bigint NOT NULL REFERENCES payment_methods (id),
    -- `abandoned`: confirming with no answer recorded for `order_card_answer_wait_s` (its node died mid-call)
    state text NOT NULL CHECK (state IN ('confirming', 'succeeded', 'declined', 'requires_action', 'abandoned')),
    reason text,
    created_ms bigint NOT NULL,
    PRIMARY KEY (order_id, idempotency_key)
);
CREATE UNIQUE INDEX order_card_payments_one_confirming ON order_card_payments (order_id)
    WHERE state = 'confirming';
