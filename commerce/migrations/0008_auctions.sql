-- Saved ways to pay (for auction wins and, later, orders) and live auctions.

-- The payment provider's customer for each user, made once per provider.
CREATE TABLE payment_customers (
    owner_id bigint NOT NULL REFERENCES accounts (id),
    provider text NOT NULL,
    customer_ref text NOT NULL,
    PRIMARY KEY (owner_id, provider)
);

CREATE TABLE payment_methods (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL REFERENCES accounts (id),
    provider text NOT NULL,
    customer_ref text NOT NULL,
    method_ref text NOT NULL,
    brand text NOT NULL,
    last4 text NOT NULL,
    fingerprint text NOT NULL,
    created_ms bigint NOT NULL,
    CONSTRAINT one_row_per_provider_method UNIQUE (provider, method_ref),
    CONSTRAINT one_row_per_card UNIQUE (owner_id, provider, fingerprint)
);

-- An auction of one product variant in a live room. The terms never change once it opens; the state columns
-- change together, each time with `version` one higher, only by a statement that names the version it read
-- (commerce/auctions/bidding.py), so a decision made on a stale copy never commits.
CREATE TABLE auctions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id bigint NOT NULL REFERENCES streams (id),
    seller_id bigint NOT NULL REFERENCES accounts (id),
    product_id bigint NOT NULL,
    variant_id text NOT NULL,
    start_cents bigint NOT NULL CHECK (start_cents > 0),
    increments_name text NOT NULL,
    increments jsonb NOT NULL,
    sudden_death boolean NOT NULL,
    buy_now_cents bigint CHECK (buy_now_cents > start_cents),
    snipe_window_ms int NOT NULL CHECK (snipe_window_ms >= 0),
    extension_ms int NOT NULL CHECK (extension_ms >= 0),
    opened_ms bigint NOT NULL,
    duration_ms bigint NOT NULL CHECK (duration_ms > 0),
    idempotency_key text,
    state text NOT NULL CHECK (state IN ('open', 'closed')),
    price_cents bigint NOT NULL,
    leader_id bigint REFERENCES accounts (id),
    leader_max_cents bigint NOT NULL,
    ends_at_ms bigint NOT NULL,
    bids_count int NOT NULL,
    version int NOT NULL,
    winner_id bigint REFERENCES accounts (id),
    closed_ms bigint,
    closed_by text CHECK (closed_by IN ('time', 'buy_now')),
    FOREIGN KEY (product_id, variant_id) REFERENCES product_variants (product_id, variant_id),
    CONSTRAINT one_auction_per_key UNIQUE (stream_id, idempotency_key),
    CONSTRAINT price_within_leader_max CHECK (leader_id IS NULL OR price_cents <= leader_max_cents),
    CONSTRAINT seller_never_leads CHECK (leader_id IS DISTINCT FROM seller_id),
    CONSTRAINT closed_has_a_time CHECK ((state = 'closed') = (closed_ms IS NOT NULL))
);
CREATE UNIQUE INDEX auctions_one_open_per_stream ON auctions (stream_id) WHERE state = 'open';
CREATE INDEX auctions_due ON auctions (ends_at_ms) WHERE state = 'open';
CREATE INDEX auctions_stream ON auctions (stream_id, id DESC);

-- The bid history: one row per entry, numbered per auction. An idempotency key makes at most one entry.
CREATE TABLE auction_bids (
    auction_id bigint NOT NULL REFERENCES auctions (id),
    seq int NOT NULL CHECK (seq > 0),
    bidder_id bigint NOT NULL REFERENCES accounts (id),
    kind text NOT NULL CHECK (kind IN ('bid', 'raise', 'proxy', 'buy_now')),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    max_cents bigint,
    outcome text NOT NULL,
    placed_ms bigint NOT NULL,
    idempotency_key text,
    PRIMARY KEY (auction_id, seq)
);
CREATE UNIQUE INDEX auction_bids_one_per_key ON auction_bids (auction_id, bidder_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- What a close leaves for the payment step: the winner owes `amount_cents` for the variant. Written in the
-- same statement that closes the auction; the payment step moves `state` on.
CREATE TABLE auction_wins (
    auction_id bigint PRIMARY KEY REFERENCES auctions (id),
    winner_id bigint NOT NULL REFERENCES accounts (id),
    product_id bigint NOT NULL,
    variant_id text NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    won_ms bigint NOT NULL,
    how text NOT NULL CHECK (how IN ('time', 'buy_now')),
    state text NOT NULL DEFAULT 'awaiting_payment'
);
CREATE INDEX auction_wins_awaiting ON auction_wins (won_ms) WHERE state = 'awaiting_payment';
