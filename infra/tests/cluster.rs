//! The port conformance suites against the cluster adapters on real servers.
//!
//! `scripts/deps.sh up` starts the servers and `scripts/test.sh` exports their URLs. Without
//! them these tests fail, saying which server is missing; they are never skipped.

use natter_infra::store::{FriendStore, MessageStore};
use std::time::Duration;

use natter_infra::MessageLog;
use natter_infra::Registry;
use natter_infra::cluster::{
    EtcdRegistry, KafkaLog, KafkaLogConfig, PartitionProducer, RedisSessions,
};
use natter_infra::conformance;
use natter_infra::conformance::test_servers::{KilledBroker, leader_of, server};
use natter_infra::registry::ServiceNode;
use natter_infra::sql::{CURSOR_FLUSH_INTERVAL, Dialect, SqlLog, SqlStore, open_database};
use natter_proto::ObjectId;
use natter_proto::v1::Message;

/// A key prefix no other run shares, so runs never see each other's keys.
fn run_prefix() -> String {
    format!("natter-test-{}:", rand::random::<u32>())
}

#[tokio::test]
async fn redis_sessions_conform() {
    let url = server("NATTER_TEST_REDIS_URL");
    let sessions = RedisSessions::connect(&url, &run_prefix())
        .await
        .unwrap_or_else(|error| panic!("cannot reach Redis at {url}: {error}"));
    conformance::sessions::run(&sessions).await;
    tokio::join!(
        conformance::sessions::run(&sessions),
        conformance::sessions::run(&sessions)
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        RedisSessions::connect("redis://127.0.0.1:1", &run_prefix()),
    )
    .await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "connecting to a closed port must fail, took {:?}",
        started.elapsed()
    );
}

/// The store suite on a real database server, twice in a row and twice at once: a shared
/// server is never empty, and every run of the suite uses fresh random ids.
async fn store_conforms_on(variable: &str, dialect: Dialect) {
    let url = server(variable);
    let database = open_database(&url, 8)
        .await
        .unwrap_or_else(|error| panic!("cannot open {url}: {error}"));
    assert_eq!(database.dialect, dialect);
    // Migrations are idempotent: a second process starting on the same database is fine.
    database.migrate().await.expect("migrating again");
    // As a cluster process makes it: remembering friendships where the database announces
    // their changes (PostgreSQL).
    let store = SqlStore::new(database).following_friendships(&url);
    conformance::store::run(&store).await;
    tokio::join!(
        conformance::store::run(&store),
        conformance::store::run(&store)
    );
}

#[tokio::test]
async fn postgres_store_conforms() {
    store_conforms_on("NATTER_TEST_POSTGRES_URL", Dialect::Postgres).await;
}

#[tokio::test]
async fn mysql_store_conforms() {
    store_conforms_on("NATTER_TEST_MYSQL_URL", Dialect::MySql).await;
}

/// A PostgreSQL connection of the test's own, for writes no store announces.
async fn postgres_connection(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect to PostgreSQL")
}

/// Removes (or puts back) a friendship behind every store's back: nothing is announced.
async fn set_friendship_silently(url: &str, a: i64, b: i64, friends: bool) {
    let mut connection = postgres_connection(url).await;
    for (user, friend) in [(a, b), (b, a)] {
        let sql = if friends {
            "INSERT INTO friendships (user_id, friend_id, created_at) VALUES ($1, $2, 1) \
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM friendships WHERE user_id = $1 AND friend_id = $2"
        };
        sqlx::query(sql)
            .bind(user)
            .bind(friend)
            .execute(&mut connection)
            .await
            .expect("a silent friendship write");
    }
}

