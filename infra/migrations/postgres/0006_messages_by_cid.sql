-- A retried send whose de-duplication record was lost (natter or Redis restarted) finds the
-- message it already made by its sender and client id.
CREATE INDEX messages_by_cid ON messages (sender, cid);
