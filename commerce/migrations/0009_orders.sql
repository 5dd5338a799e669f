-- Orders of merch (bought at a fixed price, or won at auction), their fulfilment by the print-on-demand provider,
-- and the second-chance offers of a won lot whose winner did not pay.
--
-- The money of an order is in the ledger (one `order_paid` transaction; `order_margin_released` when it ships;
-- `order_reversal` for what is given back); these rows follow the payment and the fulfilment provider.

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    buyer_id bigint NOT NULL REFERENCES accounts (id),
    creator_id bigint NOT NULL REFERENCES accounts (id),  -- one shop per order: its margin goes to one creator
    idempotency_key text NOT NULL,
    source text NOT NULL CHECK (source IN ('checkout', 'auction')),
    auction_id bigint REFERENCES auctions (id),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN (
        'pending', 'paid', 'in_production', 'shipped', 'delivered', 'on_hold', 'failed', 'cancelled', 'returned')),
    failure text,                                       -- why it failed or was cancelled, in words
    shipping_address jsonb NOT NULL,
    currency text NOT NULL DEFAULT 'usd',
    items_cents bigint NOT NULL CHECK (items_cents > 0),
    shipping_cents bigint NOT NULL CHECK (shipping_cents >= 0),
    total_cents bigint NOT NULL,
    fee_cents bigint NOT NULL CHECK (fee_cents >= 0),   -- the platform's share
    cost_cents bigint NOT NULL CHECK (cost_cents > 0),  -- owed to the fulfilment provider: base costs + shipping
    margin_cents bigint NOT NULL CHECK (margin_cents >= 0),  -- the creators' share, held until it ships
    shipping_service text NOT NULL,
    payment_provider text NOT NULL,
    payment_ref text,
    client_secret text,
    paid_ms bigint,
    margin_released_ms bigint,
    released_cents bigint NOT NULL DEFAULT 0,           -- the margin that became the creator's earnings
    released_diamonds_per_cent int,                     -- at the published rate of that moment
    shortfall_diamonds bigint NOT NULL DEFAULT 0,       -- taken back from the creator but no longer there
    reversed_cents bigint NOT NULL DEFAULT 0,           -- given back to the buyer so far (running total)
    refund_sent_cents bigint NOT NULL DEFAULT 0,        -- of which the payment provider was asked to refund
    fulfilment_provider text NOT NULL,
    provider_order_id text,
    provider_seq int NOT NULL DEFAULT 0,                -- the provider's version of the order last applied
    tracking jsonb,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL,
    CONSTRAINT one_order_per_key UNIQUE (buyer_id, idempotency_key),
    CONSTRAINT total_is_items_and_shipping CHECK (total_cents = items_cents + shipping_cents),
    CONSTRAINT shares_make_the_total CHECK (fee_cents + cost_cents + margin_cents = total_cents),
    CONSTRAINT reversed_within_total CHECK (reversed_cents BETWEEN 0 AND total_cents),
    CONSTRAINT refund_within_reversed CHECK (refund_sent_cents BETWEEN 0 AND reversed_cents),
    CONSTRAINT paid_before_released CHECK (margin_released_ms IS NULL OR paid_ms IS NOT NULL)
);
CREATE UNIQUE INDEX orders_payment ON orders (payment_provider, payment_ref) WHERE payment_ref IS NOT NULL;
CREATE UNIQUE INDEX orders_provider_order ON orders (fulfilment_provider, provider_order_id)
    WHERE provider_order_id IS NOT NULL;
CREATE INDEX orders_buyer ON orders (buyer_id, id DESC);
CREATE INDEX orders_creator ON orders (creator_id, id DESC) WHERE paid_ms IS NOT NULL;
CREATE INDEX orders_to_submit ON orders (paid_ms) WHERE state = 'paid' AND provider_order_id IS NULL;
CREATE INDEX orders_refunds_due ON orders (id) WHERE refund_sent_cents < reversed_cents;

CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id),
    line int NOT NULL,
    product_id bigint NOT NULL,
    variant_id text NOT NULL,
    quantity int NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
    unit_base_cost_cents bigint NOT NULL CHECK (unit_base_cost_cents > 0),
    unit_fee_cents bigint NOT NULL CHECK (unit_fee_cents >= 0),
    PRIMARY KEY (order_id, line),
    FOREIGN KEY (product_id, variant_id) REFERENCES product_variants (product_id, variant_id),
    CONSTRAINT unit_margin_not_negative CHECK (unit_price_cents >= unit_base_cost_cents + unit_fee_cents)
);

-- Every state an order went through, with what moved it (payment, fulfilment, buyer, auction).
CREATE TABLE order_history (
    order_id bigint NOT NULL REFERENCES orders (id),
    n int NOT NULL,
    state text NOT NULL,
    source text NOT NULL,
    detail text,
    at_ms bigint NOT NULL,
    PRIMARY KEY (order_id, n)
);

-- Fulfilment webhooks already applied (by their webhook-id): a duplicate is answered 200 and changes nothing.
CREATE TABLE fulfilment_events (
    webhook_id text PRIMARY KEY,
    type text NOT NULL,
    order_id bigint,
    outcome text NOT NULL,
    received_ms bigint NOT NULL
);

-- A buyer's saved shipping address (checked like a checkout's); auction wins ship to it.
CREATE TABLE shipping_addresses (
    owner_id bigint PRIMARY KEY REFERENCES accounts (id),
    address jsonb NOT NULL,
    updated_ms bigint NOT NULL
);

-- Each attempt to get a won lot paid: the winner's off-session charge, then second-chance offers to the next
-- bidders at their own highest bid. One attempt is open at a time per auction.
CREATE TABLE auction_payment_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    auction_id bigint NOT NULL REFERENCES auction_wins (auction_id),
    n int NOT NULL CHECK (n > 0),
    bidder_id bigint NOT NULL REFERENCES accounts (id),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    kind text NOT NULL CHECK (kind IN ('win', 'second_chance')),
    state text NOT NULL CHECK (state IN (
        'offered', 'charging', 'requires_action', 'paid', 'declined', 'expired', 'refused')),
    order_id bigint REFERENCES orders (id),
    reason text,
    started_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    ended_ms bigint,
    CONSTRAINT one_attempt_per_number UNIQUE (auction_id, n),
    CONSTRAINT one_attempt_per_bidder UNIQUE (auction_id, bidder_id)
);
CREATE UNIQUE INDEX auction_payment_attempts_one_open ON auction_payment_attempts (auction_id)
    WHERE state IN ('offered', 'charging', 'requires_action');
CREATE INDEX auction_payment_attempts_due ON auction_payment_attempts (expires_ms)
    WHERE state IN ('offered', 'charging', 'requires_action');

ALTER TABLE auction_wins
    ADD CONSTRAINT auction_wins_state_check CHECK (state IN ('awaiting_payment', 'paid', 'unsold'));
