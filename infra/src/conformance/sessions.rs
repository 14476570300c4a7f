//! The `Sessions` conformance suite.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::random_id;
use crate::sessions::{Claim, PresenceEvent, SessionRef, Sessions};

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
    group_online(sessions).await;
    presence(sessions).await;
    online_state(sessions).await;
}

/// Who is online follows sessions; the announced presence reports only changes.
async fn online_state(sessions: &dyn Sessions) {
    let (ada, bob, cyd) = (random_id(), random_id(), random_id());
    let node = format!("conformance-online-{}", random_id());
    sessions
        .add_session(ada, &session(&node, 1))
        .await
        .expect("add");
    sessions
        .add_session(ada, &session(&node, 2))
        .await
        .expect("add");
    sessions
        .add_session(cyd, &session(&node, 3))
        .await
        .expect("add");
    assert_eq!(
        sessions
            .online_among(&[cyd, bob, ada])
            .await
            .expect("online"),
        [cyd, ada],
        "in the order asked, once each"
    );
    let many: Vec<i64> = (0..1200).map(|_| random_id()).chain([ada]).collect();
    assert_eq!(
        sessions.online_among(&many).await.expect("batches"),
        [ada],
        "long lists are asked in batches"
    );
    sessions
        .remove_session(ada, &session(&node, 1))
        .await
        .expect("remove");
    assert_eq!(sessions.online_among(&[ada]).await.expect("online"), [ada]);
    sessions
        .remove_session(ada, &session(&node, 2))
        .await
        .expect("remove");
    assert!(
        sessions
            .online_among(&[ada])
            .await
            .expect("online")
            .is_empty()
    );

    assert!(
        !sessions
            .set_announced_presence(bob, false)
            .await
            .expect("set"),
        "never announced is offline"
    );
    assert!(
        sessions
            .set_announced_presence(bob, true)
            .await
            .expect("set")
    );
    assert!(
        !sessions
            .set_announced_presence(bob, true)
            .await
            .expect("set")
    );
    assert!(
        sessions
            .set_announced_presence(bob, false)
            .await
            .expect("set")
    );
    assert!(
        !sessions
            .set_announced_presence(bob, false)
            .await
            .expect("set")
    );
    sessions
        .remove_node_sessions(&node)
        .await
        .expect("clean up");
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
        (
            sessions
                .node_session_count(&node_a)
                .await
                .expect("count node a"),
            sessions
                .node_session_count(&node_b)
                .await
                .expect("count node b"),
        ),
        (2, 2),
        "node_session_count counts each node's connections"
    );
    assert_eq!(
        sessions
            .remove_node_sessions(&node_a)
            .await
            .expect("remove node"),
        {
            let mut both = vec![user, other_user];
            both.sort_unstable();
            both
        },
        "remove_node_sessions names the users who had sessions there, once each"
    );
    assert_eq!(
        sessions.sessions(user).await.expect("sessions"),
        vec![session(&node_b, 2)],
        "only the removed node's sessions are gone"
    );
    assert_eq!(
        sessions
            .node_session_count(&node_a)
            .await
            .expect("count node a"),
        0,
        "a removed node holds no connections"
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
        Vec::<i64>::new(),
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
        vec![other_user],
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
    concurrent_locks(sessions).await;
    locks_released_together(sessions).await;
}

/// Releases in one call answer each lock on its own: a held lock with its token is released,
/// one with another's token or not held is not, and more locks than one script takes are all
/// answered in order.
async fn locks_released_together(sessions: &dyn Sessions) {
    let long = Duration::from_secs(30);
    let base = format!("conformance-together-{}", random_id());
    let mut locks = Vec::new();
    for index in 0..300 {
        let key = format!("{base}-{index}");
        assert!(sessions.try_lock(&key, "mine", long).await.expect("lock"));
        // Every third is asked for with another's token, every fifth was never taken.
        let token = if index % 3 == 0 { "theirs" } else { "mine" };
        let key = if index % 5 == 0 {
            format!("{base}-missing-{index}")
        } else {
            key
        };
        locks.push((key, token.to_owned()));
    }
    let released = sessions.release_locks(&locks).await.expect("release many");
    assert_eq!(released.len(), locks.len(), "one answer a lock");
    for (index, ((key, _), released)) in locks.iter().zip(&released).enumerate() {
        let expected = index % 3 != 0 && index % 5 != 0;
        assert_eq!(*released, expected, "lock {index} ({key})");
        let holder = sessions.lock_holder(key).await.expect("holder");
        let held = index % 5 != 0 && !expected;
        assert_eq!(
            holder.is_some(),
            held,
            "lock {index} ({key}) is held: {holder:?}"
        );
    }
    assert!(
        sessions.release_locks(&[]).await.expect("none").is_empty(),
        "releasing nothing answers nothing"
    );
}

