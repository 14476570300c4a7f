//! A `send` as a client wrote it (over the socket or REST), made into logic's request.

use crate::object::{ObjectId, parse_id};
use crate::v1::SendRequest;

/// What a client wrote in a `send`.
#[derive(Debug)]
pub struct ClientSend {
    /// The client's message id.
    pub cid: String,
    /// `user:<id>` or `group:<id>`.
    pub to: String,
    /// `text` or `image`.
    pub kind: String,
    /// The text, or an upload id.
    pub body: String,
    /// The id of the message replied to, if any.
    pub reply_to: Option<String>,
}

impl ClientSend {
    /// Logic's request for `sender`; the error says which field is malformed.
    pub fn into_request(self, sender: i64) -> Result<SendRequest, String> {
        let (target_kind, target_id) = self
            .to
            .parse::<ObjectId>()
            .map_err(|error| error.to_string())?
            .target();
        let reply_to = match self.reply_to.as_deref() {
            None => 0,
            Some(id) => parse_id(id).ok_or_else(|| {
                "reply_to is a message id in decimal digits, without leading zeros".to_string()
            })? as u64,
        };
        Ok(SendRequest {
            sender,
            cid: self.cid,
            target_kind: target_kind.into(),
            target_id,
            kind: self.kind,
            body: self.body,
            reply_to,
            ..SendRequest::default()
        })
    }
}
