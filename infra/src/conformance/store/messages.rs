//! The `Store` conformance suite: stored messages, history pages, cursors, read state and recall.

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::super::random_id;
use super::message;
use crate::store::{Group, RECALL_KIND, RECALLED_KIND, Reaction, Store};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    messages(store).await;
    cursors(store).await;
    conversations(store).await;
    read_state(store).await;
    recall(store).await;
    by_cid(store).await;
    epoch(store).await;
    receipts(store).await;
    edits_and_reactions(store).await;
    mutes(store).await;
}

/// A mute is replaced by the newest choice and removed by unmuting.
async fn mutes(store: &dyn Store) {
    let user = random_id();
    store
        .set_mute(user, "group:1", Some(0))
        .await
        .expect("mute");
    store
        .set_mute(user, "user:2", Some(50))
        .await
        .expect("mute");
    store
        .set_mute(user, "user:2", Some(90))
        .await
        .expect("again");
    let mut found = store.mutes(user).await.expect("mutes");
    found.sort();
    assert_eq!(
        found,
        [("group:1".to_string(), 0), ("user:2".to_string(), 90)]
    );
    store.set_mute(user, "group:1", None).await.expect("unmute");
    assert_eq!(store.mutes(user).await.expect("mutes").len(), 1);
    assert!(store.mutes(random_id()).await.expect("none").is_empty());
}

/// Edits rewrite every copy of a text message; reactions are a set per (message, user, emoji);
/// the events about them are neither a conversation's last message nor unread.
async fn edits_and_reactions(store: &dyn Store) {
    let (sender, recipient) = (random_id(), random_id());
    let original = copy(&ObjectId::User(recipient), 1, sender, sender, 10);
    put_both_copies(store, &original, sender, recipient).await;
    assert_eq!(
        store
            .mark_edited(original.id, "better words", 20)
            .await
            .expect("edit"),
        2
    );
    for copy in store.message_copies(original.id).await.expect("copies") {
        assert_eq!((copy.body.as_str(), copy.edited_at), ("better words", 20));
    }
    let image = Message {
        kind: "image".into(),
        ..copy(&ObjectId::User(recipient), 2, sender, sender, 11)
    };
    store
        .put_messages(std::slice::from_ref(&image))
        .await
        .expect("put");
    assert_eq!(
        store.mark_edited(image.id, "text", 30).await.expect("edit"),
        0,
        "only text is edited"
    );

    let reaction = |user: i64, emoji: &str| Reaction {
        message_id: original.id,
        user_id: user,
        emoji: emoji.into(),
        ts: 40,
    };
    assert!(
        store
            .set_reaction(&reaction(recipient, "👍"), true)
            .await
            .expect("add")
    );
    assert!(
        !store
            .set_reaction(&reaction(recipient, "👍"), true)
            .await
            .expect("again"),
        "the same reaction twice is one"
    );
    assert!(
        store
            .set_reaction(&reaction(sender, "👍"), true)
            .await
            .expect("add")
    );
    assert!(
        store
            .set_reaction(&reaction(recipient, "🎉"), true)
            .await
            .expect("add")
    );
    // Many messages at once, more than one statement reads.
    let mut asked: Vec<u64> = (0..120).map(|_| random_id() as u64).collect();
    asked.push(original.id);
    let found = store.reactions(&asked).await.expect("reactions");
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|found| found.message_id == original.id));
    assert!(
        store
            .set_reaction(&reaction(recipient, "🎉"), false)
            .await
            .expect("remove")
    );
    assert!(
        !store
            .set_reaction(&reaction(recipient, "🎉"), false)
            .await
            .expect("again")
    );
    assert_eq!(
        store
            .reactions(&[original.id])
            .await
            .expect("reactions")
            .len(),
        2
    );

    // An event about the message arrives after it: the list still shows the message.
    let event = Message {
        kind: natter_proto::frame::REACTION_KIND.into(),
        body: "👍".into(),
        ref_id: original.id,
        ..copy(&ObjectId::User(sender), 3, recipient, recipient, 50)
    };
    store.put_messages(&[event]).await.expect("put");
    let list = store.conversations(sender, 10).await.expect("list");
    let with_recipient = list
        .iter()
        .find(|conversation| conversation.key == format!("user:{recipient}"))
        .expect("the conversation");
    assert_eq!(
        with_recipient.last.as_ref().map(|last| last.id),
        Some(original.id)
    );
    assert_eq!(with_recipient.unread, 0, "a reaction is not unread");
}

