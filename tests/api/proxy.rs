//! The proxied IdP call, end to end: the caller's own GitHub answer comes back, the IdP token
//! never does, and every path that could leave the connection's API is refused before any
//! upstream call.

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use http::Method;
use lambda_http::RequestExt;
use serde_json::json;
use standin::Idp;

use crate::helpers::{TestApp, assert_not_logged, event, event_at, event_text, github_token};

const USER: &str = "github|1001";

#[tokio::test]
async fn github_user_call_returns_the_idp_body_and_never_the_token() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let response = app.call("http-api-idp-github-user.json", &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["login"], "octocat");
    assert_eq!(response.json()["for"], USER);

    let idp_token = github_token(USER);
    assert!(!response.body.contains(&idp_token));
    for (name, value) in &response.headers {
        assert!(
            !value.to_str().unwrap_or_default().contains(&idp_token),
            "{name}"
        );
    }
    // Safe headers pass, the rest stays behind.
    assert_eq!(response.headers["etag"], "W/\"stand-in-etag\"");
    // The stand-in's Link points to another origin than the connection's API: dropped.
    assert!(!response.headers.contains_key("link"));
    assert_eq!(response.headers["x-ratelimit-remaining"], "4999");
    assert!(!response.headers.contains_key("set-cookie"));
    assert!(!response.headers.contains_key("x-oauth-scopes"));

    // The IdP saw its own token, never the caller's, and no cookie or forwarding header.
    let requests = app.github.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path_and_query, "/user");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {idp_token}").as_str())
    );
    assert!(sent.headers.iter().all(|(_, v)| !v.contains(&jwt)));
    for dropped in ["cookie", "x-forwarded-for", "origin", "x-amzn-trace-id"] {
        assert!(sent.header(dropped).is_none(), "{dropped} was forwarded");
    }
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(sent.header("x-github-api-version"), Some("2022-11-28"));
    assert_not_logged(&[&idp_token, &jwt]);
}

#[tokio::test]
async fn query_string_is_forwarded() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let response = app.call("http-api-idp-github-repos-query.json", &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()[0]["name"], "repo-1");
    assert_eq!(
        app.github.requests()[0].path_and_query,
        "/user/repos?per_page=5&sort=updated"
    );
}

#[tokio::test]
async fn rest_api_events_reach_the_idp_too() {
    let app = TestApp::spawn().await;
    let response = app
        .call("rest-api-idp-github-user.json", &app.token(USER).sign())
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.github.requests()[0].path_and_query, "/user");
}

#[tokio::test]
async fn every_traversal_and_ssrf_form_is_refused_with_no_upstream_call() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    for path in [
        "/idp/github/..",
        "/idp/github/user/../../identities",
        "/idp/github/./user",
        "/idp/github/%2e%2e/admin",
        "/idp/github/%2E%2E/%2e%2e/etc",
        "/idp/github//evil.example.com/x",
        "/idp/github/https:%2F%2Fevil.example.com",
        "/idp/github/http:%2f%2f169.254.169.254%2flatest",
        "/idp/github/user%2f..%2f..%2fadmin",
        "/idp/github/user@evil.example.com",
        "/idp/github/%40evil.example.com",
        "/idp/github/a%5c..%5cb",
        "/idp/github/user%0d%0aHost:%20evil.example.com",
        "/idp/github/user%00",
        "/idp/github/%252e%252e/admin",
    ] {
        let response = app.send(event_at(path, &jwt)).await;
        response.assert_error(403, "forbidden_path");
    }
    assert_eq!(app.github.calls(), 0);
    assert_eq!(
        app.tenant.user_calls(),
        0,
        "refused before the Management API too"
    );
}

#[tokio::test]
async fn raw_backslashes_and_absolute_urls_in_the_path_are_refused() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    for path in [
        "/idp/github/a\\..\\b",
        "/idp/github/https://evil.example.com/",
    ] {
        let mut request = event("http-api-idp-github-user.json", &jwt);
        request = request.with_raw_http_path(path);
        app.send(request).await.assert_error(403, "forbidden_path");
    }
    assert_eq!(app.github.calls(), 0);
}

#[tokio::test]
async fn methods_not_allowed_for_the_connection_are_refused() {
    let app = TestApp::spawn().await;
    let mut request = event("http-api-idp-github-user.json", &app.token(USER).sign());
    *request.method_mut() = Method::DELETE;
    app.send(request).await.assert_error(403, "forbidden_path");
    assert_eq!(app.github.calls(), 0);
}

