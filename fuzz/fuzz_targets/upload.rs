//! An upload: the multipart body as the API reads it, then the image inspection and, for small
//! enough bitmaps, the thumbnail.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use natter_api::images;
use natter_api::uploads::read_file;

/// The boundary the fuzzed bodies are read with (the seeds use it).
const BOUNDARY: &str = "natter-fuzz";

/// Bitmaps past this are inspected but not decoded: the API's decode budget keeps large ones
/// apart, and decoding them would only slow the fuzzer.
const MAX_DECODED_BYTES: u64 = 8 * 1024 * 1024;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    // As a whole body, then as the bytes of an image.
    let request = Request::builder()
        .method("POST")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(data.to_vec()))
        .expect("a request");
    let file = runtime().block_on(async {
        let form = Multipart::from_request(request, &()).await.ok()?;
        read_file(form, 1024 * 1024).await.ok()
    });
    for bytes in [Some(data), file.as_deref()].into_iter().flatten() {
        if let Ok(info) = images::inspect(bytes) {
            assert!(info.width > 0 && info.height > 0);
            if info.bitmap_bytes <= MAX_DECODED_BYTES {
                let _ = images::thumbnail(bytes, &info, 64);
            }
        }
    }
});
