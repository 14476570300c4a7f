-- The embedded log is read from `messages` itself (natter folds the older `log_entries` table
-- into it when it opens the database), so a message costs one row keyed by its log position
-- instead of a row, a rowid and a second copy of that key in an automatic index: the table
-- is rebuilt clustered on (object, seq), and its two indexes with it.
CREATE TABLE messages_keyed (
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
) WITHOUT ROWID;
INSERT INTO messages_keyed
    SELECT object, seq, id, sender, peer, kind, body, ts, cid, target_kind, target_id
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_keyed RENAME TO messages;
CREATE INDEX messages_by_peer ON messages (object, peer, seq);
CREATE INDEX messages_by_id ON messages (id);
