-- The history's epoch: a random name given when this database first serves, sent to clients in
-- `welcome`. A client holding cursors from another epoch (another deployment, or one whose data
-- was started afresh) drops them instead of syncing from seqs that mean other messages here.
CREATE TABLE history_epoch (
    id    INTEGER     PRIMARY KEY,
    epoch VARCHAR(64) NOT NULL
);
