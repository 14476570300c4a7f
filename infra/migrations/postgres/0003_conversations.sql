-- A one-to-one conversation's history is the inbox copies with one peer: this index pages it
-- newest first without reading the rest of the inbox.
CREATE INDEX messages_by_peer ON messages (object, peer, seq);
