//! Images: `POST /api/v1/uploads` takes one (multipart), judged by its content, and
//! `GET /media/{id}` serves it to those who may see it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use natter_infra::now_millis;
use natter_infra::store::{AUDIENCE_EVERYONE, Upload};
use natter_proto::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::decode_budget::DecodeBudget;
use crate::images::{self, ImageError};
use crate::params::positive_id;
use crate::problem::Problem;
use crate::state::ApiState;

/// An upload as its owner sees it after sending it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    /// The upload's id: the body of an image message, or an avatar.
    pub id: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size in bytes.
    pub size: u64,
    /// Where to fetch it.
    pub url: String,
    /// Where to fetch a smaller copy, for large images.
    pub thumbnail_url: Option<String>,
}

impl From<&Upload> for UploadView {
    fn from(upload: &Upload) -> Self {
        let url = format!("/media/{}", upload.id);
        UploadView {
            id: upload.id.to_string(),
            content_type: upload.content_type.clone(),
            width: upload.width,
            height: upload.height,
            size: upload.size,
            thumbnail_url: upload.thumbnail.then(|| format!("{url}?size=thumb")),
            url,
        }
    }
}

/// The form of `POST /api/v1/uploads`.
#[derive(Debug, utoipa::ToSchema)]
pub struct UploadForm {
    /// The image (PNG, JPEG, GIF or WebP; the name and declared type are ignored).
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    pub file: Vec<u8>,
}

/// The blob key of an upload, or of its thumbnail (letters, digits and dashes: every `Blobs`
/// adapter takes those as they are).
fn blob_key(id: i64, thumbnail: bool) -> String {
    if thumbnail {
        format!("upload-{id}-thumb")
    } else {
        format!("upload-{id}")
    }
}

/// The problem for an image the inspection refused.
fn image_problem(error: ImageError) -> Problem {
    let code = match &error {
        ImageError::NotAnImage => ErrorCode::UnsupportedMediaType,
        ImageError::Corrupt(_) => ErrorCode::CorruptImage,
        ImageError::TooLarge { .. } => ErrorCode::ImageTooLarge,
        ImageError::Encode(_) => ErrorCode::Internal,
    };
    Problem::new(code, error.to_string())
}

