//! Injected faults of the stand-in tenant's endpoints: what to play ([`Fault`]), for how many
//! more requests ([`Injected`]), and the answer Auth0 gives when it fails, throttles or hangs.

use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::lock;
use crate::oauth_error::oauth_error;

/// How the token endpoint or the Management API misbehaves, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers this HTTP status (500, 503, 408…) with an Auth0-style JSON error.
    Status(u16),
    /// Answers 429 with Auth0's rate-limit headers, `X-RateLimit-Reset` (a Unix time in whole
    /// seconds) this many seconds from now.
    RateLimited {
        /// Seconds from now to the reset, as the header says it.
        reset_in_secs: u64,
    },
    /// Never answers.
    Hang,
    /// Refuses as an OAuth endpoint does: this status, with this `error` code.
    Refuse {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: &'static str,
    },
}

/// A fault and how many more requests it applies to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Injected {
    fault: Fault,
    remaining: usize,
}

impl Injected {
    /// `fault` for the next `times` requests (`usize::MAX`: until healed); `None` for zero.
    pub(crate) fn new(fault: Fault, times: usize) -> Option<Self> {
        (times > 0).then_some(Self {
            fault,
            remaining: times,
        })
    }
}

/// The fault to play for this request, if one is injected; counts it down.
pub(crate) fn take_fault(injected: &Mutex<Option<Injected>>) -> Option<Fault> {
    let mut injected = lock(injected);
    let current = injected.as_mut()?;
    let fault = current.fault;
    current.remaining = current.remaining.saturating_sub(1);
    if current.remaining == 0 {
        *injected = None;
    }
    Some(fault)
}

/// What Auth0 answers when it fails, throttles or hangs.
pub(crate) async fn play(fault: Fault) -> Response {
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                axum::Json(json!({
                    "statusCode": code,
                    "error": status.canonical_reason().unwrap_or("Error"),
                    "message": "injected fault",
                })),
            )
                .into_response()
        }
        Fault::RateLimited { reset_in_secs } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-ratelimit-limit", "10".to_owned()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", (now + reset_in_secs).to_string()),
                ],
                axum::Json(json!({
                    "statusCode": 429,
                    "error": "Too Many Requests",
                    "message": "Global limit has been reached",
                })),
            )
                .into_response()
        }
        Fault::Hang => std::future::pending().await,
        Fault::Refuse { status, error } => oauth_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            error,
            "refused by the stand-in",
        ),
    }
}
