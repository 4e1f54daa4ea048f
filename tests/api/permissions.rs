//! Allow rules that need Auth0 permissions or scopes of the caller: a caller without them gets
//! `403 insufficient_scope` with the RFC 6750 challenge naming what is missing, and no upstream
//! call; rules without a requirement, and `REQUIRED_SCOPE`, behave as before.

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use lambda_http::Request;
use serde_json::{Value, json};

use crate::audit::{assert_audit, audit_line};
use crate::helpers::{TestApp, TestResponse, idp_event};
use crate::metrics::with_request_id;

const USER: &str = "github|1001";

/// The `github` connection at the stand-in, reading open to every caller, writing only for
/// callers with `github:write`.
fn connections() -> String {
    json!({"github": {"api_base": "{github}", "allow": [
        "GET /user",
        "GET /user/repos",
        "POST /user/repos needs github:write",
        "DELETE /user/repos/* needs github:write github:admin",
    ]}})
    .to_string()
}

fn request(method: &str, path: &str, jwt: &str) -> Request {
    let mut event = idp_event(method, path, "", jwt, &[]);
    if method == "POST" {
        event["body"] = json!(json!({"name": "new-repo"}).to_string());
    }
    lambda_http::request::from_str(&event.to_string()).expect("an event lambda_http reads")
}

/// Asserts a 403 `insufficient_scope` whose challenge names exactly `scope`.
fn assert_insufficient_scope(response: &TestResponse, scope: &str) {
    response.assert_error(403, "insufficient_scope");
    assert_eq!(
        response.headers["www-authenticate"],
        format!(r#"Bearer error="insufficient_scope", scope="{scope}""#).as_str()
    );
}

#[tokio::test]
async fn a_write_rule_needs_the_permission_and_without_it_nothing_is_called() {
    let connections = connections();
    let app = TestApp::spawn_with(&[("IDP_CONNECTIONS", &connections)], KeyPolicy::default()).await;
    let reader = app.token(USER).claim("scope", "openid profile").sign();

    // Reading needs nothing.
    let read = app
        .send(request("GET", "/idp/github/user/repos", &reader))
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let (calls, reads) = (app.github.calls(), app.tenant.user_calls());

    // Writing without `github:write`: refused before Auth0 or the IdP is asked anything.
    let (post, id) = with_request_id(request("POST", "/idp/github/user/repos", &reader));
    let refused = app.send(post).await;
    assert_insufficient_scope(&refused, "github:write");
    assert_eq!(app.github.calls(), calls, "no IdP call");
    assert_eq!(app.tenant.user_calls(), reads, "no Management API read");
    assert_audit(
        &audit_line(&id),
        json!({"error": "insufficient_scope", "method": "POST", "path": "/user/repos",
               "sub": USER, "idp_status": null}),
    );

    // The challenge names everything the call needs (RFC 6750 §3), held or not.
    let delete = app
        .send(request("DELETE", "/idp/github/user/repos/x", &reader))
        .await;
    assert_insufficient_scope(&delete, "github:write github:admin");
    let writer_only = app
        .token(USER)
        .claim("permissions", json!(["github:write"]))
        .sign();
    let delete = app
        .send(request("DELETE", "/idp/github/user/repos/x", &writer_only))
        .await;
    assert_insufficient_scope(&delete, "github:write github:admin");

    // With the permission (RBAC `permissions`) or the scope (`scope` claim): the call is made.
    let in_scope = app.token(USER).claim("scope", "openid github:write").sign();
    for jwt in [&writer_only, &in_scope] {
        let calls = app.github.calls();
        let written = app
            .send(request("POST", "/idp/github/user/repos", jwt))
            .await;
        assert_eq!(written.status, 200, "{}", written.body);
        assert_eq!(app.github.calls(), calls + 1);
        let sent = app.github.requests();
        assert_eq!(sent.last().map(|r| r.method.as_str()), Some("POST"));
    }

    // A rule outside the list is still `forbidden_path`, whatever the token carries.
    app.send(request("PATCH", "/idp/github/user", &in_scope))
        .await
        .assert_error(403, "forbidden_path");
}

#[tokio::test]
async fn required_scope_comes_first_and_the_rules_needs_after_it() {
    let connections = connections();
    let app = TestApp::spawn_with(
        &[
            ("IDP_CONNECTIONS", &connections),
            ("REQUIRED_SCOPE", "call:idp"),
        ],
        KeyPolicy::default(),
    )
    .await;
    let token = |permissions: Value| app.token(USER).claim("permissions", permissions).sign();

    let writer_only = token(json!(["github:write"]));
    let refused = app
        .send(request("POST", "/idp/github/user/repos", &writer_only))
        .await;
    assert_insufficient_scope(&refused, "call:idp");

    let caller_only = token(json!(["call:idp"]));
    let read = app
        .send(request("GET", "/idp/github/user", &caller_only))
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let refused = app
        .send(request("POST", "/idp/github/user/repos", &caller_only))
        .await;
    assert_insufficient_scope(&refused, "github:write");

    let both = token(json!(["call:idp", "github:write"]));
    let written = app
        .send(request("POST", "/idp/github/user/repos", &both))
        .await;
    assert_eq!(written.status, 200, "{}", written.body);
}

#[test]
fn a_rule_with_anything_but_needs_after_its_path_stops_the_start() {
    use auth0_idp_proxy::idp::connections::Connections;
    for bad in [
        r#"{"github": {"allow": ["POST /user/repos github:write"]}}"#,
        r#"{"github": {"allow": ["POST /user/repos needs"]}}"#,
        r#"{"github": {"allow": ["POST /user/repos needs \"x\""]}}"#,
    ] {
        let error = Connections::from_json(bad).expect_err(bad);
        assert!(error.contains("allow rule"), "{bad}: {error}");
    }
}
