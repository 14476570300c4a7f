//! The port conformance suites against the embedded adapters, plus what only they promise.

use natter_infra::store::{GroupStore, MessageStore, UserStore};
use std::path::Path;
use std::sync::Arc;

use natter_infra::conformance;
use natter_infra::embedded::{DirBlobs, MemorySessions, StaticRegistry, open_sqlite};
use natter_infra::sql::SqlLog;
use natter_infra::sql::{SqlDatabase, SqlStore};
use natter_infra::store::User;
use natter_infra::{Blobs, MessageLog};
use natter_proto::ObjectId;
use natter_proto::v1::Message;

/// A fresh database in `dir`.
async fn database(dir: &Path) -> SqlDatabase {
    open_sqlite(&dir.join("natter.db"))
        .await
        .expect("open the SQLite database")
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    conformance::store::run(&SqlStore::new(database(dir.path()).await)).await;
    // The embedded deployment's store remembers memberships; it must answer the same.
    let again = tempfile::tempdir().expect("temporary folder");
    conformance::store::run(&SqlStore::sole_writer(database(again.path()).await)).await;
}

#[tokio::test]
async fn sqlite_log_conforms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    conformance::log::run(&SqlLog::new(database(dir.path()).await).expect("sqlite log")).await;
    // Again on a fresh database, whose writer starts with no ends remembered.
    let again = tempfile::tempdir().expect("temporary folder");
    let log = SqlLog::new(database(again.path()).await).expect("sqlite log");
    conformance::log::run(&log).await;
}

#[tokio::test]
async fn memory_sessions_conform() {
    conformance::sessions::run(&MemorySessions::new()).await;
}

#[tokio::test]
async fn static_registry_conforms() {
    conformance::registry::run(&StaticRegistry::new(3)).await;
}

#[tokio::test]
async fn directory_blobs_conform() {
    let dir = tempfile::tempdir().expect("temporary directory");
    conformance::blobs::run(&DirBlobs::new(dir.path().join("blobs"))).await;
}

/// The suites must hold on a backend that is not empty, as a shared server never is: run each
/// twice in a row and twice at once against the same adapter.
#[tokio::test]
async fn the_suites_pass_again_on_a_used_backend() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pool = database(dir.path()).await;
    let store = SqlStore::new(pool.clone());
    let log = SqlLog::new(pool).expect("sqlite log");
    let sessions = MemorySessions::new();
    let registry = StaticRegistry::new(5);
    let blobs = DirBlobs::new(dir.path().join("blobs"));
    for _ in 0..2 {
        conformance::store::run(&store).await;
        conformance::log::run(&log).await;
        conformance::sessions::run(&sessions).await;
        conformance::registry::run(&registry).await;
        conformance::blobs::run(&blobs).await;
    }
    tokio::join!(
        conformance::store::run(&store),
        conformance::store::run(&store),
        conformance::log::run(&log),
        conformance::log::run(&log),
        conformance::sessions::run(&sessions),
        conformance::sessions::run(&sessions),
        conformance::registry::run(&registry),
        conformance::blobs::run(&blobs),
        conformance::blobs::run(&blobs),
    );
}

