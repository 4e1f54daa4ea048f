//! [`UpstreamError`]: a call to a remote service that gave no usable answer, and how an answer's
//! status becomes one.

use std::time::Duration;

use reqwest::Response;

use crate::service::Service;
use crate::telemetry;

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

    pub(super) fn from_reqwest(service: Service, error: reqwest::Error) -> Self {
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

/// An OAuth error code as the server chose it, fit for a log line or an error description: at
/// most 48 characters of `[A-Za-z0-9_.-]`, room for Auth0's longest (44 characters).
pub fn printable_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(48)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn printable_codes_are_short_and_plain() {
        assert_eq!(printable_code("invalid_grant"), "invalid_grant");
        let odd = printable_code(&format!("weird\n\"{}", "x".repeat(100)));
        assert!(odd.starts_with("weird") && odd.len() == 48, "{odd}");
        let auth0 = "federated_connection_refresh_token_not_found";
        assert_eq!(printable_code(auth0), auth0);
    }

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
}
