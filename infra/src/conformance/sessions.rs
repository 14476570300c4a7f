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
    let other_user = random_id();
    let node_a = format!("conformance-a-{}", random_id());
    let node_b = format!("conformance-b-{}", random_id());
    assert!(
        sessions.sessions(user).await.expect("none").is_empty(),
        "a user never seen has no sessions"
    );
    for (owner, held) in [
        (user, session(&node_a, 1)),
        (user, session(&node_b, 2)),
        (user, session(&node_a, 3)),
        (other_user, session(&node_a, 4)),
        (other_user, session(&node_b, 5)),
    ] {
        sessions.add_session(owner, &held).await.expect("add");
    }
    // Adding the same connection again changes nothing.
    sessions
        .add_session(user, &session(&node_a, 1))
        .await
        .expect("add again");
    assert_eq!(
        sorted(sessions.sessions(user).await.expect("sessions")),
        vec![
            session(&node_a, 1),
            session(&node_a, 3),
            session(&node_b, 2)
        ],
        "sessions() lists each connection of the user once, on every node"
    );
    assert_eq!(
        sorted(sessions.sessions(other_user).await.expect("sessions")),
        vec![session(&node_a, 4), session(&node_b, 5)],
        "users' sessions are kept apart"
    );

    sessions
        .remove_session(user, &session(&node_a, 1))
        .await
        .expect("remove");
    assert_eq!(
        sorted(sessions.sessions(user).await.expect("sessions")),
        vec![session(&node_a, 3), session(&node_b, 2)],
        "remove_session forgets only that connection"
    );
    // Removing under the wrong user touches nothing.
    sessions
        .remove_session(user, &session(&node_a, 4))
        .await
        .expect("remove someone else's");
    assert_eq!(
        sessions.sessions(other_user).await.expect("sessions").len(),
        2,
        "remove_session is per user"
    );

    assert_eq!(
        sessions
            .remove_node_sessions(&node_a)
            .await
            .expect("remove node"),
        2,
        "remove_node_sessions returns how many it removed (one of each user)"
    );
    assert_eq!(
        sessions.sessions(user).await.expect("sessions"),
        vec![session(&node_b, 2)],
        "only the removed node's sessions are gone"
    );
    assert_eq!(
        sessions.sessions(other_user).await.expect("sessions"),
        vec![session(&node_b, 5)],
        "only the removed node's sessions are gone"
    );
    assert_eq!(
        sessions
            .remove_node_sessions(&node_a)
            .await
            .expect("remove node again"),
        0,
        "a node without sessions removes none"
    );

    sessions
        .remove_session(user, &session(&node_b, 2))
        .await
        .expect("remove");
    assert!(
        sessions.sessions(user).await.expect("sessions").is_empty(),
        "the last session removed leaves none"
    );
    // Removing what is not there is not an error.
    sessions
        .remove_session(user, &session(&node_b, 2))
        .await
        .expect("remove again");
    assert_eq!(
        sessions
            .remove_node_sessions(&node_b)
            .await
            .expect("remove node b"),
        1,
        "the other user's session on node b"
    );
    assert!(
        sessions
            .sessions(other_user)
            .await
            .expect("sessions")
            .is_empty()
    );
}

fn sorted(mut held: Vec<SessionRef>) -> Vec<SessionRef> {
    held.sort();
    held
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
