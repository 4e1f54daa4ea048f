//! A plan's rate limits, enforced by the stand-in tenant when asked ([`Tenant::enforce_plan`]):
//! off by default, so nothing else changes.
//!
//! Auth0 limits with token buckets: a bucket holds at most its burst, each request takes one,
//! and the sustained rate refills it ("Authentication API Endpoint Rate Limits": `size: x,
//! per_minute: y`, one request added back every `60 / y` seconds). A request that finds its
//! bucket empty is answered `429` with `x-ratelimit-limit` (the burst), `x-ratelimit-remaining`
//! (0) and `x-ratelimit-reset` (a Unix time in seconds: when a request is allowed again), as
//! [`crate::Fault::RateLimited`] answers. Sources, `https://auth0.com/docs/troubleshoot/
//! customer-support/operational-policies/rate-limit-policy/rate-limit-configurations/`:
//!
//! - `free-public`: Management API burst 2, sustained 2/second; Authentication API burst 300,
//!   300/minute; `POST /oauth/token` burst 30, 30/second (an older copy of the policy said bursts
//!   of up to 10 for the Management API; the current page says 2).
//! - `essentials-professional-b2b`: Authentication API burst 25, 25/second; Management API
//!   "Read Users" burst 40, 500/minute ("All other Endpoints Combined": burst 10, 150/minute).
//!   The row links only the user search (`GET /api/v2/users`); the page does not say which of
//!   the two buckets reading one user by id falls in, and the stand-in takes "Read Users".
//!
//! Only what the function calls is limited: the Management API's user reads
//! (`GET /api/v2/users/{id}` and its `connected-accounts`), and the token endpoint (the
//! client-credentials grant and Token Vault's exchange, both Authentication API requests). The
//! Management API's configuration endpoints and the sign-in side are not.
//!
//! [`Tenant::enforce_plan`]: crate::Tenant::enforce_plan

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::lock;

/// An Auth0 subscription whose documented limits the stand-in enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Free: the Management API 2 requests a second for the whole tenant (burst 2); the
    /// Authentication API 300 a minute (burst 300) and `/oauth/token` 30 a second (burst 30).
    Free,
    /// Essentials: Management API user reads 500 a minute (burst 40); the Authentication API 25
    /// a second (burst 25).
    Essentials,
}

/// Which of the tenant's APIs a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// The Management API (user reads).
    Management,
    /// The Authentication API (the token endpoint).
    Authentication,
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(burst: u32, per: u32, window: Duration) -> Self {
        Self {
            burst: f64::from(burst),
            per_second: f64::from(per) / window.as_secs_f64(),
            tokens: f64::from(burst),
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
    }

    /// How long until one request is allowed, after a refill.
    fn wait(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / self.per_second)
    }
}

/// The buckets of a plan, per API, and what each let through and refused.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    state: Mutex<Option<HashMap<Api, Vec<Bucket>>>>,
    admitted: Mutex<HashMap<&'static str, usize>>,
    refused: Mutex<HashMap<&'static str, usize>>,
}

impl Limits {
    /// Enforces `plan` from now on, buckets full; `None`: no limits (the default).
    pub(crate) fn enforce(&self, plan: Option<Plan>) {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        *lock(&self.state) = plan.map(|plan| {
            let (management, authentication) = match plan {
                Plan::Free => (
                    vec![Bucket::new(2, 2, second)],
                    vec![Bucket::new(300, 300, minute), Bucket::new(30, 30, second)],
                ),
                Plan::Essentials => (
                    vec![Bucket::new(40, 500, minute)],
                    vec![Bucket::new(25, 25, second)],
                ),
            };
            HashMap::from([
                (Api::Management, management),
                (Api::Authentication, authentication),
            ])
        });
    }

    /// Takes one request of `api` (counted under `kind`) from its buckets: `None` if allowed
    /// (or no plan is enforced), else the `429` Auth0 answers.
    pub(crate) fn admit(&self, api: Api, kind: &'static str) -> Option<Response> {
        let refusal = {
            let mut state = lock(&self.state);
            let buckets = state.as_mut()?.get_mut(&api)?;
            let now = Instant::now();
            for bucket in buckets.iter_mut() {
                bucket.refill(now);
            }
            match buckets.iter().find(|b| b.tokens < 1.0) {
                Some(empty) => Some((empty.burst, empty.wait())),
                None => {
                    for bucket in buckets.iter_mut() {
                        bucket.tokens -= 1.0;
                    }
                    None
                }
            }
        };
        let Some((limit, wait)) = refusal else {
            *lock(&self.admitted).entry(kind).or_default() += 1;
            return None;
        };
        *lock(&self.refused).entry(kind).or_default() += 1;
        let reset = SystemTime::now() + wait;
        // Whole seconds, rounded up: a client that waits until then finds a request allowed.
        let reset = reset
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let headers = [
            ("x-ratelimit-limit", format!("{limit}")),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", reset.to_string()),
        ];
        let body = match api {
            Api::Management => json!({
                "statusCode": 429,
                "error": "Too Many Requests",
                "message": "Global limit has been reached",
            }),
            Api::Authentication => json!({
                "error": "too_many_requests",
                "error_description": "Global limit has been reached",
            }),
        };
        Some((StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response())
    }

    /// Requests of `kind` let through while a plan was enforced.
    pub(crate) fn admitted(&self, kind: &str) -> usize {
        lock(&self.admitted).get(kind).copied().unwrap_or_default()
    }

    /// Requests of `kind` answered `429`.
    pub(crate) fn refused(&self, kind: &str) -> usize {
        lock(&self.refused).get(kind).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_a_bucket_refills_at_its_rate() {
        let limits = Limits::default();
        for _ in 0..100 {
            assert!(limits.admit(Api::Management, "user_read").is_none());
        }
        limits.enforce(Some(Plan::Free));
        assert!(limits.admit(Api::Management, "user_read").is_none());
        assert!(limits.admit(Api::Management, "user_read").is_none());
        let refused = limits
            .admit(Api::Management, "user_read")
            .expect("the third read in a burst of 2 is refused");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["x-ratelimit-limit"], "2");
        assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
        assert!(refused.headers().contains_key("x-ratelimit-reset"));
        std::thread::sleep(Duration::from_millis(550));
        assert!(limits.admit(Api::Management, "user_read").is_none());
        assert_eq!(
            (limits.admitted("user_read"), limits.refused("user_read")),
            (3, 1)
        );
        // The Authentication API is a bucket of its own.
        assert!(limits.admit(Api::Authentication, "exchange").is_none());
        limits.enforce(None);
        assert!(limits.admit(Api::Management, "user_read").is_none());
    }
}
