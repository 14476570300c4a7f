//! Logic over the embedded adapters: a send that fails half-way (the recipient's copy logged,
//! the sender's not) and is retried with the same cid must exist once, under one id, in each
//! log; and requests naming no known target, audience or action are refused, not widened.

use natter_infra::store::{FriendStore, UserStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use natter_infra::embedded::{MemorySessions, open_sqlite};
use natter_infra::error::{InfraError, InfraResult};
use natter_infra::ids::IdGenerator;
use natter_infra::sql::SqlLog;
use natter_infra::sql::SqlStore;
use natter_infra::store::{FriendRequest, User};
use natter_infra::{MessageLog, Sessions};
use natter_logic::{LogicConfig, LogicService};
use natter_proto::ErrorCode;
use natter_proto::ObjectId;
use natter_proto::handle::TaskHandle;
use natter_proto::v1::logic_server::Logic;
use natter_proto::v1::{
    AckRequest, Acknowledgement, Message, SendBatchRequest, SendOutcome, SendRequest,
};
use tonic::Request;

/// A log that fails the next append to one user's inbox when armed, and can be slow; it
/// counts the reads of ends it is asked for.
struct FlakyLog {
    inner: SqlLog,
    fail_next_append_to: AtomicI64,
    append_delay_ms: AtomicI64,
    /// Calls of `end`, and of `ends`.
    end_reads: AtomicI64,
    ends_reads: AtomicI64,
}

#[async_trait]
impl MessageLog for FlakyLog {
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64> {
        if let ObjectId::User(user) = object
            && self
                .fail_next_append_to
                .compare_exchange(*user, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return Err(InfraError::Unavailable("the broker is restarting".into()));
        }
        let delay = self.append_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        self.inner.append(object, message).await
    }
    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        self.inner.read(object, after, max).await
    }
    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        self.end_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.end(object).await
    }
    async fn ends(&self, objects: &[ObjectId]) -> InfraResult<Vec<(ObjectId, u64)>> {
        self.ends_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.ends(objects).await
    }
    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        self.inner.objects().await
    }
}

fn user(id: i64) -> User {
    User {
        id,
        username: format!("user{id}"),
        nickname: format!("user{id}"),
        avatar: None,
        created_at: 1,
    }
}

/// Alice and Bob, friends, and a logic service over a flaky log.
async fn friends_and_logic(folder: &std::path::Path) -> (LogicService, Arc<FlakyLog>) {
    friends_and_logic_with(folder, Arc::new(MemorySessions::new())).await
}

/// Alice and Bob, friends, and a logic service over a flaky log and the given sessions.
async fn friends_and_logic_with(
    folder: &std::path::Path,
    sessions: Arc<MemorySessions>,
) -> (LogicService, Arc<FlakyLog>) {
    let database = open_sqlite(&folder.join("natter.db"))
        .await
        .expect("database");
    let store = Arc::new(SqlStore::new(database.clone()));
    let log = Arc::new(FlakyLog {
        inner: SqlLog::new(database).expect("log"),
        fail_next_append_to: AtomicI64::new(0),
        append_delay_ms: AtomicI64::new(0),
        end_reads: AtomicI64::new(0),
        ends_reads: AtomicI64::new(0),
    });
    let (alice, bob) = (ALICE, BOB);
    for id in [alice, bob] {
        store.create_user(&user(id), "hash").await.expect("user");
    }
    store
        .add_friend_request(&FriendRequest {
            from: alice,
            to: bob,
            note: String::new(),
            created_at: 1,
        })
        .await
        .expect("request");
    store
        .accept_friend_request(alice, bob, 2)
        .await
        .expect("accept");
    let logic = LogicService::new(
        LogicConfig::default(),
        store,
        Arc::clone(&log) as Arc<dyn MessageLog>,
        sessions,
        Arc::new(IdGenerator::new(1).expect("ids")),
        // This test reads the log directly: wakes go nowhere.
        TaskHandle::unreachable("task"),
    );
    (logic, log)
}

const ALICE: i64 = 11;
const BOB: i64 = 12;