/// Waits (boundedly) until `store` answers `expected` about the friendship of `a` and `b`.
async fn await_friendship(store: &SqlStore, a: i64, b: i64, expected: bool, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.are_friends(a, b).await.expect("are_friends") != expected {
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// In a cluster every process has its own store on the shared database. A store following
/// the database's friendship announcements answers from memory, and a change made through
/// any other store reaches it: the pair is forgotten and read again.
#[tokio::test]
async fn postgres_friendship_changes_reach_every_following_store() {
    use natter_infra::store::{FriendRequest, User, UserStore};
    let url = server("NATTER_TEST_POSTGRES_URL");
    let (first, second) = tokio::join!(open_database(&url, 2), open_database(&url, 2));
    let following = SqlStore::new(first.expect("open")).following_friendships(&url);
    let changing = SqlStore::new(second.expect("open"));
    let new_user = || async {
        let id = i64::from(rand::random::<u32>()) << 20;
        let user = User {
            id,
            username: format!("notice{id}"),
            nickname: format!("Notice {id}"),
            avatar: None,
            created_at: 1,
        };
        changing.create_user(&user, "h").await.expect("create user");
        id
    };
    let befriend = |from: i64, to: i64| {
        let changing = &changing;
        async move {
            let request = FriendRequest {
                from,
                to,
                note: String::new(),
                created_at: 1,
            };
            changing
                .add_friend_request(&request)
                .await
                .expect("request");
            changing
                .accept_friend_request(from, to, 2)
                .await
                .expect("accept");
        }
    };

    // The follower answers from memory once it listens: a friendship removed behind its back
    // (announced to nobody) is still a friendship to it. Each try takes a new pair, so what
    // a try before the follower listened left behind is never asked again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (a, b) = loop {
        let (a, b) = (new_user().await, new_user().await);
        befriend(a, b).await;
        // The befriending's own notice makes the follower forget the pair when it arrives:
        // let it arrive first, or the answer remembered next is forgotten again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(following.are_friends(a, b).await.expect("are_friends"));
        set_friendship_silently(&url, a, b, false).await;
        let remembered = following.are_friends(a, b).await.expect("are_friends");
        set_friendship_silently(&url, a, b, true).await;
        if remembered {
            break (a, b);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the following store never answered from memory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A removal through another store is announced, and the follower forgets the pair.
    assert!(changing.remove_friendship(a, b).await.expect("remove"));
    await_friendship(
        &following,
        a,
        b,
        false,
        "a removal never reached the follower",
    )
    .await;
    // So is a new friendship where the follower remembered none.
    let (c, d) = (new_user().await, new_user().await);
    assert!(!following.are_friends(c, d).await.expect("are_friends"));
    befriend(d, c).await;
    await_friendship(
        &following,
        c,
        d,
        true,
        "a new friendship never reached the follower",
    )
    .await;
}

/// Deadlocks PostgreSQL has counted in the test database. The count is flushed when a
/// backend ends, so it is read on a connection of its own after the writers closed theirs.
async fn postgres_deadlocks(url: &str) -> i64 {
    let mut connection = postgres_connection(url).await;
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut connection)
        .await
        .expect("read pg_stat_database")
}

/// In a cluster logic stores each accepted message and task stores it again as it delivers
/// it (a repair of whatever logic's write lost). Two such writers given the same rows in
/// opposite orders took row locks in opposite orders and deadlocked; they must not.
#[tokio::test]
async fn postgres_writers_in_two_processes_never_deadlock() {
    let url = server("NATTER_TEST_POSTGRES_URL");
    let before = postgres_deadlocks(&url).await;
    let (first, second) = tokio::join!(open_database(&url, 2), open_database(&url, 2));
    let (first, second) = (first.expect("open"), second.expect("open"));
    let (logic, task) = (SqlStore::new(first.clone()), SqlStore::new(second.clone()));
    let base = i64::from(rand::random::<u32>()) << 16;
    for round in 0..20 {
        let messages: Vec<Message> = (0..40)
            .map(|number| {
                let mut message = numbered(number);
                message.id = (base + round * 100 + number as i64) as u64;
                message.object = format!("user:{}", base + number as i64);
                message.seq = round as u64 + 1;
                message
            })
            .collect();
        let reversed: Vec<Message> = messages.iter().rev().cloned().collect();
        let (stored, repaired) =
            tokio::join!(logic.put_messages(&messages), task.put_messages(&reversed));
        stored.expect("logic's write");
        repaired.expect("task's write");
    }
    first.close().await;
    second.close().await;
    // The writers' backends have ended, so their counts are in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        postgres_deadlocks(&url).await,
        before,
        "PostgreSQL counted deadlocks between the two writers"
    );
}

/// An etcd registry for a cluster name no other run shares.
async fn etcd_registry(cluster: &str, lease: Duration) -> EtcdRegistry {
    let url = server("NATTER_TEST_ETCD_URL");
    EtcdRegistry::connect(std::slice::from_ref(&url), cluster, lease)
        .await
        .unwrap_or_else(|error| panic!("cannot reach etcd at {url}: {error}"))
}

#[tokio::test]
async fn etcd_registry_conforms() {
    let cluster = format!("test-{}", rand::random::<u32>());
    let registry = etcd_registry(&cluster, Duration::from_secs(10)).await;
    conformance::registry::run(&registry).await;
    conformance::registry::run(&registry).await;
    registry.close().await.expect("close");
}

#[tokio::test]
async fn live_processes_never_share_a_node_id() {
    let cluster = format!("test-{}", rand::random::<u32>());
    let mut registries = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    // Same node name every time: a misconfiguration that must still not share ids.
    for _ in 0..6 {
        let registry = etcd_registry(&cluster, Duration::from_secs(10)).await;
        let id = registry.allocate_node_id("same-name").await.expect("id");
        assert!(ids.insert(id), "node id {id} handed out twice: {ids:?}");
        registries.push(registry);
    }
    // A closed process gives its id back.
    let freed = ids.first().copied().expect("an id");
    let mut kept = Vec::new();
    for registry in registries {
        if registry.allocate_node_id("same-name").await.expect("id") == freed {
            registry.close().await.expect("close");
        } else {
            kept.push(registry);
        }
    }
    let next = etcd_registry(&cluster, Duration::from_secs(10)).await;
    assert_eq!(
        next.allocate_node_id("same-name").await.expect("id"),
        freed,
        "the id of a closed process is free again"
    );
    for registry in kept.iter().chain([&next]) {
        registry.close().await.expect("close");
    }
}

#[tokio::test]
async fn a_process_that_stops_renewing_drops_out_of_watches() {
    let cluster = format!("test-{}", rand::random::<u32>());
    let observer = etcd_registry(&cluster, Duration::from_secs(10)).await;
    let mut watcher = observer.watch("task").await.expect("watch");
    let doomed = etcd_registry(&cluster, Duration::from_secs(2)).await;
    let node = ServiceNode {
        layer: "task".into(),
        node: "doomed".into(),
        address: "http://127.0.0.1:1".into(),
    };
    doomed.register(&node).await.expect("register");
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if watcher.borrow_and_update().contains(&node) {
                return;
            }
            watcher.changed().await.expect("watch open");
        }
    })
    .await;
    assert!(seen.is_ok(), "the watcher saw the node arrive");
    // Dropping the last handle stops the keep-alive, as a killed process would.
    drop(doomed);
    let gone = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if !watcher.borrow_and_update().contains(&node) {
                return;
            }
            watcher.changed().await.expect("watch open");
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "the node left the watch when its lease ran out"
    );
    observer.close().await.expect("close");
}

