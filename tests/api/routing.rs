//! Routing for HTTP API v2, REST API v1 (with a stage) and Function URL events, CORS preflight,
//! and the documented answers for unknown routes and methods.

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use http::Method;

use crate::helpers::{TestApp, event};

const USER: &str = "google-oauth2|2002";

#[tokio::test]
async fn every_sample_event_with_a_token_reaches_its_route() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    for name in [
        "http-api-identities.json",
        "http-api-idp-github-user.json",
        "http-api-idp-github-repos-query.json",
        "rest-api-identities.json",
        "rest-api-idp-github-user.json",
        "function-url-identities.json",
    ] {
        let response = app.call(name, &token).await;
        assert_eq!(response.status, 200, "{name}: {}", response.body);
    }
}

#[tokio::test]
async fn routes_are_authenticated_first() {
    let app = TestApp::spawn().await;
    for name in [
        "http-api-idp-github-user.json",
        "rest-api-identities.json",
        "function-url-identities.json",
    ] {
        app.call(name, "nope").await.assert_invalid_token();
    }
}

#[tokio::test]
async fn unknown_routes_are_404_not_found() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    for path in [
        "/",
        "/identity",
        "/idp",
        "/idp/",
        "/admin/users",
        "/identities/github",
    ] {
        let mut request = event("http-api-identities.json", &token);
        *request.uri_mut() = path.parse().expect("uri");
        let request = lambda_http::RequestExt::with_raw_http_path(request, path);
        app.send(request).await.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn dot_segments_cannot_reach_another_route() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    let request = crate::helpers::event_at("/idp/../identities", &token);
    // lambda_http's URI resolves the dot segment; routing uses the raw path and does not.
    assert_eq!(request.uri().path(), "/identities");
    app.send(request).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn rest_api_stage_is_not_part_of_the_route() {
    let app = TestApp::spawn().await;
    let request = event("rest-api-identities.json", &app.token(USER).sign());
    assert_eq!(request.uri().path(), "/prod/identities");
    assert_eq!(app.send(request).await.status, 200);
}

#[tokio::test]
async fn http_api_named_stage_is_stripped_too() {
    let app = TestApp::spawn().await;
    let text = crate::helpers::event_text("http-api-identities.json")
        .replace(
            "REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN",
            &app.token(USER).sign(),
        )
        .replace("\"/identities\"", "\"/v1/identities\"")
        .replace("\"stage\": \"$default\"", "\"stage\": \"v1\"");
    let request = lambda_http::request::from_str(&text).expect("event");
    assert_eq!(app.send(request).await.status, 200);
}

#[tokio::test]
async fn wrong_method_on_identities_is_405() {
    let app = TestApp::spawn().await;
    let mut request = event("http-api-identities.json", &app.token(USER).sign());
    *request.method_mut() = Method::DELETE;
    let response = app.send(request).await;
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.headers["allow"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn preflight_is_answered_without_a_token_for_allowed_origins_only() {
    let app = TestApp::spawn_with(
        &[("ALLOWED_ORIGINS", "https://app.example.com")],
        KeyPolicy::default(),
    )
    .await;
    let mut request = event("http-api-missing-token.json", "");
    *request.method_mut() = Method::OPTIONS;
    request.headers_mut().insert(
        "access-control-request-method",
        "GET".parse().expect("value"),
    );
    let response = app.send(request).await;
    assert_eq!(response.status, 204);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://app.example.com"
    );

    let mut request = event("http-api-missing-token.json", "");
    *request.method_mut() = Method::OPTIONS;
    request
        .headers_mut()
        .insert("origin", "https://evil.example.com".parse().expect("value"));
    let response = app.send(request).await;
    assert_eq!(response.status, 204);
    assert!(!response.headers.contains_key("access-control-allow-origin"));
    assert_eq!(app.tenant.jwks_calls(), 0);
}

#[tokio::test]
async fn error_responses_carry_the_cors_grant_for_allowed_origins() {
    let app = TestApp::spawn_with(
        &[("ALLOWED_ORIGINS", "https://app.example.com")],
        KeyPolicy::default(),
    )
    .await;
    let response = app.call("http-api-missing-token.json", "").await;
    response.assert_no_credentials();
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
}
