//! `natter-bench relay`: a plain tokio-tungstenite relay that speaks the part of natter's
//! protocol `direct` uses (sync, send, sent, msg) and keeps nothing. Driven by the same
//! generator on the same machine, it is the floor: what one core spends per message on the
//! WebSocket and TCP work alone, without durability, receipts or cursors. Figures taken on
//! different machines compare through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures_util::{Sink, SinkExt, StreamExt};
use natter_proto::ObjectId;
use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// Options of `natter-bench relay`.
#[derive(Debug, clap::Args)]
pub struct RelayOptions {
    /// Where to listen (the address `direct` connects to by default).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The sessions `seed` wrote: the relay knows a connection's user by its token.
    #[arg(long)]
    pub sessions: PathBuf,
}

/// Frames a connection may have waiting before the relay drops what comes next for it.
const QUEUE_FRAMES: usize = 1024;

/// What every connection shares: who is online, and the counter that numbers messages.
struct Relay {
    /// User id by access token.
    users: HashMap<String, i64>,
    /// Each online user's outbound queue.
    online: Mutex<HashMap<i64, mpsc::Sender<String>>>,
    /// The last message id (and seq) handed out.
    last_id: AtomicU64,
}

/// Relays until the process is stopped.
pub async fn run(options: &RelayOptions) -> anyhow::Result<()> {
    let sessions = crate::seed::load_sessions(&options.sessions)?;
    let users = sessions
        .into_iter()
        .map(|session| (session.access_token, session.user_id))
        .collect();
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    eprintln!("relaying on {}", options.listen);
    relay_on(listener, users).await
}

/// Relays the connections `listener` accepts, knowing users by their tokens in `users`.
async fn relay_on(listener: TcpListener, users: HashMap<String, i64>) -> anyhow::Result<()> {
    let relay = Arc::new(Relay {
        users,
        online: Mutex::new(HashMap::new()),
        last_id: AtomicU64::new(0),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let relay = Arc::clone(&relay);
        tokio::spawn(async move {
            if let Err(error) = serve(&relay, stream).await {
                eprintln!("a connection ended: {error}");
            }
        });
    }
}

/// One connection: reads its frames and writes what is queued for it, in one task.
async fn serve(relay: &Relay, stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut user = None;
    // The handshake callback's signature is tungstenite's, error response and all.
    #[allow(clippy::result_large_err)]
    let knows_token = |request: &Request, response| {
        user = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .and_then(|token| relay.users.get(token).copied());
        match user {
            Some(_) => Ok::<Response, ErrorResponse>(response),
            None => {
                let mut refusal = ErrorResponse::new(Some("unknown token".into()));
                *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                Err(refusal)
            }
        }
    };
    let socket = tokio_tungstenite::accept_hdr_async(stream, knows_token).await?;
    let me = user.context("no user")?;
    let (sender, mut queue) = mpsc::channel(QUEUE_FRAMES);
    lock(&relay.online).insert(me, sender.clone());
    let (mut sink, mut stream) = socket.split();
    let outcome = loop {
        tokio::select! {
            frame = queue.recv() => {
                let Some(frame) = frame else { break Ok(()) };
                if let Err(error) = write_queued(&mut sink, frame, &mut queue).await {
                    break Err(error.into());
                }
            }
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Close(_))) | None => break Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => break Err(error.into()),
                };
                if let Ok(frame) = serde_json::from_str::<ClientFrame>(text.as_str()) {
                    answer(relay, me, &sender, frame);
                }
            }
        }
    };
    // A newer connection of the same user may have taken the place: leave that one be.
    let mut online = lock(&relay.online);
    if online
        .get(&me)
        .is_some_and(|queue| queue.same_channel(&sender))
    {
        online.remove(&me);
    }
    drop(online);
    outcome
}

/// Writes `first` and everything else already queued, then flushes once.
async fn write_queued<S>(
    sink: &mut S,
    first: String,
    queue: &mut mpsc::Receiver<String>,
) -> Result<(), S::Error>
where
    S: Sink<WsMessage> + Unpin,
{
    sink.feed(WsMessage::text(first)).await?;
    while let Ok(frame) = queue.try_recv() {
        sink.feed(WsMessage::text(frame)).await?;
    }
    sink.flush().await
}

/// Answers one client frame: a sync at once, a send with `sent` to the sender and `msg` to
/// the recipient. Acks and the rest are read and dropped.
fn answer(relay: &Relay, me: i64, own: &mpsc::Sender<String>, frame: ClientFrame) {
    match frame {
        ClientFrame::Sync { .. } => {
            let synced = ServerFrame::Synced {
                cursors: Default::default(),
            };
            let _ = own.try_send(synced.to_json());
        }
        ClientFrame::Send {
            cid,
            to,
            kind,
            body,
            ..
        } => {
            let id = relay.last_id.fetch_add(1, Ordering::Relaxed) + 1;
            let ts = natter_infra::now_millis();
            let sent = ServerFrame::Sent {
                cid: cid.clone(),
                id: id.to_string(),
                object: ObjectId::User(me).to_string(),
                seq: id,
                ts,
            };
            let _ = own.try_send(sent.to_json());
            let queue = match to.parse() {
                Ok(ObjectId::User(recipient)) => lock(&relay.online).get(&recipient).cloned(),
                _ => None,
            };
            if let Some(queue) = queue {
                let message = ServerFrame::Msg(MessageFrame {
                    object: to.clone(),
                    seq: id,
                    id: id.to_string(),
                    from: me.to_string(),
                    to,
                    kind,
                    body,
                    ts,
                    cid,
                    ..MessageFrame::default()
                });
                let _ = queue.try_send(message.to_json());
            }
        }
        _ => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use natter::client::WsClient;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_send_is_answered_sent_and_reaches_the_friend_and_a_stranger_is_turned_away()
    -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}/ws", listener.local_addr()?);
        let users = HashMap::from([("token-a".to_string(), 1), ("token-b".to_string(), 2)]);
        let relay = tokio::spawn(relay_on(listener, users));

        assert!(WsClient::connect(&url, "token-x").await.is_err());
        let mut alice = WsClient::connect(&url, "token-a").await?;
        let mut bob = WsClient::connect(&url, "token-b").await?;
        for client in [&mut alice, &mut bob] {
            client
                .send(&ClientFrame::Sync {
                    cursors: Default::default(),
                })
                .await?;
            assert!(matches!(
                client.next(WAIT).await?,
                Some(ServerFrame::Synced { .. })
            ));
        }
        alice
            .send(&ClientFrame::Send {
                cid: "c1".into(),
                to: "user:2".into(),
                kind: "text".into(),
                body: "hello".into(),
                reply_to: None,
            })
            .await?;
        match alice.next(WAIT).await? {
            Some(ServerFrame::Sent { cid, object, .. }) => {
                assert_eq!((cid.as_str(), object.as_str()), ("c1", "user:1"));
            }
            other => panic!("expected sent, got {other:?}"),
        }
        match bob.next(WAIT).await? {
            Some(ServerFrame::Msg(message)) => {
                assert_eq!(
                    (message.from.as_str(), message.body.as_str()),
                    ("1", "hello")
                );
            }
            other => panic!("expected the message, got {other:?}"),
        }
        relay.abort();
        Ok(())
    }
}
