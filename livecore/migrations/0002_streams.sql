-- Live streams: one room each. The stream key is the publisher's bearer secret (WHIP).
CREATE TABLE streams (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES accounts(id),
    title text NOT NULL,
    stream_key text NOT NULL UNIQUE,
    state text NOT NULL DEFAULT 'live' CHECK (state IN ('created', 'live', 'ended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    ended_at timestamptz
);
CREATE INDEX streams_live ON streams (state) WHERE state = 'live';
CREATE INDEX streams_creator ON streams (creator_id, created_at DESC);
