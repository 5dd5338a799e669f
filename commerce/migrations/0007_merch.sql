-- Merch: the print-on-demand catalogue (copied from commerce/merch/base_items.json at start), creators' designs,
-- products (a design on a base item at the creator's price), their mockups, and the product pinned in each room.
CREATE TABLE base_items (
    id text PRIMARY KEY,
    name text NOT NULL,
    print_area jsonb NOT NULL
);

CREATE TABLE base_item_variants (
    id text PRIMARY KEY,
    base_item_id text NOT NULL REFERENCES base_items (id),
    size text,
    colour text,
    colour_hex text NOT NULL,
    base_cost_cents bigint NOT NULL CHECK (base_cost_cents > 0),
    position int NOT NULL
);

-- A design is kept as uploaded (after it decoded cleanly within the limits); one row per creator and content.
CREATE TABLE designs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES accounts (id),
    format text NOT NULL CHECK (format IN ('PNG', 'JPEG')),
    width int NOT NULL CHECK (width > 0),
    height int NOT NULL CHECK (height > 0),
    bytes int NOT NULL CHECK (bytes > 0),
    sha256 text NOT NULL,
    image bytea NOT NULL,
    created_ms bigint NOT NULL,
    CONSTRAINT one_design_per_content UNIQUE (creator_id, sha256)
);

CREATE TABLE products (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES accounts (id),
    design_id bigint NOT NULL REFERENCES designs (id),
    base_item_id text NOT NULL REFERENCES base_items (id),
    title text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    idempotency_key text,
    created_ms bigint NOT NULL,
    CONSTRAINT one_product_per_key UNIQUE (creator_id, idempotency_key)
);
CREATE INDEX products_creator ON products (creator_id, id DESC);

-- The floor (base cost plus fees when the product was made) is kept beside the price it bounds.
CREATE TABLE product_variants (
    product_id bigint NOT NULL REFERENCES products (id),
    variant_id text NOT NULL REFERENCES base_item_variants (id),
    price_cents bigint NOT NULL,
    floor_cents bigint NOT NULL,
    position int NOT NULL,
    PRIMARY KEY (product_id, variant_id),
    CONSTRAINT price_not_below_floor CHECK (price_cents >= floor_cents)
);

-- Mockups are drawn once per design, base item and colour (sizes look alike) and served from here.
CREATE TABLE mockups (
    design_id bigint NOT NULL REFERENCES designs (id),
    base_item_id text NOT NULL REFERENCES base_items (id),
    colour text NOT NULL,  -- '' for items without a colour choice
    image bytea NOT NULL,
    rendered_ms bigint NOT NULL,
    PRIMARY KEY (design_id, base_item_id, colour)
);

-- What each room has pinned; `version` orders the pin events, so every node keeps the latest.
CREATE TABLE stream_pins (
    stream_id bigint PRIMARY KEY REFERENCES streams (id),
    product_id bigint REFERENCES products (id),
    version bigint NOT NULL,
    changed_ms bigint NOT NULL
);
