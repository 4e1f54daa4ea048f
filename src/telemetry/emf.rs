//! The summary line as a CloudWatch Embedded Metric Format document: every metric and dimension
//! a member at the root, declared in `_aws` (what CloudWatch reads to extract the metrics).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::line::JsonLine;
use super::{Cache, Invocation, SUMMARY_TARGET, Trace, timestamp, upstream_metric};
use crate::service::Service;

/// Most metrics one line declares: the duration, one time per upstream, the IdP token cache's
/// two counts, the two rates and the seven event counts.
const MAX_METRICS: usize = 1 + Service::ALL.len() + 2 + 2 + 7;

impl Trace {
    /// The summary line: who, what, how it ended, where the time went; and the EMF document that
    /// makes metrics of it. Capitalised members are CloudWatch names (metrics and dimensions);
    /// the others are log properties only. Nothing here can hold a token or a user id, and the
    /// dimensions take only bounded values: the route's name, a configured connection, an error
    /// code.
    pub fn summary(&self, invocation: &Invocation<'_>, now: SystemTime, namespace: &str) -> String {
        let mut line = Emf {
            root: JsonLine::default(),
            metrics: Vec::with_capacity(MAX_METRICS),
        };
        line.root.member_if("timestamp", timestamp());
        line.root.member("level", "INFO");
        line.root.member("message", "invocation");
        line.root.member("target", SUMMARY_TARGET);
        line.root.member("request_id", invocation.request_id);
        line.root.member("status", invocation.status);

        line.root.member("Route", invocation.route.as_str());
        line.root.member_if("Connection", invocation.connection);
        line.root.member_if("ErrorCode", self.error_code);
        line.root.member_if("stream_cut", self.stream_cut);

        line.milliseconds("Duration", invocation.duration);
        for service in Service::ALL {
            if let Some(time) = self.upstream(service) {
                line.milliseconds(upstream_metric(service), time);
            }
        }
        for cache in Cache::ALL {
            match (cache, self.cache(cache)) {
                (_, None) => {}
                (Cache::IdpToken, Some(hit)) => {
                    line.count("IdpTokenCacheHits", u32::from(hit));
                    line.count("IdpTokenCacheMisses", u32::from(!hit));
                }
                (Cache::Jwks, Some(hit)) => line.root.member("jwks_cache_hit", hit),
                (Cache::ManagementToken, Some(hit)) => {
                    line.root.member("management_token_cache_hit", hit)
                }
                (Cache::Credentials, Some(hit)) => line.root.member("credentials_cache_hit", hit),
                (Cache::CallerToken, Some(hit)) => line.root.member("caller_token_cache_hit", hit),
            }
        }
        // Rates: on every line, 0 or 1, so that their average is the share of invocations.
        line.count("Errors", u32::from(self.error_code.is_some()));
        line.count("ServerErrors", u32::from(invocation.status >= 500));
        // Events: only when they happened.
        let reconsents = u32::from(self.error_code == Some("reconsent_required"));
        let consents = u32::from(self.error_code == Some("consent_required"));
        for (name, count) in [
            ("Reconsents", reconsents),
            ("ConsentsRequired", consents),
            ("Renewals", self.renewals),
            ("RenewalFailures", self.renewal_failures),
            ("Auth0RateLimited", self.auth0_rate_limited),
            ("TokenTableDegraded", self.token_table_degraded),
            ("TokenTableKeysUnusable", self.token_table_keys_unusable),
            ("HeaderValuesDropped", self.header_values_dropped),
            ("StreamsCut", u32::from(self.stream_cut.is_some())),
        ] {
            if count > 0 {
                line.count(name, count);
            }
        }
        let dimensions = Dimensions {
            connection: invocation.connection.is_some(),
            error_code: self.error_code.is_some(),
        };
        line.finish(dimensions, namespace, now)
    }
}

/// An EMF document under construction: a metric is declared by writing its member, so that
/// every name `_aws` declares is at the root with a value of the right type.
struct Emf {
    root: JsonLine,
    metrics: Vec<Metric>,
}

/// Which of the optional dimensions the line has at its root.
struct Dimensions {
    connection: bool,
    error_code: bool,
}

/// A metric's declaration in a directive.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metric {
    name: &'static str,
    unit: &'static str,
}

/// One `CloudWatchMetrics` directive: these metrics, under each of these dimension sets.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: &'static [&'static [&'static str]],
    metrics: &'a [Metric],
}

/// The `_aws` member.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Aws<'a> {
    timestamp: u64,
    cloud_watch_metrics: &'a [Directive<'a>],
}

/// `Errors` alone, for the per-error-code directive.
const ERRORS: &[Metric] = &[Metric {
    name: "Errors",
    unit: "Count",
}];

impl Emf {
    fn metric(&mut self, name: &'static str, unit: &'static str, value: impl Serialize) {
        self.root.member(name, value);
        self.metrics.push(Metric { name, unit });
    }

    fn milliseconds(&mut self, name: &'static str, duration: Duration) {
        self.metric(name, "Milliseconds", milliseconds(duration));
    }