/// Receipts are derived from what is stored: each sender's newest authored message in a range,
/// a sender's newest message to a peer below a cursor, and who read a group's message.
async fn receipts(store: &dyn Store) {
    let (me, ada, bob) = (random_id(), random_id(), random_id());
    let inbox = ObjectId::User(me);
    let recall = Message {
        kind: RECALL_KIND.into(),
        ..copy(&inbox, 5, bob, bob, 150)
    };
    let messages = [
        copy(&inbox, 1, ada, ada, 100),
        copy(&inbox, 2, me, ada, 110),
        copy(&inbox, 3, ada, ada, 120),
        copy(&inbox, 4, bob, bob, 130),
        recall,
        copy(&inbox, 6, ada, ada, 160),
    ];
    store.put_messages(&messages).await.expect("put");
    let mut newest = store
        .newest_per_sender(&inbox, 0, 5)
        .await
        .expect("newest per sender");
    newest.sort_by_key(|found| found.seq);
    let summary: Vec<(i64, u64, u64)> = newest
        .iter()
        .map(|found| (found.sender, found.id, found.seq))
        .collect();
    assert_eq!(
        summary,
        [
            (me, messages[1].id, 2),
            (ada, messages[2].id, 3),
            (bob, messages[3].id, 4)
        ],
        "each sender's newest authored message in (0, 5]; the recall is not one"
    );
    let later = store
        .newest_per_sender(&inbox, 3, 6)
        .await
        .expect("a later range");
    let mut later_seqs: Vec<u64> = later.iter().map(|found| found.seq).collect();
    later_seqs.sort_unstable();
    assert_eq!(later_seqs, [4, 6], "bob's 4 and ada's 6");
    assert!(
        store
            .newest_per_sender(&inbox, 6, 6)
            .await
            .expect("empty")
            .is_empty()
    );
    assert_eq!(
        store
            .newest_from(&inbox, ada, ada, 5)
            .await
            .expect("newest from ada"),
        Some(messages[2].id),
        "ada's newest at or below 5, not my own message to her"
    );
    assert_eq!(
        store.newest_from(&inbox, ada, ada, 0).await.expect("none"),
        None
    );
    // The senders' own copies, found by id: ada's of her message 3, bob's of his 4; my own
    // message and the recall are not receipts for anyone.
    let own = |message: &Message, sender: i64, seq: u64| Message {
        object: ObjectId::User(sender).to_string(),
        seq,
        peer: me,
        ..message.clone()
    };
    store
        .put_messages(&[own(&messages[2], ada, 31), own(&messages[3], bob, 41)])
        .await
        .expect("put");
    let mut copies = store.newest_own_copies(me, 0, 5).await.expect("own copies");
    copies.sort_unstable();
    let mut expected = vec![(ada, 31), (bob, 41)];
    expected.sort_unstable();
    assert_eq!(copies, expected);
    assert!(
        store
            .newest_own_copies(me, 5, 5)
            .await
            .expect("empty")
            .is_empty()
    );

    let conversation = format!("group:{}", random_id());
    for (reader, seq) in [(me, 3), (ada, 7), (bob, 2)] {
        store
            .advance_read_cursor(reader, &conversation, seq)
            .await
            .expect("read");
    }
    let readers = store
        .readers(&conversation, 3, me, 10)
        .await
        .expect("readers");
    assert_eq!(
        readers.count, 1,
        "ada read past 3; me is excluded, bob is short"
    );
    assert_eq!(readers.users, vec![ada]);
    let everyone = store
        .readers(&conversation, 2, 0, 1)
        .await
        .expect("readers");
    assert_eq!(everyone.count, 3, "all three reached 2");
    assert_eq!(
        everyone.users.len(),
        1,
        "the list is limited, the count is not"
    );
}

