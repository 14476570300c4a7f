//! The protocol document names every frame and error code the code has.

use natter_proto::ErrorCode;
use natter_proto::frame::CLIENT_FRAME_TYPES;

#[test]
fn the_protocol_document_covers_every_frame_and_code() {
    let document =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md"))
            .expect("docs/protocol.md exists");
    let server_frames = [
        "welcome",
        "sent",
        "msg",
        "synced",
        "acked",
        "error",
        "pong",
        "notice",
        "typing",
        "presence",
        "group_online",
        "friend_request",
        "friend_accepted",
        "friend_removed",
        "group_updated",
        "group_removed",
        "read",
    ];
    for name in CLIENT_FRAME_TYPES.iter().chain(server_frames.iter()) {
        assert!(
            document.contains(&format!("`{name}`")),
            "frame `{name}` is not documented"
        );
    }
    for code in ErrorCode::ALL {
        assert!(
            document.contains(&format!("`{}`", code.as_str())),
            "code `{code}` is not documented"
        );
    }
    for close in [
        "slow_consumer",
        "kicked",
        "heartbeat_timeout",
        "rate_limited",
        "frame_too_large",
        "shutting_down",
    ] {
        assert!(
            document.contains(close),
            "close reason {close} is not documented"
        );
    }
}