/// Many callers at once (which a backend may send together): each lock has one taker, each
/// holder and release answers for its own key, and a user's sessions are their own.
async fn concurrent_locks(sessions: &dyn Sessions) {
    use futures_util::future::join_all;
    let long = Duration::from_secs(30);
    let keys: Vec<String> = (0..40)
        .map(|index| format!("conformance-concurrent-{index}-{}", random_id()))
        .collect();
    // Every key asked for twice at once, by two tokens: exactly one of each pair wins.
    let takes = join_all(keys.iter().flat_map(|key| {
        ["a", "b"].map(|token| async move { sessions.try_lock(key, token, long).await })
    }))
    .await;
    let mut winners = Vec::new();
    for (key, pair) in keys.iter().zip(takes.chunks(2)) {
        let taken: Vec<bool> = pair
            .iter()
            .map(|taken| *taken.as_ref().expect("lock"))
            .collect();
        assert_eq!(
            taken.iter().filter(|taken| **taken).count(),
            1,
            "{key}: {taken:?}"
        );
        winners.push(if taken[0] { "a" } else { "b" });
    }
    let holders = join_all(keys.iter().map(|key| sessions.lock_holder(key))).await;
    for ((key, winner), holder) in keys.iter().zip(&winners).zip(holders) {
        assert_eq!(holder.expect("holder").as_deref(), Some(*winner), "{key}");
    }
    // Releases with the wrong token for the even keys, the right one for the odd.
    let releases = join_all(
        keys.iter()
            .zip(&winners)
            .enumerate()
            .map(|(index, (key, winner))| {
                let token = match (index % 2, *winner) {
                    (0, "a") => "b",
                    (0, _) => "a",
                    _ => winner,
                };
                sessions.release_lock(key, token)
            }),
    )
    .await;
    for (index, released) in releases.into_iter().enumerate() {
        assert_eq!(
            released.expect("release"),
            index % 2 == 1,
            "{}",
            keys[index]
        );
    }
    let holders = join_all(keys.iter().map(|key| sessions.lock_holder(key))).await;
    for (index, holder) in holders.into_iter().enumerate() {
        assert_eq!(
            holder.expect("holder").is_some(),
            index % 2 == 0,
            "{}",
            keys[index]
        );
    }
    let releases = join_all(
        keys.iter()
            .zip(&winners)
            .map(|(key, winner)| sessions.release_lock(key, winner)),
    )
    .await;
    assert!(releases.into_iter().all(|released| released.is_ok()));

    // Users' sessions read at once: each gets exactly their own, none for a user with none.
    let node = format!("conformance-concurrent-{}", random_id());
    let users: Vec<i64> = (0..30).map(|_| random_id()).collect();
    for (index, user) in users.iter().enumerate() {
        for connection in 0..index % 3 {
            sessions
                .add_session(*user, &session(&node, (index * 10 + connection) as u64))
                .await
                .expect("add");
        }
    }
    let found = join_all(users.iter().map(|user| sessions.sessions(*user))).await;
    for (index, found) in found.into_iter().enumerate() {
        let mut connections: Vec<u64> = found
            .expect("sessions")
            .into_iter()
            .map(|session| session.connection_id)
            .collect();
        connections.sort_unstable();
        let expected: Vec<u64> = (0..index % 3).map(|c| (index * 10 + c) as u64).collect();
        assert_eq!(connections, expected, "user {}", users[index]);
    }
    sessions
        .remove_node_sessions(&node)
        .await
        .expect("clean up");
}

