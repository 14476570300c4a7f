//! Checks on what a client asks logic to do; each failure names a stable error code.

use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

/// Longest client message id, in bytes.
pub const MAX_CID_BYTES: usize = 64;

/// A client message id: 1 to 64 printable ASCII characters (space included).
pub fn cid(cid: &str) -> Result<(), Status> {
    let printable = cid
        .bytes()
        .all(|byte| byte == b' ' || byte.is_ascii_graphic());
    if cid.is_empty() || cid.len() > MAX_CID_BYTES || !printable {
        return Err(ErrorCode::InvalidInput.status(format!(
            "cid must be 1 to {MAX_CID_BYTES} printable ASCII characters"
        )));
    }
    Ok(())
}

/// What a message carries, by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Text: the body is the text.
    Text,
    /// An image: the body is the id of an upload the sender owns.
    Image(i64),
}

/// The message kind and its body: text within `max_chars`, or an image's upload id.
pub fn content(kind: &str, body: &str, max_chars: usize) -> Result<Content, Status> {
    match kind {
        "text" => text(body, max_chars).map(|()| Content::Text),
        "image" => match natter_proto::object::parse_id(body) {
            Some(upload) => Ok(Content::Image(upload)),
            _ => Err(ErrorCode::InvalidInput
                .status("an image message's body is the id of an upload (POST /api/v1/uploads)")),
        },
        // A kind natter has but clients may not send (`recall`, `notice`) is just as unknown.
        other => Err(ErrorCode::UnsupportedKind.status(format!(
            "unsupported message kind {:?}; a client sends \"text\" or \"image\"",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// A text body: not blank, at most `max_chars` characters.
pub fn text(body: &str, max_chars: usize) -> Result<(), Status> {
    if body.trim().is_empty() {
        return Err(ErrorCode::InvalidInput.status("the message text is empty"));
    }
    let chars = body.chars().count();
    if chars > max_chars {
        return Err(ErrorCode::InvalidInput.status(format!(
            "the message text has {chars} characters; at most {max_chars} are allowed"
        )));
    }
    Ok(())
}

/// Most code points in a reaction (a family or flag emoji is several).
pub const MAX_EMOJI_CHARS: usize = 8;

/// A reaction: one emoji — up to [`MAX_EMOJI_CHARS`] code points with no letters, digits,
/// spaces, ASCII punctuation or control characters (so it cannot be a message in disguise).
pub fn emoji(emoji: &str) -> Result<(), Status> {
    let chars = emoji.chars().count();
    let plausible = emoji
        .chars()
        .all(|c| !c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control());
    if chars == 0 || chars > MAX_EMOJI_CHARS || !plausible {
        return Err(ErrorCode::InvalidInput.status(format!(
            "a reaction is one emoji (up to {MAX_EMOJI_CHARS} code points, no letters, digits \
             or spaces)"
        )));
    }
    Ok(())
}

/// The object a sender addresses (a request's `TargetKind` and id): a user (one-to-one,
/// friends only) or a group (members only).
pub fn target(kind: i32, id: i64) -> Result<ObjectId, Status> {
    ObjectId::from_target(kind, id).map_err(|_| {
        ErrorCode::InvalidInput.status("the target must be a user or a group, with a positive id")
    })
}

/// Longest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 64;

/// A group name: trimmed, not blank, at most [`MAX_GROUP_NAME_CHARS`] characters, no control
/// characters. Returns the trimmed name.
pub fn group_name(name: &str) -> Result<String, Status> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_GROUP_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ErrorCode::InvalidInput.status(format!(
            "a group name has 1 to {MAX_GROUP_NAME_CHARS} characters and no control characters"
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use natter_proto::v1::TargetKind;

    use super::*;

    fn code(result: Result<impl std::fmt::Debug, Status>) -> ErrorCode {
        ErrorCode::of_status(&result.unwrap_err())
    }

    #[test]
    fn accepts_good_input_and_names_bad_input() {
        assert!(cid("c-1").is_ok());
        assert_eq!(code(cid("")), ErrorCode::InvalidInput);
        assert_eq!(code(cid(&"x".repeat(65))), ErrorCode::InvalidInput);
        assert!(cid("has space").is_ok(), "a space is printable");
        assert_eq!(code(cid("tab\there")), ErrorCode::InvalidInput);
        assert_eq!(code(cid("naïve")), ErrorCode::InvalidInput);
        assert_eq!(content("text", "hi", 5).unwrap(), Content::Text);
        assert_eq!(content("image", "42", 5).unwrap(), Content::Image(42));
        assert_eq!(
            code(content("image", "cat.png", 5)),
            ErrorCode::InvalidInput
        );
        assert_eq!(code(content("image", "-1", 5)), ErrorCode::InvalidInput);
        assert_eq!(code(content("video", "x", 5)), ErrorCode::UnsupportedKind);
        assert_eq!(code(content("image", "07", 5)), ErrorCode::InvalidInput);
        assert!(text("héllo", 5).is_ok());
        assert_eq!(code(text("héllo!", 5)), ErrorCode::InvalidInput);
        assert_eq!(code(text("  \n", 5)), ErrorCode::InvalidInput);
        let (user, group) = (TargetKind::User as i32, TargetKind::Group as i32);
        assert_eq!(target(user, 3).unwrap(), ObjectId::User(3));
        assert_eq!(target(group, 3).unwrap(), ObjectId::Group(3));
        assert_eq!(code(target(user, 0)), ErrorCode::InvalidInput);
        assert_eq!(
            code(target(TargetKind::Unspecified as i32, 3)),
            ErrorCode::InvalidInput
        );
        assert_eq!(code(target(9, 3)), ErrorCode::InvalidInput);
    }

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(group_name("  climbers ").unwrap(), "climbers");
        assert!(group_name(&"x".repeat(MAX_GROUP_NAME_CHARS)).is_ok());
        for bad in ["", "   ", "tab\there"] {
            assert!(group_name(bad).is_err(), "{bad:?}");
        }
        assert!(group_name(&"x".repeat(MAX_GROUP_NAME_CHARS + 1)).is_err());
    }
}
