-- The sound library: tracks a video's music comes from, credited to their artist. Uploaded by a creator
-- (uploader_id) or by the platform (uploader_id NULL). The audio is an AAC file in the data dir of the node that
-- took the upload (node_id), at <data dir>/sounds/<audio_file>; other nodes fetch it from there.
CREATE TABLE sounds (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    artist text NOT NULL CHECK (length(artist) BETWEEN 1 AND 200),
    licence text NOT NULL CHECK (length(licence) BETWEEN 1 AND 200),
    uploader_id bigint REFERENCES accounts(id),
    audio_file text NOT NULL UNIQUE,
    node_id text,
    duration_ms integer NOT NULL CHECK (duration_ms > 0),
    audio_bytes bigint NOT NULL CHECK (audio_bytes > 0),
    uses bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sounds_uses ON sounds (uses DESC, id DESC);
CREATE INDEX sounds_created ON sounds (id DESC);
-- The platform's own tracks are seeded once by name.
CREATE UNIQUE INDEX sounds_platform_title ON sounds (title, artist) WHERE uploader_id IS NULL;

-- Each ready video that uses a sound, once: `sounds.uses` counts these rows, so a video told ready twice (or by two
-- nodes) counts once.
CREATE TABLE sound_uses (
    video_id bigint PRIMARY KEY REFERENCES videos(id),
    sound_id bigint NOT NULL REFERENCES sounds(id),
    counted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sound_uses_sound ON sound_uses (sound_id, video_id DESC);

-- Challenges: a hashtag, a description, a sound and an optional template (an edit decision list's skeleton) that
-- joining pre-fills the editor with. Videos join by carrying the hashtag or the challenge's id.
CREATE TABLE challenges (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hashtag text NOT NULL UNIQUE CHECK (hashtag ~ '^\w{1,50}$' AND hashtag = lower(hashtag)),
    description text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    sound_id bigint NOT NULL REFERENCES sounds(id),
    template jsonb,
    creator_id bigint NOT NULL REFERENCES accounts(id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX challenges_created ON challenges (id DESC);
CREATE INDEX videos_challenge ON videos (challenge_id, id DESC) WHERE challenge_id IS NOT NULL;
CREATE INDEX videos_sound ON videos (sound_id, id DESC) WHERE sound_id IS NOT NULL;
