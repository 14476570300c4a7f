//! The port conformance suites against the embedded adapters, plus what only they promise.

use natter_infra::conformance;
use natter_infra::embedded::{
    DirBlobs, MemorySessions, SqliteLog, SqliteStore, StaticRegistry, open_sqlite,
};
use natter_infra::store::User;
use natter_infra::{MessageLog, Store};
use natter_proto::ObjectId;
use natter_proto::v1::Message;

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_sqlite(&dir.path().join("natter.db")).await.unwrap();
    conformance::store::run(&SqliteStore::new(pool)).await;
}

#[tokio::test]
async fn sqlite_log_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_sqlite(&dir.path().join("natter.db")).await.unwrap();
    conformance::log::run(&SqliteLog::new(pool)).await;
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
    let dir = tempfile::tempdir().unwrap();
    conformance::blobs::run(&DirBlobs::new(dir.path().join("blobs"))).await;
}

#[tokio::test]
async fn the_database_is_in_wal_mode_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let pool = open_sqlite(&path).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let object = ObjectId::User(42);
    let log = SqliteLog::new(pool.clone());
    let message = Message {
        body: "kept".into(),
        ..Message::default()
    };
    assert_eq!(log.append(&object, &message).await.unwrap(), 1);
    let user = User {
        id: 7,
        username: "kept".into(),
        nickname: "Kept".into(),
        avatar: None,
        created_at: 1,
    };
    SqliteStore::new(pool.clone())
        .create_user(&user, "h")
        .await
        .unwrap();
    pool.close().await;

    let reopened = open_sqlite(&path).await.unwrap();
    let read = SqliteLog::new(reopened.clone())
        .read(&object, 0, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].body, "kept");
    assert_eq!(
        SqliteStore::new(reopened).user(7).await.unwrap(),
        Some(user)
    );
}

#[tokio::test]
async fn blob_keys_cannot_leave_their_directory() {
    use natter_infra::Blobs;
    let dir = tempfile::tempdir().unwrap();
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
}
