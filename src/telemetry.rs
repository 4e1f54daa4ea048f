//! Logging: JSON lines on stdout, the format Lambda's JSON log mode expects; and the [`Trace`] of
//! one invocation, logged as its one summary line.
//!
//! The trace is a task-local recorder rather than a parameter: upstream calls record their time
//! where they are made (`upstream::send`, the Secrets Manager read, retry waits) and caches their
//! hits where they are looked up, without every function in between passing it along. Outside an
//! invocation (the cold-start prefetch) recording does nothing.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::service::Service;

/// Installs the JSON log subscriber. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's
/// advanced logging controls), else `RUST_LOG`, else `info`.
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| level.to_lowercase())
        .and_then(|level| EnvFilter::try_new(level).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_ansi(false)
        .init();
}

tokio::task_local! {
    // A `Cell`: only this invocation's task touches it, and never across an await.
    static CURRENT: Cell<Trace>;
}

/// Declares the caches that the summary line reports, each with its log field (`true`: every
/// lookup hit; `false`: this invocation loaded it; absent: not consulted). Adding a cache is one
/// line in the invocation below.
macro_rules! caches {
    ($($(#[doc = $doc:literal])* $cache:ident => $field:ident,)+) => {
        /// A cache whose hit or miss the summary line reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Cache {
            $($(#[doc = $doc])* $cache,)+
        }

        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        struct CacheUse {
            $($field: Option<bool>,)+
        }

        impl CacheUse {
            fn slot(&mut self, cache: Cache) -> &mut Option<bool> {
                match cache {
                    $(Cache::$cache => &mut self.$field,)+
                }
            }
        }

        impl Trace {
            /// Logs the invocation's one summary line: who, what, how it ended, and where the
            /// time went. Structured fields only; nothing here can hold a token.
            pub fn log(&self, invocation: &Invocation<'_>) {
                let ms = |d: Option<Duration>| d.map(milliseconds);
                let upstream = &self.upstream;
                tracing::info!(
                    request_id = invocation.request_id,
                    route = invocation.route,
                    connection = invocation.connection,
                    status = invocation.status,
                    duration_ms = milliseconds(invocation.duration),
                    secrets_ms = ms(upstream.secrets),
                    table_ms = ms(upstream.table),
                    token_ms = ms(upstream.token),
                    management_ms = ms(upstream.management),
                    jwks_ms = ms(upstream.jwks),
                    idp_ms = ms(upstream.idp),
                    $($field = self.caches.$field,)+
                    "invocation"
                );
            }
        }
    };
}

caches! {
    /// The tenant's signing keys.
    Jwks => jwks_cache_hit,
    /// The Management API token.
    ManagementToken => management_token_cache_hit,
    /// The M2M credentials from Secrets Manager.
    Credentials => credentials_cache_hit,
    /// The caller's IdP access token at the connection asked for.
    IdpToken => idp_token_cache_hit,
}

/// Milliseconds to the microsecond, so that logs read `12.345`, not `12.345000000000001`.
fn milliseconds(duration: Duration) -> f64 {
    // Precision lost only beyond 2^53 µs, some 285 years.
    duration.as_micros() as f64 / 1e3
}

/// Time spent on each upstream, calls and retry waits together; `None` when not called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct UpstreamTime {
    secrets: Option<Duration>,
    table: Option<Duration>,
    token: Option<Duration>,
    management: Option<Duration>,
    jwks: Option<Duration>,
    idp: Option<Duration>,
}

impl UpstreamTime {
    fn slot(&mut self, service: Service) -> &mut Option<Duration> {
        match service {
            Service::SecretsManager => &mut self.secrets,
            Service::TokenTable => &mut self.table,
            Service::TokenEndpoint => &mut self.token,
            Service::ManagementApi => &mut self.management,
            Service::Jwks => &mut self.jwks,
            Service::Idp => &mut self.idp,
        }
    }
}

/// What one invocation spent on each upstream, and which caches spared it a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    upstream: UpstreamTime,
    caches: CacheUse,
}

impl Trace {
    /// Time spent on `service` so far, if it was called.
    pub fn upstream(&self, service: Service) -> Option<Duration> {
        let mut upstream = self.upstream;
        *upstream.slot(service)
    }

    /// Whether `cache` hit (`Some(false)`: this invocation loaded it), if it was consulted.
    pub fn cache(&self, cache: Cache) -> Option<bool> {
        let mut caches = self.caches;
        *caches.slot(cache)
    }
}

/// The facts of an invocation that its summary line carries beside the trace.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// Lambda's request id.
    pub request_id: &'a str,
    /// `identities`, `idp`, `preflight` or `none`.
    pub route: &'a str,
    /// The connection asked for, on the IdP route.
    pub connection: Option<&'a str>,
    /// The HTTP status answered.
    pub status: u16,
    /// Time from the handler's start to its answer.
    pub duration: Duration,
}