fn send() -> SendRequest {
    SendRequest {
        sender: ALICE,
        cid: "c1".into(),
        target_kind: natter_proto::v1::TargetKind::User.into(),
        target_id: BOB,
        kind: "text".into(),
        body: "hello".into(),
        reply_to: 0,
        ..SendRequest::default()
    }
}

#[tokio::test]
async fn a_gathered_call_answers_each_send_as_it_would_be_answered_alone() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (logic, log) = friends_and_logic(folder.path()).await;
    let stranger = SendRequest {
        cid: "to-a-stranger".into(),
        target_id: 99,
        ..send()
    };
    let malformed = SendRequest {
        cid: "a-video".into(),
        kind: "video".into(),
        ..send()
    };
    let sends = vec![
        SendRequest {
            cid: "first".into(),
            ..send()
        },
        stranger.clone(),
        malformed.clone(),
        SendRequest {
            cid: "second".into(),
            ..send()
        },
    ];
    let outcomes = logic
        .send_batch(Request::new(SendBatchRequest { sends }))
        .await
        .expect("the call is answered")
        .into_inner()
        .outcomes;
    assert_eq!(outcomes.len(), 4, "one answer per send");
    let mut answers = outcomes.into_iter().map(SendOutcome::into_result);
    let first = answers.next().unwrap().expect("the first is sent");
    for (refused, alone) in [(stranger, answers.next()), (malformed, answers.next())] {
        let gathered = alone.unwrap().expect_err("refused in the call");
        let lone = logic
            .send(Request::new(refused.clone()))
            .await
            .expect_err("refused alone");
        assert_eq!(
            ErrorCode::of_status(&gathered),
            ErrorCode::of_status(&lone),
            "{}",
            refused.cid
        );
        assert_ne!(ErrorCode::of_status(&gathered), ErrorCode::Internal);
        assert_eq!(gathered.message(), lone.message());
    }
    let second = answers.next().unwrap().expect("the second is sent");
    assert_eq!(
        (first.cid.as_str(), second.cid.as_str()),
        ("first", "second")
    );
    let mut inbox: Vec<u64> = log
        .read(&ObjectId::User(BOB), 0, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|message| message.id)
        .collect();
    inbox.sort_unstable();
    let mut sent = vec![first.id, second.id];
    sent.sort_unstable();
    assert_eq!(inbox, sent, "the two sent, and nothing of the refused");
}

#[tokio::test]
async fn a_send_retried_after_a_half_written_failure_is_logged_once() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (logic, log) = friends_and_logic(folder.path()).await;
    let (alice, bob) = (ALICE, BOB);
    // The recipient's copy is written, then the log fails on the sender's.
    log.fail_next_append_to.store(alice, Ordering::SeqCst);
    assert!(
        logic.send(Request::new(send())).await.is_err(),
        "the half-written send fails"
    );
    let reply = logic
        .send(Request::new(send()))
        .await
        .expect("the retry succeeds")
        .into_inner();
    let again = logic
        .send(Request::new(send()))
        .await
        .expect("a second retry succeeds")
        .into_inner();
    assert_eq!(again, reply, "later retries get the same reply");

    let bob_inbox = log.read(&ObjectId::User(bob), 0, 10).await.expect("read");
    let alice_inbox = log.read(&ObjectId::User(alice), 0, 10).await.expect("read");
    assert_eq!(bob_inbox.len(), 1, "the recipient's copy is logged once");
    assert_eq!(alice_inbox.len(), 1, "the sender's copy is logged once");
    assert_eq!(
        bob_inbox[0].id, reply.id,
        "both copies carry the reply's id"
    );
    assert_eq!(alice_inbox[0].id, reply.id);
    assert_eq!(bob_inbox[0].ts, alice_inbox[0].ts);
    assert_eq!((reply.object.as_str(), reply.seq), ("user:11", 1));

    // A failure before anything is written leaves nothing behind: the retry starts afresh.
    log.fail_next_append_to.store(bob, Ordering::SeqCst);
    let fresh = SendRequest {
        cid: "c2".into(),
        ..send()
    };
    assert!(logic.send(Request::new(fresh.clone())).await.is_err());
    let retried = logic
        .send(Request::new(fresh))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(log.end(&ObjectId::User(bob)).await.expect("end"), 2);
    assert_eq!(log.end(&ObjectId::User(alice)).await.expect("end"), 2);
    assert_ne!(retried.id, reply.id);
}

