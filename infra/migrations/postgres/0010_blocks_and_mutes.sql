-- Blocking: one row per (blocker, blocked). A block ends any friendship and pending request
-- between the two and refuses new requests either way (enforced by the API), so neither can
-- message the other or see the other's presence.
CREATE TABLE blocks (
    user_id    BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);

-- Muted conversations: no notifications (the client's side), unread still counted.
-- until_ms 0 mutes until unmuted.
CREATE TABLE mutes (
    user_id      BIGINT      NOT NULL,
    conversation TEXT        NOT NULL,
    until_ms     BIGINT      NOT NULL,
    PRIMARY KEY (user_id, conversation)
);
