-- Ad campaigns: campaigns (budget, schedule, pacing), ad groups (bid, targeting, frequency cap), creatives (a feeds
-- video), measured events (each event id and each impression's kind counted once; the billable ones carry their
-- charge until it is posted to the ledger in a batch) and hourly roll-ups for pacing and reports.
-- Money is in cents; charges in millicents (a CPM of N cents is N millicents per impression).

CREATE TABLE ad_campaigns (
    id bigserial PRIMARY KEY,
    advertiser_id bigint NOT NULL REFERENCES accounts (id),
    name text NOT NULL,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    budget_daily_cents bigint NOT NULL CHECK (budget_daily_cents > 0),
    budget_lifetime_cents bigint NOT NULL CHECK (budget_lifetime_cents >= budget_daily_cents),
    starts_ms bigint NOT NULL,
    ends_ms bigint NOT NULL CHECK (ends_ms > starts_ms),
    pacing text NOT NULL CHECK (pacing IN ('even', 'front_loaded', 'asap')),
    -- What events charged (never above the lifetime budget) and what of it the ledger has been posted.
    charged_millicents bigint NOT NULL DEFAULT 0 CHECK (charged_millicents <= budget_lifetime_cents * 1000),
    billed_millicents bigint NOT NULL DEFAULT 0 CHECK (billed_millicents <= charged_millicents),
    billed_cents bigint NOT NULL DEFAULT 0 CHECK (billed_cents * 1000 <= billed_millicents),
    spend_batches bigint NOT NULL DEFAULT 0,
    created_ms bigint NOT NULL
);
CREATE INDEX ad_campaigns_advertiser ON ad_campaigns (advertiser_id, id DESC);

CREATE TABLE ad_groups (
    id bigserial PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES ad_campaigns (id),
    name text NOT NULL,
    bid_kind text NOT NULL CHECK (bid_kind IN ('cpm', 'cpc')),
    bid_cents bigint NOT NULL CHECK (bid_cents > 0),
    age_bands text[] NOT NULL DEFAULT '{}',
    regions text[] NOT NULL DEFAULT '{}',
    languages text[] NOT NULL DEFAULT '{}',
    interests text[] NOT NULL DEFAULT '{}',
    frequency_per_day_max int NOT NULL CHECK (frequency_per_day_max > 0)
);
CREATE INDEX ad_groups_campaign ON ad_groups (campaign_id);

CREATE TABLE ad_creatives (
    id bigserial PRIMARY KEY,
    ad_group_id bigint NOT NULL REFERENCES ad_groups (id),
    video_id bigint NOT NULL REFERENCES videos (id),
    headline text NOT NULL,
    landing_url text
);
CREATE INDEX ad_creatives_group ON ad_creatives (ad_group_id);

CREATE TABLE ad_events (
    user_id bigint NOT NULL,
    event_id text NOT NULL,
    impression_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('impression', 'viewable', 'q25', 'q50', 'q75', 'complete', 'click')),
    campaign_id bigint NOT NULL REFERENCES ad_campaigns (id),
    ad_group_id bigint NOT NULL,
    at_ms bigint NOT NULL,
    millicents bigint NOT NULL DEFAULT 0 CHECK (millicents >= 0),
    batch bigint,  -- the campaign's spend batch that posted this charge; NULL while unposted
    PRIMARY KEY (user_id, event_id),
    CONSTRAINT one_event_per_impression_kind UNIQUE (impression_id, kind)
);
CREATE INDEX ad_events_unbilled ON ad_events (campaign_id) WHERE millicents > 0 AND batch IS NULL;

CREATE TABLE ad_stats_hourly (
    campaign_id bigint NOT NULL REFERENCES ad_campaigns (id),
    ad_group_id bigint NOT NULL,
    hour_ms bigint NOT NULL,
    impressions bigint NOT NULL DEFAULT 0,
    viewable bigint NOT NULL DEFAULT 0,
    q25 bigint NOT NULL DEFAULT 0,
    q50 bigint NOT NULL DEFAULT 0,
    q75 bigint NOT NULL DEFAULT 0,
    complete bigint NOT NULL DEFAULT 0,
    clicks bigint NOT NULL DEFAULT 0,
    spend_millicents bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, ad_group_id, hour_ms)
);
CREATE INDEX ad_stats_hourly_hour ON ad_stats_hourly (hour_ms);