/// Two log handles on one database (as after a handover) still number appends gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_through_two_log_handles_racing_stay_gap_free() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pool = database(dir.path()).await;
    let handles = [
        Arc::new(SqlLog::new(pool.clone()).expect("sqlite log")),
        Arc::new(SqlLog::new(pool).expect("sqlite log")),
    ];
    let object = ObjectId::Group(77);
    let mut tasks = Vec::new();
    for number in 0..50u64 {
        let log = Arc::clone(&handles[(number % 2) as usize]);
        tasks.push(tokio::spawn(async move {
            let message = Message {
                id: number,
                body: format!("raced {number}"),
                ..Message::default()
            };
            log.append(&object, &message).await.expect("append")
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("append task"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let read = handles[0].read(&object, 0, 100).await.expect("read");
    assert_eq!(read.len(), 50);
    let mut ids: Vec<u64> = read.iter().map(|message| message.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..50).collect::<Vec<u64>>());
}

#[tokio::test]
async fn open_sqlite_puts_the_database_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pool = database(dir.path()).await;
    let (mode,) = sqlx::query_as::<_, (String,)>("PRAGMA journal_mode")
        .fetch_one(&pool.pool)
        .await
        .expect("journal mode");
    assert_eq!(mode.to_lowercase(), "wal");
}

/// A database from before the log became the `messages` table (migrations 1–4 only): opening
/// it rebuilds `messages` keyed by (object, seq) with its rows, folds in the `log_entries` rows
/// a crash had kept out of it, and drops that table.
#[tokio::test]
async fn an_older_database_keeps_every_message_when_the_log_moves_into_messages() {
    use prost::Message as _;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("natter.db");
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&natter_infra::sql::sqlite_url(&path))
        .await
        .expect("open");
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|migration| migration.version < 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.expect("the older schema");
    let object = ObjectId::User(5);
    // 2,500 log entries (more than one fold round); the first ten have their rows already.
    for seq in 1..=2500i64 {
        let message = Message {
            id: 100 + seq as u64,
            sender: 3,
            peer: 3,
            kind: "text".into(),
            body: format!("entry {seq}"),
            ts: 1_000 + seq,
            cid: format!("c{seq}"),
            target_kind: "user".into(),
            target_id: 5,
            ..Message::default()
        };
        sqlx::query("INSERT INTO log_entries (object, seq, payload) VALUES (?, ?, ?)")
            .bind(object.to_string())
            .bind(seq)
            .bind(message.encode_to_vec())
            .execute(&pool)
            .await
            .expect("an old entry");
        if seq <= 10 {
            sqlx::query(
                "INSERT INTO messages (object, seq, id, sender, peer, kind, body, ts, cid, \
                 target_kind, target_id) VALUES (?, ?, ?, 3, 3, 'text', ?, ?, ?, 'user', 5)",
            )
            .bind(object.to_string())
            .bind(seq)
            .bind(100 + seq)
            .bind(format!("stored {seq}"))
            .bind(1_000 + seq)
            .bind(format!("c{seq}"))
            .execute(&pool)
            .await
            .expect("an old row");
        }
    }
    pool.close().await;

    let reopened = open_sqlite(&path).await.expect("reopen");
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE tbl_name IN ('messages', 'log_entries')",
    )
    .fetch_all(&reopened.pool)
    .await
    .expect("the schema");
    let names: Vec<&str> = names.iter().map(|(name,)| name.as_str()).collect();
    assert!(
        !names.contains(&"log_entries"),
        "the old table is gone: {names:?}"
    );
    for index in ["messages_by_peer", "messages_by_id"] {
        assert!(names.contains(&index), "{index} rebuilt: {names:?}");
    }
    assert!(
        sqlx::query("SELECT rowid FROM messages")
            .fetch_all(&reopened.pool)
            .await
            .is_err(),
        "messages is keyed by (object, seq), without a rowid"
    );
    let log = SqlLog::new(reopened.clone()).expect("sqlite log");
    assert_eq!(log.end(&object).await.expect("end"), 2500);
    let read = log.read(&object, 0, 5000).await.expect("read");
    assert_eq!(read.len(), 2500, "every old entry is in the log");
    assert!(
        read.iter().enumerate().all(|(index, message)| {
            let seq = index as u64 + 1;
            let body = if seq <= 10 {
                format!("stored {seq}")
            } else {
                format!("entry {seq}")
            };
            message.seq == seq
                && message.id == 100 + seq
                && message.body == body
                && message.object == "user:5"
                && message.cid == format!("c{seq}")
        }),
        "each folded once, the stored rows left as they were"
    );
    // Numbering carries on after the folded entries.
    let next = log
        .append(&object, &Message::default())
        .await
        .expect("append");
    assert_eq!(next, 2501);
}

#[tokio::test]
async fn log_records_and_users_survive_reopening_the_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pool = database(dir.path()).await;
    let object = ObjectId::User(42);
    let log = SqlLog::new(pool.clone()).expect("sqlite log");
    for body in ["kept one", "kept two"] {
        let message = Message {
            id: 9,
            body: body.into(),
            ..Message::default()
        };
        log.append(&object, &message).await.expect("append");
    }
    let user = User {
        id: 7,
        username: "kept".into(),
        nickname: "Kept".into(),
        avatar: Some("avatar-1".into()),
        created_at: 1,
    };
    let store = SqlStore::new(pool.clone());
    store.create_user(&user, "h").await.expect("create user");
    store
        .advance_ack_cursor(user.id, &object, 2)
        .await
        .expect("advance");
    drop((log, store));
    pool.close().await;

    let reopened = database(dir.path()).await;
    let log = SqlLog::new(reopened.clone()).expect("sqlite log");
    let read = log.read(&object, 0, 10).await.expect("read");
    assert_eq!(
        read.iter()
            .map(|message| (message.seq, message.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "kept one"), (2, "kept two")]
    );
    assert_eq!(log.end(&object).await.expect("end"), 2);
    assert!(log.objects().await.expect("objects").contains(&object));
    // Numbering carries on where it stopped.
    let next = Message {
        body: "after".into(),
        ..Message::default()
    };
    assert_eq!(log.append(&object, &next).await.expect("append"), 3);
    let store = SqlStore::new(reopened);
    assert_eq!(store.user(7).await.expect("user"), Some(user.clone()));
    let (found, hash) = store
        .credentials("kept")
        .await
        .expect("credentials")
        .expect("credentials survive");
    assert_eq!((found, hash.as_str()), (user, "h"));
    assert_eq!(store.ack_cursor(7, &object).await.expect("cursor"), 2);
}