/// A Kafka log whose topics no other test shares: the tests run at once on one broker.
async fn kafka_log(prefix: &str) -> KafkaLog {
    let url = server("NATTER_TEST_KAFKA_URL");
    KafkaLog::connect(KafkaLogConfig {
        bootstrap: vec![url.clone()],
        topic_prefix: prefix.into(),
        ..KafkaLogConfig::default()
    })
    .await
    .unwrap_or_else(|error| panic!("cannot reach the Kafka broker at {url}: {error}"))
}

fn kafka_prefix() -> String {
    format!("natter-test-{}", rand::random::<u32>())
}

#[tokio::test]
async fn kafka_log_conforms() {
    let log = kafka_log(&kafka_prefix()).await;
    conformance::log::run(&log).await;
    conformance::log::run(&log).await;
    tokio::join!(conformance::log::run(&log), conformance::log::run(&log));
}

fn numbered(number: u64) -> Message {
    Message {
        id: number,
        sender: 1,
        peer: 2,
        kind: "text".into(),
        body: format!("message {number}"),
        ts: 1_700_000_000_000,
        ..Message::default()
    }
}

#[tokio::test]
async fn kafka_appends_racing_from_two_clients_get_every_seq_once() {
    let prefix = kafka_prefix();
    // Two clients, as two task processes would be, racing on one fresh topic.
    let (first, second) = tokio::join!(kafka_log(&prefix), kafka_log(&prefix));
    let object = ObjectId::User(rand::random::<u32>() as i64 + 1);
    let appends = (1..=50u64).map(|number| {
        let log = if number % 2 == 0 { &first } else { &second };
        let object = &object;
        async move { log.append(object, &numbered(number)).await }
    });
    let mut seqs: Vec<u64> = futures_util::future::join_all(appends)
        .await
        .into_iter()
        .map(|appended| appended.expect("append"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<u64>>(),
        "every seq exactly once"
    );
    assert_eq!(first.end(&object).await.expect("end"), 50);
    let read = second.read(&object, 0, 100).await.expect("read");
    let mut ids: Vec<u64> = read.iter().map(|message| message.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=50).collect::<Vec<u64>>(),
        "every message stored once"
    );
}

