-- Group chats and their members. The table is chat_groups, not groups, because GROUPS is a
-- reserved word on MySQL 8 and MariaDB and the three schemas keep one set of names.

CREATE TABLE chat_groups (
    id         BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    owner      BIGINT NOT NULL,
    avatar     TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id  BIGINT NOT NULL,
    user_id   BIGINT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
-- "My groups" is one index range, already in group id order.
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);
