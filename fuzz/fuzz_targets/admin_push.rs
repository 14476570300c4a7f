//! The admin API's push body: parsed as the API parses it, then turned into logic's request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_api::admin::NewPush;
use natter_proto::v1::Audience;

fuzz_target!(|data: &[u8]| {
    let Ok(push) = serde_json::from_slice::<NewPush>(data) else {
        return;
    };
    if let Ok(request) = push.into_request() {
        match request.audience() {
            Audience::Users => assert!(request.user_ids.iter().all(|id| *id > 0)),
            Audience::Group => assert!(request.group_id > 0),
            _ => {}
        }
    }
});
