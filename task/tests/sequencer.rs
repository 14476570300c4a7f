//! The partitioned log's numbering on real servers (Apache Kafka and PostgreSQL from
//! `scripts/deps.sh`): producers that share an object, two task processes racing for one
//! partition, a record whose producer died before asking, and a partition leader killed.
//! Without the servers these tests fail, saying which is missing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_infra::MessageLog;
use natter_infra::cluster::{KafkaLogConfig, KafkaPartitions, read_back};
use natter_infra::conformance::test_servers::{KilledBroker, leader_of, server};
use natter_infra::sql::{SqlLog, open_database};
use natter_proto::ObjectId;
use natter_proto::placement::LogPartition;
use natter_proto::v1::Message;
use natter_task::sequencer::{AskedRecord, Sequencer};

/// Partitions per topic in these tests: few, so objects share them.
const PARTITIONS: u32 = 4;

fn config(bootstrap: Vec<String>, prefix: &str, replication_factor: i16) -> KafkaLogConfig {
    KafkaLogConfig {
        bootstrap,
        topic_prefix: prefix.to_owned(),
        replication_factor,
        request_deadline_ms: 60_000,
        inbox_partitions: PARTITIONS,
        group_partitions: PARTITIONS,
        ..KafkaLogConfig::default()
    }
}

/// A topic prefix no other run shares.
fn prefix() -> String {
    format!("natter-seq-test-{}", rand::random::<u32>())
}

/// The partitioned log of the single test broker under `prefix`.
async fn partitions(prefix: &str) -> Arc<KafkaPartitions> {
    let bootstrap = vec![server("NATTER_TEST_KAFKA_URL")];
    Arc::new(
        KafkaPartitions::connect(config(bootstrap, prefix, 1))
            .await
            .expect("connect to the broker"),
    )
}

/// One task process's numbering: its own database handle (and so its own writer).
async fn sequencer(log: Arc<KafkaPartitions>) -> Arc<Sequencer> {
    let database = open_database(&server("NATTER_TEST_POSTGRES_URL"), 4)
        .await
        .expect("PostgreSQL");
    Sequencer::new(log, Arc::new(SqlLog::new(database).expect("log")))
}

/// A reader of the numbered log, as logic has.
async fn reader() -> SqlLog {
    SqlLog::reader(
        open_database(&server("NATTER_TEST_POSTGRES_URL"), 2)
            .await
            .expect("PostgreSQL"),
    )
}

/// A group no other test or run uses.
fn fresh_group() -> ObjectId {
    ObjectId::Group(i64::from(rand::random::<u32>()) + 1_000_000)
}

fn message(id: u64) -> Message {
    Message {
        id,
        sender: 1,
        kind: "text".into(),
        body: format!("message {id}"),
        ts: 1_700_000_000_000,
        ..Message::default()
    }
}

/// Produces one message to `object` and asks `sequencer` for its seq, as logic does.
async fn append(
    log: &KafkaPartitions,
    sequencer: &Arc<Sequencer>,
    object: ObjectId,
    id: u64,
) -> u64 {
    let produced = log.produce(&[(object, message(id))]).await;
    let (partition, offset) = produced
        .into_iter()
        .next()
        .expect("one outcome")
        .expect("produced");
    sequencer
        .sequence(partition, vec![asked(offset, object, &message(id))])
        .await
        .expect("numbered")[0]
}

/// A produced record as logic asks about it: with its message as a read gives it back.
fn asked(offset: i64, object: ObjectId, message: &Message) -> AskedRecord {
    AskedRecord {
        offset,
        object,
        id: message.id,
        message: Some(read_back(&object, message)),
    }
}