#[tokio::test]
async fn a_send_whose_caller_goes_away_still_finishes() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (logic, log) = friends_and_logic(folder.path()).await;
    log.append_delay_ms.store(200, Ordering::SeqCst);
    // The caller gives up mid-send, as a killed connect node's call is dropped.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(50), logic.send(Request::new(send()))).await;
    assert!(abandoned.is_err(), "the caller went away first");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reply = logic
        .send(Request::new(send()))
        .await
        .expect("the retry gets the finished send, not in_progress")
        .into_inner();
    let bob_inbox = log.read(&ObjectId::User(BOB), 0, 10).await.expect("read");
    assert_eq!(bob_inbox.len(), 1, "written once");
    assert_eq!(bob_inbox[0].id, reply.id);
}

#[tokio::test]
async fn a_retry_the_memory_kept_only_as_a_fingerprint_gets_its_first_answer() {
    let folder = tempfile::tempdir().expect("temporary folder");
    // Two completed claims are kept exactly; older ones only as fingerprints.
    let (logic, log) = friends_and_logic_with(
        folder.path(),
        Arc::new(MemorySessions::with_exact_claims(2)),
    )
    .await;
    let mut first = Vec::new();
    for number in 0..6 {
        let request = SendRequest {
            cid: format!("c{number}"),
            ..send()
        };
        first.push(
            logic
                .send(Request::new(request))
                .await
                .expect("send")
                .into_inner(),
        );
    }
    for (number, reply) in first.iter().enumerate() {
        let retry = SendRequest {
            cid: format!("c{number}"),
            ..send()
        };
        let again = logic
            .send(Request::new(retry))
            .await
            .expect("retry")
            .into_inner();
        assert_eq!(&again, reply, "c{number}'s retry gets its first answer");
    }
    let bob_inbox = log.read(&ObjectId::User(BOB), 0, 20).await.expect("read");
    let alice_inbox = log.read(&ObjectId::User(ALICE), 0, 20).await.expect("read");
    assert_eq!(
        bob_inbox.len(),
        6,
        "each message is logged once for the recipient"
    );
    assert_eq!(alice_inbox.len(), 6, "and once for the sender");
}

#[tokio::test]
async fn a_send_left_pending_by_an_earlier_run_of_the_node_is_taken_over_not_refused() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let sessions = Arc::new(MemorySessions::new());
    let (logic, log) = friends_and_logic_with(folder.path(), Arc::clone(&sessions)).await;
    // An earlier run of logic-1 claimed the send and was killed before it finished.
    let key = format!("send:{ALICE}:c1");
    let ttl = Duration::from_secs(60);
    sessions
        .claim(&key, "logic-1#1-1", ttl)
        .await
        .expect("the dead run's claim");
    // Another process cannot tell that logic-1's run is gone: it refuses, for now.
    let elsewhere = logic.clone().on_node("logic-2");
    assert_eq!(
        invalid(elsewhere.send(Request::new(send())).await),
        natter_proto::ErrorCode::InProgress
    );
    // logic-1's next run knows it took the earlier run's place.
    let restarted = logic.on_node("logic-1");
    let reply = restarted
        .send(Request::new(send()))
        .await
        .expect("the next run takes the send over")
        .into_inner();
    let again = restarted
        .send(Request::new(send()))
        .await
        .expect("a later retry")
        .into_inner();
    assert_eq!(again, reply, "and answers its retries as usual");
    let bob_inbox = log.read(&ObjectId::User(BOB), 0, 10).await.expect("read");
    assert_eq!(bob_inbox.len(), 1, "written once");
}

/// The code a refused call was answered with.
fn invalid<Reply: std::fmt::Debug>(
    outcome: Result<Reply, tonic::Status>,
) -> natter_proto::ErrorCode {
    match outcome {
        Ok(reply) => panic!("accepted: {reply:?}"),
        Err(status) => natter_proto::ErrorCode::of_status(&status),
    }
}

