-- Search, read state, uploads and recall.

-- Prefix search compares folded (lower-case) names byte by byte (the tables' binary
-- collation). Usernames are folded when registered (their unique index serves); nicknames and
-- group names keep a folded copy beside them. Each index ends with the id, so a page continues
-- inside the index.
ALTER TABLE users ADD COLUMN nickname_key VARCHAR(255) NOT NULL DEFAULT '';
UPDATE users SET nickname_key = LOWER(nickname);
CREATE INDEX users_by_nickname_key ON users (nickname_key, id);
ALTER TABLE chat_groups ADD COLUMN name_key VARCHAR(255) NOT NULL DEFAULT '';
UPDATE chat_groups SET name_key = LOWER(name);
CREATE INDEX chat_groups_by_name_key ON chat_groups (name_key, id);

-- How far a user has read a conversation (`user:<peer>` or `group:<id>`): a seq of the
-- object holding it (the user's inbox, or the group's log).
CREATE TABLE read_cursors (
    user_id      BIGINT       NOT NULL,
    conversation VARCHAR(64)  NOT NULL,
    seq          BIGINT       NOT NULL,
    PRIMARY KEY (user_id, conversation)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Uploaded images; the bytes are in the blob store under the id.
CREATE TABLE uploads (
    id           BIGINT       NOT NULL PRIMARY KEY,
    owner        BIGINT       NOT NULL,
    content_type VARCHAR(64)  NOT NULL,
    width        BIGINT       NOT NULL,
    height       BIGINT       NOT NULL,
    size         BIGINT       NOT NULL,
    thumbnail    BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Who besides its owner may fetch an upload: `everyone` (an avatar), `user:<id>` or
-- `group:<id>` (sent there in a message).
CREATE TABLE upload_audiences (
    upload_id BIGINT      NOT NULL,
    audience  VARCHAR(64) NOT NULL,
    PRIMARY KEY (upload_id, audience)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Recall finds every stored copy of a message by its id.
CREATE INDEX messages_by_id ON messages (id);
