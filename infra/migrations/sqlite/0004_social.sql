-- Search, read state, uploads and recall.

-- Prefix search compares folded (lower-case) names byte by byte. Usernames are folded when
-- registered (their unique index serves); nicknames and group names keep a folded copy beside
-- them. Each index ends with the id, so a page continues inside the index.
ALTER TABLE users ADD COLUMN nickname_key TEXT NOT NULL DEFAULT '';
UPDATE users SET nickname_key = lower(nickname);
CREATE INDEX users_by_nickname_key ON users (nickname_key, id);
ALTER TABLE chat_groups ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE chat_groups SET name_key = lower(name);
CREATE INDEX chat_groups_by_name_key ON chat_groups (name_key, id);

-- How far a user has read a conversation (`user:<peer>` or `group:<id>`): a seq of the
-- object holding it (the user's inbox, or the group's log).
CREATE TABLE read_cursors (
    user_id      BIGINT NOT NULL,
    conversation TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation)
);

-- Uploaded images; the bytes are in the blob store under the id.
CREATE TABLE uploads (
    id           BIGINT  PRIMARY KEY,
    owner        BIGINT  NOT NULL,
    content_type TEXT    NOT NULL,
    width        BIGINT  NOT NULL,
    height       BIGINT  NOT NULL,
    size         BIGINT  NOT NULL,
    thumbnail    BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);
-- Who besides its owner may fetch an upload: `everyone` (an avatar), `user:<id>` or
-- `group:<id>` (sent there in a message).
CREATE TABLE upload_audiences (
    upload_id BIGINT NOT NULL,
    audience  TEXT   NOT NULL,
    PRIMARY KEY (upload_id, audience)
);

-- Recall finds every stored copy of a message by its id.
CREATE INDEX messages_by_id ON messages (id);
