-- Accounts, roles, follows and the node-wide settings (the token secret lives here so every node shares it).
CREATE TABLE node_settings (
    name text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    password_hash text NOT NULL,
    display_name text NOT NULL,
    birth_date date NOT NULL,
    region text NOT NULL,
    language text NOT NULL DEFAULT 'en',
    interests text[] NOT NULL DEFAULT '{}',
    roles text[] NOT NULL DEFAULT '{viewer}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT username_shape CHECK (username ~ '^[a-z0-9_]{3,30}$'),
    CONSTRAINT roles_known CHECK (roles <@ ARRAY['viewer','creator','moderator','advertiser','admin'])
);
CREATE UNIQUE INDEX accounts_username ON accounts (username);

CREATE TABLE follows (
    follower_id bigint NOT NULL REFERENCES accounts(id),
    followee_id bigint NOT NULL REFERENCES accounts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CONSTRAINT no_self_follow CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id);
