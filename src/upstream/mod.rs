//! Outbound HTTP: the one shared client and deadline-bounded sends and reads.
//!
//! - [`error`]: the error a call produces, and how a status becomes one;
//! - [`retry`]: the one retry policy for upstream calls.

pub mod error;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder, Response};
use rustls::pki_types::{Der, TrustAnchor};
use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use crate::service::Service;
use crate::telemetry;

pub use error::{UpstreamError, printable_code, retry_after, status_error};
pub use retry::{Next, RetryPolicy, UpstreamCause, retry};

/// Longest any single connection attempt may take, whatever the deadline: a dead host should
/// fail fast enough to leave time for a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest upstream body the function reads (JWKS, token, user profile): anything bigger is
/// garbage, and reading it would only spend the invocation's memory.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Builds the one HTTP client shared by every outbound call, so that connections (and their TLS
/// sessions) are reused across calls and warm invocations.
///
/// It trusts Mozilla's roots compiled in (`webpki-root-certs`, as the AWS SDK's client does), not
/// the system's: loading those costs 1.5–4 ms of every cold start here. They come as trust
/// anchors made at build time ([`TRUST_ANCHORS`]), so the cold start parses no certificate
/// either: handed the certificates, reqwest copied and parsed each of them in every init.
pub fn build_client() -> Result<Client, ClientError> {
    Ok(Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(CONNECT_TIMEOUT)
        // Never follow redirects: a redirect could carry a bearer token to another origin.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("auth0-idp-proxy/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()?)
}

/// `webpki-root-certs`' roots as rustls reduces a certificate to a trust anchor, done by build.rs.
const TRUST_ANCHORS: &[TrustAnchor<'static>] =
    include!(concat!(env!("OUT_DIR"), "/trust_anchors.rs"));

/// The client's TLS: rustls with aws-lc (reqwest's own provider), its safe default versions
/// (1.2 and 1.3), Mozilla's roots, HTTP/1.1 by ALPN as reqwest would offer without HTTP/2.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: TRUST_ANCHORS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why the shared HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the client's settings.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Sends `request` with a timeout of at most `cap`, never past `deadline`.
pub async fn send(
    request: RequestBuilder,
    service: Service,
    deadline: &Deadline,
    cap: Duration,
) -> Result<Response, UpstreamError> {
    let timeout = deadline
        .timeout(cap)
        .ok_or(UpstreamError::Timeout(service))?;
    let started = Instant::now();
    let result = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| UpstreamError::from_reqwest(service, e));
    telemetry::upstream_time(service, started.elapsed());
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_trusts_every_root_the_sdk_trusts() {
        // The anchors build.rs made, against the certificates of the SDK's trust store
        // (src/aws.rs) reduced to anchors as rustls reduces them.
        let mut from_certs = rustls::RootCertStore::empty();
        let (added, refused) = from_certs
            .add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        assert_eq!(refused, 0);
        assert!(added > 100, "{added}");
        assert_eq!(TRUST_ANCHORS, from_certs.roots);
    }

    #[test]
    fn the_client_builds_with_its_own_tls_configuration() {
        let config = tls_config().expect("TLS configuration");
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        build_client().expect("reqwest takes the preconfigured rustls configuration");
    }
}
