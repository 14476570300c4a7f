//! `natter serve` killed with SIGKILL in the middle of a burst of sends: after a restart on
//! the same data, every message that was answered `sent` is there, once, at the seq it was
//! answered with, and the recipient receives it; a retry of any send of the burst with its cid
//! gets the first answer instead of making a second message.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use natter::client::{ApiClient, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};

use crate::harness::sync;
use crate::process::{connected, free_port, serve, wait_until_up};

const BURST: usize = 300;

/// Sends the whole burst to `to` without waiting for answers: cids `burst-N`.
async fn send_burst(socket: &mut WsClient, to: i64) {
    for number in 0..BURST {
        let frame = ClientFrame::Send {
            cid: format!("burst-{number}"),
            to: format!("user:{to}"),
            kind: "text".into(),
            body: format!("burst message {number}"),
            reply_to: None,
        };
        socket.send(&frame).await.expect("send");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_answered_sent_survives_a_kill_during_a_burst() {
    let data = tempfile::tempdir().expect("data folder");
    let (api_port, ws_port) = (free_port(), free_port());
    let api = ApiClient::new(format!("http://127.0.0.1:{api_port}"));
    let ws_url = format!("ws://127.0.0.1:{ws_port}/ws");
    let mut server = serve(data.path(), api_port, ws_port);
    wait_until_up(&api).await;
    let alice = api
        .register("crashalice", "correct horse battery")
        .await
        .expect("alice");
    let bob = api
        .register("crashbob", "correct horse battery")
        .await
        .expect("bob");
    api.befriend(&alice, &bob).await.expect("friends");

    let mut sender = connected(&ws_url, &alice).await;
    sync(&mut sender, BTreeMap::new()).await;
    send_burst(&mut sender, bob.user_id).await;
    // Kill the server once a third of the burst is answered, with the rest still in flight.
    let mut answered: HashMap<String, (String, u64)> = HashMap::new();
    while answered.len() < BURST / 3 {
        match sender.next(Duration::from_secs(20)).await.expect("frames") {
            Some(ServerFrame::Sent { cid, id, seq, .. }) => {
                answered.insert(cid, (id, seq));
            }
            Some(_) => {}
            None => panic!("closed before the kill"),
        }
    }
    server.kill();
    // Answers already on the wire were sent before the kill: they count too.
    while let Ok(Some(frame)) = sender.next(Duration::from_millis(200)).await {
        if let ServerFrame::Sent { cid, id, seq, .. } = frame {
            answered.insert(cid, (id, seq));
        }
    }
    assert!(answered.len() < BURST, "the kill came during the burst");

    let mut server = serve(data.path(), api_port, ws_port);
    wait_until_up(&api).await;
    let mut recipient = connected(&ws_url, &bob).await;
    let received = sync(&mut recipient, BTreeMap::new()).await;
    let mut own = connected(&ws_url, &alice).await;
    let own_copies = sync(&mut own, BTreeMap::new()).await;

    // The client retries the whole burst with the same cids, as it would after losing its
    // connection: what was stored, answered or not, is answered from the history (the same
    // id and seq), not stored again; what was not stored now is, once.
    send_burst(&mut own, bob.user_id).await;
    let mut retried: HashMap<String, (String, u64)> = HashMap::new();
    while retried.len() < BURST {
        match own.next(Duration::from_secs(20)).await.expect("frames") {
            Some(ServerFrame::Sent { cid, id, seq, .. }) => {
                retried.insert(cid, (id, seq));
            }
            Some(ServerFrame::Error { code, message, .. }) => {
                panic!("a retry was refused: {code} {message}")
            }
            Some(_) => {}
            None => panic!("closed during the retries"),
        }
    }
    for (cid, first) in &answered {
        assert_eq!(
            retried.get(cid),
            Some(first),
            "{cid} was answered before the kill; its retry after the restart must get that answer"
        );
    }
    for message in own_copies
        .iter()
        .filter(|message| message.cid.starts_with("burst-"))
    {
        let cid = message.cid.clone();
        assert_eq!(
            retried.get(&cid).map(|(id, _)| id),
            Some(&message.id),
            "{cid} was stored before the kill, unanswered or not; its retry must get that message"
        );
    }
    let mut after_retries = connected(&ws_url, &bob).await;
    let all_received = sync(&mut after_retries, BTreeMap::new()).await;
    let mut bodies: HashMap<&str, usize> = HashMap::new();
    for message in &all_received {
        *bodies.entry(message.body.as_str()).or_default() += 1;
    }
    assert_eq!(bodies.len(), BURST, "every message of the burst arrived");
    assert!(
        bodies.values().all(|count| *count == 1),
        "no retry made a second message: {:?}",
        bodies
            .iter()
            .filter(|(_, count)| **count > 1)
            .collect::<Vec<_>>()
    );

    server.kill();

    let mut received_ids: HashMap<&str, usize> = HashMap::new();
    for message in &received {
        *received_ids.entry(message.id.as_str()).or_default() += 1;
    }
    let own_by_seq: HashMap<u64, &str> = own_copies
        .iter()
        .map(|message| (message.seq, message.id.as_str()))
        .collect();
    for (cid, (id, seq)) in &answered {
        assert_eq!(
            received_ids.get(id.as_str()),
            Some(&1),
            "{cid} was answered sent but the recipient has it {:?} times",
            received_ids.get(id.as_str())
        );
        assert_eq!(
            own_by_seq.get(seq),
            Some(&id.as_str()),
            "{cid}: the sender's copy is not at the answered seq"
        );
    }
    let seqs: Vec<u64> = received.iter().map(|message| message.seq).collect();
    let expected: Vec<u64> = (1..=received.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "the recipient's inbox is gap-free after the restart"
    );
}
