//! The cluster adapters: the same ports on shared servers, for natter run as separate processes.

mod etcd_registry;
mod kafka_log;
mod kafka_partitions;
mod partition_producer;
mod redis_sessions;

pub use etcd_registry::EtcdRegistry;
pub use kafka_log::{KafkaLog, KafkaLogConfig, LogTopology};
pub use kafka_partitions::{Fetched, KafkaPartitions, PartitionRecord, read_back};
pub use partition_producer::PartitionProducer;
pub use redis_sessions::RedisSessions;
