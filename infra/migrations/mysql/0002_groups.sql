-- Group chats and their members. The table is chat_groups, not groups, because GROUPS is a
-- reserved word on MySQL 8 and MariaDB and the three schemas keep one set of names.

CREATE TABLE chat_groups (
    id         BIGINT       NOT NULL PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    owner      BIGINT       NOT NULL,
    avatar     VARCHAR(255) NULL,
    created_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- "My groups" is one index range, already in group id order.
CREATE TABLE group_members (
    group_id  BIGINT NOT NULL,
    user_id   BIGINT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    INDEX group_members_by_user (user_id, group_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