#[tokio::test]
async fn blob_keys_cannot_leave_their_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let blobs = DirBlobs::new(dir.path().join("blobs"));
    for key in ["../escape", "a/b", "", ".hidden"] {
        assert!(
            blobs
                .put(key, bytes::Bytes::from_static(b"x"))
                .await
                .is_err(),
            "{key:?}"
        );
    }
    assert!(
        !dir.path().join("escape").exists(),
        "nothing was written outside"
    );
}

/// A conversation's page is read through its index, not by scanning the inbox.
#[tokio::test]
async fn a_conversation_page_uses_the_peer_index() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database(dir.path()).await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT seq FROM messages \
         WHERE object = 'user:1' AND peer = 2 AND seq < 100 ORDER BY seq DESC LIMIT 50",
    )
    .fetch_all(&database.pool)
    .await
    .expect("query plan");
    let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
    assert!(
        steps
            .iter()
            .any(|step| step.contains("INDEX messages_by_peer")),
        "plan: {steps:?}"
    );
    assert!(
        !steps.iter().any(|step| step.contains("TEMP B-TREE")),
        "the index gives the order, no sort: {steps:?}"
    );
}

/// The steps of SQLite's plan for `sql` with `binds` (text values).
async fn query_plan(database: &SqlDatabase, sql: &str, binds: &[&str]) -> Vec<String> {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
    for bind in binds {
        query = query.bind(bind.to_string());
    }
    let plan = query.fetch_all(&database.pool).await.expect("query plan");
    plan.into_iter().map(|(_, _, _, step)| step).collect()
}

#[tokio::test]
async fn search_reads_index_ranges_among_100000_users() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database(dir.path()).await;
    // 100,000 users and 10,000 groups written in one statement each, as a big instance has.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO users (id, username, nickname, avatar, password_hash, created_at, \
         nickname_key) SELECT i, 'user' || i, 'Nick ' || i, NULL, 'h', 0, 'nick ' || i FROM n",
    )
    .execute(&database.pool)
    .await
    .expect("users");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO chat_groups (id, name, owner, avatar, created_at, name_key) \
         SELECT i, 'Group ' || i, 1, NULL, 0, 'group ' || i FROM n",
    )
    .execute(&database.pool)
    .await
    .expect("groups");
    let store = SqlStore::new(database.clone());
    let found = store.search_users("USER1234", 0, 20).await.expect("search");
    let ids: Vec<i64> = found.iter().map(|user| user.id).collect();
    assert_eq!(
        ids,
        [
            1234, 12340, 12341, 12342, 12343, 12344, 12345, 12346, 12347, 12348, 12349
        ]
    );
    let nick = store.search_users("nick 9999", 0, 5).await.expect("search");
    assert_eq!(
        nick.iter().map(|user| user.id).collect::<Vec<_>>(),
        [9999, 99990, 99991, 99992, 99993]
    );
    let groups = store
        .search_groups("group 99", 9990, 3)
        .await
        .expect("search");
    assert_eq!(
        groups.iter().map(|group| group.id).collect::<Vec<_>>(),
        [9991, 9992, 9993]
    );

    let users_plan = query_plan(
        &database,
        natter_infra::sql::SEARCH_USERS_SQL,
        &[
            "user1",
            "user1\u{10FFFF}",
            "0",
            "user1",
            "user1\u{10FFFF}",
            "0",
            "20",
        ],
    )
    .await;
    // The username's unique index and the folded nickname's index, one range each.
    for range in [
        "(username>? AND username<?)",
        "(nickname_key>? AND nickname_key<?)",
    ] {
        assert!(
            users_plan
                .iter()
                .any(|step| step.starts_with("SEARCH users USING INDEX") && step.contains(range)),
            "{range} in {users_plan:?}"
        );
    }
    assert!(
        !users_plan.iter().any(|step| step.starts_with("SCAN users")),
        "no scan of the table: {users_plan:?}"
    );
    let groups_plan = query_plan(
        &database,
        natter_infra::sql::SEARCH_GROUPS_SQL,
        &["group 1", "group 1\u{10FFFF}", "0", "20"],
    )
    .await;
    assert!(
        groups_plan
            .iter()
            .any(|step| step.contains("INDEX chat_groups_by_name_key")),
        "{groups_plan:?}"
    );
    assert!(
        !groups_plan
            .iter()
            .any(|step| step.starts_with("SCAN chat_groups")),
        "no scan of the table: {groups_plan:?}"
    );
}