#[tokio::test]
async fn unknown_targets_audiences_and_actions_are_refused_not_widened() {
    use natter_proto::ErrorCode;
    use natter_proto::v1::{ManageGroupRequest, SystemPushRequest, TypingRequest};

    let folder = tempfile::tempdir().expect("temp dir");
    let (logic, log) = friends_and_logic(folder.path()).await;
    // Task is unreachable here: an audience read as everyone would fail `unavailable` at the
    // push instead of `invalid_input` before it.
    for audience in [0, 4, 99] {
        let push = SystemPushRequest {
            audience,
            body: "to whom?".into(),
            ..SystemPushRequest::default()
        };
        let outcome = logic.system_push(Request::new(push)).await;
        assert_eq!(
            invalid(outcome),
            ErrorCode::InvalidInput,
            "audience {audience}"
        );
    }
    for target_kind in [0, 3, 99] {
        let mut unknown = send();
        unknown.target_kind = target_kind;
        let outcome = logic.send(Request::new(unknown)).await;
        assert_eq!(
            invalid(outcome),
            ErrorCode::InvalidInput,
            "target kind {target_kind}"
        );
        let typing = TypingRequest {
            sender: ALICE,
            target_kind,
            target_id: BOB,
        };
        let outcome = logic.typing(Request::new(typing)).await;
        assert_eq!(
            invalid(outcome),
            ErrorCode::InvalidInput,
            "target kind {target_kind}"
        );
    }
    let group = logic
        .create_group(Request::new(natter_proto::v1::CreateGroupRequest {
            owner: ALICE,
            name: "climbers".into(),
            avatar: String::new(),
            private: false,
        }))
        .await
        .expect("a group")
        .into_inner();
    for action in [0, 42, 99] {
        let manage = ManageGroupRequest {
            actor: ALICE,
            group_id: group.group_id,
            action,
            ..ManageGroupRequest::default()
        };
        let outcome = logic.manage_group(Request::new(manage)).await;
        assert_eq!(invalid(outcome), ErrorCode::InvalidInput, "action {action}");
    }
    assert_eq!(
        log.end(&ObjectId::User(BOB)).await.expect("end"),
        0,
        "nothing was written anywhere"
    );
}

#[tokio::test]
async fn a_gathered_ack_call_reads_the_ends_its_acks_need_at_once() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (logic, log) = friends_and_logic(folder.path()).await;
    // Written behind logic's back: it knows neither inbox's end.
    for (owner, id) in [(ALICE, 1), (BOB, 2)] {
        let message = Message {
            id,
            sender: ALICE,
            kind: "text".into(),
            body: "hi".into(),
            ..Message::default()
        };
        log.inner
            .append(&ObjectId::User(owner), &message)
            .await
            .expect("append");
    }
    let ack = |user_id: i64, owner: i64, seq: u64| Acknowledgement {
        user_id,
        object: format!("user:{owner}"),
        seq,
    };
    let codes = |acks: Vec<Acknowledgement>| {
        let logic = &logic;
        async move {
            let reply = logic
                .ack(Request::new(AckRequest { acks }))
                .await
                .expect("a gathered call is answered")
                .into_inner();
            reply
                .outcomes
                .into_iter()
                .map(|outcome| outcome.code)
                .collect::<Vec<_>>()
        }
    };

    let answered = codes(vec![
        ack(ALICE, ALICE, 1),
        ack(BOB, BOB, 1),
        ack(ALICE, BOB, 1),
    ])
    .await;
    assert_eq!(answered, ["", "", ErrorCode::Forbidden.as_str()]);
    // Both inboxes' ends in one read; nobody else's inbox read at all.
    assert_eq!(log.ends_reads.load(Ordering::SeqCst), 1);
    assert_eq!(log.end_reads.load(Ordering::SeqCst), 0);

    // An ack past the end is still refused, the end read again to be sure.
    let answered = codes(vec![ack(BOB, BOB, 9), ack(ALICE, ALICE, 1)]).await;
    assert_eq!(answered, [ErrorCode::BadCursor.as_str(), ""]);
    assert_eq!(log.end_reads.load(Ordering::SeqCst), 1);
}
