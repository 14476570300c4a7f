//! What every handler shares.

use std::sync::Arc;

use natter_infra::ids::IdGenerator;
use natter_infra::{Blobs, Store};
use natter_proto::handle::LogicHandle;
use natter_proto::token::TokenKeys;
use serde::{Deserialize, Serialize};

/// Configuration of the API layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Lifetime of an access token, in seconds.
    pub access_token_seconds: u64,
    /// Lifetime of a refresh token, in seconds.
    pub refresh_token_seconds: u64,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The admin API's bearer credential; empty turns the admin API off.
    pub admin_token: String,
    /// Largest uploaded image, in bytes.
    pub max_upload_bytes: usize,
    /// Images wider or taller than this get a thumbnail that fits it, in pixels.
    pub thumbnail_side: u32,
    /// The WebSocket URL browser clients connect to (`{host}` is the page's host name);
    /// empty: the embedded server fills it in from its WebSocket port.
    pub public_ws_url: String,
    /// Memory the image decodes of uploads may hold at once, in bytes; an image whose bitmap
    /// needs more is refused (`image_too_large`).
    pub decode_memory_bytes: u64,
    /// How long an upload waits for decode memory before it is refused (`unavailable`), in
    /// milliseconds.
    pub decode_wait_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            access_token_seconds: 15 * 60,
            refresh_token_seconds: 30 * 24 * 3600,
            max_body_bytes: 64 * 1024,
            admin_token: String::new(),
            max_upload_bytes: 10 * 1024 * 1024,
            thumbnail_side: 320,
            public_ws_url: String::new(),
            decode_memory_bytes: 256 * 1024 * 1024,
            decode_wait_ms: 5_000,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct ApiState {
    /// Limits and lifetimes.
    pub config: ApiConfig,
    /// Users, friends.
    pub store: Arc<dyn Store>,
    /// Sending goes through logic.
    pub logic: LogicHandle,
    /// Issues and checks access tokens.
    pub tokens: TokenKeys,
    /// Mints user ids.
    pub ids: Arc<IdGenerator>,
    /// Uploaded images and their thumbnails.
    pub blobs: Arc<dyn Blobs>,
}
