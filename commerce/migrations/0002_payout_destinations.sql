-- Payout destinations keep the connected account's last known state (refreshed from Stripe when read and when
-- Stripe says the account changed); one connected account belongs to one creator.
ALTER TABLE payout_destinations
    ADD COLUMN state text NOT NULL DEFAULT 'onboarding'
        CHECK (state IN ('onboarding', 'restricted', 'active', 'rejected', 'closed')),
    ADD COLUMN created_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN updated_ms bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT one_creator_per_connected_account UNIQUE (stripe_account);

-- A paid payout whose transfer the provider later reverses (in part or whole) goes back into the creator's
-- withdrawable earnings; `reversed_cents` is how much has come back so far, `reversed` means all of it.
ALTER TABLE payouts
    DROP CONSTRAINT payouts_state_check,
    ADD CONSTRAINT payouts_state_check CHECK (state IN ('pending', 'paid', 'failed', 'reversed')),
    ADD COLUMN reversed_cents bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT payouts_reversed_within_amount CHECK (reversed_cents BETWEEN 0 AND amount_cents);
CREATE INDEX payouts_provider_ref ON payouts (provider, provider_ref) WHERE provider_ref IS NOT NULL;
