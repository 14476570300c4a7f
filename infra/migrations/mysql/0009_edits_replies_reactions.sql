-- Edits, replies and reactions. A reply keeps what it answers (id, author, the start of its text)
-- so history shows the quote without a lookup; an edit rewrites every copy's text and stamps it.
-- Event messages (`edit`, `reaction`, `reaction_removed`) name the message they are about in
-- ref_id. Reactions are one row per (message, user, emoji): counts and who come from them.
ALTER TABLE messages
    ADD COLUMN ref_id      BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN ref_sender  BIGINT       NOT NULL DEFAULT 0,
    ADD COLUMN ref_snippet VARCHAR(512) NOT NULL DEFAULT '',
    ADD COLUMN edited_at   BIGINT       NOT NULL DEFAULT 0;

CREATE TABLE reactions (
    message_id BIGINT      NOT NULL,
    user_id    BIGINT      NOT NULL,
    emoji      VARCHAR(64) NOT NULL,
    ts         BIGINT      NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
