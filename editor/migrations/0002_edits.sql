-- Media uploaded for edits: clips (video) and stickers (PNG with alpha). The file is in the data dir of the node
-- that took the upload (`<data_dir>/editor/uploads/<file_name>`).
CREATE TABLE edit_uploads (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL REFERENCES accounts(id),
    kind text NOT NULL CHECK (kind IN ('clip', 'sticker')),
    file_name text NOT NULL,
    duration_ms integer,
    width integer NOT NULL,
    height integer NOT NULL,
    node_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edit_uploads_owner ON edit_uploads (owner_id, id);

-- Render jobs: the edit decision list as sent, its state, and the video it became (once: video_id is set in the
-- same transaction that creates the video, so a retried render reuses it).
CREATE TABLE edits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES accounts(id),
    decisions jsonb NOT NULL,
    length_ms integer NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'rendering', 'done', 'failed', 'cancelled')),
    progress real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    attempts integer NOT NULL DEFAULT 0,
    renderer text,
    video_id bigint UNIQUE REFERENCES videos(id),
    error text,
    credits text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edits_unfinished ON edits (id) WHERE state IN ('queued', 'rendering');
CREATE INDEX edits_author ON edits (author_id, id DESC);

-- Creators who do not let others duet with or stitch their videos.
CREATE TABLE remix_opt_outs (
    account_id bigint PRIMARY KEY REFERENCES accounts(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