async fn claims(sessions: &dyn Sessions) {
    let key = format!("conformance-claim-{}", random_id());
    let ttl = Duration::from_secs(60);
    // On a fresh Redis the first ask is what begins the memory, a moment after any time read
    // before it; the beginning asked about afterwards must lie in the past.
    sessions.memory_began().await.expect("memory began");
    let before = crate::now_millis();
    let began = sessions.memory_began().await.expect("memory began");
    assert!(began <= before, "a memory cannot begin after it is asked");
    assert_eq!(
        sessions.memory_began().await.expect("memory began"),
        began,
        "a memory that lost nothing keeps its beginning"
    );
    match sessions.claim(&key, "first", ttl).await.expect("claim") {
        Claim::New { remembered_since } => assert_eq!(
            remembered_since, began,
            "claims are remembered as long as the memory"
        ),
        other => panic!("a fresh key is new, got {other:?}"),
    }
    assert_eq!(
        sessions.claim(&key, "second", ttl).await.expect("claim"),
        Claim::Pending {
            holder: "first".into()
        },
        "a pending claim names its holder"
    );
    // Taken over only from the holder named.
    assert!(
        !sessions
            .take_over_claim(&key, "second", "third", ttl)
            .await
            .expect("take over")
    );
    assert!(
        sessions
            .take_over_claim(&key, "first", "second", ttl)
            .await
            .expect("take over")
    );
    assert_eq!(
        sessions.claim(&key, "first", ttl).await.expect("claim"),
        Claim::Pending {
            holder: "second".into()
        }
    );
    sessions
        .complete_claim(&key, "answer", ttl)
        .await
        .expect("complete");
    assert_eq!(
        sessions.claim(&key, "first", ttl).await.expect("claim"),
        Claim::Done("answer".into())
    );
    assert!(
        !sessions
            .take_over_claim(&key, "second", "third", ttl)
            .await
            .expect("take over"),
        "a completed claim is not taken over"
    );
    let abandoned = format!("conformance-abandoned-{}", random_id());
    assert!(matches!(
        sessions
            .claim(&abandoned, "first", ttl)
            .await
            .expect("claim"),
        Claim::New { .. }
    ));
    sessions.abandon_claim(&abandoned).await.expect("abandon");
    assert!(matches!(
        sessions
            .claim(&abandoned, "first", ttl)
            .await
            .expect("claim"),
        Claim::New { .. }
    ));
    claims_together(sessions, &key).await;
}

/// Claims asked for together answer as the same claims asked one after another; `completed`
/// is a key completed with "answer".
async fn claims_together(sessions: &dyn Sessions, completed: &str) {
    let ttl = Duration::from_secs(60);
    let fresh = format!("conformance-together-{}", random_id());
    let claims = sessions
        .claim_many(
            &[fresh.clone(), completed.to_owned(), fresh.clone()],
            "first",
            ttl,
        )
        .await
        .expect("claim many");
    assert_eq!(claims.len(), 3, "one answer a key");
    assert!(
        matches!(claims[0], Claim::New { .. }),
        "a fresh key is new, got {:?}",
        claims[0]
    );
    assert_eq!(
        claims[1..],
        [
            Claim::Done("answer".into()),
            Claim::Pending {
                holder: "first".into()
            }
        ],
        "a key named twice finds itself pending the second time"
    );
    assert!(
        sessions
            .claim_many(&[], "first", ttl)
            .await
            .expect("claim none")
            .is_empty()
    );
    // More keys than one trip takes, all answered in order.
    let many: Vec<String> = (0..300)
        .map(|index| format!("conformance-together-{}-{index}", random_id()))
        .collect();
    let claims = sessions
        .claim_many(&many, "second", ttl)
        .await
        .expect("claim many");
    assert_eq!(claims.len(), many.len());
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::New { .. }))
    );
    for index in [0, 255, 256, 299] {
        assert_eq!(
            sessions
                .claim(&many[index], "third", ttl)
                .await
                .expect("claim"),
            Claim::Pending {
                holder: "second".into()
            },
            "key {index} was claimed"
        );
    }
    // Completed together, each with its own value.
    let entries: Vec<(String, String)> = many
        .iter()
        .enumerate()
        .map(|(index, key)| (key.clone(), format!("answer {index}")))
        .collect();
    sessions
        .complete_many(&entries, ttl)
        .await
        .expect("complete many");
    sessions
        .complete_many(&[], ttl)
        .await
        .expect("complete none");
    let claims = sessions
        .claim_many(&many, "third", ttl)
        .await
        .expect("claim many");
    for (index, claim) in claims.iter().enumerate() {
        assert_eq!(
            *claim,
            Claim::Done(format!("answer {index}")),
            "key {index} completed"
        );
    }
}

