//! Outbound HTTP: the shared clients and deadline-bounded sends and reads.
//!
//! - [`client`]: the clients every outbound call goes through, a pooled one for idempotent
//!   requests and one that never reuses a connection for writes;
//! - [`error`]: the error a call produces, and how a status becomes one;
//! - [`retry`]: the one retry policy for upstream calls.

pub mod client;
pub mod error;
pub mod retry;

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use crate::service::Service;
use crate::telemetry;

pub use client::{ClientError, Http, build_client, is_idempotent};
pub use error::{UpstreamError, printable_code, retry_after, status_error};
pub use retry::{Next, RetryPolicy, UpstreamCause, retry};

/// Largest upstream body the function reads (JWKS, token, user profile): anything bigger is
/// garbage, and reading it would only spend the invocation's memory.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Sends `request` with a timeout of at most `cap`, never past `deadline`.
pub async fn send(
    request: RequestBuilder,
    service: Service,
    deadline: &Deadline,
    cap: Duration,
) -> Result<Response, UpstreamError> {
    send_within(request, service, deadline, cap, false).await
}

/// As [`send`], for an answer whose body may stream to the caller: the answer's head within
/// `cap`, but its body readable until the deadline (a large download takes longer than any one
/// call's cap).
pub async fn send_for_stream(
    request: RequestBuilder,
    service: Service,
    deadline: &Deadline,
    cap: Duration,
) -> Result<Response, UpstreamError> {
    send_within(request, service, deadline, cap, true).await
}

/// Sends `request`, its answer's head within `cap` and never past `deadline`; the body readable
/// within the same time, or until the deadline where `body_to_deadline`.
async fn send_within(
    request: RequestBuilder,
    service: Service,
    deadline: &Deadline,
    cap: Duration,
    body_to_deadline: bool,
) -> Result<Response, UpstreamError> {
    let head = deadline
        .timeout(cap)
        .ok_or(UpstreamError::Timeout(service))?;
    let whole = if body_to_deadline {
        deadline.remaining()
    } else {
        head
    };
    let started = Instant::now();
    let sent = tokio::time::timeout(head, request.timeout(whole).send()).await;
    telemetry::upstream_time(service, started.elapsed());
    match sent {
        Ok(result) => result.map_err(|e| UpstreamError::from_reqwest(service, e)),
        Err(_) => Err(UpstreamError::Timeout(service)),
    }
}

/// Reads a response body of at most `limit` bytes; the request's timeout still applies.
pub async fn read_body(
    mut response: Response,
    service: Service,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(UpstreamError::garbage(service, "body too large"));
    }
    let started = Instant::now();
    let body = read_chunks(&mut response, service, limit).await;
    telemetry::upstream_time(service, started.elapsed());
    body
}

async fn read_chunks(
    response: &mut Response,
    service: Service,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| UpstreamError::from_reqwest(service, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(UpstreamError::garbage(service, "body too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The OAuth `error` code of a refusal's JSON body (at most 4 KiB read), made printable; `None`
/// when the body has none. Nothing else of the body is kept: it may echo what was sent.
pub async fn oauth_error_code(response: Response, service: Service) -> Option<String> {
    let body = read_body(response, service, 4096).await.ok()?;
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    value["error"].as_str().map(printable_code)
}

/// Sends `request`, requires a 2xx answer and parses its JSON body as `T`.
pub async fn fetch_json<T: DeserializeOwned>(
    request: RequestBuilder,
    service: Service,
    deadline: &Deadline,
    cap: Duration,
) -> Result<T, UpstreamError> {
    let response = send(request, service, deadline, cap).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_error(service, &response));
    }
    let body = read_body(response, service, MAX_BODY_BYTES).await?;
    serde_json::from_slice(&body).map_err(|e| UpstreamError::garbage(service, e))
}
