-- Who has read a group's message: the members whose read cursor on the conversation reached its
-- seq, one range of this index (read receipts are derived from the cursors, never stored per
-- message and member).
CREATE INDEX read_cursors_by_conversation ON read_cursors (conversation, seq);
