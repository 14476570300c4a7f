//! An `Authorization` header and the access token in it, as the API and connect read them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use natter_proto::token::{TokenKeys, bearer};

fn keys() -> &'static TokenKeys {
    static KEYS: OnceLock<TokenKeys> = OnceLock::new();
    KEYS.get_or_init(|| TokenKeys::new(b"natter fuzzing secret"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let token = bearer(header).unwrap_or(header);
    if let Ok(user) = keys().verify(token) {
        // Only a token signed with the secret verifies, and it names a real user id.
        assert!(user > 0);
    }
});
