//! `natter client`: chat from a terminal, for the README's walk-through.

use std::collections::BTreeMap;
use std::time::Duration;

use natter::client::{ApiClient, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::http::Method;

/// Arguments of `natter client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8090/ws")]
    ws: String,
    /// Username.
    #[arg(long, short)]
    username: String,
    /// Password (or NATTER_PASSWORD).
    #[arg(long, short, env = "NATTER_PASSWORD")]
    password: String,
    /// Register the account first.
    #[arg(long)]
    register: bool,
}

const HELP: &str = "commands: /add <username> · /requests · /accept <user id> · /friends · \
/to <user id> (then type lines to send) · /quit";

/// Run the interactive client until `/quit` or end of input.
pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.api);
    let session = if args.register {
        api.register(&args.username, &args.password).await?
    } else {
        api.login(&args.username, &args.password).await?
    };
    let token = session.access_token.clone();
    println!(
        "logged in as {} (user id {})",
        args.username, session.user_id
    );
    println!("{HELP}");
    let mut socket = WsClient::connect(&args.ws, &token).await?;
    socket
        .send(&ClientFrame::Sync {
            cursors: BTreeMap::new(),
        })
        .await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut peer: Option<i64> = None;
    let mut sent = 0u64;
    loop {
        tokio::select! {
            frame = socket.next(Duration::from_secs(3600)) => {
                let Some(frame) = frame? else {
                    println!("the server closed the connection");
                    return Ok(());
                };
                if let ServerFrame::Msg(message) = &frame {
                    println!("[{} #{}] {} → {}: {}", message.object, message.seq, message.from, message.to, message.body);
                    let ack = ClientFrame::Ack { object: message.object.clone(), seq: message.seq };
                    socket.send(&ack).await?;
                } else if !matches!(frame, ServerFrame::Acked { .. }) {
                    println!("{}", frame.to_json());
                }
            }
            line = lines.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                let line = line.trim();
                let mut words = line.splitn(2, ' ');
                let command = words.next().unwrap_or_default();
                let argument = words.next().unwrap_or_default().trim();
                let reply = match command {
                    "" => continue,
                    "/quit" => return Ok(()),
                    "/help" => { println!("{HELP}"); continue }
                    "/add" => api.call(Method::POST, "/api/v1/friends/requests", Some(&token), Some(json!({"username": argument}))).await?,
                    "/requests" => api.call(Method::GET, "/api/v1/friends/requests", Some(&token), None).await?,
                    "/accept" => api.call(Method::POST, &format!("/api/v1/friends/requests/{argument}/accept"), Some(&token), None).await?,
                    "/friends" => api.call(Method::GET, "/api/v1/friends", Some(&token), None).await?,
                    "/to" => {
                        match argument.parse() {
                            Ok(id) => { peer = Some(id); println!("sending to user {id}") }
                            Err(_) => println!("usage: /to <user id>"),
                        }
                        continue;
                    }
                    _ => {
                        let Some(to) = peer else { println!("pick a recipient with /to <user id>"); continue };
                        sent += 1;
                        let frame = ClientFrame::Send {
                            cid: format!("cli-{}-{sent}", std::process::id()),
                            to: format!("user:{to}"),
                            kind: "text".into(),
                            body: line.to_string(), reply_to: None, };
                        socket.send(&frame).await?;
                        continue;
                    }
                };
                println!("{} {}", reply.status, serde_json::to_string_pretty(&reply.body)?);
            }
        }
    }
}
