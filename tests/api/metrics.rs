//! The summary line as CloudWatch reads it: one line per invocation, a valid Embedded Metric
//! Format document (checked here rule by rule against the EMF specification), with the metrics
//! of what happened and dimensions from bounded values only; never a user id or a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::routes::RouteName;
use auth0_idp_proxy::telemetry::{Invocation, Trace};
use lambda_http::{Request, RequestExt};
use serde_json::{Value, json};
use standin::Fault;

use crate::helpers::{TestApp, TestResponse, event, event_at, github_token, logs, unique, within};

const USER: &str = "github|1001";

/// The dimensions a summary line may carry, and the values each may take (`None`: checked by
/// the caller against the configuration).
const ROUTES: [&str; 4] = ["identities", "idp", "preflight", "none"];
const ERROR_CODES: [&str; 16] = [
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "forbidden_path",
    "reconsent_required",
    "unknown_connection",
    "identity_not_linked",
    "not_found",
    "method_not_allowed",
    "rate_limited",
    "upstream_error",
    "credentials_unavailable",
    "upstream_timeout",
    "user_blocked",
    "connection_blocked",
    "kill_switch_unavailable",
];

/// CloudWatch's metric units (MetricDatum), as the EMF schema lists them.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// `request` with a fresh request id (its Lambda context kept otherwise), and that id.
pub fn with_request_id(request: Request) -> (Request, String) {
    let mut context = request.lambda_context_ref().cloned().unwrap_or_default();
    context.request_id = unique("req-");
    let id = context.request_id.clone();
    (request.with_lambda_context(context), id)
}

/// Sends `request` and returns the answer with the invocation's summary line, checked against
/// the EMF rules and free of every one of `secrets`.
pub async fn send_traced(
    app: &TestApp,
    request: Request,
    secrets: &[&str],
) -> (TestResponse, Value) {
    let (request, id) = with_request_id(request);
    let response = app.send(request).await;
    let line = summary(&id);
    assert_emf(&line);
    let text = line.to_string();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{secret} in the summary line {text}"
        );
    }
    (response, line)
}

/// The one summary line of the invocation `request_id`, as the function wrote it.
pub fn summary(request_id: &str) -> Value {
    let lines: Vec<Value> = logs()
        .lines()
        // Only the lines that name the id are parsed: the captured logs of the whole binary
        // run to megabytes, and parsing them all for each call would slow the timed tests.
        .filter(|line| line.contains(request_id))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "invocation" && line["request_id"] == request_id)
        .collect();
    assert_eq!(lines.len(), 1, "one summary line for {request_id}");
    lines[0].clone()
}

/// Asserts that `line` is a valid EMF document (the specification's "MUST"s), that its
/// dimensions are the bounded ones, and that every number it declares is at the root.
pub fn assert_emf(line: &Value) {
    let root = line.as_object().expect("the line is a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"]
        .as_u64()
        .expect("_aws.Timestamp is an integer");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        now.abs_diff(timestamp) < 60_000,
        "Timestamp is epoch milliseconds, now: {timestamp} against {now}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty(), "{line}");
    for directive in directives {
        let directive = directive
            .as_object()
            .expect("a MetricDirective is an object");
        let mut members: Vec<&str> = directive.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["Dimensions", "Metrics", "Namespace"], "{line}");
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert!((1..=1024).contains(&namespace.len()), "{line}");
        let sets = directive["Dimensions"].as_array().expect("Dimensions");
        assert!(!sets.is_empty(), "at least one DimensionSet: {line}");
        for set in sets {
            let set = set.as_array().expect("a DimensionSet is an array");
            assert!(set.len() <= 30, "{line}");
            for name in set {
                let name = name.as_str().expect("a dimension name is a string");
                let value = root[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("dimension {name} is a string at the root: {line}"));
                assert!(value.len() <= 1024, "{line}");
                match name {
                    "Route" => assert!(ROUTES.contains(&value), "{line}"),
                    "ErrorCode" => assert!(ERROR_CODES.contains(&value), "{line}"),
                    "Connection" => assert!(
                        ["github", "google-oauth2"].contains(&value),
                        "only configured connections: {line}"
                    ),
                    other => panic!("dimension {other} is not a bounded one: {line}"),
                }
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
        for metric in metrics {
            let metric = metric.as_object().expect("a MetricDefinition is an object");
            assert!(
                metric
                    .keys()
                    .all(|k| ["Name", "Unit", "StorageResolution"].contains(&k.as_str())),
                "{line}"
            );
            let name = metric["Name"].as_str().expect("Name");
            assert!(
                root[name].is_number(),
                "metric {name} is a number at the root: {line}"
            );
            if let Some(unit) = metric.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().expect("Unit")), "{line}");
            }
        }
    }
}

