-- Group chats and their members. The table is chat_groups, not groups, because GROUPS is a
-- reserved word on MySQL 8 and MariaDB and the three schemas keep one set of names.

CREATE TABLE chat_groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    owner      INTEGER NOT NULL,
    avatar     TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
-- "My groups" is one index range, already in group id order.
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);
