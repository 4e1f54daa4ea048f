//! Logging: JSON lines on stdout, the format Lambda's JSON log mode expects; and the [`Trace`] of
//! one invocation, logged as its one summary line, which is also a CloudWatch Embedded Metric
//! Format (EMF) document: CloudWatch extracts the function's metrics from it, with no extra call.
//!
//! The trace is a task-local recorder rather than a parameter: upstream calls record their time
//! where they are made (`upstream::send`, the Secrets Manager read, retry waits), caches their
//! hits where they are looked up, and the error mapping, the refresh grant and the rate-limit
//! check their one event each, without every function in between passing it along. Outside an
//! invocation (the cold-start prefetch) recording does nothing.
//!
//! The summary line is written by hand ([`Trace::summary`]) rather than through a metrics crate:
//! the EMF document must be the line itself, `_aws` a nested object that tracing's fields cannot
//! carry, and its counts this invocation's alone even when several run at once in one
//! environment. [`LogFormat`] writes it as it is and every other event as tracing's JSON.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime as LogClock};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::routes::RouteName;
use crate::service::Service;

mod emf;
pub mod line;

/// The tracing target of the summary line, which [`LogFormat`] writes as [`Trace::log`] built it.
pub const SUMMARY_TARGET: &str = "auth0_idp_proxy::summary";

/// The tracing target of the audit line (`audit`), which [`LogFormat`] writes as it was built.
pub const AUDIT_TARGET: &str = "auth0_idp_proxy::audit";

/// The CloudWatch namespace of the metrics when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "auth0-idp-proxy";

/// The namespace [`init`] read from `METRICS_NAMESPACE`; a process-wide setting of the log
/// output, like the subscriber itself.
static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Installs the JSON log subscriber. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's
/// advanced logging controls), else `RUST_LOG`, else `info`; the metrics' namespace from
/// `METRICS_NAMESPACE`, else [`DEFAULT_NAMESPACE`].
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| level.to_lowercase())
        .and_then(|level| EnvFilter::try_new(level).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .event_format(LogFormat::default())
        .with_env_filter(filter)
        .init();
    if let Ok(namespace) = std::env::var("METRICS_NAMESPACE") {
        if is_valid_namespace(&namespace) {
            let _ = NAMESPACE.set(namespace);
        } else {
            // Metrics under the default namespace beat no answers at all: logged, not fatal.
            tracing::error!(
                default = DEFAULT_NAMESPACE,
                "METRICS_NAMESPACE is not a CloudWatch namespace (1-255 of A-Z a-z 0-9 . - _ / # : and space, not AWS/...); using the default"
            );
        }
    }
}

/// The metrics' CloudWatch namespace.
pub fn namespace() -> &'static str {
    NAMESPACE.get().map_or(DEFAULT_NAMESPACE, String::as_str)
}

/// CloudWatch's rule for a namespace.
fn is_valid_namespace(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && !name.starts_with("AWS/")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c))
}

/// The log line format: tracing-subscriber's flattened JSON for every event, and the summary
/// line (target [`SUMMARY_TARGET`]) and the audit line ([`AUDIT_TARGET`]) exactly as rendered.
/// Lines carry no span context, so the function opens no spans: each would cost every call and
/// show nowhere.
pub struct LogFormat {
    json: Format<Json>,
}

