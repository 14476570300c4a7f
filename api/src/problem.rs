//! RFC 9457 problem responses carrying natter's stable error codes.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use natter_infra::InfraError;
use natter_proto::ErrorCode;
use serde::de::DeserializeOwned;

/// An error answered as `application/problem+json`.
#[derive(Debug)]
pub struct Problem {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub detail: String,
}

impl Problem {
    /// A problem with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            code,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "type": format!("https://natter.dev/problems/{}", self.code.as_str()),
            "title": self.code.as_str(),
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code.as_str(),
        });
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
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
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => {
                let code = match &rejection {
                    _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        ErrorCode::FrameTooLarge
                    }
                    JsonRejection::JsonDataError(_) => ErrorCode::InvalidInput,
                    _ => ErrorCode::BadFrame,
                };
                Err(Problem::new(code, rejection.body_text()))
            }
        }
    }
}
