-- natter's relational store on PostgreSQL: the same tables as the embedded SQLite schema
-- (the message log lives in the Kafka-protocol broker in a cluster).

CREATE TABLE users (
    id            BIGINT PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    nickname      TEXT   NOT NULL,
    avatar        TEXT,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE friend_requests (
    from_id    BIGINT NOT NULL,
    to_id      BIGINT NOT NULL,
    note       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX friend_requests_by_recipient ON friend_requests (to_id);

-- Each friendship is stored once per side, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id    BIGINT NOT NULL,
    friend_id  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE messages (
    object      TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    id          BIGINT NOT NULL,
    sender      BIGINT NOT NULL,
    peer        BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    body        TEXT   NOT NULL,
    ts          BIGINT NOT NULL,
    cid         TEXT   NOT NULL,
    target_kind TEXT   NOT NULL,
    target_id   BIGINT NOT NULL,
    PRIMARY KEY (object, seq)
);

CREATE TABLE ack_cursors (
    user_id BIGINT NOT NULL,
    object  TEXT   NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (user_id, object)
);

CREATE TABLE delivered_cursors (
    object TEXT   PRIMARY KEY,
    seq    BIGINT NOT NULL
);
