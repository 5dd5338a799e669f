-- What viewers do with videos on the feed page. The client's event id makes a retried batch count once.
CREATE TABLE engagements (
    user_id bigint NOT NULL REFERENCES accounts(id),
    event_id text NOT NULL,
    video_id bigint NOT NULL REFERENCES videos(id),
    kind text NOT NULL CHECK (kind IN ('seen', 'watch', 'like', 'unlike', 'share', 'comment', 'follow',
                                       'not_interested', 'report')),
    watch_ms integer CHECK (watch_ms >= 0),
    watch_ratio real CHECK (watch_ratio >= 0),
    at timestamptz NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX engagements_user_at ON engagements (user_id, at DESC);
CREATE INDEX engagements_video ON engagements (video_id);

-- One like per viewer per video: the count on the video follows this table.
CREATE TABLE video_likes (
    user_id bigint NOT NULL REFERENCES accounts(id),
    video_id bigint NOT NULL REFERENCES videos(id),
    PRIMARY KEY (user_id, video_id)
);

-- Authors a viewer said "not interested" in, reported or blocked: never in their feeds again.
CREATE TABLE feed_exclusions (
    user_id bigint NOT NULL REFERENCES accounts(id),
    author_id bigint NOT NULL REFERENCES accounts(id),
    reason text NOT NULL CHECK (reason IN ('not_interested', 'report', 'block')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, author_id)
);
