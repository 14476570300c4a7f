//! The `Store` conformance suite, one file per entity as the store is split, written against
//! the `Store` trait only.

mod friends;
mod groups;
mod messages;
mod uploads;
mod users;

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::random_id;
use crate::store::{Group, Store, User};

/// Run every `Store` check.
pub async fn run(store: &dyn Store) {
    users::run(store).await;
    friends::run(store).await;
    groups::run(store).await;
    messages::run(store).await;
    uploads::run(store).await;
}

pub(super) fn user(id: i64) -> User {
    User {
        id,
        username: format!("conformance{id}"),
        nickname: format!("Conformance {id}"),
        avatar: None,
        created_at: 1_700_000_000_000,
    }
}

pub(super) fn group(id: i64, owner: i64) -> Group {
    Group {
        id,
        name: format!("Conformance group {id}"),
        owner,
        avatar: None,
        created_at: 1_700_000_000_000 + id,
        private: false,
    }
}

pub(super) fn message(object: &ObjectId, seq: u64, body: &str) -> Message {
    Message {
        // Random, so a shared backend that keeps message ids unique never sees a repeat.
        id: random_id() as u64,
        object: object.to_string(),
        seq,
        sender: 1,
        peer: 2,
        kind: "text".into(),
        body: body.into(),
        ts: 1_700_000_000_000 + seq as i64,
        cid: format!("c{seq}"),
        target_kind: "user".into(),
        target_id: 2,
        ..Message::default()
    }
}
