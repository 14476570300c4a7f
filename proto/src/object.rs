//! Object ids: the name of one ordered stream — a user's inbox or a group.

use std::fmt;
use std::str::FromStr;

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

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectId::User(id) => write!(f, "user:{id}"),
            ObjectId::Group(id) => write!(f, "group:{id}"),
        }
    }
}

impl FromStr for ObjectId {
    type Err = ParseObjectError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseObjectError(text.chars().take(64).collect());
        let (kind, id) = text.split_once(':').ok_or_else(error)?;
        let id: i64 = id.parse().map_err(|_| error())?;
        if id <= 0 {
            return Err(error());
        }
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
            "", "user", "user:", "user:x", "user:-1", "user:0", "room:1", "user:1:2",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad} parsed");
        }
    }
}
