-- natter's embedded schema: the relational store and the message log in one SQLite file.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    nickname      TEXT    NOT NULL,
    avatar        TEXT,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE friend_requests (
    from_id    INTEGER NOT NULL,
    to_id      INTEGER NOT NULL,
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX friend_requests_by_recipient ON friend_requests (to_id);

-- Each friendship is stored once per side, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id    INTEGER NOT NULL,
    friend_id  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE messages (
    object      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    sender      INTEGER NOT NULL,
    peer        INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    cid         TEXT    NOT NULL,
    target_kind TEXT    NOT NULL,
    target_id   INTEGER NOT NULL,
    PRIMARY KEY (object, seq)
);

CREATE TABLE ack_cursors (
    user_id INTEGER NOT NULL,
    object  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, object)
);

CREATE TABLE delivered_cursors (
    object TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
);

-- The embedded message log: one ordered stream per object, payload is the encoded message.
CREATE TABLE log_entries (
    object  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    payload BLOB    NOT NULL,
    PRIMARY KEY (object, seq)
) WITHOUT ROWID;
