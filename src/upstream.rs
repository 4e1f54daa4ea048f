//! Outbound HTTP: the one shared client, deadline-bounded sends, the error they produce, and the
//! one retry policy for Auth0 calls ([`retry`]).

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::deadline::Deadline;
use crate::telemetry;

/// Longest any single connection attempt may take, whatever the deadline: a dead host should
/// fail fast enough to leave time for a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest upstream body the function reads (JWKS, token, user profile): anything bigger is
/// garbage, and reading it would only spend the invocation's memory.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Which remote service a call went to; named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The tenant's `/.well-known/jwks.json`.
    Jwks,
    /// The tenant's `/oauth/token`.
    TokenEndpoint,
    /// The tenant's Management API v2.
    ManagementApi,
    /// AWS Secrets Manager.
    SecretsManager,
    /// An identity provider's API or token endpoint.
    Idp,
}

impl Service {
    /// A short, stable name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jwks => "jwks",
            Self::TokenEndpoint => "token",
            Self::ManagementApi => "management",
            Self::SecretsManager => "secrets",
            Self::Idp => "idp",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jwks => "the Auth0 JWKS endpoint",
            Self::TokenEndpoint => "the Auth0 token endpoint",
            Self::ManagementApi => "the Auth0 Management API",
            Self::SecretsManager => "AWS Secrets Manager",
            Self::Idp => "the identity provider",
        })
    }
}

/// A call to a remote service that did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The call ran past its share of the invocation's deadline.
    #[error("{0} did not answer within the deadline")]
    Timeout(Service),
    /// The connection failed or broke.
    #[error("{service} could not be reached")]
    Unreachable {
        /// Where the call went.
        service: Service,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an unexpected HTTP status.
    #[error("{service} answered HTTP {status}")]
    Status {
        /// Where the call went.
        service: Service,
        /// The status it answered.
        status: u16,
    },
    /// The service is rate limiting the function.
    #[error("{service} is rate limiting the function")]
    RateLimited {
        /// Where the call went.
        service: Service,
        /// When the service says to try again, if it said.
        retry_after: Option<Duration>,
    },
    /// The service answered a body that could not be understood.
    #[error("{service} answered a body that could not be understood")]
    Garbage {
        /// Where the call went.
        service: Service,
        /// What was wrong with the body.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl UpstreamError {
    /// The service this error came from.
    pub fn service(&self) -> Service {
        match self {
            Self::Timeout(service)
            | Self::Unreachable { service, .. }
            | Self::Status { service, .. }
            | Self::RateLimited { service, .. }
            | Self::Garbage { service, .. } => *service,
        }
    }

    fn from_reqwest(service: Service, error: reqwest::Error) -> Self {
        // A connection that timed out (`CONNECT_TIMEOUT`) is a connect error, worth a retry; the
        // call's own timeout, cut from the deadline, is not.
        if error.is_timeout() && !error.is_connect() {
            Self::Timeout(service)
        } else {
            Self::Unreachable {
                service,
                source: error.without_url(),
            }
        }
    }

    /// A body that did not parse.
    pub fn garbage(
        service: Service,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Garbage {
            service,
            source: source.into(),
        }
    }
}

/// Builds the one HTTP client shared by every outbound call, so that connections (and their TLS
/// sessions) are reused across calls and warm invocations.
///
/// It trusts Mozilla's root certificates compiled in (`webpki-root-certs`), not the system's:
/// loading those costs 1.5–4 ms of every cold start here, against 0.1 ms.
pub fn build_client() -> Result<Client, reqwest::Error> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok());
    Client::builder()
        .tls_certs_only(roots)
        .connect_timeout(CONNECT_TIMEOUT)
        // Never follow redirects: a redirect could carry a bearer token to another origin.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("auth0-idp-proxy/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
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

/// The error for a non-success answer: [`UpstreamError::RateLimited`] for a 429, with the time
/// to wait that the service gave.
pub fn status_error(service: Service, response: &Response) -> UpstreamError {
    if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
        telemetry::rate_limited(service);
        UpstreamError::RateLimited {
            service,
            retry_after: retry_after(response.headers(), std::time::SystemTime::now()),
        }
    } else {
        UpstreamError::Status {
            service,
            status: response.status().as_u16(),
        }
    }
}