/// Runs `invocation` with a fresh [`Trace`] as its recorder; returns its output and the trace.
pub fn traced<'a, T: 'a>(
    invocation: impl Future<Output = T> + Send + 'a,
) -> impl Future<Output = (T, Trace)> + Send + 'a {
    // Boxed as a trait object, and before the first poll: with the invocation's whole call chain
    // in its type, the layout of a future that awaits `App::handle` (`local`'s gateway) overran
    // rustc's query depth limit.
    let invocation: Pin<Box<dyn Future<Output = T> + Send + 'a>> = Box::pin(invocation);
    CURRENT.scope(Cell::new(Trace::default()), async move {
        let output = invocation.await;
        (output, CURRENT.try_with(Cell::get).unwrap_or_default())
    })
}

fn update(change: impl FnOnce(&mut Trace)) {
    // Outside `traced` (the cold-start prefetch) there is no invocation to charge.
    let _ = CURRENT.try_with(|cell| {
        let mut trace = cell.get();
        change(&mut trace);
        cell.set(trace);
    });
}

/// Charges `elapsed` to `service` in the current invocation's trace.
pub fn upstream_time(service: Service, elapsed: Duration) {
    update(|trace| {
        let slot = trace.upstream.slot(service);
        *slot = Some(slot.unwrap_or_default() + elapsed);
    });
}

/// Records a lookup of `cache` in the current invocation's trace; one miss makes it a miss.
pub fn cache_lookup(cache: Cache, hit: bool) {
    update(|trace| {
        let slot = trace.caches.slot(cache);
        *slot = Some(slot.unwrap_or(true) && hit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trace_adds_up_upstream_time_and_keeps_a_cache_miss() {
        let ((), trace) = traced(async {
            upstream_time(Service::TokenEndpoint, Duration::from_millis(30));
            upstream_time(Service::TokenEndpoint, Duration::from_millis(12));
            upstream_time(Service::Idp, Duration::from_millis(5));
            cache_lookup(Cache::Credentials, false);
            cache_lookup(Cache::Credentials, true);
            cache_lookup(Cache::Jwks, true);
        })
        .await;
        assert_eq!(
            trace.upstream(Service::TokenEndpoint),
            Some(Duration::from_millis(42))
        );
        assert_eq!(trace.upstream(Service::Idp), Some(Duration::from_millis(5)));
        assert_eq!(trace.upstream(Service::SecretsManager), None);
        assert_eq!(trace.cache(Cache::Credentials), Some(false));
        assert_eq!(trace.cache(Cache::Jwks), Some(true));
        assert_eq!(trace.cache(Cache::ManagementToken), None);
    }

    #[tokio::test]
    async fn invocations_keep_their_own_traces_and_the_prefetch_records_nothing() {
        upstream_time(Service::Jwks, Duration::from_secs(1));
        let (first, second) = tokio::join!(
            traced(async { cache_lookup(Cache::Jwks, false) }),
            traced(async { upstream_time(Service::Idp, Duration::from_millis(1)) })
        );
        assert_eq!(first.1.cache(Cache::Jwks), Some(false));
        assert_eq!(first.1.upstream(Service::Idp), None);
        assert_eq!(second.1.cache(Cache::Jwks), None);
        assert_eq!(second.1.upstream(Service::Jwks), None);
    }
}
