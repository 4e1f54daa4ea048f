//! The one retry policy for upstream calls: which failures are worth another attempt, how long to
//! wait before it, and never past the invocation's deadline.

use std::future::Future;
use std::time::Duration;

use super::error::UpstreamError;
use crate::deadline::Deadline;
use crate::telemetry;

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
    use reqwest::Client;

    use crate::service::Service;

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