impl Default for LogFormat {
    fn default() -> Self {
        Self {
            json: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // The summary and audit lines are written as built: JSON documents of their own.
        if [SUMMARY_TARGET, AUDIT_TARGET].contains(&event.metadata().target()) {
            let mut rendered = Rendered {
                writer: &mut writer,
                written: None,
            };
            event.record(&mut rendered);
            if let Some(written) = rendered.written {
                return written;
            }
        }
        self.json.format_event(context, writer, event)
    }
}

/// Writes the `line` field of a summary or audit event as its own line, as it is (no copy).
struct Rendered<'a, 'w> {
    writer: &'a mut Writer<'w>,
    /// The write's outcome, once the field was found.
    written: Option<std::fmt::Result>,
}

impl Visit for Rendered<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "line" {
            self.written = Some(writeln!(self.writer, "{value}"));
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

tokio::task_local! {
    // A `Cell`: only this invocation's task touches it, and never across an await.
    static CURRENT: Cell<Trace>;
}

/// A cache whose hit or miss the summary line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The tenant's signing keys.
    Jwks,
    /// The Management API token.
    ManagementToken,
    /// The M2M credentials from Secrets Manager.
    Credentials,
    /// The caller's IdP access token at the connection asked for.
    IdpToken,
    /// The caller's Auth0 access token, its signature verified at an earlier sight.
    CallerToken,
}

impl Cache {
    const ALL: [Self; 5] = [
        Self::Jwks,
        Self::ManagementToken,
        Self::Credentials,
        Self::IdpToken,
        Self::CallerToken,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Where `service` stands in [`Service::ALL`].
fn upstream_index(service: Service) -> usize {
    match service {
        Service::SecretsManager => 0,
        Service::TokenEndpoint => 1,
        Service::ManagementApi => 2,
        Service::Jwks => 3,
        Service::Idp => 4,
        Service::TokenTable => 5,
    }
}

/// The metric of the time spent on `service`.
fn upstream_metric(service: Service) -> &'static str {
    match service {
        Service::SecretsManager => "SecretsManagerTime",
        Service::TokenEndpoint => "TokenEndpointTime",
        Service::ManagementApi => "ManagementApiTime",
        Service::Jwks => "JwksTime",
        Service::Idp => "IdpTime",
        Service::TokenTable => "TokenTableTime",
    }
}

/// What one invocation spent on each upstream, which caches spared it a call, and what happened
/// on the way that an operator counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    /// Per [`upstream_index`]: calls and retry waits together; `None` when not called.
    upstream: [Option<Duration>; Service::ALL.len()],
    /// Per [`Cache::index`]: `true` when every lookup hit; `None` when not consulted.
    caches: [Option<bool>; Cache::ALL.len()],
    renewals: u32,
    renewal_failures: u32,
    auth0_rate_limited: u32,
    token_table_degraded: u32,
    /// 0 or 1: the table is configured but its keys cannot be used.
    token_table_keys_unusable: u32,
    header_values_dropped: u32,
    /// Why a streamed body was ended before the IdP's was (`Cut::code`), if it was.
    stream_cut: Option<&'static str>,
    /// The `error` code answered, when the answer is an error of the function's own.
    error_code: Option<&'static str>,
}

impl Trace {
    /// Time spent on `service` so far, if it was called.
    pub fn upstream(&self, service: Service) -> Option<Duration> {
        self.upstream[upstream_index(service)]
    }

    /// Whether `cache` hit (`Some(false)`: this invocation loaded it), if it was consulted.
    pub fn cache(&self, cache: Cache) -> Option<bool> {
        self.caches[cache.index()]
    }

    /// Whether a refresh grant gave a token during the invocation.
    pub fn renewed(&self) -> bool {
        self.renewals > 0
    }

    /// The `error` code answered, when the answer is an error of the function's own.
    pub fn error_code(&self) -> Option<&'static str> {
        self.error_code
    }

    /// Why the answer's streamed body was ended early, if it was.
    pub fn stream_cut(&self) -> Option<&'static str> {
        self.stream_cut
    }

    /// Notes that the answer's streamed body was ended early, for `reason` (the
    /// `StreamsCut` metric): known only once the stream ends, after the invocation's own trace.
    pub fn note_stream_cut(&mut self, reason: &'static str) {
        self.stream_cut = Some(reason);
    }

    /// Logs the invocation's one summary line ([`Trace::summary`], now, in [`namespace`]).
    pub fn log(&self, invocation: &Invocation<'_>) {
        let line = self.summary(invocation, SystemTime::now(), namespace());
        tracing::info!(target: SUMMARY_TARGET, line = line.as_str());
    }
}

