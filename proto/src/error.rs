//! Stable error codes. The same code appears in `error` frames, in problem responses (`code`)
//! and in gRPC statuses between layers (metadata `natter-code`), so a client can act on it.

use serde::{Deserialize, Serialize};
use tonic::Status;

/// Metadata key that carries an [`ErrorCode`] on a gRPC status.
pub const STATUS_CODE_KEY: &str = "natter-code";

/// The gRPC metadata key carrying how long a refused caller should wait before retrying, in
/// milliseconds (set when a layer is past its capacity).
pub const RETRY_AFTER_KEY: &str = "natter-retry-after-ms";

/// A status with a retry hint attached (see [`RETRY_AFTER_KEY`]).
pub fn with_retry_after(mut status: Status, wait: std::time::Duration) -> Status {
    if let Ok(value) = wait.as_millis().to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_KEY, value);
    }
    status
}

/// The retry hint a status carries, if any.
pub fn retry_after(status: &Status) -> Option<std::time::Duration> {
    let millis: u64 = status
        .metadata()
        .get(RETRY_AFTER_KEY)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(std::time::Duration::from_millis(millis))
}

/// Every error a client can see. Never renumber or rename: clients match on the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON or misses a field.
    BadFrame,
    /// The frame's `type` is not one the server knows.
    UnknownType,
    /// The frame is larger than the configured maximum.
    FrameTooLarge,
    /// A field is out of its bounds (empty text, text too long, bad cid, ...).
    InvalidInput,
    /// The message kind is not supported (yet).
    UnsupportedKind,
    /// One-to-one messages go only between friends.
    NotFriends,
    /// Only members may send to or read a group.
    NotMember,
    /// The caller may not read or acknowledge this object.
    Forbidden,
    /// The user, request or object does not exist.
    NotFound,
    /// The endpoint exists but not with this HTTP method.
    MethodNotAllowed,
    /// The acknowledged seq lies beyond the end of the object's log.
    BadCursor,
    /// The same (sender, cid) is still being processed; retry shortly.
    InProgress,
    /// Too many frames or requests; slow down.
    RateLimited,
    /// No credentials were given.
    Unauthorized,
    /// The token is not valid (bad signature, malformed, wrong kind).
    InvalidToken,
    /// The token has expired; refresh it.
    TokenExpired,
    /// Wrong username or password.
    BadCredentials,
    /// The username is already registered.
    UsernameTaken,
    /// The password is too short, too common or equal to the username.
    WeakPassword,
    /// A friend request already exists or the two are already friends.
    Conflict,
    /// A dependency is unavailable; retry later.
    Unavailable,
    /// An unexpected server error; it has been logged.
    Internal,
    /// The upload is not a PNG, JPEG, GIF or WebP image (judged by its content).
    UnsupportedMediaType,
    /// The upload looks like an image but its header does not decode.
    CorruptImage,
    /// The image's width or height (or pixel count) exceeds what is accepted.
    ImageTooLarge,
    /// The message is older than the recall window, or not the caller's.
    RecallWindowPassed,
    /// The sender is muted in the group by its owner or an admin.
    Muted,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::UnsupportedKind => "unsupported_kind",
            ErrorCode::NotFriends => "not_friends",
            ErrorCode::NotMember => "not_member",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::InProgress => "in_progress",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::CorruptImage => "corrupt_image",
            ErrorCode::ImageTooLarge => "image_too_large",
            ErrorCode::RecallWindowPassed => "recall_window_passed",
            ErrorCode::Muted => "muted",
        }
    }

    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::BadFrame,
        ErrorCode::UnknownType,
        ErrorCode::FrameTooLarge,
        ErrorCode::InvalidInput,
        ErrorCode::UnsupportedKind,
        ErrorCode::NotFriends,
        ErrorCode::NotMember,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BadCursor,
        ErrorCode::InProgress,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::BadCredentials,
        ErrorCode::UsernameTaken,
        ErrorCode::WeakPassword,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::CorruptImage,
        ErrorCode::ImageTooLarge,
        ErrorCode::RecallWindowPassed,
        ErrorCode::Muted,
    ];

    /// The HTTP status a problem response with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadFrame | ErrorCode::UnknownType | ErrorCode::InvalidInput => 400,
            ErrorCode::UnsupportedKind
            | ErrorCode::WeakPassword
            | ErrorCode::BadCursor
            | ErrorCode::CorruptImage
            | ErrorCode::ImageTooLarge => 422,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RecallWindowPassed => 409,
            ErrorCode::FrameTooLarge => 413,
            ErrorCode::NotFriends
            | ErrorCode::NotMember
            | ErrorCode::Forbidden
            | ErrorCode::Muted => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InProgress | ErrorCode::UsernameTaken | ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unauthorized
            | ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::BadCredentials => 401,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    fn grpc_code(self) -> tonic::Code {
        match self.http_status() {
            400 | 413 | 415 | 422 => tonic::Code::InvalidArgument,
            401 => tonic::Code::Unauthenticated,
            403 => tonic::Code::PermissionDenied,
            404 => tonic::Code::NotFound,
            405 => tonic::Code::Unimplemented,
            409 => tonic::Code::Aborted,
            429 => tonic::Code::ResourceExhausted,
            503 => tonic::Code::Unavailable,
            _ => tonic::Code::Internal,
        }
    }

    /// A gRPC status carrying this code, for errors crossing a layer boundary.
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut status = Status::new(self.grpc_code(), message);
        if let Ok(value) = self.as_str().parse() {
            status.metadata_mut().insert(STATUS_CODE_KEY, value);
        }
        status
    }

    /// The code named `name` (as [`ErrorCode::as_str`] spells it), if there is one.
    pub fn named(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == name)
    }

    /// The code a status carries; transport failures read as `unavailable`, others `internal`.
    pub fn of_status(status: &Status) -> ErrorCode {
        let carried = status
            .metadata()
            .get(STATUS_CODE_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(ErrorCode::named);
        carried.unwrap_or(match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl crate::v1::Refusal {
    /// What `status` says (code, message, retry hint), to answer one item of a gathered call.
    pub fn of(status: &Status) -> Self {
        crate::v1::Refusal {
            code: ErrorCode::of_status(status).as_str().to_owned(),
            message: status.message().to_owned(),
            retry_after_ms: retry_after(status).map_or(0, |wait| {
                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
            }),
        }
    }

    /// The status the item's own call would have answered.
    pub fn into_status(self) -> Status {
        let code = ErrorCode::named(&self.code).unwrap_or(ErrorCode::Internal);
        let status = code.status(self.message);
        match self.retry_after_ms {
            0 => status,
            millis => with_retry_after(status, std::time::Duration::from_millis(millis)),
        }
    }
}

impl crate::v1::SendOutcome {
    /// One gathered send's answer.
    pub fn of(answer: Result<crate::v1::SendReply, Status>) -> Self {
        match answer {
            Ok(sent) => crate::v1::SendOutcome {
                sent: Some(sent),
                refused: None,
            },
            Err(status) => crate::v1::SendOutcome {
                sent: None,
                refused: Some(crate::v1::Refusal::of(&status)),
            },
        }
    }

    /// The answer as `Send` would have given it.
    pub fn into_result(self) -> Result<crate::v1::SendReply, Status> {
        match (self.sent, self.refused) {
            (_, Some(refused)) => Err(refused.into_status()),
            (Some(sent), None) => Ok(sent),
            (None, None) => Err(ErrorCode::Internal.status("a gathered send came back empty")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_code_message_and_retry_hint_across_a_gathered_call() {
        let refused = with_retry_after(
            ErrorCode::Unavailable.status("at capacity"),
            std::time::Duration::from_millis(250),
        );
        let carried = crate::v1::SendOutcome::of(Err(refused))
            .into_result()
            .expect_err("still refused");
        assert_eq!(ErrorCode::of_status(&carried), ErrorCode::Unavailable);
        assert_eq!(carried.code(), tonic::Code::Unavailable);
        assert_eq!(carried.message(), "at capacity");
        assert_eq!(
            retry_after(&carried),
            Some(std::time::Duration::from_millis(250))
        );
        let plain = crate::v1::SendOutcome::of(Err(ErrorCode::NotFriends.status("not friends")))
            .into_result()
            .expect_err("refused");
        assert_eq!(ErrorCode::of_status(&plain), ErrorCode::NotFriends);
        assert_eq!(retry_after(&plain), None);
        // A transport failure has no carried code: it reads as unavailable on both sides.
        let lost = crate::v1::SendOutcome::of(Err(Status::unavailable("connection reset")))
            .into_result()
            .expect_err("refused");
        assert_eq!(ErrorCode::of_status(&lost), ErrorCode::Unavailable);
        let sent = crate::v1::SendReply {
            cid: "c".into(),
            id: 9,
            ..Default::default()
        };
        assert_eq!(
            crate::v1::SendOutcome::of(Ok(sent.clone()))
                .into_result()
                .expect("sent"),
            sent
        );
        assert!(crate::v1::SendOutcome::default().into_result().is_err());
    }

    #[test]
    fn codes_survive_a_status_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::of_status(&code.status("x")), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(
            ErrorCode::of_status(&Status::unavailable("down")),
            ErrorCode::Unavailable
        );
    }
}
