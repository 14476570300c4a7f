-- natter's relational store on MySQL or MariaDB: the same tables as the embedded SQLite schema
-- (the message log lives in the Kafka-protocol broker in a cluster). Binary collation keeps
-- comparisons exact, as they are on SQLite and PostgreSQL; keys are VARCHAR because TEXT
-- cannot be a key without a prefix length.

CREATE TABLE users (
    id            BIGINT       NOT NULL PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL UNIQUE,
    nickname      VARCHAR(255) NOT NULL,
    avatar        VARCHAR(255) NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at    BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE refresh_tokens (
    token_hash VARCHAR(128) NOT NULL PRIMARY KEY,
    user_id    BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE friend_requests (
    from_id    BIGINT        NOT NULL,
    to_id      BIGINT        NOT NULL,
    note       VARCHAR(1024) NOT NULL,
    created_at BIGINT        NOT NULL,
    PRIMARY KEY (from_id, to_id),
    INDEX friend_requests_by_recipient (to_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Each friendship is stored once per side, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id    BIGINT NOT NULL,
    friend_id  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    object      VARCHAR(64)  NOT NULL,
    seq         BIGINT       NOT NULL,
    id          BIGINT       NOT NULL,
    sender      BIGINT       NOT NULL,
    peer        BIGINT       NOT NULL,
    kind        VARCHAR(16)  NOT NULL,
    body        MEDIUMTEXT   NOT NULL,
    ts          BIGINT       NOT NULL,
    cid         VARCHAR(128) NOT NULL,
    target_kind VARCHAR(16)  NOT NULL,
    target_id   BIGINT       NOT NULL,
    PRIMARY KEY (object, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE ack_cursors (
    user_id BIGINT      NOT NULL,
    object  VARCHAR(64) NOT NULL,
    seq     BIGINT      NOT NULL,
    PRIMARY KEY (user_id, object)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE delivered_cursors (
    object VARCHAR(64) NOT NULL PRIMARY KEY,
    seq    BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
