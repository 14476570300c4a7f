//! Object ids: the name of one ordered stream — a user's inbox or a group.

use std::fmt;
use std::str::FromStr;

use crate::v1::TargetKind;

/// One ordered stream of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectId {
    /// A user's inbox: every one-to-one message they send or receive.
    User(i64),
    /// A group's stream.
    Group(i64),
}

/// The text was not `user:<id>` or `group:<id>`.
#[derive(Debug, thiserror::Error)]
#[error("not an object id: {0:?} (expected user:<id> or group:<id>)")]
pub struct ParseObjectError(pub String);

impl ObjectId {
    /// The kind and id a request carries to address this object.
    pub fn target(self) -> (TargetKind, i64) {
        match self {
            ObjectId::User(id) => (TargetKind::User, id),
            ObjectId::Group(id) => (TargetKind::Group, id),
        }
    }

    /// The object a request's kind and id address; an unspecified or unknown kind, or an id
    /// that is not positive, is refused.
    pub fn from_target(kind: i32, id: i64) -> Result<ObjectId, ParseObjectError> {
        let refused = || ParseObjectError(format!("kind {kind}, id {id}"));
        if id <= 0 {
            return Err(refused());
        }
        match TargetKind::try_from(kind) {
            Ok(TargetKind::User) => Ok(ObjectId::User(id)),
            Ok(TargetKind::Group) => Ok(ObjectId::Group(id)),
            Ok(TargetKind::Unspecified) | Err(_) => Err(refused()),
        }
    }

    /// `user` or `group`: the kind as a stored message names it (`Message::target_kind`).
    pub fn kind_name(self) -> &'static str {
        match self {
            ObjectId::User(_) => "user",
            ObjectId::Group(_) => "group",
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, id) = self.target();
        write!(f, "{}:{id}", self.kind_name())
    }
}

/// An id in its one written form: decimal digits without a sign or leading zeros, above zero
/// and within `i64`. `07` and `+7` are refused rather than read as `7`, so one id has one
/// spelling everywhere (in keys, caches and logs as well as on the wire).
pub fn parse_id(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && !text.starts_with('0')
        && text.len() <= 19
        && text.bytes().all(|byte| byte.is_ascii_digit());
    if !canonical {
        return None;
    }
    text.parse().ok()
}

impl FromStr for ObjectId {
    type Err = ParseObjectError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseObjectError(text.chars().take(64).collect());
        let (kind, id) = text.split_once(':').ok_or_else(error)?;
        let id = parse_id(id).ok_or_else(error)?;
        match kind {
            "user" => Ok(ObjectId::User(id)),
            "group" => Ok(ObjectId::Group(id)),
            _ => Err(error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for object in [ObjectId::User(42), ObjectId::Group(7)] {
            assert_eq!(object.to_string().parse::<ObjectId>().unwrap(), object);
        }
        for bad in [
            "",
            "user",
            "user:",
            "user:x",
            "user:-1",
            "user:0",
            "room:1",
            "user:1:2",
            "user:07",
            "user:+7",
            "user: 7",
            "user:7 ",
            "group:00",
            "user:9223372036854775808",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_request_target_round_trips_and_an_unknown_kind_is_refused() {
        for object in [ObjectId::User(42), ObjectId::Group(7)] {
            let (kind, id) = object.target();
            assert_eq!(ObjectId::from_target(kind as i32, id).unwrap(), object);
        }
        for (kind, id) in [(0, 5), (3, 5), (-1, 5), (1, 0), (2, -4)] {
            assert!(
                ObjectId::from_target(kind, id).is_err(),
                "{kind} {id} accepted"
            );
        }
    }
}
