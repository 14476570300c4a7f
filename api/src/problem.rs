//! RFC 9457 problem responses carrying natter's stable error codes.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use natter_infra::InfraError;
use natter_proto::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of a problem response, as documented in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://natter.dev/problems/invalid_input",
    "title": "invalid_input",
    "status": 400,
    "detail": "the user id must be a positive id",
    "code": "invalid_input"
}))]
pub struct ProblemBody {
    /// `https://natter.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The code, as a short title.
    pub title: &'static str,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The stable code clients act on.
    #[schema(value_type = ProblemCode)]
    pub code: &'static str,
}

/// The schema of the `code` field: every [`ErrorCode`] as it appears on the wire.
#[derive(Debug)]
pub struct ProblemCode;

impl utoipa::PartialSchema for ProblemCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A stable error code (docs/protocol.md lists what each one means).",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for ProblemCode {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ErrorCode")
    }
}

/// An error answered as `application/problem+json`.
#[derive(Debug)]
pub struct Problem {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub detail: String,
    /// When the server is past its capacity: how long to wait before retrying (sent as
    /// `Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

impl Problem {
    /// A problem with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        natter_proto::refusal::answered("api", self.code, &self.detail);
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ProblemBody {
            problem_type: format!("https://natter.dev/problems/{}", self.code.as_str()),
            title: self.code.as_str(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code.as_str(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, as RFC 9110 wants.
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<InfraError> for Problem {
    fn from(error: InfraError) -> Self {
        let code = error.code();
        tracing::error!(%error, "request failed in a port");
        Problem::new(
            code,
            "the server could not complete the request; retry later",
        )
    }
}

impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        let code = ErrorCode::of_status(&status);
        if let Some(wait) = natter_proto::error::retry_after(&status) {
            // Past capacity: expected under load, and the caller is told when to come back.
            return Problem {
                retry_after: Some(wait),
                ..Problem::new(code, status.message())
            };
        }
        let detail = match code {
            ErrorCode::Internal | ErrorCode::Unavailable => {
                tracing::error!(%status, "a layer call failed");
                "the server could not complete the request; retry later".to_string()
            }
            _ => status.message().to_string(),
        };
        Problem::new(code, detail)
    }
}

/// The answer to an unknown route.
pub async fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "no such endpoint")
}

/// The answer to a known route asked with a method it does not take (axum adds `Allow`).
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method",
    )
}

/// A JSON body whose rejections are problem responses.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<serde_json::Value>::from_request(request, state).await {
            // Every body is an object: serde would otherwise fill a struct from an array by
            // position, so `["bob", "secret"]` would log in.
            Ok(axum::Json(value)) if !value.is_object() => Err(Problem::new(
                ErrorCode::BadFrame,
                "the body must be a JSON object",
            )),
            Ok(axum::Json(value)) => T::deserialize(value).map(JsonBody).map_err(|error| {
                Problem::new(
                    ErrorCode::BadFrame,
                    format!("the body does not have the expected fields: {error}"),
                )
            }),
            Err(rejection) => {
                // A body of the wrong shape (a missing or unknown field, an array, a string
                // where a number goes) is `bad_frame`, as on the WebSocket; `invalid_input` is
                // for well-formed values out of bounds, which the handlers judge.
                let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::FrameTooLarge
                } else {
                    ErrorCode::BadFrame
                };
                Err(Problem::new(code, rejection.body_text()))
            }
        }
    }
}