#[tokio::test]
async fn configured_write_rules_forward_the_body() {
    let app = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            r#"{"github": {"api_base": "{github}", "allow": ["GET /**", "POST /user/repos"]}}"#,
        )],
        KeyPolicy::default(),
    )
    .await;
    let jwt = app.token(USER).sign();
    let text = event_text("http-api-idp-github-repos-query.json")
        .replace("REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN", &jwt)
        .replace("\"method\": \"GET\"", "\"method\": \"POST\"")
        .replace(
            "\"isBase64Encoded\": false",
            "\"body\": \"{\\\"name\\\":\\\"new-repo\\\"}\", \"isBase64Encoded\": false",
        )
        .replace(
            "\"content-length\": \"0\"",
            "\"content-type\": \"application/json\"",
        );
    let request = lambda_http::request::from_str(&text).expect("event");
    let response = app.send(request).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["method"], "POST");
    assert_eq!(response.json()["body"], r#"{"name":"new-repo"}"#);
    assert_eq!(
        app.github.requests()[0].header("content-type"),
        Some("application/json")
    );
}

#[tokio::test]
async fn unknown_connection_and_unlinked_identity_are_404() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.send(event_at("/idp/myspace/user", &jwt))
        .await
        .assert_error(404, "unknown_connection");
    app.send(event_at("/idp/google-oauth2/oauth2/v3/userinfo", &jwt))
        .await
        .assert_error(404, "identity_not_linked");
    assert_eq!(app.github.calls(), 0);
}

#[tokio::test]
async fn linked_accounts_use_the_token_of_the_connection_asked_for() {
    let google = Idp::start().await.expect("stand-in Google");
    let app = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            &json!({"github": {"api_base": "{github}"}, "google-oauth2": {"api_base": google.origin()}})
                .to_string(),
        )],
        KeyPolicy::default(),
    )
    .await;
    let sub = "google-oauth2|111199914890750704174";
    app.tenant.add_user(standin::profile(
        sub,
        &[
            (
                "google-oauth2",
                "111199914890750704174",
                "ya29.google-token",
            ),
            ("github", "1001", "gho_linked_github_token"),
        ],
    ));
    google.grant("ya29.google-token", json!({"email": "john.doe@test.com"}));
    app.github
        .grant("gho_linked_github_token", json!({"login": "linked"}));
    let jwt = app.token(sub).sign();

    let response = app.call("http-api-idp-github-user.json", &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["login"], "linked");
    let response = app
        .send(event_at("/idp/google-oauth2/oauth2/v3/userinfo", &jwt))
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["email"], "john.doe@test.com");
    assert_eq!(
        google.requests()[0].header("authorization"),
        Some("Bearer ya29.google-token")
    );
    assert_not_logged(&["ya29.google-token", "gho_linked_github_token"]);
}

#[tokio::test]
async fn the_user_is_the_verified_sub_and_is_url_encoded() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    // Nothing the request says can choose another user.
    let mut request = event_at("/idp/github/user", &jwt);
    request
        .headers_mut()
        .insert("x-user-id", "github|2002".parse().expect("value"));
    *request.uri_mut() = "https://example.com/idp/github/user?user_id=github%7C2002"
        .parse()
        .expect("uri");
    assert_eq!(app.send(request).await.status, 200);
    let requests = app.tenant.user_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0],
        "/api/v2/users/github%7C1001?fields=user_id%2Cidentities%2Cconnected_accounts%2Curls%2Cmyshopify_domain&include_fields=true"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_nor_their_location_returned() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    let response = app.send(event_at("/idp/github/redirect", &jwt)).await;
    assert_eq!(response.status, 302);
    assert!(!response.headers.contains_key("location"));
    assert_eq!(app.github.calls(), 1);
}

#[tokio::test]
async fn idp_failures_map_to_502_and_a_rejected_token_to_reconsent() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.send(event_at("/idp/github/fail", &jwt))
        .await
        .assert_error(502, "upstream_error");

    let sub = "github|3003";
    app.tenant
        .add_user(standin::profile(sub, &[("github", "3003", "gho_revoked")]));
    let response = app
        .send(event_at("/idp/github/user", &app.token(sub).sign()))
        .await;
    response.assert_error(403, "reconsent_required");
    assert_eq!(response.json()["connection"], "github");
    assert!(!response.headers.contains_key("www-authenticate"));
}
