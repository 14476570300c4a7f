-- Private groups, roles and invites. A private group (is_private = 1) is not found by search
-- and is joined only through an invite or by being added by its owner or an admin. A member's
-- role is 'member' or 'admin' (the owner is chat_groups.owner); muted_until (ms, 0 for not
-- muted) stops a member from sending to the group until then.
ALTER TABLE chat_groups ADD COLUMN is_private BIGINT NOT NULL DEFAULT 0;
ALTER TABLE group_members
    ADD COLUMN role        VARCHAR(16) NOT NULL DEFAULT 'member',
    ADD COLUMN muted_until BIGINT NOT NULL DEFAULT 0;

-- An invite link: a random code, good until expires_at for at most max_uses joins.
CREATE TABLE group_invites (
    code       VARCHAR(64) NOT NULL PRIMARY KEY,
    group_id   BIGINT NOT NULL,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_uses   BIGINT NOT NULL,
    uses       BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX group_invites_by_group ON group_invites (group_id);