/// Asserts that each member of `expected` is at the root of `line` with that value.
fn assert_members(line: &Value, expected: Value) {
    for (name, value) in expected.as_object().expect("an object") {
        assert_eq!(&line[name], value, "{name} in {line}");
    }
}

/// The metric names of the first directive.
fn metrics(line: &Value) -> Vec<&str> {
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["Name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn a_successful_call_is_a_valid_emf_document_with_duration_upstream_times_and_the_cache() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let token = github_token(USER);
    let secrets = [USER, jwt.as_str(), token.as_str()];

    let (response, cold) = send_traced(&app, event_at("/idp/github/user", &jwt), &secrets).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_members(&cold, json!({"Route": "idp", "Connection": "github"}));
    assert!(cold.get("ErrorCode").is_none(), "{cold}");
    for time in [
        "Duration",
        "IdpTime",
        "ManagementApiTime",
        "TokenEndpointTime",
    ] {
        assert!(
            cold[time].as_f64().is_some_and(|ms| ms > 0.0),
            "{time}: {cold}"
        );
    }
    assert_members(
        &cold,
        json!({"IdpTokenCacheMisses": 1, "IdpTokenCacheHits": 0}),
    );
    assert_members(&cold, json!({"Errors": 0, "ServerErrors": 0}));
    assert_eq!(
        cold["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[], ["Route"], ["Connection"]])
    );
    assert_eq!(
        cold["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "auth0-idp-proxy"
    );
    assert!(
        cold["_aws"]["CloudWatchMetrics"].get(1).is_none(),
        "no error directive"
    );

    let (_, warm) = send_traced(&app, event_at("/idp/github/user", &jwt), &secrets).await;
    assert_eq!(
        metrics(&warm),
        [
            "Duration",
            "IdpTime",
            "IdpTokenCacheHits",
            "IdpTokenCacheMisses",
            "Errors",
            "ServerErrors"
        ]
    );
    assert_eq!(warm["IdpTokenCacheHits"], 1);

    let (_, identities) =
        send_traced(&app, event("http-api-identities.json", &jwt), &secrets).await;
    assert_eq!(identities["Route"], "identities");
    assert!(identities.get("Connection").is_none(), "{identities}");
    assert_eq!(
        identities["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[], ["Route"]])
    );
}

#[tokio::test]
async fn client_errors_are_counted_by_error_code_and_a_made_up_connection_is_no_dimension() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let secrets = [USER, jwt.as_str()];

    let (response, line) =
        send_traced(&app, event_at("/idp/github/user", "not-a-jwt"), &secrets).await;
    response.assert_invalid_token();
    assert_members(
        &line,
        json!({"ErrorCode": "invalid_token", "Errors": 1, "ServerErrors": 0}),
    );
    let errors = &line["_aws"]["CloudWatchMetrics"][1];
    assert_eq!(
        errors["Metrics"],
        json!([{"Name": "Errors", "Unit": "Count"}])
    );
    assert_eq!(
        errors["Dimensions"],
        json!([["ErrorCode"], ["Connection", "ErrorCode"]])
    );

    let made_up = unique("made-up-connection-");
    let path = format!("/idp/{made_up}/user");
    let (response, line) = send_traced(&app, event_at(&path, &jwt), &[&made_up, USER, &jwt]).await;
    response.assert_error(404, "unknown_connection");
    assert_eq!(line["ErrorCode"], "unknown_connection");
    assert!(line.get("Connection").is_none(), "{line}");
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
        json!([["ErrorCode"]])
    );

    let (response, line) = send_traced(
        &app,
        event_at("/idp/github/user/../../identities", &jwt),
        &secrets,
    )
    .await;
    response.assert_error(403, "forbidden_path");
    assert_members(
        &line,
        json!({"ErrorCode": "forbidden_path", "Connection": "github"}),
    );

    let (response, line) = send_traced(&app, event_at("/nowhere", &jwt), &secrets).await;
    response.assert_error(404, "not_found");
    assert_eq!(line["Route"], "none");
}

#[tokio::test]
async fn upstream_failures_count_as_server_errors_and_auth0_429s_are_counted() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let token = github_token(USER);
    let secrets = [USER, jwt.as_str(), token.as_str()];

    // Auth0's Management API rate limits past the deadline: 429, and one Auth0 429 counted.
    app.tenant
        .fail_management_api(Fault::RateLimited { reset_in_secs: 30 }, 1);
    let request = within(
        event("http-api-identities.json", &jwt),
        Duration::from_secs(3),
    );
    let (response, line) = send_traced(&app, request, &secrets).await;
    response.assert_error(429, "rate_limited");
    assert_members(&line, json!({"Auth0RateLimited": 1, "ServerErrors": 0}));
    assert!(metrics(&line).contains(&"Auth0RateLimited"));

    // A 429 waited out within the deadline still counts: the tenant's budget is being spent.
    app.tenant
        .fail_management_api(Fault::RateLimited { reset_in_secs: 1 }, 1);
    let request = within(
        event("http-api-identities.json", &jwt),
        Duration::from_secs(3),
    );
    let (response, line) = send_traced(&app, request, &secrets).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_members(&line, json!({"Auth0RateLimited": 1, "Errors": 0}));

    // The IdP failing for good: 502 on the connection, a server error with the IdP's time.
    app.github.fail_next(10);
    let request = within(event_at("/idp/github/user", &jwt), Duration::from_secs(3));
    let (response, line) = send_traced(&app, request, &secrets).await;
    response.assert_error(502, "upstream_error");
    assert_members(&line, json!({"ServerErrors": 1, "Errors": 1}));
    assert_members(
        &line,
        json!({"ErrorCode": "upstream_error", "Connection": "github"}),
    );
    assert!(line["IdpTime"].as_f64().is_some(), "{line}");
    assert!(line.get("Auth0RateLimited").is_none(), "{line}");
}

#[tokio::test]
async fn the_secret_unreadable_is_a_server_error_with_its_own_code() {
    let app = TestApp::spawn_with(&[], KeyPolicy::default()).await;
    let jwt = app.token(USER).sign();
    app.put_secret("not JSON").await;
    let (response, line) =
        send_traced(&app, event("http-api-identities.json", &jwt), &[USER, &jwt]).await;
    response.assert_error(503, "credentials_unavailable");
    assert_members(
        &line,
        json!({"ErrorCode": "credentials_unavailable", "ServerErrors": 1}),
    );
    assert!(line["SecretsManagerTime"].as_f64().is_some(), "{line}");
}

#[test]
fn the_emf_check_refuses_what_cloudwatch_would_reject() {
    let invocation = Invocation {
        request_id: "req-1",
        route: RouteName::Idp,
        connection: Some("github"),
        status: 200,
        duration: Duration::from_millis(3),
    };
    let valid: Value =
        serde_json::from_str(&Trace::default().summary(&invocation, SystemTime::now(), "ns"))
            .expect("the summary line is JSON");
    assert_emf(&valid);
    let broken: [fn(&mut Value); 7] = [
        |line| drop(line.as_object_mut().map(|root| root.remove("Duration"))),
        |line| line["Duration"] = json!("3 ms"),
        |line| line["Route"] = json!("/idp/github/user"),
        |line| line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1] = json!(["request_id"]),
        |line| line["_aws"]["Timestamp"] = json!("2026-01-01T00:00:00Z"),
        |line| line["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!(""),
        |line| line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("ms"),
    ];
    for (n, breaks) in broken.iter().enumerate() {
        let mut line = valid.clone();
        breaks(&mut line);
        let refused = std::panic::catch_unwind(|| assert_emf(&line)).is_err();
        assert!(refused, "broken document {n} passed: {line}");
    }
}