/// How long a rate-limited service asks to wait: `Retry-After` in seconds, else Auth0's
/// `X-RateLimit-Reset` (a Unix time in seconds).
pub fn retry_after(headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    let reset = std::time::UNIX_EPOCH + Duration::from_secs(number("x-ratelimit-reset")?);
    Some(reset.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error that may stem from an upstream call; [`retry`] asks it whether to try again.
pub trait UpstreamCause {
    /// The upstream failure behind this error, if that is what it is.
    fn upstream(&self) -> Option<&UpstreamError>;
}

impl UpstreamCause for UpstreamError {
    fn upstream(&self) -> Option<&UpstreamError> {
        Some(self)
    }
}

/// How the attempts of one upstream call are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts in all, the first included.
    pub attempts: u32,
    /// Ceiling of the wait before the first retry, doubled for each further one ("full jitter":
    /// the wait is drawn uniformly below it, so that invocations that failed together do not
    /// retry together).
    pub base: Duration,
    /// Largest ceiling of a backoff wait.
    pub max_backoff: Duration,
    /// Least time a retried attempt is given before the deadline: a retry that could only start
    /// later is not made, and the failure is answered while there is still time to answer.
    pub min_attempt: Duration,
}

impl RetryPolicy {
    /// For the token endpoint, the Management API and the JWKS: three attempts, 100 ms base.
    pub const STANDARD: Self = Self {
        attempts: 3,
        base: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        min_attempt: Duration::from_millis(250),
    };

    /// One attempt, no retry: for calls with a fallback (a JWKS refresh while cached keys are
    /// still usable), where waiting is worse than failing.
    pub const ONCE: Self = Self {
        attempts: 1,
        ..Self::STANDARD
    };

    /// What to do after attempt number `attempt` (from 1) failed with `error`, with `left`
    /// before the deadline; `jitter` is drawn uniformly from `[0, 1)`.
    ///
    /// Connect errors, 5xx and 408 are retried after a jittered exponential backoff; a 429 after
    /// the wait the service asked for (at least the backoff); nothing else. No retry is made
    /// that could not start `min_attempt` before the deadline.
    pub fn next(&self, attempt: u32, error: &UpstreamError, left: Duration, jitter: f64) -> Next {
        if attempt >= self.attempts {
            return Next::GiveUp;
        }
        let ceiling = self
            .base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let backoff = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
        let wait = match error {
            UpstreamError::Unreachable { .. } => backoff,
            UpstreamError::Status { status, .. } if *status >= 500 || *status == 408 => backoff,
            UpstreamError::RateLimited { retry_after, .. } => {
                retry_after.map_or(backoff, |asked| asked.max(backoff))
            }
            // A timeout has spent the call's share of the deadline; garbage and refusals will
            // not change on a second try.
            _ => return Next::GiveUp,
        };
        if wait.saturating_add(self.min_attempt) <= left {
            Next::RetryAfter(wait)
        } else {
            Next::GiveUp
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or [`RetryPolicy::next`] gives up;
    /// then returns its last result. Waits never run past `deadline`.
    pub async fn run<T, E, F, Fut>(&self, deadline: &Deadline, mut attempt: F) -> Result<T, E>
    where
        E: UpstreamCause,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut number = 1;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(cause) = error.upstream() else {
                return Err(error);
            };
            let Next::RetryAfter(wait) =
                self.next(number, cause, deadline.remaining(), fastrand::f64())
            else {
                return Err(error);
            };
            tracing::warn!(
                service = cause.service().name(),
                attempt = number,
                wait_ms = wait.as_secs_f64() * 1e3,
                error = %cause,
                "retrying upstream call"
            );
            // Time spent waiting on a service is time the invocation spent because of it.
            telemetry::upstream_time(cause.service(), wait);
            tokio::time::sleep(wait).await;
            number += 1;
        }
    }
}

/// The decision of [`RetryPolicy::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this wait.
    RetryAfter(Duration),
    /// Return the failure.
    GiveUp,
}

