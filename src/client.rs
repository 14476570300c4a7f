//! A minimal natter client: REST calls and one WebSocket connection speaking the real protocol.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A logged-in user's tokens.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user's id.
    pub user_id: i64,
    /// Bearer token for REST and WebSocket.
    pub access_token: String,
    /// Single-use refresh token.
    pub refresh_token: String,
}

/// REST calls against one API base URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

/// A response: its status and its JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body's JSON.
    pub body: Value,
    /// The content type.
    pub content_type: String,
}

impl Reply {
    /// The problem code of an error response, if it is one.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }
}

fn session_from(reply: &Reply) -> anyhow::Result<Session> {
    let field = |name: &str| {
        reply.body[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no {name} in {}", reply.body))
    };
    Ok(Session {
        user_id: reply.body["user"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .with_context(|| format!("no user id in {}", reply.body))?,
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
    })
}

impl ApiClient {
    /// A client for the API at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        ApiClient {
            base: base.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Any request: method, path, optional bearer token, optional JSON body.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes())?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            body,
            content_type,
        })
    }

    /// Register and log in.
    pub async fn register(&self, username: &str, password: &str) -> anyhow::Result<Session> {
        self.authenticate("/api/v1/auth/register", 201, username, password)
            .await
    }

    /// Log in.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<Session> {
        self.authenticate("/api/v1/auth/login", 200, username, password)
            .await
    }

    /// Trade a session's single-use refresh token for fresh tokens.
    pub async fn refresh(&self, session: &Session) -> anyhow::Result<Session> {
        let body = json!({"refresh_token": session.refresh_token});
        let reply = self
            .call(http::Method::POST, "/api/v1/auth/refresh", None, Some(body))
            .await?;
        if reply.status != 200 {
            bail!("refresh: {} {}", reply.status, reply.body);
        }
        session_from(&reply)
    }

    async fn authenticate(
        &self,
        path: &str,
        success: u16,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Session> {
        let body = json!({"username": username, "password": password});
        let reply = self
            .call(http::Method::POST, path, None, Some(body))
            .await?;
        if reply.status != success {
            bail!("{path} as {username}: {} {}", reply.status, reply.body);
        }
        session_from(&reply)
    }

    /// Make two users friends (one asks, the other accepts).
    pub async fn befriend(&self, asker: &Session, accepter: &Session) -> anyhow::Result<()> {
        let asked = self
            .call(
                http::Method::POST,
                "/api/v1/friends/requests",
                Some(&asker.access_token),
                Some(json!({"user_id": accepter.user_id.to_string()})),
            )
            .await?;
        if asked.status != 201 {
            bail!("friend request: {} {}", asked.status, asked.body);
        }
        let accepted = self
            .call(
                http::Method::POST,
                &format!("/api/v1/friends/requests/{}/accept", asker.user_id),
                Some(&accepter.access_token),
                None,
            )
            .await?;
        if accepted.status != 200 {
            bail!("friend accept: {} {}", accepted.status, accepted.body);
        }
        Ok(())
    }
}

/// The bytes one read of a client's socket takes at most.
const READ_BUFFER_BYTES: usize = 4096;

/// One WebSocket connection.
#[derive(Debug)]
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Event frames read while waiting for something else, oldest first.
    events: std::collections::VecDeque<ServerFrame>,
    /// Other frames read while waiting for an event, oldest first.
    others: std::collections::VecDeque<ServerFrame>,
}

impl WsClient {
    /// Connect to `ws_url` (`ws://host:port/ws`) with an access token.
    pub async fn connect(ws_url: &str, token: &str) -> anyhow::Result<WsClient> {
        let mut request = ws_url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        // Without Nagle, as browsers open WebSockets: a frame written right after another
        // (an ack, then a send) must not wait for the first one's TCP acknowledgement, which
        // the server may delay by up to 40 ms when it has nothing to answer.
        // A small read buffer: tungstenite zeroes the whole of it before each read (128 KiB
        // by default), which made zeroing 5% of the machine's CPU in a load run of thousands
        // of clients. Larger frames still arrive whole, over several reads.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let (stream, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .with_context(|| format!("connecting to {ws_url}"))?;
        Ok(WsClient {
            stream,
            events: Default::default(),
            others: Default::default(),
        })
    }

    /// Send a frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> anyhow::Result<()> {
        self.send_raw(&serde_json::to_string(frame)?).await
    }

    /// Send any text, valid or not.
    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.stream.send(WsMessage::text(text)).await?;
        Ok(())
    }

    /// The next server frame within `wait`; `Ok(None)` when the server closed the socket
    /// (the close code and reason are in the error of [`WsClient::next_close`]).
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<Option<ServerFrame>> {
        if let Some(frame) = self.others.pop_front() {
            return Ok(Some(frame));
        }
        loop {
            match self.next_frame(wait).await? {
                Some(frame) if frame.is_event() => self.events.push_back(frame),
                other => return Ok(other),
            }
        }
    }

    /// The next event frame (presence, group counts, friend and group changes, reads);
    /// other frames read meanwhile wait for [`WsClient::next`].
    pub async fn next_event(&mut self, wait: Duration) -> anyhow::Result<Option<ServerFrame>> {
        if let Some(frame) = self.events.pop_front() {
            return Ok(Some(frame));
        }
        loop {
            match self.next_frame(wait).await? {
                Some(frame) if !frame.is_event() => self.others.push_back(frame),
                other => return Ok(other),
            }
        }
    }

    /// The next frame off the wire, whatever it is (frames set aside by [`WsClient::next`] and
    /// [`WsClient::next_event`] are not returned here).
    pub async fn next_frame(&mut self, wait: Duration) -> anyhow::Result<Option<ServerFrame>> {
        loop {
            let message = tokio::time::timeout(wait, self.stream.next())
                .await
                .context("no frame in time")?;
            match message {
                None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                Some(Ok(WsMessage::Text(text))) => {
                    return Ok(Some(
                        serde_json::from_str(text.as_str())
                            .with_context(|| format!("unreadable frame {text}"))?,
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Read until the server closes; returns the close code and reason.
    pub async fn next_close(&mut self, wait: Duration) -> anyhow::Result<(u16, String)> {
        loop {
            let message = tokio::time::timeout(wait, self.stream.next())
                .await
                .context("no close in time")?;
            match message {
                Some(Ok(WsMessage::Close(Some(frame)))) => {
                    return Ok((frame.code.into(), frame.reason.to_string()));
                }
                Some(Ok(WsMessage::Close(None))) | None => return Ok((1005, String::new())),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// The underlying WebSocket, for callers that read and write at once (the load
    /// generator splits it into a sink and a stream).
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.stream
    }

    /// Close politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