#[tokio::test]
async fn kafka_records_outlive_the_client_that_wrote_them() {
    let prefix = kafka_prefix();
    let object = ObjectId::Group(rand::random::<u32>() as i64 + 1);
    {
        let writer = kafka_log(&prefix).await;
        for number in 1..=3 {
            assert_eq!(
                writer
                    .append(&object, &numbered(number))
                    .await
                    .expect("append"),
                number
            );
        }
    }
    let reader = kafka_log(&prefix).await;
    assert_eq!(reader.end(&object).await.expect("end"), 3);
    let read = reader.read(&object, 1, 10).await.expect("read");
    let bodies: Vec<&str> = read.iter().map(|message| message.body.as_str()).collect();
    assert_eq!(bodies, ["message 2", "message 3"]);
    assert!(
        reader.objects().await.expect("objects").contains(&object),
        "a new client lists the objects an old one wrote"
    );
    let other = kafka_log(&kafka_prefix()).await;
    assert!(
        !other.objects().await.expect("objects").contains(&object),
        "another prefix does not see this prefix's objects"
    );
}

#[tokio::test]
async fn kafka_appends_survive_the_leader_broker_being_killed() {
    let bootstrap: Vec<String> = server("NATTER_TEST_KAFKA_CLUSTER_URL")
        .split(',')
        .map(str::to_owned)
        .collect();
    let prefix = kafka_prefix();
    let log = KafkaLog::connect(KafkaLogConfig {
        bootstrap: bootstrap.clone(),
        topic_prefix: prefix.clone(),
        replication_factor: 3,
        request_deadline_ms: 60_000,
        ..KafkaLogConfig::default()
    })
    .await
    .expect("connect to the three brokers");
    let object = ObjectId::User(7);
    for number in 1..=20 {
        assert_eq!(
            log.append(&object, &numbered(number))
                .await
                .expect("append"),
            number
        );
    }
    // The partition's leader is the broker whose loss matters: it holds the newest records.
    let leader = leader_of(&format!("{prefix}.user.7"), 0);
    let killed = KilledBroker::kill(leader);
    for number in 21..=40 {
        assert_eq!(
            log.append(&object, &numbered(number))
                .await
                .expect("append with the leader gone"),
            number,
            "seqs go on gap-free under the new leader"
        );
    }
    let read = log.read(&object, 0, 100).await.expect("read");
    let ids: Vec<u64> = read.iter().map(|message| message.id).collect();
    assert_eq!(
        ids,
        (1..=40).collect::<Vec<u64>>(),
        "every acknowledged append, in order"
    );
    drop(killed);
}

