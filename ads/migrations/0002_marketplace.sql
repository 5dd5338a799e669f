-- The creator marketplace (ads/marketplace): creators listed by their own choice, each with a precomputed card of
-- aggregates only (audience groups below marketplace_group_size_min are merged or left out before they are stored),
-- and direct offers from advertisers paid through the ledger's escrow. Depends on no campaign table.

CREATE TABLE marketplace_creators (
    creator_id bigint PRIMARY KEY REFERENCES accounts(id),
    listed boolean NOT NULL DEFAULT true,
    opted_in_at timestamptz NOT NULL DEFAULT now(),
    -- whether the card, when computed, met the thresholds (followers, recent videos); search shows only these
    eligible boolean NOT NULL DEFAULT false,
    followers bigint NOT NULL DEFAULT 0,
    recent_videos integer NOT NULL DEFAULT 0,
    median_views bigint NOT NULL DEFAULT 0,
    engagement_rate double precision NOT NULL DEFAULT 0,  -- (likes + shares) / views of the recent videos
    followers_gained bigint NOT NULL DEFAULT 0,           -- follows made in the growth window, still standing
    growth_rate double precision NOT NULL DEFAULT 0,      -- followers_gained / the followers before the window
    age_shares jsonb NOT NULL DEFAULT '{}',               -- {"18-24": 0.41, ..., "other": 0.07}: shares of followers
    region_shares jsonb NOT NULL DEFAULT '{}',
    interest_shares jsonb NOT NULL DEFAULT '{}',
    computed_ms bigint NOT NULL DEFAULT 0                 -- 0: not computed yet
);
CREATE INDEX marketplace_by_followers ON marketplace_creators (followers DESC, creator_id DESC)
    WHERE listed AND eligible;
CREATE INDEX marketplace_by_engagement ON marketplace_creators (engagement_rate DESC, creator_id DESC)
    WHERE listed AND eligible;
CREATE INDEX marketplace_by_views ON marketplace_creators (median_views DESC, creator_id DESC)
    WHERE listed AND eligible;
CREATE INDEX marketplace_by_growth ON marketplace_creators (growth_rate DESC, creator_id DESC)
    WHERE listed AND eligible;
CREATE INDEX marketplace_stale ON marketplace_creators (computed_ms) WHERE listed;

-- The shown audience groups of every card again, one row each, for search: a filter on a group's share is an index
-- range here, however few cards match (a filter into the cards' JSON would read every card when few match).
CREATE TABLE marketplace_audience (
    creator_id bigint NOT NULL REFERENCES marketplace_creators(creator_id) ON DELETE CASCADE,
    dimension text NOT NULL CHECK (dimension IN ('age', 'region', 'interest')),
    grp text NOT NULL,
    share double precision NOT NULL,
    PRIMARY KEY (creator_id, dimension, grp)
);
CREATE INDEX marketplace_audience_groups ON marketplace_audience (dimension, grp, share) INCLUDE (creator_id);

-- An advertiser's offer to a creator. The escrow's coins and diamonds are fixed when it is accepted; its money
-- moves only in the same transaction as its state (ledger kinds escrow_held / escrow_released / escrow_returned,
-- ref offer:<id>).
CREATE TABLE marketplace_offers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advertiser_id bigint NOT NULL REFERENCES accounts(id),
    creator_id bigint NOT NULL REFERENCES accounts(id),
    idempotency_key text NOT NULL,
    brief text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    due_date date NOT NULL,
    state text NOT NULL DEFAULT 'offered'
        CHECK (state IN ('offered', 'accepted', 'declined', 'cancelled', 'delivered')),
    escrow_coins bigint,
    escrow_diamonds bigint,
    rate_version integer,
    fee_percent integer,
    creator_diamonds bigint,
    video_id bigint REFERENCES videos(id),
    cancelled_by bigint REFERENCES accounts(id),
    created_ms bigint NOT NULL,
    accepted_ms bigint,
    settled_ms bigint,
    CONSTRAINT one_offer_per_key UNIQUE (advertiser_id, idempotency_key),
    CONSTRAINT not_to_self CHECK (advertiser_id <> creator_id),
    CONSTRAINT escrow_when_accepted CHECK ((accepted_ms IS NULL) = (escrow_diamonds IS NULL)),
    CONSTRAINT video_when_delivered CHECK ((state = 'delivered') = (video_id IS NOT NULL))
);
CREATE UNIQUE INDEX marketplace_offer_video ON marketplace_offers (video_id) WHERE video_id IS NOT NULL;
CREATE INDEX marketplace_offers_creator ON marketplace_offers (creator_id, id DESC);
CREATE INDEX marketplace_offers_advertiser ON marketplace_offers (advertiser_id, id DESC);
