-- A campaign ends (its advertiser ends it, its schedule is over, or its lifetime budget is all charged) and is then
-- settled once: its last charges are posted and what it did not spend goes back from ad_budget_held to ad_balance
-- (ledger kind ads_budget_returned, external id ads-return:<id>). An ended campaign charges nothing more.
ALTER TABLE ad_campaigns DROP CONSTRAINT ad_campaigns_state_check;
ALTER TABLE ad_campaigns ADD CONSTRAINT ad_campaigns_state_check CHECK (state IN ('active', 'paused', 'ended'));
ALTER TABLE ad_campaigns ADD COLUMN ended_ms bigint;
ALTER TABLE ad_campaigns ADD COLUMN settled_ms bigint;
ALTER TABLE ad_campaigns ADD COLUMN returned_cents bigint NOT NULL DEFAULT 0 CHECK (returned_cents >= 0);
ALTER TABLE ad_campaigns ADD CONSTRAINT settled_when_ended CHECK (settled_ms IS NULL OR state = 'ended');
CREATE INDEX ad_campaigns_unsettled ON ad_campaigns (ends_ms) WHERE settled_ms IS NULL;