/// The history's epoch is named once and then stays.
async fn epoch(store: &dyn Store) {
    let first = store.history_epoch().await.expect("epoch");
    assert!(!first.is_empty());
    assert_eq!(store.history_epoch().await.expect("epoch again"), first);
}

async fn messages(store: &dyn Store) {
    let object = ObjectId::User(random_id());
    let batch: Vec<Message> = (1..=5)
        .map(|seq| message(&object, seq, &format!("m{seq}")))
        .collect();
    store.put_messages(&batch).await.expect("put");
    // Another object with the same seqs must not mix in.
    let neighbour = ObjectId::Group(random_id());
    let theirs: Vec<Message> = (1..=3)
        .map(|seq| message(&neighbour, seq, &format!("n{seq}")))
        .collect();
    store.put_messages(&theirs).await.expect("put neighbour");
    // The same (object, seq) again, with another body: the first stays.
    store
        .put_messages(&[message(&object, 3, "rewritten")])
        .await
        .expect("putting a stored (object, seq) again is not an error");
    // And a whole batch again (a redelivery) changes nothing either.
    store
        .put_messages(&batch)
        .await
        .expect("putting a stored batch again is not an error");

    let newest = store
        .messages_before(&object, u64::MAX, 10)
        .await
        .expect("history");
    assert_eq!(
        seqs(&newest),
        vec![5, 4, 3, 2, 1],
        "messages_before is newest first, one per (object, seq)"
    );
    assert_eq!(
        newest[2].body, "m3",
        "the first message stored at a seq is kept"
    );
    assert_eq!(newest[0], batch[4], "every field round-trips");
    assert_eq!(newest[4], batch[0], "every field round-trips");
    let page = store.messages_before(&object, 4, 2).await.expect("page");
    assert_eq!(
        seqs(&page),
        vec![3, 2],
        "`before` is exclusive, `limit` caps"
    );
    let past_end = store.messages_before(&object, 6, 3).await.expect("page");
    assert_eq!(seqs(&past_end), vec![5, 4, 3], "`before` past the end");
    assert!(
        store
            .messages_before(&object, 1, 10)
            .await
            .expect("before the first")
            .is_empty(),
        "nothing is before seq 1"
    );
    let neighbours = store
        .messages_before(&neighbour, u64::MAX, 10)
        .await
        .expect("neighbour history");
    assert_eq!(seqs(&neighbours), vec![3, 2, 1], "objects are kept apart");
    assert_eq!(neighbours[0].body, "n3");
    let other = ObjectId::Group(random_id());
    assert!(
        store
            .messages_before(&other, u64::MAX, 10)
            .await
            .expect("empty")
            .is_empty(),
        "an unknown object has no history"
    );
}

async fn cursors(store: &dyn Store) {
    let user_id = random_id();
    let object = ObjectId::User(random_id());
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        0,
        "an unset ack cursor is 0"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 4)
            .await
            .expect("advance"),
        4,
        "advancing returns the new value"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 2)
            .await
            .expect("back"),
        4,
        "the ack cursor never moves back; the stored value is returned"
    );
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        4,
        "never back"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 4)
            .await
            .expect("same"),
        4,
        "advancing to the same value keeps it"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 11)
            .await
            .expect("forward"),
        11,
        "the ack cursor moves forward"
    );
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        11
    );
    assert_eq!(
        store
            .ack_cursor(random_id(), &object)
            .await
            .expect("other user"),
        0,
        "ack cursors are per user"
    );
    assert_eq!(
        store
            .ack_cursor(user_id, &ObjectId::Group(random_id()))
            .await
            .expect("other object"),
        0,
        "ack cursors are per object"
    );

    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        0,
        "an unset delivered cursor is 0"
    );
    store.set_delivered_cursor(&object, 9).await.expect("set");
    assert_eq!(store.delivered_cursor(&object).await.expect("delivered"), 9);
    store
        .set_delivered_cursor(&object, 3)
        .await
        .expect("set back");
    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        9,
        "the delivered cursor never moves back"
    );
    store
        .set_delivered_cursor(&object, 12)
        .await
        .expect("set forward");
    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        12,
        "the delivered cursor moves forward"
    );
    assert_eq!(
        store
            .delivered_cursor(&ObjectId::Group(random_id()))
            .await
            .expect("other object"),
        0,
        "delivered cursors are per object"
    );
}

