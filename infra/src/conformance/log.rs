//! The `MessageLog` conformance suite.

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::random_id;
use crate::log::MessageLog;

fn message(body: &str) -> Message {
    Message {
        id: random_id() as u64,
        sender: 7,
        peer: 8,
        kind: "text".into(),
        body: body.into(),
        ts: 1_700_000_000_000,
        cid: "cid".into(),
        target_kind: "user".into(),
        target_id: 8,
        // Ignored by append: the log assigns them.
        object: "user:1".into(),
        seq: 999,
    }
}

/// Run every `MessageLog` check.
pub async fn run(log: &dyn MessageLog) {
    let first = ObjectId::User(random_id());
    let second = ObjectId::Group(random_id());
    assert_eq!(log.end(&first).await.expect("end"), 0);
    assert!(log.read(&first, 0, 10).await.expect("read").is_empty());

    // Appends number each object on its own: 1, 2, 3, ...
    let mut written = Vec::new();
    for number in 1..=5u64 {
        let appended = message(&format!("first {number}"));
        assert_eq!(log.append(&first, &appended).await.expect("append"), number);
        written.push(appended);
        let other = message(&format!("second {number}"));
        assert_eq!(log.append(&second, &other).await.expect("append"), number);
    }
    assert_eq!(log.end(&first).await.expect("end"), 5);

    let read = log.read(&first, 0, 10).await.expect("read");
    assert_eq!(read.len(), 5);
    for (position, (got, sent)) in read.iter().zip(&written).enumerate() {
        assert_eq!(got.seq, position as u64 + 1);
        assert_eq!(got.object, first.to_string());
        assert_eq!(
            (got.id, got.sender, got.peer),
            (sent.id, sent.sender, sent.peer)
        );
        assert_eq!(
            (&got.body, &got.kind, &got.cid),
            (&sent.body, &sent.kind, &sent.cid)
        );
        assert_eq!(
            (got.ts, &got.target_kind, got.target_id),
            (sent.ts, &sent.target_kind, sent.target_id)
        );
    }
    let middle = log.read(&first, 2, 2).await.expect("read middle");
    assert_eq!(middle.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert!(
        log.read(&first, 5, 10)
            .await
            .expect("read past end")
            .is_empty()
    );

    let objects = log.objects().await.expect("objects");
    assert!(
        objects.contains(&first) && objects.contains(&second),
        "objects lists both"
    );

    // Appends racing on one object still get distinct, gap-free seqs.
    let raced = ObjectId::User(random_id());
    let (a, b, c) = tokio::join!(
        append_many(log, &raced, 20),
        append_many(log, &raced, 20),
        append_many(log, &raced, 20)
    );
    let mut seqs: Vec<u64> = a.into_iter().chain(b).chain(c).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=60).collect::<Vec<u64>>());
    assert_eq!(log.end(&raced).await.expect("end"), 60);
}

async fn append_many(log: &dyn MessageLog, object: &ObjectId, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    for number in 0..count {
        let appended = message(&format!("raced {number}"));
        seqs.push(log.append(object, &appended).await.expect("append"));
    }
    seqs
}