    fn count(&mut self, name: &'static str, count: u32) {
        self.metric(name, "Count", count);
    }

    /// Every metric for the whole function, per route and per connection; `Errors` also per
    /// error code, alone and per connection.
    fn finish(mut self, dimensions: Dimensions, namespace: &str, now: SystemTime) -> String {
        let main = Directive {
            namespace,
            dimensions: if dimensions.connection {
                &[&[], &["Route"], &["Connection"]]
            } else {
                &[&[], &["Route"]]
            },
            metrics: &self.metrics,
        };
        let errors = Directive {
            namespace,
            dimensions: if dimensions.connection {
                &[&["ErrorCode"], &["Connection", "ErrorCode"]]
            } else {
                &[&["ErrorCode"]]
            },
            metrics: ERRORS,
        };
        let directives = [main, errors];
        let count = if dimensions.error_code { 2 } else { 1 };
        let epoch_millis = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
        let aws = Aws {
            timestamp: epoch_millis,
            cloud_watch_metrics: &directives[..count],
        };
        self.root.member("_aws", &aws);
        self.root.finish()
    }
}

/// Milliseconds to the microsecond, so that logs read `12.345`, not `12.345000000000001`.
fn milliseconds(duration: Duration) -> f64 {
    // Precision lost only beyond 2^53 µs, some 285 years.
    duration.as_micros() as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteName;
    use crate::telemetry::{
        cache_lookup, error_code, header_value_dropped, rate_limited, renewal,
        token_table_degraded, token_table_keys_unusable, traced, upstream_time,
    };
    use serde_json::{Value, json};

    fn parsed(line: &str) -> Value {
        serde_json::from_str(line).expect("the summary line is JSON")
    }

    fn invocation(connection: Option<&str>, status: u16) -> Invocation<'_> {
        Invocation {
            request_id: "req-1",
            route: RouteName::Idp,
            connection,
            status,
            duration: Duration::from_micros(12_345),
        }
    }

    fn metric_names(line: &Value, directive: usize) -> Vec<&str> {
        line["_aws"]["CloudWatchMetrics"][directive]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["Name"].as_str().expect("name"))
            .collect()
    }

    #[tokio::test]
    async fn the_summary_declares_what_happened_and_only_that() {
        let ((), trace) = traced(async {
            upstream_time(Service::Idp, Duration::from_millis(7));
            cache_lookup(Cache::IdpToken, false);
            cache_lookup(Cache::Jwks, true);
            renewal(true);
            renewal(false);
            rate_limited(Service::TokenEndpoint);
            rate_limited(Service::Idp);
            token_table_degraded();
            token_table_keys_unusable();
            token_table_keys_unusable();
            header_value_dropped();
            header_value_dropped();
            error_code("reconsent_required");
        })
        .await;
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = parsed(&trace.summary(&invocation(Some("github"), 403), now, "ns"));
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_123_u64);
        assert_eq!(
            metric_names(&line, 0),
            [
                "Duration",
                "IdpTime",
                "IdpTokenCacheHits",
                "IdpTokenCacheMisses",
                "Errors",
                "ServerErrors",
                "Reconsents",
                "Renewals",
                "RenewalFailures",
                "Auth0RateLimited",
                "TokenTableDegraded",
                "TokenTableKeysUnusable",
                "HeaderValuesDropped"
            ]
        );
        assert_eq!(line["TokenTableKeysUnusable"], 1, "once per invocation");
        assert_eq!(line["HeaderValuesDropped"], 2);
        assert_eq!(line["Duration"], 12.345);
        assert_eq!(line["IdpTime"], 7.0);
        assert_eq!(
            (&line["IdpTokenCacheHits"], &line["IdpTokenCacheMisses"]),
            (&json!(0), &json!(1))
        );
        assert_eq!(
            (&line["Renewals"], &line["RenewalFailures"]),
            (&json!(1), &json!(1))
        );
        assert_eq!(line["Auth0RateLimited"], 1, "the IdP's 429 is not Auth0's");
        assert_eq!(line["jwks_cache_hit"], true);
        let cloudwatch = &line["_aws"]["CloudWatchMetrics"];
        assert_eq!(
            cloudwatch[0]["Dimensions"],
            json!([[], ["Route"], ["Connection"]])
        );
        assert_eq!(
            cloudwatch[1]["Dimensions"],
            json!([["ErrorCode"], ["Connection", "ErrorCode"]])
        );
        assert_eq!(metric_names(&line, 1), ["Errors"]);
        assert_eq!(cloudwatch[1]["Namespace"], "ns");
    }

    #[test]
    fn a_quiet_success_has_rates_but_no_event_counts_and_no_error_directive() {
        let line =
            parsed(&Trace::default().summary(&invocation(None, 200), SystemTime::now(), "ns"));
        assert_eq!(
            metric_names(&line, 0),
            ["Duration", "Errors", "ServerErrors"]
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[], ["Route"]])
        );
        assert!(line["_aws"]["CloudWatchMetrics"].get(1).is_none());
        assert!(line.get("Connection").is_none() && line.get("ErrorCode").is_none());
    }
}