/// A one-to-one conversation is the inbox copies with one peer, paged newest first.
async fn conversations(store: &dyn Store) {
    let (me, ada, bob) = (random_id(), random_id(), random_id());
    let inbox = ObjectId::User(me);
    let copies: Vec<Message> = (1..=9)
        .map(|seq| Message {
            // Ada on odd seqs, Bob on even ones, interleaved as they would be.
            peer: if seq % 2 == 1 { ada } else { bob },
            ..message(&inbox, seq, &format!("m{seq}"))
        })
        .collect();
    store.put_messages(&copies).await.expect("put");
    let newest = store
        .conversation_before(me, ada, u64::MAX, 3)
        .await
        .expect("page");
    assert_eq!(seqs(&newest), vec![9, 7, 5], "only Ada's, newest first");
    let older = store
        .conversation_before(me, ada, 5, 10)
        .await
        .expect("next page");
    assert_eq!(seqs(&older), vec![3, 1], "the page before seq 5");
    let bobs = store
        .conversation_before(me, bob, u64::MAX, 10)
        .await
        .expect("bob");
    assert_eq!(seqs(&bobs), vec![8, 6, 4, 2]);
    let strangers = store
        .conversation_before(random_id(), ada, u64::MAX, 10)
        .await
        .expect("another inbox");
    assert!(strangers.is_empty(), "another user's inbox is not mine");
}

/// The conversation list: newest first, with last messages and unread counts that follow
/// the read cursors.
async fn read_state(store: &dyn Store) {
    let (me, ada, bob) = (random_id(), random_id(), random_id());
    let inbox = ObjectId::User(me);
    store
        .put_messages(&[
            copy(&inbox, 1, ada, ada, 100),
            copy(&inbox, 2, me, ada, 110),
            copy(&inbox, 3, bob, bob, 120),
            copy(&inbox, 4, ada, ada, 130),
            copy(&inbox, 5, ada, ada, 140),
        ])
        .await
        .expect("put");
    let group = random_id();
    store
        .create_group(&Group {
            id: group,
            name: "Read state".into(),
            owner: me,
            avatar: None,
            created_at: 1,
            private: false,
        })
        .await
        .expect("group");
    let group_log = ObjectId::Group(group);
    store
        .put_messages(&[copy(&group_log, 1, bob, group, 125)])
        .await
        .expect("put");
    let list = store.conversations(me, 10).await.expect("list");
    let summary: Vec<(String, u64, u64)> = list
        .iter()
        .map(|conversation| {
            let seq = conversation.last.as_ref().map_or(0, |last| last.seq);
            (conversation.key.clone(), seq, conversation.unread)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (format!("user:{ada}"), 5, 3),
            (format!("group:{group}"), 1, 1),
            (format!("user:{bob}"), 3, 1),
        ],
        "newest first; my own message is not unread"
    );
    assert_eq!(
        store
            .advance_read_cursor(me, &format!("user:{ada}"), 4)
            .await
            .expect("read"),
        4
    );
    assert_eq!(
        store
            .advance_read_cursor(me, &format!("user:{ada}"), 1)
            .await
            .expect("never back"),
        4
    );
    let list = store.conversations(me, 2).await.expect("list");
    assert_eq!(list.len(), 2, "the limit holds");
    assert_eq!((list[0].read, list[0].unread), (4, 1));
    assert_eq!(
        store
            .read_cursor(me, &format!("user:{ada}"))
            .await
            .expect("cursor"),
        4
    );
    assert_eq!(store.read_cursor(me, "user:1").await.expect("none"), 0);
    assert!(
        store
            .conversations(random_id(), 10)
            .await
            .expect("empty")
            .is_empty()
    );
}