/// Many concurrent appenders into one object (and a one-to-one pair's two copies at once):
/// seqs are gap-free, each answered seq holds the message it was answered for, and the two
/// copies of each pair land together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_into_one_object_are_gap_free_and_in_answered_order() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Arc::new(SqlLog::new(database(dir.path()).await).expect("sqlite log"));
    let group = ObjectId::Group(5);
    let mut tasks = Vec::new();
    for sender in 0..200u64 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let message = Message {
                id: 1000 + sender,
                body: format!("from {sender}"),
                ..Message::default()
            };
            // Half of them as a pair: the group and the sender's own inbox together.
            let entries = if sender % 2 == 0 {
                vec![(group, message.clone())]
            } else {
                vec![
                    (group, message.clone()),
                    (ObjectId::User(sender as i64), message),
                ]
            };
            let outcomes = log.append_many(&entries).await;
            let seqs: Vec<u64> = outcomes
                .into_iter()
                .map(|seq| seq.expect("append"))
                .collect();
            (1000 + sender, seqs)
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        let (id, seqs) = task.await.expect("append task");
        if id % 2 == 1 {
            assert_eq!(seqs[1], 1, "the pair's second copy opens its own inbox");
        }
        answered.push((seqs[0], id));
    }
    answered.sort_unstable();
    let seqs: Vec<u64> = answered.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<u64>>(),
        "gap-free, no seq twice"
    );
    // Read through the remembered tail and through the table alike.
    for after in [0, 150, 199] {
        let read = log.read(&group, after, 500).await.expect("read");
        let got: Vec<(u64, u64)> = read
            .iter()
            .map(|message| (message.seq, message.id))
            .collect();
        assert_eq!(got, answered[after as usize..].to_vec(), "after {after}");
    }
}

/// A batch whose write fails half-way (here the history store refuses one object's copies) is
/// written job by job: the others are answered and stored once, the refused one is refused
/// and leaves nothing, and numbering carries on without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_fails_half_way_loses_nothing_answered_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database(dir.path()).await;
    let history = database
        .history
        .clone()
        .expect("the embedded history store");
    history.refuse_writes_to(ObjectId::User(666));
    let log = Arc::new(SqlLog::new(database.clone()).expect("sqlite log"));
    let store = Arc::new(SqlStore::new(database.clone()));
    let good = ObjectId::User(7);
    let poisoned = ObjectId::User(666);
    let mut tasks = Vec::new();
    for number in 0..300u64 {
        let (log, store) = (Arc::clone(&log), Arc::clone(&store));
        tasks.push(tokio::spawn(async move {
            let object = if number % 10 == 3 { poisoned } else { good };
            let message = Message {
                id: 5000 + number,
                body: format!("number {number}"),
                ..Message::default()
            };
            let outcome = log.append(&object, &message).await;
            if let Ok(seq) = outcome {
                let stored = Message {
                    object: object.to_string(),
                    seq,
                    ..message
                };
                store.put_messages(&[stored]).await.expect("store");
            }
            let outcome_text = format!("{outcome:?}");
            (object, number, outcome.ok(), outcome_text)
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        let (object, number, seq, outcome_text) = task.await.expect("task");
        if object == poisoned {
            assert_eq!(seq, None, "the poisoned append is refused");
        } else {
            answered.push((
                seq.unwrap_or_else(|| panic!("good append {number} refused: {outcome_text}")),
                5000 + number,
            ));
        }
    }
    answered.sort_unstable();
    assert_eq!(answered.len(), 270);
    let seqs: Vec<u64> = answered.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=270).collect::<Vec<u64>>(),
        "gap-free despite the failures"
    );
    let read = log.read(&good, 0, 1000).await.expect("read");
    let got: Vec<(u64, u64)> = read
        .iter()
        .map(|message| (message.seq, message.id))
        .collect();
    assert_eq!(got, answered, "every answered append is there, once");
    assert_eq!(log.end(&poisoned).await.expect("end"), 0);
    let stored = store
        .messages_before(&good, u64::MAX, 1000)
        .await
        .expect("stored");
    assert_eq!(stored.len(), 270, "each answered message stored once");
    // The log keeps numbering from where the table is.
    let next = log
        .append(&good, &Message::default())
        .await
        .expect("append after the failures");
    assert_eq!(next, 271);
}