/// Now, as tracing's JSON lines write their `timestamp`, for the lines written by hand.
pub fn timestamp() -> Option<String> {
    let mut timestamp = String::new();
    LogClock
        .format_time(&mut Writer::new(&mut timestamp))
        .ok()
        .map(|()| timestamp)
}

/// The facts of an invocation that its summary line carries beside the trace.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// Lambda's request id.
    pub request_id: &'a str,
    /// The route's name.
    pub route: RouteName,
    /// The connection asked for on the IdP route, when it is a configured one: a dimension, so
    /// never a name an anonymous caller made up.
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
        let slot = &mut trace.upstream[upstream_index(service)];
        *slot = Some(slot.unwrap_or_default() + elapsed);
    });
}

/// Records a lookup of `cache` in the current invocation's trace; one miss makes it a miss.
pub fn cache_lookup(cache: Cache, hit: bool) {
    update(|trace| {
        let slot = &mut trace.caches[cache.index()];
        *slot = Some(slot.unwrap_or(true) && hit);
    });
}

/// Records the `error` code the invocation answered (the last one, if several were mapped).
pub fn error_code(code: &'static str) {
    update(|trace| trace.error_code = Some(code));
}

/// Records a refresh grant: `renewed` when it gave a token, else refused or failed.
pub fn renewal(renewed: bool) {
    update(|trace| {
        if renewed {
            trace.renewals += 1;
        } else {
            trace.renewal_failures += 1;
        }
    });
}

/// Records a 429 from `service`; those from Auth0 (token endpoint, Management API, JWKS) are
/// the `Auth0RateLimited` metric, whether or not the wait fitted in the deadline.
pub fn rate_limited(service: Service) {
    if matches!(
        service,
        Service::TokenEndpoint | Service::ManagementApi | Service::Jwks
    ) {
        update(|trace| trace.auth0_rate_limited += 1);
    }
}

/// Records that the fleet token table failed or throttled and the invocation carried on
/// without it (docs/fleet-state.md): the `TokenTableDegraded` metric.
pub fn token_table_degraded() {
    update(|trace| trace.token_table_degraded += 1);
}

/// Records that the invocation wanted the fleet token table but its keys cannot be used, so the
/// table is not (docs/fleet-state.md): the `TokenTableKeysUnusable` metric, 1 however many times
/// the invocation asked.
pub fn token_table_keys_unusable() {
    update(|trace| trace.token_table_keys_unusable = 1);
}

/// Records a response header value left out of the Lambda response, which cannot carry it
/// (`event::fit`): the `HeaderValuesDropped` metric.
pub fn header_value_dropped() {
    update(|trace| trace.header_values_dropped += 1);
}

/// `error: cause: cause…`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_upstream_has_its_own_slot() {
        for (index, service) in Service::ALL.into_iter().enumerate() {
            assert_eq!(upstream_index(service), index, "{service:?}");
        }
    }

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
        renewal(true);
        let (first, second) = tokio::join!(
            traced(async {
                cache_lookup(Cache::Jwks, false);
                rate_limited(Service::ManagementApi);
            }),
            traced(async { upstream_time(Service::Idp, Duration::from_millis(1)) })
        );
        assert_eq!(first.1.cache(Cache::Jwks), Some(false));
        assert_eq!(first.1.upstream(Service::Idp), None);
        assert_eq!(first.1.auth0_rate_limited, 1);
        assert_eq!(second.1.cache(Cache::Jwks), None);
        assert_eq!(second.1.upstream(Service::Jwks), None);
        assert_eq!((second.1.auth0_rate_limited, second.1.renewals), (0, 0));
    }

    #[test]
    fn namespaces_follow_cloudwatch_rules() {
        assert!(is_valid_namespace("auth0-idp-proxy/prod-stack"));
        assert!(is_valid_namespace("Team #1: proxy_v2.x"));
        for bad in ["", "AWS/Lambda", "emoji🙂", &"x".repeat(256)] {
            assert!(!is_valid_namespace(bad), "{bad}");
        }
    }
}