/// Recall finds every copy by id and empties them; neither is counted unread.
async fn recall(store: &dyn Store) {
    let (sender, recipient) = (random_id(), random_id());
    let original = copy(&ObjectId::User(recipient), 1, sender, sender, 10);
    put_both_copies(store, &original, sender, recipient).await;
    let copies = store.message_copies(original.id).await.expect("copies");
    assert_eq!(copies.len(), 2);
    assert_eq!(store.mark_recalled(original.id).await.expect("recall"), 2);
    for copy in store.message_copies(original.id).await.expect("copies") {
        assert_eq!(
            (copy.kind.as_str(), copy.body.as_str()),
            (RECALLED_KIND, "")
        );
    }
    let notice = Message {
        id: random_id() as u64,
        seq: 2,
        kind: RECALL_KIND.into(),
        body: original.id.to_string(),
        ..original.clone()
    };
    store.put_messages(&[notice]).await.expect("put");
    let list = store.conversations(recipient, 10).await.expect("list");
    assert_eq!(
        list[0].unread, 0,
        "neither a recalled message nor its recall is unread"
    );
    assert!(
        store
            .message_copies(random_id() as u64)
            .await
            .expect("none")
            .is_empty()
    );
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|message| message.seq).collect()
}

/// A message for a conversation list check.
/// A retried send finds its earlier copies by sender and cid, within the window asked for;
/// and the newest message below an id is found by the id index.
async fn by_cid(store: &dyn Store) {
    let (sender, recipient) = (random_id(), random_id());
    let mut original = copy(&ObjectId::User(recipient), 1, sender, sender, 5_000);
    original.cid = "retry-me".into();
    // Above every random id the other checks use, so it is the newest below the next id.
    original.id = (i64::MAX - random_id()) as u64;
    put_both_copies(store, &original, sender, recipient).await;
    let found = store
        .copies_by_cid(sender, "retry-me", 5_000)
        .await
        .expect("by cid");
    assert_eq!(found.len(), 2, "both copies: {found:?}");
    assert!(found.iter().all(|copy| copy.id == original.id));
    assert!(
        store
            .copies_by_cid(sender, "retry-me", 5_001)
            .await
            .expect("by cid")
            .is_empty(),
        "a copy older than the window is not found"
    );
    assert!(
        store
            .copies_by_cid(recipient, "retry-me", 0)
            .await
            .expect("by cid")
            .is_empty(),
        "another sender's cid is another cid"
    );
    assert_eq!(
        store
            .newest_message_before(original.id + 1)
            .await
            .expect("newest"),
        Some(5_000)
    );
    assert_eq!(store.newest_message_before(0).await.expect("none"), None);
}

/// Stores a one-to-one message as sent: `original` (the recipient's copy) and the sender's.
async fn put_both_copies(store: &dyn Store, original: &Message, sender: i64, recipient: i64) {
    let own = Message {
        object: ObjectId::User(sender).to_string(),
        peer: recipient,
        ..original.clone()
    };
    store
        .put_messages(&[original.clone(), own])
        .await
        .expect("put");
}

fn copy(object: &ObjectId, seq: u64, sender: i64, peer: i64, ts: i64) -> Message {
    Message {
        id: random_id() as u64,
        object: object.to_string(),
        seq,
        sender,
        peer,
        kind: "text".into(),
        body: format!("m{seq}"),
        ts,
        cid: String::new(),
        target_kind: "user".into(),
        target_id: peer,
        ..Message::default()
    }
}