/// A fresh topic of `partitions` partitions on the single test broker, and a client for it.
async fn partitioned_topic(partitions: i32) -> (rskafka::client::Client, String) {
    let url = server("NATTER_TEST_KAFKA_URL");
    let client = rskafka::client::ClientBuilder::new(vec![url])
        .build()
        .await
        .expect("connect to the broker");
    let topic = format!("{}.shared", kafka_prefix());
    client
        .controller_client()
        .expect("controller")
        .create_topic(&topic, partitions, 1, 5_000)
        .await
        .expect("create the topic");
    (client, topic)
}

fn record(text: String) -> rskafka::record::Record {
    rskafka::record::Record {
        key: None,
        value: Some(text.into_bytes()),
        headers: Default::default(),
        timestamp: rskafka::chrono::DateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn concurrent_produces_to_one_partition_share_requests_and_keep_each_callers_order() {
    let (client, topic) = partitioned_topic(4).await;
    let partition = client
        .partition_client(
            &topic,
            2,
            rskafka::client::partition::UnknownTopicHandling::Retry,
        )
        .await
        .expect("partition client");
    let partition = std::sync::Arc::new(partition);
    let producer = PartitionProducer::new(std::sync::Arc::clone(&partition));
    // 300 callers at once, each with three records that must stay together and in order.
    let calls = (0..300).map(|caller| {
        let producer = &producer;
        async move {
            let records = (0..3)
                .map(|part| record(format!("{caller}.{part}")))
                .collect();
            (caller, producer.produce(records).await.expect("produce"))
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut all: Vec<i64> = Vec::new();
    for (caller, offsets) in &answers {
        assert_eq!(offsets.len(), 3, "caller {caller}: one offset per record");
        assert!(
            offsets.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "caller {caller}: its records are consecutive: {offsets:?}"
        );
        all.extend(offsets);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..900).collect::<Vec<i64>>(),
        "every record once, no gap"
    );
    assert!(
        producer.requests() < 60,
        "300 concurrent callers took {} produce requests",
        producer.requests()
    );
    // Past its bound a producer refuses at once instead of queueing without limit.
    let flood = (0..20_001)
        .map(|number| record(number.to_string()))
        .collect();
    assert!(
        matches!(
            producer.produce(flood).await,
            Err(natter_infra::InfraError::Unavailable(_))
        ),
        "more records than may wait are refused"
    );
    // What the broker holds is what each caller was told.
    let (fetched, _) = partition
        .fetch_records(0, 1..(4 << 20), 0)
        .await
        .expect("fetch");
    for (caller, offsets) in &answers {
        for (part, offset) in offsets.iter().enumerate() {
            let stored = fetched
                .iter()
                .find(|record| record.offset == *offset)
                .and_then(|record| record.record.value.clone())
                .expect("the record at its offset");
            assert_eq!(String::from_utf8_lossy(&stored), format!("{caller}.{part}"));
        }
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        KafkaLog::connect(KafkaLogConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            request_deadline_ms: 3_000,
            ..KafkaLogConfig::default()
        }),
    )
    .await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "connecting to a closed port must fail, took {:?}",
        started.elapsed()
    );
}

/// The task process's numbering commits on PostgreSQL: a partition's first batch makes its row,
/// the later ones go as one statement; every batch moves the offset and writes its rows
/// together or, when the offset moved meanwhile, writes nothing.
#[tokio::test]
async fn postgres_partition_batches_move_the_offset_and_write_their_rows_all_or_nothing() {
    let url = server("NATTER_TEST_POSTGRES_URL");
    let database = open_database(&url, 2).await.expect("open");
    let writer = SqlLog::new(database.clone()).expect("log");
    let reader = SqlLog::reader(database.clone());
    let partition = format!("{}inbox/0", run_prefix());
    let base = i64::from(rand::random::<u32>()) << 16;
    let (first, second) = (ObjectId::User(base), ObjectId::User(base + 1));
    let entry = |object: ObjectId, number: u64, body: &str| {
        let mut message = numbered(number);
        message.id = base as u64 + number;
        message.body = body.to_owned();
        (object, message)
    };
    let seqs = writer
        .append_from_partition(
            &partition,
            0,
            2,
            vec![entry(first, 1, "one"), entry(first, 2, "two")],
        )
        .await
        .expect("the partition's first batch");
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(
        reader.partition_offsets(&partition).await.expect("offsets"),
        (2, 0)
    );
    // Text that JSON must escape comes back as it went in.
    let awkward = "quote \" back \\ line\nbell\u{7} é 🎉";
    let seqs = writer
        .append_from_partition(
            &partition,
            2,
            5,
            vec![
                entry(first, 3, awkward),
                entry(second, 4, "four"),
                entry(first, 5, ""),
            ],
        )
        .await
        .expect("a later batch");
    assert_eq!(seqs, vec![3, 1, 4]);
    assert_eq!(
        reader.partition_offsets(&partition).await.expect("offsets"),
        (5, 0)
    );
    let stale = writer
        .append_from_partition(&partition, 2, 3, vec![entry(second, 6, "stale")])
        .await;
    assert!(
        stale.is_err(),
        "a batch from an offset already moved past was committed"
    );
    assert_eq!(
        reader.partition_offsets(&partition).await.expect("offsets"),
        (5, 0)
    );
    let read = reader.read(&first, 0, 10).await.expect("read first");
    let bodies: Vec<(u64, &str)> = read
        .iter()
        .map(|message| (message.seq, message.body.as_str()))
        .collect();
    assert_eq!(bodies, vec![(1, "one"), (2, "two"), (3, awkward), (4, "")]);
    assert_eq!(read[2].id, base as u64 + 3);
    let read = reader.read(&second, 0, 10).await.expect("read second");
    let bodies: Vec<(u64, &str)> = read
        .iter()
        .map(|message| (message.seq, message.body.as_str()))
        .collect();
    assert_eq!(
        bodies,
        vec![(1, "four")],
        "the stale batch's row was written"
    );
    database.close().await;
}

/// On PostgreSQL a due cursor flush runs beside the numbering commits, on a connection of its
/// own: the raised cursors reach the database while batches keep committing, and closing the
/// writer still writes the raises made just before.
#[tokio::test]
async fn postgres_cursor_flushes_run_beside_the_numbering_and_closing_writes_the_last_raises() {
    let url = server("NATTER_TEST_POSTGRES_URL");
    let database = open_database(&url, 2).await.expect("open");
    let writer = SqlLog::new(database.clone()).expect("log");
    let store = SqlStore::new(database.clone());
    let partition = format!("{}inbox/0", run_prefix());
    let base = i64::from(rand::random::<u32>()) << 16;
    let (user, object) = (base, ObjectId::User(base));
    let stored_ack = |url: String| async move {
        let mut connection = postgres_connection(&url).await;
        sqlx::query_scalar::<_, i64>(
            "SELECT seq FROM ack_cursors WHERE user_id = $1 AND object = $2",
        )
        .bind(user)
        .bind(object.to_string())
        .fetch_optional(&mut connection)
        .await
        .expect("read ack_cursors")
    };
    store
        .advance_ack_cursor(user, &object, 3)
        .await
        .expect("raise");
    // Batches commit one after another for a few flush intervals, as a busy partition's do.
    let mut offset = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < CURSOR_FLUSH_INTERVAL * 3 {
        let mut message = numbered(offset as u64);
        message.id = base as u64 + offset as u64;
        writer
            .append_from_partition(&partition, offset, offset + 1, vec![(object, message)])
            .await
            .expect("a numbering commit");
        offset += 1;
    }
    assert_eq!(
        stored_ack(url.clone()).await,
        Some(3),
        "the raise was not flushed while batches committed"
    );
    store
        .advance_ack_cursor(user, &object, 9)
        .await
        .expect("raise again");
    database.close().await;
    assert_eq!(
        stored_ack(url.clone()).await,
        Some(9),
        "closing did not write the last raise"
    );
}
