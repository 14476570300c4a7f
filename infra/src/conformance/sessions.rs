//! The `Sessions` conformance suite.

use std::time::Duration;

use super::random_id;
use crate::sessions::{Claim, SessionRef, Sessions};

fn session(node: &str, connection_id: u64) -> SessionRef {
    SessionRef {
        node: node.into(),
        connection_id,
    }
}

/// Run every `Sessions` check.
pub async fn run(sessions: &dyn Sessions) {
    user_sessions(sessions).await;
    locks(sessions).await;
    claims(sessions).await;
}

async fn user_sessions(sessions: &dyn Sessions) {
    let user = random_id();
    let node_a = format!("conformance-a-{}", random_id());
    let node_b = format!("conformance-b-{}", random_id());
    assert!(sessions.sessions(user).await.expect("none").is_empty());
    sessions
        .add_session(user, &session(&node_a, 1))
        .await
        .expect("add");
    sessions
        .add_session(user, &session(&node_b, 2))
        .await
        .expect("add");
    sessions
        .add_session(user, &session(&node_a, 3))
        .await
        .expect("add");
    let mut held = sessions.sessions(user).await.expect("sessions");
    held.sort();
    assert_eq!(
        held,
        vec![
            session(&node_a, 1),
            session(&node_a, 3),
            session(&node_b, 2)
        ]
    );

    sessions
        .remove_session(user, &session(&node_a, 1))
        .await
        .expect("remove");
    assert_eq!(sessions.sessions(user).await.expect("sessions").len(), 2);
    assert_eq!(
        sessions.remove_node_sessions(&node_a).await.expect("node"),
        1
    );
    assert_eq!(
        sessions.sessions(user).await.expect("sessions"),
        vec![session(&node_b, 2)]
    );
    sessions
        .remove_session(user, &session(&node_b, 2))
        .await
        .expect("remove");
    assert!(sessions.sessions(user).await.expect("sessions").is_empty());
    // Removing what is not there is not an error.
    sessions
        .remove_session(user, &session(&node_b, 2))
        .await
        .expect("remove again");
}

async fn locks(sessions: &dyn Sessions) {
    let key = format!("conformance-lock-{}", random_id());
    let long = Duration::from_secs(30);
    assert_eq!(sessions.lock_holder(&key).await.expect("holder"), None);
    assert!(sessions.try_lock(&key, "one", long).await.expect("lock"));
    assert!(
        !sessions
            .try_lock(&key, "two", long)
            .await
            .expect("lock held")
    );
    assert_eq!(
        sessions.lock_holder(&key).await.expect("holder").as_deref(),
        Some("one")
    );
    assert!(
        !sessions
            .release_lock(&key, "two")
            .await
            .expect("wrong token")
    );
    assert_eq!(
        sessions.lock_holder(&key).await.expect("holder").as_deref(),
        Some("one")
    );
    assert!(sessions.release_lock(&key, "one").await.expect("release"));
    assert_eq!(sessions.lock_holder(&key).await.expect("holder"), None);
    assert!(
        !sessions
            .release_lock(&key, "one")
            .await
            .expect("released twice")
    );

    // An unreleased lock expires by itself, and its old token can no longer release it.
    let short = format!("conformance-expiring-{}", random_id());
    assert!(
        sessions
            .try_lock(&short, "old", Duration::from_millis(200))
            .await
            .expect("lock")
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(sessions.lock_holder(&short).await.expect("holder"), None);
    assert!(
        !sessions
            .release_lock(&short, "old")
            .await
            .expect("release expired")
    );
    assert!(
        sessions
            .try_lock(&short, "new", long)
            .await
            .expect("relock")
    );
    assert!(sessions.release_lock(&short, "new").await.expect("release"));
}

async fn claims(sessions: &dyn Sessions) {
    let key = format!("conformance-claim-{}", random_id());
    let ttl = Duration::from_secs(60);
    assert_eq!(sessions.claim(&key, ttl).await.expect("claim"), Claim::New);
    assert_eq!(
        sessions.claim(&key, ttl).await.expect("claim"),
        Claim::Pending
    );
    sessions
        .complete_claim(&key, "answer", ttl)
        .await
        .expect("complete");
    assert_eq!(
        sessions.claim(&key, ttl).await.expect("claim"),
        Claim::Done("answer".into())
    );
    let abandoned = format!("conformance-abandoned-{}", random_id());
    assert_eq!(
        sessions.claim(&abandoned, ttl).await.expect("claim"),
        Claim::New
    );
    sessions.abandon_claim(&abandoned).await.expect("abandon");
    assert_eq!(
        sessions.claim(&abandoned, ttl).await.expect("claim"),
        Claim::New
    );
}
