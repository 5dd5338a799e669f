-- The double-entry ledger. Amounts are integer minor units of their currency (COIN: one coin; DIAMOND: one
-- creator diamond, worth half a cent at rate version 1; USD: one cent).

CREATE TABLE ledger_accounts (
    id bigserial PRIMARY KEY,
    owner_id bigint REFERENCES accounts (id),          -- NULL for the platform's own accounts
    kind text NOT NULL,                                 -- coins, earnings_held, earnings_withdrawable, ...
    currency text NOT NULL CHECK (currency IN ('COIN', 'DIAMOND', 'USD')),
    shard smallint NOT NULL DEFAULT 0,                  -- platform accounts are split to spread row locks
    balance bigint NOT NULL DEFAULT 0,
    is_wallet boolean NOT NULL,                         -- a user's store of value
    frozen boolean NOT NULL DEFAULT false,
    CONSTRAINT wallet_not_negative CHECK (NOT is_wallet OR balance >= 0),
    CONSTRAINT one_account_per_owner_kind UNIQUE NULLS NOT DISTINCT (owner_id, kind, currency, shard)
);

CREATE TABLE ledger_transactions (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    -- Every transaction answers one external fact: an idempotency key or a provider's id, namespaced.
    external_id text NOT NULL,
    created_ms bigint NOT NULL,
    actor_id bigint,
    stream_id bigint,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT one_transaction_per_external_id UNIQUE (external_id)
);
CREATE INDEX ledger_transactions_stream ON ledger_transactions (stream_id, kind) WHERE stream_id IS NOT NULL;
CREATE INDEX ledger_transactions_actor ON ledger_transactions (actor_id, id DESC);

CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    account_id bigint NOT NULL REFERENCES ledger_accounts (id),
    currency text NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id DESC);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);

-- The journal is append-only: corrections are new, reversing transactions.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger journal is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Posting: every statement that appends entries must balance per transaction and currency, may not debit a
-- frozen wallet, and moves the account balances in the same statement (locking accounts in id order, so two
-- postings never deadlock). A wallet driven below zero fails the wallet_not_negative CHECK.
CREATE FUNCTION ledger_post_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced record;
BEGIN
    SELECT transaction_id, currency, sum(amount) AS total INTO unbalanced
        FROM new_entries GROUP BY transaction_id, currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance in % (off by %)',
            unbalanced.transaction_id, unbalanced.currency, unbalanced.total USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM new_entries n JOIN ledger_accounts a ON a.id = n.account_id
               WHERE a.currency <> n.currency) THEN
        RAISE EXCEPTION 'an entry''s currency differs from its account''s' USING ERRCODE = 'check_violation';
    END IF;
    -- NO KEY UPDATE: the entries' foreign keys already hold KEY SHARE locks, which FOR UPDATE would deadlock on.
    PERFORM 1 FROM ledger_accounts WHERE id IN (SELECT account_id FROM new_entries) ORDER BY id
        FOR NO KEY UPDATE;
    -- A frozen wallet can still be debited by the reversal that froze it (or a later one), nothing else.
    IF EXISTS (SELECT 1 FROM new_entries n JOIN ledger_accounts a ON a.id = n.account_id
               JOIN ledger_transactions t ON t.id = n.transaction_id
               WHERE a.frozen AND a.is_wallet AND n.amount < 0 AND t.kind <> 'reversal') THEN
        RAISE EXCEPTION 'wallet-frozen' USING ERRCODE = 'LC001';
    END IF;
    UPDATE ledger_accounts a SET balance = a.balance + d.total
        FROM (SELECT account_id, sum(amount) AS total FROM new_entries GROUP BY account_id) d
        WHERE a.id = d.account_id;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_post AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_post_entries();

-- Balances change only through postings.
CREATE FUNCTION ledger_guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND NEW.balance IS DISTINCT FROM OLD.balance THEN
        RAISE EXCEPTION 'balances move only by posting journal entries' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE OF balance ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_balance();

-- The gift catalogue, versioned: a gift keeps the price of the version it was sent under.
CREATE TABLE gift_catalogue (
    version int NOT NULL,
    gift_id text NOT NULL,
    name text NOT NULL,
    icon text NOT NULL,
    coins bigint NOT NULL CHECK (coins > 0),
    PRIMARY KEY (version, gift_id)
);
CREATE TABLE gift_rates (
    version int PRIMARY KEY,
    diamonds_per_coin int NOT NULL CHECK (diamonds_per_coin > 0),
    creator_share_percent int NOT NULL CHECK (creator_share_percent BETWEEN 0 AND 100),
    diamonds_per_cent int NOT NULL CHECK (diamonds_per_cent > 0),
    published_at timestamptz NOT NULL DEFAULT now()
);

-- Derived: top gifters per stream, kept in step by each gift and rebuildable from the journal.
CREATE TABLE gift_leaders (
    stream_id bigint NOT NULL,
    sender_id bigint NOT NULL,
    coins bigint NOT NULL,
    PRIMARY KEY (stream_id, sender_id)
);
CREATE INDEX gift_leaders_top ON gift_leaders (stream_id, coins DESC);

-- Coins spent on gifts per viewer per UTC day (the daily spend limit).
CREATE TABLE gift_daily_spend (
    sender_id bigint NOT NULL,
    day date NOT NULL,
    coins bigint NOT NULL,
    PRIMARY KEY (sender_id, day)
);

-- Coin purchases: one row per (buyer, idempotency key); its state follows the provider's verified events.
CREATE TABLE coin_purchases (
    id bigserial PRIMARY KEY,
    buyer_id bigint NOT NULL REFERENCES accounts (id),
    idempotency_key text NOT NULL,
    package_id text NOT NULL,
    coins bigint NOT NULL CHECK (coins > 0),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    currency text NOT NULL,
    provider text NOT NULL,
    provider_ref text UNIQUE,
    client_secret text,
    state text NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'succeeded', 'failed', 'reversed')),
    created_ms bigint NOT NULL,
    UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX coin_purchases_velocity ON coin_purchases (buyer_id, created_ms);

-- Provider events already handled (duplicates are answered 200 and change nothing).
CREATE TABLE payment_events (
    event_id text PRIMARY KEY,
    type text NOT NULL,
    received_ms bigint NOT NULL
);

-- Wallets frozen because a refund or dispute took back more coins than they held.
CREATE TABLE wallet_freezes (
    purchase_id bigint PRIMARY KEY REFERENCES coin_purchases (id),
    owner_id bigint NOT NULL REFERENCES accounts (id),
    shortfall_coins bigint NOT NULL CHECK (shortfall_coins > 0),
    created_ms bigint NOT NULL
);

-- Cash-out requests; the money moves in the journal, this row follows the provider.
CREATE TABLE payouts (
    id bigserial PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES accounts (id),
    idempotency_key text NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    diamonds bigint NOT NULL CHECK (diamonds > 0),
    provider text NOT NULL,
    provider_ref text,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'paid', 'failed')),
    failure text,
    created_ms bigint NOT NULL,
    UNIQUE (creator_id, idempotency_key)
);

-- Where a creator's payouts go with Stripe Connect (a connected account id, acct_...).
CREATE TABLE payout_destinations (
    creator_id bigint PRIMARY KEY REFERENCES accounts (id),
    stripe_account text NOT NULL
);

-- Secrets the local test provider signs its webhooks with when no Stripe secret is configured.
CREATE TABLE payment_secrets (
    name text PRIMARY KEY,
    value text NOT NULL
);
