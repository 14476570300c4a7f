-- The partitioned log (cluster.kafka.topology = "partitioned"): how far the task process owning
-- each partition has numbered and stored its records. It moves in the same transaction as the
-- rows it numbered, and only from the offset the writer started from, so two processes that
-- both think they own a partition cannot both commit a numbering of the same records. A
-- partition is named by its topic and index (`natter.inbox/3`), so clusters with different
-- topic prefixes may share a database. `delivered_offset` is where a successor starts reading to
-- find objects whose numbered records may not be delivered yet: every record before it was.
CREATE TABLE log_partitions (
    name        VARCHAR(255) PRIMARY KEY,
    next_offset BIGINT      NOT NULL CHECK (next_offset >= 0),
    delivered_offset BIGINT NOT NULL DEFAULT 0
);
