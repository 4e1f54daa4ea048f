//! The audit line: one per request to a route, with who called what at which provider and how it
//! ended; never the query string, a token or a secret (searched for by their real values).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, event, event_at, github_token, idp_event, logs, unique, within};
use crate::metrics::{send_traced, with_request_id};

const USER: &str = "github|1001";

/// The one audit line of the invocation `request_id`, as the function wrote it.
pub fn audit_line(request_id: &str) -> Value {
    let lines: Vec<Value> = logs()
        .lines()
        .filter(|line| line.contains(request_id))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "audit" && line["request_id"] == request_id)
        .collect();
    assert_eq!(lines.len(), 1, "one audit line for {request_id}");
    lines[0].clone()
}

/// Asserts that each member of `expected` is in `line` with that value (`null`: absent).
pub fn assert_audit(line: &Value, expected: Value) {
    for (name, value) in expected.as_object().expect("an object") {
        match value {
            Value::Null => assert!(line.get(name).is_none(), "no {name} in {line}"),
            value => assert_eq!(&line[name], value, "{name} in {line}"),
        }
    }
}

/// Sends the v2 event `event` and returns the status and the invocation's audit line, checked
/// free of every one of `secrets`.
async fn audited(app: &TestApp, event: Value, secrets: &[&str]) -> (u16, Value) {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("an event lambda_http reads");
    let (request, id) = with_request_id(request);
    let response = app.send(request).await;
    let line = audit_line(&id);
    let text = line.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in the audit line {text}");
    }
    (response.status, line)
}

#[tokio::test]
async fn a_success_is_audited_with_the_caller_the_call_and_the_idps_request_id_but_no_query() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let token = github_token(USER);
    let private = unique("private-query-value-");
    let query = format!("per_page=5&q={private}");
    let call = idp_event("GET", "/idp/github/user/repos", &query, &jwt, &[]);
    let (status, line) = audited(&app, call, &[&jwt, &token, &private]).await;
    assert_eq!(status, 200);
    assert_audit(
        &line,
        json!({
            "level": "INFO",
            "target": "auth0_idp_proxy::audit",
            "route": "idp",
            "sub": USER,
            "source_ip": "203.0.113.7",
            "method": "GET",
            "connection": "github",
            "strategy": "github",
            "token_source": "identities",
            "path": "/user/repos",
            "idp_status": 200,
            "token_from": "auth0",
            "renewed": false,
            "status": 200,
            "error": null,
            "request_bytes": 0,
        }),
    );
    let idp_id = line["idp_request_id"]
        .as_str()
        .expect("GitHub's request id");
    assert!(idp_id.starts_with("C0DE:"), "{line}");
    assert!(
        line["response_bytes"].as_u64().is_some_and(|n| n > 0),
        "{line}"
    );
    assert!(line["timestamp"].is_string(), "{line}");

    // The next call is served from the cache, and says so.
    let call = idp_event("GET", "/idp/github/user", "", &jwt, &[]);
    let (_, warm) = audited(&app, call, &[&jwt, &token]).await;
    assert_audit(&warm, json!({"token_from": "cache", "path": "/user"}));
    assert_ne!(warm["idp_request_id"], line["idp_request_id"]);
}

#[tokio::test]
async fn refusals_are_audited_with_their_reason_and_no_idp_call() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();

    // Outside the allow rules: the normalised path, the reason, nothing from the IdP.
    let body = json!({"name": "x"}).to_string();
    let mut call = idp_event("DELETE", "/idp/github/user/./", "", &jwt, &[]);
    call["body"] = json!(body);
    let (status, line) = audited(&app, call, &[&jwt]).await;
    assert_eq!(status, 403);
    assert_audit(
        &line,
        json!({
            "sub": USER,
            "method": "DELETE",
            "connection": "github",
            "error": "forbidden_path",
            "status": 403,
            "idp_status": null,
            "idp_request_id": null,
            "token_from": null,
            "request_bytes": body.len(),
        }),
    );

    // No valid token: no `sub`, the reason, the route and connection asked for.
    let call = idp_event("GET", "/idp/github/user", "", "not-a-jwt", &[]);
    let (status, line) = audited(&app, call, &["not-a-jwt"]).await;
    assert_eq!(status, 401);
    assert_audit(
        &line,
        json!({"sub": null, "error": "invalid_token", "connection": "github", "route": "idp"}),
    );

    // `GET /identities` is audited too; a preflight is not.
    let (request, id) = with_request_id(event("http-api-identities.json", &jwt));
    assert_eq!(app.send(request).await.status, 200);
    assert_audit(
        &audit_line(&id),
        json!({"route": "identities", "sub": USER, "connection": null}),
    );
    assert_eq!(app.github.calls(), 0, "no refused call reached the IdP");
}

#[tokio::test]
async fn an_idp_error_is_audited_with_the_idps_status_and_the_rest_api_event_too() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let token = github_token(USER);
    app.github.fail_next(10);
    let (response, summary) = send_traced(
        &app,
        within(event_at("/idp/github/user", &jwt), Duration::from_secs(3)),
        &[USER, &jwt, &token],
    )
    .await;
    response.assert_error(502, "upstream_error");
    let line = audit_line(summary["request_id"].as_str().expect("request id"));
    assert_audit(
        &line,
        json!({
            "sub": USER,
            "idp_status": 503,
            "status": 502,
            "error": "upstream_error",
            "token_from": "auth0",
        }),
    );
    assert!(line["idp_request_id"].is_string(), "{line}");
    // The summary line, metrics for everyone, still carries no user id.
    assert!(summary.get("sub").is_none(), "{summary}");

    // A REST API (payload v1) event, the IdP well again: the source IP from its identity block.
    app.github.fail_next(0);
    let (request, id) = with_request_id(event("rest-api-idp-github-user.json", &jwt));
    assert_eq!(app.send(request).await.status, 200);
    assert_audit(
        &audit_line(&id),
        json!({"source_ip": "203.0.113.7", "sub": USER, "idp_status": 200}),
    );
    crate::helpers::assert_not_logged(&[&jwt, &token]);
}
