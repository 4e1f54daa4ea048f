//! The JSON error body an OAuth endpoint answers (RFC 6749 §5.2), as Auth0 shapes it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `status` with `{"error": error, "error_description": description}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}