/// Reads the `file` field of an upload form, refusing more than `limit` bytes.
pub async fn read_file(mut form: Multipart, limit: usize) -> Result<Bytes, Problem> {
    let malformed = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                ErrorCode::FrameTooLarge,
                format!("an upload has at most {limit} bytes"),
            )
        } else {
            Problem::new(
                ErrorCode::BadFrame,
                format!("malformed multipart body: {error}"),
            )
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > limit {
                return Err(Problem::new(
                    ErrorCode::FrameTooLarge,
                    format!("an upload has at most {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(Bytes::from(bytes));
    }
    Err(Problem::new(
        ErrorCode::InvalidInput,
        "send the image as a multipart field named `file`",
    ))
}

/// `POST /api/v1/uploads`: store an image the caller may then send or use as an avatar.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = UploadView),
        (status = 400, description = "`bad_frame`: not multipart; `invalid_input`: no `file` field"),
        (status = 413, description = "`frame_too_large`: over `api.max_upload_bytes`"),
        (status = 415, description = "`unsupported_media_type`: not PNG, JPEG, GIF or WebP"),
        (status = 422, description = "`corrupt_image` or `image_too_large` (also when decoding it \
            would take more memory than the server allows)"),
        (status = 503, description = "`unavailable`: the server is decoding as many images as it \
            can; retry after `Retry-After`"),
    )
)]
pub async fn upload(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Extension(decode_budget): Extension<Arc<DecodeBudget>>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadView>), Problem> {
    let form = form.map_err(|rejection| {
        Problem::new(
            ErrorCode::BadFrame,
            format!("send multipart/form-data with a `file` field: {rejection}"),
        )
    })?;
    let bytes = read_file(form, state.config.max_upload_bytes).await?;
    let info = images::inspect(&bytes).map_err(image_problem)?;
    let side = state.config.thumbnail_side;
    // Only an image that gets a thumbnail is decoded; its bitmap's memory is reserved first.
    let reservation = if info.width > side || info.height > side {
        Some(decode_budget.reserve(info.bitmap_bytes).await?)
    } else {
        None
    };
    // Decoding is CPU work; it runs beside the async workers, not on them.
    let source = bytes.clone();
    let thumbnail = tokio::task::spawn_blocking(move || {
        let thumbnail = images::thumbnail(&source, &info, side);
        drop(reservation);
        thumbnail
    })
    .await
    .map_err(|error| Problem::new(ErrorCode::Internal, error.to_string()))?
    .map_err(image_problem)?;
    let id = state
        .ids
        .next_id()
        .map_err(|error| Problem::new(ErrorCode::Internal, error.to_string()))? as i64;
    // Bytes first, row second: a row always has its bytes, and bytes without a row are
    // unreachable garbage rather than a broken image.
    if let Some(thumbnail) = &thumbnail {
        state
            .blobs
            .put(&blob_key(id, true), Bytes::from(thumbnail.clone()))
            .await?;
    }
    state.blobs.put(&blob_key(id, false), bytes.clone()).await?;
    let upload = Upload {
        id,
        owner: user,
        content_type: info.format.content_type().to_string(),
        width: info.width,
        height: info.height,
        size: bytes.len() as u64,
        thumbnail: thumbnail.is_some(),
        created_at: now_millis(),
    };
    state.store.put_upload(&upload).await?;
    metrics::counter!("natter_uploads_total").increment(1);
    Ok((StatusCode::CREATED, Json(UploadView::from(&upload))))
}

/// The query of `GET /media/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// `thumb` for the smaller copy (the original when the image has none).
    pub size: Option<String>,
}

/// Whether `viewer` may fetch `upload`: its owner, anyone for an avatar, the recipient of a
/// one-to-one image, a member of a group it was sent to.
async fn may_view(state: &ApiState, viewer: i64, upload: &Upload) -> Result<bool, Problem> {
    if upload.owner == viewer {
        return Ok(true);
    }
    for audience in state.store.upload_audiences(upload.id).await? {
        if audience == AUDIENCE_EVERYONE || audience == format!("user:{viewer}") {
            return Ok(true);
        }
        if let Some(group) = audience
            .strip_prefix("group:")
            .and_then(natter_proto::object::parse_id)
            && state.store.is_group_member(group, viewer).await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `GET /media/{id}`: an uploaded image, for those who may see it.
#[utoipa::path(
    get,
    path = "/media/{id}",
    tag = "uploads",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The upload's id"), MediaQuery),
    responses(
        (status = 200, description = "The image", content_type = "image/*"),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such upload, or not one the caller may see"),
    )
)]
pub async fn media(
    State(state): State<ApiState>,
    AuthUser(viewer): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<MediaQuery>,
) -> Result<Response, Problem> {
    let id = positive_id(&id, "upload")?;
    let not_found = || Problem::new(ErrorCode::NotFound, format!("there is no upload {id}"));
    let upload = state.store.upload(id).await?.ok_or_else(not_found)?;
    // Not allowed looks like missing, so upload ids cannot be probed.
    if !may_view(&state, viewer, &upload).await? {
        return Err(not_found());
    }
    let thumbnail = upload.thumbnail && query.size.as_deref() == Some("thumb");
    let bytes = state
        .blobs
        .get(&blob_key(id, thumbnail))
        .await?
        .ok_or_else(not_found)?;
    let content_type = if thumbnail && upload.content_type != "image/jpeg" {
        "image/png".to_string()
    } else {
        upload.content_type.clone()
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        Body::from(bytes),
    )
        .into_response())
}
