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
        ..Message::default()
    }
}

/// Run every `MessageLog` check.
pub async fn run(log: &dyn MessageLog) {
    let first = ObjectId::User(random_id());
    let second = ObjectId::Group(random_id());
    assert_eq!(
        log.end(&first).await.expect("end"),
        0,
        "end() of an unknown object is 0"
    );
    assert!(
        log.read(&first, 0, 10).await.expect("read").is_empty(),
        "an unknown object reads empty"
    );

    // Appends number each object on its own: 1, 2, 3, ...
    let mut written = Vec::new();
    let mut written_second = Vec::new();
    for number in 1..=5u64 {
        let appended = message(&format!("first {number}"));
        assert_eq!(
            log.append(&first, &appended).await.expect("append"),
            number,
            "seqs start at 1 and count up per object"
        );
        written.push(appended);
        let other = message(&format!("second {number}"));
        assert_eq!(
            log.append(&second, &other).await.expect("append"),
            number,
            "another object's appends do not move this object's seqs"
        );
        written_second.push(other);
    }
    assert_eq!(
        log.end(&first).await.expect("end"),
        5,
        "end() is the last seq"
    );
    assert_eq!(
        log.end(&second).await.expect("end"),
        5,
        "end() is the last seq"
    );

    let read = log.read(&first, 0, 10).await.expect("read");
    assert_eq!(seqs(&read), vec![1, 2, 3, 4, 5], "read() is in order");
    check_payloads(&read, &written, &first);
    let read_second = log.read(&second, 0, 10).await.expect("read");
    assert_eq!(
        seqs(&read_second),
        vec![1, 2, 3, 4, 5],
        "read() is in order"
    );
    check_payloads(&read_second, &written_second, &second);

    let middle = log.read(&first, 2, 2).await.expect("read middle");
    assert_eq!(
        seqs(&middle),
        vec![3, 4],
        "read() starts after `after`, caps at `max`"
    );
    assert_eq!(middle[0].body, "first 3");
    let head = log.read(&first, 0, 2).await.expect("read head");
    assert_eq!(seqs(&head), vec![1, 2], "read() caps at `max`");
    let tail = log.read(&first, 3, 10).await.expect("read tail");
    assert_eq!(seqs(&tail), vec![4, 5], "read() stops at the end");
    assert!(
        log.read(&first, 5, 10)
            .await
            .expect("read at end")
            .is_empty(),
        "reading after the last seq is empty"
    );
    assert!(
        log.read(&first, 50, 10)
            .await
            .expect("read past end")
            .is_empty(),
        "reading far past the end is empty"
    );

    // Appends racing on one object still get distinct, gap-free seqs.
    let raced = ObjectId::User(random_id());
    let (a, b, c) = tokio::join!(
        append_many(log, &raced, 20),
        append_many(log, &raced, 20),
        append_many(log, &raced, 20)
    );
    let mut raced_seqs: Vec<u64> = a.into_iter().chain(b).chain(c).collect();
    raced_seqs.sort_unstable();
    assert_eq!(
        raced_seqs,
        (1..=60).collect::<Vec<u64>>(),
        "concurrent appends get gap-free seqs without duplicates"
    );
    assert_eq!(log.end(&raced).await.expect("end"), 60);
    let raced_read = log.read(&raced, 0, 100).await.expect("read raced");
    assert_eq!(
        seqs(&raced_read),
        (1..=60).collect::<Vec<u64>>(),
        "every raced append is readable, in order"
    );
    let mut ids: Vec<u64> = raced_read.iter().map(|message| message.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "each raced message is stored exactly once");

    let objects = log.objects().await.expect("objects");
    for appended in [&first, &second, &raced] {
        assert!(
            objects.contains(appended),
            "objects() lists every object appended to; {appended} is missing"
        );
    }
    assert_eq!(
        objects.iter().filter(|known| **known == first).count(),
        1,
        "objects() lists each object once"
    );
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|message| message.seq).collect()
}

/// The read messages carry what was appended, with `object` and `seq` filled in by the log.
fn check_payloads(read: &[Message], written: &[Message], object: &ObjectId) {
    assert_eq!(read.len(), written.len());
    for (position, (got, sent)) in read.iter().zip(written).enumerate() {
        let expected = Message {
            object: object.to_string(),
            seq: position as u64 + 1,
            ..sent.clone()
        };
        assert_eq!(
            got,
            &expected,
            "the message at seq {} comes back as appended, with object and seq set",
            position + 1
        );
    }
}

async fn append_many(log: &dyn MessageLog, object: &ObjectId, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    for number in 0..count {
        let appended = message(&format!("raced {number}"));
        seqs.push(log.append(object, &appended).await.expect("append"));
    }
    seqs
}
