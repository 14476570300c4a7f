//! A client's WebSocket text frame, as connect parses it: the frame, then the object ids in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_proto::ObjectId;
use natter_proto::frame::ClientFrame;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::parse(text) {
        Ok(ClientFrame::Send { to, .. } | ClientFrame::Typing { to }) => {
            if let Ok(object) = to.parse::<ObjectId>() {
                // An id has one spelling: what parses prints back as it was written.
                assert_eq!(object.to_string(), to);
            }
        }
        Ok(ClientFrame::Sync { cursors }) => {
            for object in cursors.keys() {
                let _ = object.parse::<ObjectId>();
            }
        }
        Ok(_) => {}
        Err(error) => {
            // Every refusal names a stable code.
            let _ = error.code().as_str();
        }
    }
});