/// The message ids of `object`'s numbered log in seq order, checking the seqs run 1, 2, 3…
async fn numbered_ids(object: &ObjectId) -> Vec<u64> {
    let read = reader().await.read(object, 0, 10_000).await.expect("read");
    for (index, message) in read.iter().enumerate() {
        assert_eq!(message.seq, index as u64 + 1, "{object}: seqs are gap-free");
    }
    read.iter().map(|message| message.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producers_sharing_a_group_get_gap_free_seqs_in_the_order_they_were_answered() {
    let prefix = prefix();
    // Two logic processes (two clients of the broker), one task process numbering.
    let producers = [partitions(&prefix).await, partitions(&prefix).await];
    let numbering = sequencer(Arc::clone(&producers[0])).await;
    let group = fresh_group();
    let mut senders = Vec::new();
    for (index, producer) in producers.iter().enumerate() {
        for lane in 0..4u64 {
            let producer = Arc::clone(producer);
            let numbering = Arc::clone(&numbering);
            // Each lane sends one message after another, as one connection does.
            senders.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                for number in 0..25u64 {
                    let id = (index as u64 * 4 + lane) * 1_000 + number + 1;
                    answered.push((id, append(&producer, &numbering, group, id).await));
                }
                answered
            }));
        }
    }
    let mut seq_of_id = BTreeMap::new();
    for sender in senders {
        let answered = sender.await.expect("a sender");
        assert!(
            answered.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "one sender's messages are numbered in the order it sent them: {answered:?}"
        );
        seq_of_id.extend(answered);
    }
    let mut seqs: Vec<u64> = seq_of_id.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<u64>>(),
        "every seq once, no gap"
    );
    let ids = numbered_ids(&group).await;
    assert_eq!(ids.len(), 200);
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(
            seq_of_id[id],
            index as u64 + 1,
            "the stored log agrees with the answers"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_task_processes_numbering_one_partition_agree_on_every_seq() {
    let prefix = prefix();
    let log = partitions(&prefix).await;
    // Both believe they may number the partition (a takeover in progress).
    let first = sequencer(Arc::clone(&log)).await;
    let second = sequencer(Arc::clone(&log)).await;
    let objects = [fresh_group(), fresh_group(), fresh_group()];
    let mut answers: BTreeMap<(ObjectId, u64), u64> = BTreeMap::new();
    for round in 0..20u64 {
        let entries: Vec<(ObjectId, Message)> = (0..6u64)
            .map(|index| {
                let id = round * 100 + index + 1;
                (objects[(index % 3) as usize], message(id))
            })
            .collect();
        let produced = log.produce(&entries).await;
        let mut by_partition: BTreeMap<LogPartition, Vec<AskedRecord>> = BTreeMap::new();
        for ((object, message), outcome) in entries.iter().zip(produced) {
            let (partition, offset) = outcome.expect("produced");
            // The first asks with the messages, the second as an older logic would, so one
            // numbers from the asks and the other reads the partition.
            by_partition
                .entry(partition)
                .or_default()
                .push(asked(offset, *object, message));
        }
        for (partition, records) in by_partition {
            // Both are asked about the same records at once.
            let without_messages = records
                .iter()
                .map(|record| AskedRecord {
                    message: None,
                    ..record.clone()
                })
                .collect();
            let (from_first, from_second) = tokio::join!(
                first.sequence(partition, records.clone()),
                second.sequence(partition, without_messages)
            );
            let from_first = from_first.expect("the first numbers");
            let from_second = from_second.expect("the second numbers");
            assert_eq!(from_first, from_second, "both answer the same seqs");
            for (record, seq) in records.iter().zip(from_first) {
                answers.insert((record.object, record.id), seq);
            }
        }
    }
    for object in objects {
        let ids = numbered_ids(&object).await;
        assert_eq!(ids.len(), 40, "{object}: each record numbered once");
        for (index, id) in ids.iter().enumerate() {
            assert_eq!(answers[&(object, *id)], index as u64 + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asked_records_are_numbered_from_their_asks_and_a_hole_is_read_from_the_partition() {
    let prefix = prefix();
    let log = partitions(&prefix).await;
    let owner = sequencer(Arc::clone(&log)).await;
    let group = fresh_group();
    let produce = |id: u64| {
        let log = Arc::clone(&log);
        async move {
            let produced = log.produce(&[(group, message(id))]).await;
            produced
                .into_iter()
                .next()
                .expect("one outcome")
                .expect("produced")
        }
    };
    // Asks that hand in their messages are numbered from them, not from a read of the
    // partition: here the asks say something the records do not, which shows which was used.
    let mut produced = Vec::new();
    for id in 1..=3 {
        produced.push(produce(id).await);
    }
    let partition = produced[0].0;
    let asks: Vec<AskedRecord> = produced
        .iter()
        .zip(1u64..)
        .map(|((_, offset), id)| {
            let mut handed_in = message(id);
            handed_in.body = format!("as asked {id}");
            asked(*offset, group, &handed_in)
        })
        .collect();
    assert_eq!(
        owner.sequence(partition, asks).await.expect("numbered"),
        [1, 2, 3]
    );
    // A record nobody asks about (its producer died) leaves a hole before the next ask:
    // both are then read from the partition. One produce, so no read sees one without the
    // other.
    let produced = log
        .produce(&[(group, message(4)), (group, message(5))])
        .await;
    let (_, offset) = *produced[1].as_ref().expect("produced");
    let mut handed_in = message(5);
    handed_in.body = "as asked 5".into();
    assert_eq!(
        owner
            .sequence(partition, vec![asked(offset, group, &handed_in)])
            .await
            .expect("numbered"),
        [5]
    );
    let stored = reader().await.read(&group, 0, 100).await.expect("read");
    let bodies: Vec<&str> = stored.iter().map(|message| message.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "as asked 1",
            "as asked 2",
            "as asked 3",
            "message 4",
            "message 5"
        ]
    );
    assert_eq!(numbered_ids(&group).await, [1, 2, 3, 4, 5]);
    owner.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_producer_died_before_asking_is_numbered_by_the_owner() {
    let prefix = prefix();
    let log = partitions(&prefix).await;
    let group = fresh_group();
    // The producer (a logic process) stops after producing: nobody asks.
    let produced = log.produce(&[(group, message(1))]).await;
    let (partition, _) = produced[0].as_ref().expect("produced");
    let owner = sequencer(Arc::clone(&log)).await;
    owner.own(&[*partition]);
    let reader = reader().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.end(&group).await.expect("end") < 1 {
        assert!(
            Instant::now() < deadline,
            "the owner never numbered the record nobody asked about"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(numbered_ids(&group).await, [1]);
    // The same message produced again (a retried produce) keeps the first copy's seq.
    assert_eq!(append(&log, &owner, group, 1).await, 1);
    assert_eq!(numbered_ids(&group).await, [1], "stored once");
    owner.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_stay_gap_free_when_a_partitions_leader_broker_is_killed() {
    let bootstrap: Vec<String> = server("NATTER_TEST_KAFKA_CLUSTER_URL")
        .split(',')
        .map(str::to_owned)
        .collect();
    let prefix = prefix();
    let log = Arc::new(
        KafkaPartitions::connect(config(bootstrap, &prefix, 3))
            .await
            .expect("connect to the three brokers"),
    );
    let numbering = sequencer(Arc::clone(&log)).await;
    let group = fresh_group();
    for id in 1..=20 {
        assert_eq!(append(&log, &numbering, group, id).await, id);
    }
    let partition = log.partition_of(&group);
    let leader = leader_of(&format!("{prefix}.groups"), partition.index);
    let killed = KilledBroker::kill(leader);
    for id in 21..=40 {
        assert_eq!(
            append(&log, &numbering, group, id).await,
            id,
            "seqs go on gap-free under the new leader"
        );
    }
    assert_eq!(
        numbered_ids(&group).await,
        (1..=40).collect::<Vec<u64>>(),
        "every acknowledged append, once, in order"
    );
    drop(killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_delivers_again_only_what_may_be_undelivered() {
    let prefix = prefix();
    let log = partitions(&prefix).await;
    // Two groups on one partition: one delivered in full, one half.
    let delivered = fresh_group();
    let partition = log.partition_of(&delivered);
    let half = (1..)
        .map(|offset| match delivered {
            ObjectId::Group(id) => ObjectId::Group(id + offset),
            ObjectId::User(id) => ObjectId::User(id + offset),
        })
        .find(|object| log.partition_of(object) == partition)
        .expect("another group on the partition");
    let first = sequencer(Arc::clone(&log)).await;
    first.own(&[partition]);
    // The delivered group's records come first: a successor reads from the first record not
    // known to be delivered, and would look at every object after it.
    for id in 1..=4 {
        append(&log, &first, delivered, id).await;
    }
    for id in 1..=4 {
        append(&log, &first, half, 100 + id).await;
    }
    first.delivered(&delivered, 4);
    first.delivered(&half, 2);
    // The delivered offset is written about once a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    first.stop();

    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let successor = sequencer(Arc::clone(&log)).await;
    let seen = Arc::clone(&told);
    successor.on_numbered(Box::new(move |objects| {
        seen.lock().expect("told").extend(objects);
    }));
    successor.own(&[partition]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while told.lock().expect("told").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the successor never looked for undelivered records"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        *told.lock().expect("told"),
        [half],
        "only the group with undelivered records is delivered again"
    );
    successor.stop();
}