/// Runs `attempt` under [`RetryPolicy::STANDARD`].
pub async fn retry<T, E, F, Fut>(deadline: &Deadline, attempt: F) -> Result<T, E>
where
    E: UpstreamCause,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    RetryPolicy::STANDARD.run(deadline, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_prefers_retry_after_then_reset_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert("x-ratelimit-reset", "1003".parse().expect("value"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        headers.insert("x-ratelimit-reset", "900".parse().expect("value"));
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert("retry-after", "7".parse().expect("value"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "soon".parse().expect("value"));
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::ZERO)
        );
    }

    const POLICY: RetryPolicy = RetryPolicy::STANDARD;
    const PLENTY: Duration = Duration::from_secs(10);

    fn status(status: u16) -> UpstreamError {
        UpstreamError::Status {
            service: Service::TokenEndpoint,
            status,
        }
    }

    fn rate_limited(seconds: Option<u64>) -> UpstreamError {
        UpstreamError::RateLimited {
            service: Service::ManagementApi,
            retry_after: seconds.map(Duration::from_secs),
        }
    }

    #[test]
    fn server_errors_and_408_are_retried_with_a_growing_jittered_backoff() {
        for code in [500, 502, 503, 504, 408] {
            assert_eq!(
                POLICY.next(1, &status(code), PLENTY, 0.5),
                Next::RetryAfter(Duration::from_millis(50)),
                "{code}"
            );
        }
        assert_eq!(
            POLICY.next(2, &status(500), PLENTY, 0.5),
            Next::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            POLICY.next(1, &status(500), PLENTY, 0.0),
            Next::RetryAfter(Duration::ZERO)
        );
        let wide = RetryPolicy {
            attempts: 20,
            ..POLICY
        };
        assert_eq!(
            wide.next(12, &status(500), PLENTY, 0.999_999),
            Next::RetryAfter(Duration::from_secs(1).mul_f64(0.999_999)),
            "the ceiling stops growing at max_backoff"
        );
    }

    #[test]
    fn connection_failures_are_retried() {
        let source = Client::new()
            .get("not a url")
            .build()
            .expect_err("a transport-level error");
        let unreachable = UpstreamError::Unreachable {
            service: Service::Jwks,
            source,
        };
        assert_eq!(
            POLICY.next(1, &unreachable, PLENTY, 0.5),
            Next::RetryAfter(Duration::from_millis(50))
        );
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        assert_eq!(POLICY.next(3, &status(500), PLENTY, 0.5), Next::GiveUp);
        assert_eq!(
            RetryPolicy::ONCE.next(1, &status(500), PLENTY, 0.5),
            Next::GiveUp
        );
    }

    #[test]
    fn client_errors_timeouts_and_garbage_are_not_retried() {
        for error in [
            status(400),
            status(401),
            status(403),
            status(404),
            UpstreamError::Timeout(Service::Jwks),
            UpstreamError::garbage(Service::Jwks, "not JSON"),
        ] {
            assert_eq!(POLICY.next(1, &error, PLENTY, 0.5), Next::GiveUp, "{error}");
        }
    }

    #[test]
    fn a_rate_limit_is_waited_out_only_when_the_wait_and_a_call_fit_in_the_deadline() {
        let asked = Duration::from_secs(1);
        assert_eq!(
            POLICY.next(1, &rate_limited(Some(1)), Duration::from_secs(3), 0.5),
            Next::RetryAfter(asked)
        );
        assert_eq!(
            POLICY.next(1, &rate_limited(Some(1)), asked + POLICY.min_attempt, 0.5),
            Next::RetryAfter(asked)
        );
        assert_eq!(
            POLICY.next(
                1,
                &rate_limited(Some(1)),
                asked + POLICY.min_attempt - Duration::from_millis(1),
                0.5
            ),
            Next::GiveUp
        );
        assert_eq!(
            POLICY.next(1, &rate_limited(Some(30)), Duration::from_secs(3), 0.5),
            Next::GiveUp
        );
        assert_eq!(
            POLICY.next(1, &rate_limited(Some(0)), PLENTY, 0.5),
            Next::RetryAfter(Duration::from_millis(50)),
            "a reset already passed still waits the backoff"
        );
        assert_eq!(
            POLICY.next(1, &rate_limited(None), PLENTY, 0.5),
            Next::RetryAfter(Duration::from_millis(50))
        );
    }

    #[test]
    fn no_backoff_runs_into_the_deadline() {
        assert_eq!(
            POLICY.next(1, &status(503), POLICY.min_attempt, 0.0),
            Next::RetryAfter(Duration::ZERO)
        );
        assert_eq!(
            POLICY.next(1, &status(503), POLICY.min_attempt, 0.5),
            Next::GiveUp
        );
        assert_eq!(
            POLICY.next(1, &status(503), Duration::ZERO, 0.0),
            Next::GiveUp
        );
    }
}
