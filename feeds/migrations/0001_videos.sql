-- Short videos: uploaded, or made from a live stream's recording when it ends.
CREATE TABLE videos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES accounts(id),
    caption text NOT NULL DEFAULT '',
    hashtags text[] NOT NULL DEFAULT '{}',
    sound_id bigint,
    challenge_id bigint,
    mature boolean NOT NULL DEFAULT false,
    state text NOT NULL DEFAULT 'processing' CHECK (state IN ('processing', 'ready', 'failed')),
    failure text,
    source_stream_id bigint UNIQUE,
    duration_ms integer,
    width integer,
    height integer,
    likes bigint NOT NULL DEFAULT 0 CHECK (likes >= 0),
    shares bigint NOT NULL DEFAULT 0 CHECK (shares >= 0),
    views bigint NOT NULL DEFAULT 0 CHECK (views >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    ready_at timestamptz
);
CREATE INDEX videos_author_ready ON videos (author_id, id DESC) WHERE state = 'ready';
CREATE INDEX videos_ready ON videos (id DESC) WHERE state = 'ready';
CREATE INDEX videos_hashtags ON videos USING gin (hashtags);

-- A creator's "do not post my recording" for one stream.
CREATE TABLE recording_opt_outs (
    stream_id bigint PRIMARY KEY,
    creator_id bigint NOT NULL REFERENCES accounts(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
