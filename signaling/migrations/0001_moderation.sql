-- Room moderation that a user would miss if it were lost: bans, timeouts, slow mode, blocked words.
CREATE TABLE room_moderation (
    room_id bigint PRIMARY KEY,
    slow_mode_s integer NOT NULL DEFAULT 0 CHECK (slow_mode_s >= 0),
    blocked_words text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE room_sanctions (
    room_id bigint NOT NULL,
    user_id bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('ban', 'timeout')),
    until_ms bigint,  -- NULL for a ban without end
    by_user_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id, kind)
);

CREATE TABLE room_moderators (
    room_id bigint NOT NULL,
    user_id bigint NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