async fn group_online(sessions: &dyn Sessions) {
    let group = random_id();
    let node_a = format!("conformance-a-{}", random_id());
    let node_b = format!("conformance-b-{}", random_id());
    let long = Duration::from_secs(60);
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        0,
        "a group never counted has no one online"
    );
    sessions
        .set_group_online(&node_a, group, 3, long)
        .await
        .expect("set a");
    sessions
        .set_group_online(&node_b, group, 4, long)
        .await
        .expect("set b");
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        7,
        "the nodes' counts are summed"
    );
    sessions
        .set_group_online(&node_a, group, 5, long)
        .await
        .expect("set a again");
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        9,
        "setting a node's count again replaces it"
    );
    let other_group = random_id();
    sessions
        .set_group_online(&node_a, other_group, 11, long)
        .await
        .expect("set other group");
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        9,
        "groups are counted apart"
    );
    sessions
        .set_group_online(&node_a, group, 0, long)
        .await
        .expect("clear a");
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        4,
        "a count of 0 removes the node's count"
    );
    // Clearing what is not there is not an error.
    sessions
        .set_group_online(&node_a, group, 0, long)
        .await
        .expect("clear a again");

    // A node that stops refreshing its count (it died) drops out of the sum.
    sessions
        .set_group_online(&node_a, group, 2, Duration::from_millis(300))
        .await
        .expect("set short");
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        6,
        "a short-lived count counts until it expires"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sessions.group_online(group).await.expect("count"),
        4,
        "an expired count is no longer summed"
    );
    // A node whose only count expires leaves its group at 0.
    let lone = random_id();
    sessions
        .set_group_online(&node_b, lone, 8, Duration::from_millis(300))
        .await
        .expect("set lone");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sessions.group_online(lone).await.expect("count"), 0);

    for (node, group) in [(&node_b, group), (&node_a, other_group)] {
        sessions
            .set_group_online(node, group, 0, long)
            .await
            .expect("clean up");
    }
    assert_eq!(sessions.group_online(group).await.expect("count"), 0);
    assert_eq!(sessions.group_online(other_group).await.expect("count"), 0);
}

/// Every event any run of this suite in this process has taken, by node, with how often.
/// The presence queue is shared, so a run racing this one may take this run's events; the
/// ledger lets each run check that all of its events were taken, each exactly once.
static TAKEN: Mutex<Option<HashMap<String, Vec<PresenceEvent>>>> = Mutex::new(None);

/// Take up to `max` events and enter them in [`TAKEN`], failing on any taken before.
async fn take_and_record(sessions: &dyn Sessions, max: usize) -> Vec<PresenceEvent> {
    let taken = sessions.take_presence(max).await.expect("take presence");
    assert!(
        taken.len() <= max,
        "take_presence({max}) returned {} events",
        taken.len()
    );
    let mut ledger = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let ledger = ledger.get_or_insert_with(HashMap::new);
    for event in &taken {
        let seen = ledger.entry(event.node.clone()).or_default();
        assert!(!seen.contains(event), "{event:?} was taken twice");
        seen.push(event.clone());
    }
    taken
}

/// How many of `mine` (all on one node) are in the ledger.
fn recorded(node: &str, mine: &[PresenceEvent]) -> usize {
    let ledger = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let seen = ledger.as_ref().and_then(|ledger| ledger.get(node));
    mine.iter()
        .filter(|event| seen.is_some_and(|seen| seen.contains(event)))
        .count()
}

async fn presence(sessions: &dyn Sessions) {
    // A node name of this run's own makes its events unique: nothing else pushes them.
    let node = format!("conformance-presence {}", random_id());
    let user = random_id();
    let mine: Vec<PresenceEvent> = (0..7)
        .map(|index| PresenceEvent {
            user,
            online: index % 2 == 0,
            node: node.clone(),
            at_ms: 1_700_000_000_000 + index,
        })
        .collect();
    for event in &mine {
        sessions.push_presence(event).await.expect("push presence");
    }
    assert!(
        sessions
            .take_presence(0)
            .await
            .expect("take none")
            .is_empty(),
        "take_presence(0) takes nothing"
    );

    // Two takers at once, as two task processes would be. The queue may hold other runs'
    // events before and among this run's, and other runs may take some of this run's.
    let taker = || async {
        let mut took = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while recorded(&node, &mine) < mine.len() {
            assert!(
                Instant::now() < deadline,
                "only {} of {} pushed presence events were ever taken",
                recorded(&node, &mine),
                mine.len()
            );
            let taken = take_and_record(sessions, 2).await;
            if taken.is_empty() {
                // Another taker may hold some it has popped but not yet recorded.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            took.extend(taken.into_iter().filter(|event| event.node == node));
        }
        took
    };
    let (first, second) = tokio::join!(taker(), taker());
    for took in [&first, &second] {
        let order: Vec<i64> = took.iter().map(|event| event.at_ms).collect();
        assert!(
            order.is_sorted(),
            "one taker gets the events oldest first: {order:?}"
        );
        for event in took.iter() {
            assert!(mine.contains(event), "{event:?} comes back as pushed");
        }
    }
    assert_eq!(
        recorded(&node, &mine),
        mine.len(),
        "every pushed event is taken exactly once"
    );
}
