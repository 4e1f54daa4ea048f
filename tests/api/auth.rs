//! Caller authentication, end to end through the handler: every rejection of DESIGN.md and the
//! happy path, against the stand-in tenant's JWKS.

use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::json;
use standin::{Algorithm, TestKey, now};

use crate::helpers::{AUDIENCE, TestApp, assert_not_logged};

const EVENT: &str = "http-api-identities.json";
const USER: &str = "github|1001";

/// A valid token gets past authentication: `/identities` answers the user's identities.
fn assert_authenticated(response: &crate::helpers::TestResponse) {
    assert_eq!(response.status, 200, "body: {}", response.body);
    assert!(response.json()["identities"].is_array());
}

#[tokio::test]
async fn accepts_a_valid_rs256_token() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    assert_authenticated(&app.call(EVENT, &token).await);
    assert_not_logged(&[&token]);
}

#[tokio::test]
async fn rejects_a_request_without_a_token() {
    let app = TestApp::spawn().await;
    app.call("http-api-missing-token.json", "")
        .await
        .assert_no_credentials();
    assert_eq!(app.tenant.jwks_calls(), 0);
}

#[tokio::test]
async fn rejects_a_malformed_token() {
    let app = TestApp::spawn().await;
    app.call("http-api-malformed-token.json", "")
        .await
        .assert_invalid_token();
    for bad in ["a.b", "a.b.c.d", "e30.e30.", "!!.e30.e30", "e30.e30.e30"] {
        app.call(EVENT, bad).await.assert_invalid_token();
    }
    assert_eq!(app.tenant.jwks_calls(), 0, "no key fetch for garbage");
}

#[tokio::test]
async fn rejects_a_non_bearer_authorization_header() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    let text = crate::helpers::event_text(EVENT).replace(
        "Bearer REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN",
        &format!("Basic {token}"),
    );
    let request = lambda_http::request::from_str(&text).expect("event");
    app.send(request).await.assert_invalid_token();
}

#[tokio::test]
async fn rejects_an_oversized_token_before_any_parsing() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(9 * 1024);
    let token = app.token(USER).claim("padding", padding).sign();
    assert!(token.len() > 8 * 1024);
    let response = app.call(EVENT, &token).await;
    response.assert_invalid_token();
    assert!(
        response.json()["error_description"]
            .as_str()
            .expect("text")
            .contains("too large")
    );
    assert_eq!(app.tenant.jwks_calls(), 0);
}

#[tokio::test]
async fn rejects_alg_none() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).unsigned();
    app.call(EVENT, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn rejects_token_signed_with_hs256_using_the_public_key() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign_hs256_with_public_key();
    let response = app.call(EVENT, &token).await;
    response.assert_invalid_token();
    assert!(
        response.json()["error_description"]
            .as_str()
            .expect("text")
            .contains("algorithm")
    );
}

#[tokio::test]
async fn rejects_other_rsa_algorithms() {
    let app = TestApp::spawn().await;
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let token = app.token(USER).alg(alg).sign();
        app.call(EVENT, &token).await.assert_invalid_token();
    }
}

#[tokio::test]
async fn rejects_a_bad_signature() {
    let app = TestApp::spawn().await;
    // Signed by the unpublished key but claiming the published key's kid.
    let forged = app
        .token(USER)
        .key(TestKey::Secondary)
        .kid(Some(TestKey::Primary.kid()))
        .sign();
    let response = app.call(EVENT, &forged).await;
    response.assert_invalid_token();
    assert!(
        response.json()["error_description"]
            .as_str()
            .expect("text")
            .contains("signature")
    );

    // A valid token whose payload was swapped for another user's.
    let valid = app.token(USER).sign();
    let other = app.token("github|2002").sign();
    let mut parts: Vec<&str> = valid.split('.').collect();
    parts[1] = other.split('.').nth(1).expect("payload");
    app.call(EVENT, &parts.join("."))
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn rejects_an_unknown_or_missing_kid() {
    let app = TestApp::spawn().await;
    let unknown = app.token(USER).key(TestKey::Secondary).sign();
    app.call(EVENT, &unknown).await.assert_invalid_token();
    let no_kid = app.token(USER).kid(None).sign();
    app.call(EVENT, &no_kid).await.assert_invalid_token();
}

#[tokio::test]
async fn enforces_exp_with_a_small_leeway() {
    let app = TestApp::spawn().await;
    let expired = app.token(USER).claim("exp", now() - 120).sign();
    let response = app.call(EVENT, &expired).await;
    response.assert_invalid_token();
    assert!(
        response.json()["error_description"]
            .as_str()
            .expect("text")
            .contains("expired")
    );
    let within_leeway = app.token(USER).claim("exp", now() - 5).sign();
    assert_authenticated(&app.call(EVENT, &within_leeway).await);
}

#[tokio::test]
async fn enforces_nbf() {
    let app = TestApp::spawn().await;
    let future = app.token(USER).claim("nbf", now() + 600).sign();
    app.call(EVENT, &future).await.assert_invalid_token();
    let now_ok = app.token(USER).claim("nbf", now() + 5).sign();
    assert_authenticated(&app.call(EVENT, &now_ok).await);
}

#[tokio::test]
async fn enforces_issuer_and_audience() {
    let app = TestApp::spawn().await;
    let wrong_iss = app
        .token(USER)
        .claim("iss", "https://evil.example.com/")
        .sign();
    app.call(EVENT, &wrong_iss).await.assert_invalid_token();
    let no_slash = app.token(USER).claim("iss", app.tenant.origin()).sign();
    app.call(EVENT, &no_slash).await.assert_invalid_token();
    let wrong_aud = app
        .token(USER)
        .claim("aud", "https://other.example.com")
        .sign();
    app.call(EVENT, &wrong_aud).await.assert_invalid_token();
    let single_aud = app.token(USER).claim("aud", AUDIENCE).sign();
    assert_authenticated(&app.call(EVENT, &single_aud).await);
}

#[tokio::test]
async fn honours_an_issuer_override() {
    let app = TestApp::spawn_with(
        &[("AUTH0_ISSUER", "https://login.example.com/")],
        KeyPolicy::default(),
    )
    .await;
    let tenant_iss = app.token(USER).sign();
    app.call(EVENT, &tenant_iss).await.assert_invalid_token();
    let custom = app
        .token(USER)
        .claim("iss", "https://login.example.com/")
        .sign();
    assert_authenticated(&app.call(EVENT, &custom).await);
}

#[tokio::test]
async fn requires_exp_iss_aud_and_sub() {
    let app = TestApp::spawn().await;
    for claim in ["exp", "iss", "aud", "sub"] {
        let token = app.token(USER).without(claim).sign();
        let response = app.call(EVENT, &token).await;
        response.assert_invalid_token();
        assert!(
            response.json()["error_description"]
                .as_str()
                .expect("text")
                .contains(claim),
            "{claim}: {}",
            response.body
        );
    }
}

#[tokio::test]
async fn rejects_claims_of_the_wrong_json_type() {
    let app = TestApp::spawn().await;
    let cases = [
        ("exp", json!((now() + 3600).to_string())),
        ("exp", json!(true)),
        ("nbf", json!("0")),
        ("sub", json!(1001)),
        ("sub", json!(["github|1001"])),
        ("sub", json!("")),
        ("iss", json!([app.tenant.issuer()])),
        ("aud", json!({"aud": AUDIENCE})),
        ("aud", json!([AUDIENCE, 7])),
        ("iat", json!("yesterday")),
        ("scope", json!(["openid"])),
        ("permissions", json!("read:all")),
    ];
    for (claim, value) in cases {
        let token = app.token(USER).claim(claim, value.clone()).sign();
        let response = app.call(EVENT, &token).await;
        assert_eq!(response.status, 401, "{claim} = {value}: {}", response.body);
    }
}

#[tokio::test]
async fn requires_the_configured_scope_in_scope_or_permissions() {
    let app = TestApp::spawn_with(&[("REQUIRED_SCOPE", "call:idp")], KeyPolicy::default()).await;
    let without = app.token(USER).sign();
    let response = app.call(EVENT, &without).await;
    response.assert_error(403, "insufficient_scope");
    assert!(
        response.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    let in_scope = app.token(USER).claim("scope", "openid call:idp").sign();
    assert_authenticated(&app.call(EVENT, &in_scope).await);
    let in_permissions = app
        .token(USER)
        .claim("permissions", json!(["call:idp"]))
        .sign();
    assert_authenticated(&app.call(EVENT, &in_permissions).await);
    let prefix_only = app.token(USER).claim("scope", "call:idp:extra").sign();
    app.call(EVENT, &prefix_only)
        .await
        .assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn fetches_the_jwks_once_for_many_calls() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let token = app.token(&format!("github|{i}")).sign();
        assert_authenticated(&app.call(EVENT, &token).await);
    }
    assert_eq!(app.tenant.jwks_calls(), 1);
}

#[tokio::test]
async fn concurrent_cold_calls_share_one_jwks_fetch() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let calls = (0..20).map(|i| {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            let token = app.token(&format!("github|{i}")).sign();
            app.call(EVENT, &token).await.status
        })
    });
    for call in calls {
        assert_eq!(call.await.expect("task"), 200);
    }
    assert_eq!(app.tenant.jwks_calls(), 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_refetch() {
    // Long enough that 25 calls fit in one cooldown even on a loaded machine.
    let policy = KeyPolicy {
        unknown_kid_cooldown: Duration::from_millis(1_000),
        ..KeyPolicy::default()
    };
    let app = TestApp::spawn_with(&[], policy).await;
    assert_authenticated(&app.call(EVENT, &app.token(USER).sign()).await);
    // Within the cooldown of the first fetch, an unknown kid costs nothing.
    let early = app.token(USER).kid(Some("made-up")).sign();
    app.call(EVENT, &early).await.assert_invalid_token();
    assert_eq!(app.tenant.jwks_calls(), 1);
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    for i in 0..25 {
        let token = app.token(USER).kid(Some(&format!("made-up-{i}"))).sign();
        app.call(EVENT, &token).await.assert_invalid_token();
    }
    assert_eq!(
        app.tenant.jwks_calls(),
        2,
        "one initial fetch, one refetch in the cooldown"
    );
}

fn short_policy() -> KeyPolicy {
    KeyPolicy {
        refresh_after: Duration::from_millis(150),
        max_age: Duration::from_millis(300),
        unknown_kid_cooldown: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn picks_up_a_rotated_key_after_the_cooldown() {
    let app = TestApp::spawn_with(&[], short_policy()).await;
    assert_authenticated(&app.call(EVENT, &app.token(USER).sign()).await);
    app.tenant.publish(&[TestKey::Primary, TestKey::Secondary]);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let rotated = app.token(USER).key(TestKey::Secondary).sign();
    assert_authenticated(&app.call(EVENT, &rotated).await);
    assert_eq!(app.tenant.jwks_calls(), 2);
}

#[tokio::test]
async fn a_key_removed_from_the_tenant_stops_working_after_max_age() {
    let app = TestApp::spawn_with(&[], short_policy()).await;
    let token = app.token(USER).sign();
    assert_authenticated(&app.call(EVENT, &token).await);
    app.tenant.publish(&[TestKey::Secondary]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    app.call(EVENT, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn no_token_value_reaches_logs_or_error_bodies() {
    let app = TestApp::spawn().await;
    let tokens = [
        app.token(USER).sign(),
        app.token(USER).claim("exp", now() - 999).sign(),
        app.token(USER).key(TestKey::Secondary).sign(),
        app.token(USER).sign_hs256_with_public_key(),
        app.token(USER).claim("aud", "nope").sign(),
    ];
    for token in &tokens {
        let response = app.call(EVENT, token).await;
        assert!(!response.body.contains(token.as_str()));
        for part in token.split('.') {
            assert!(!response.body.contains(part));
        }
        for value in response.headers.values() {
            assert!(
                !value
                    .as_bytes()
                    .windows(8)
                    .any(|w| token.as_bytes().windows(8).next() == Some(w))
            );
        }
    }
    let all: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_not_logged(&all);
    let signatures: Vec<&str> = tokens.iter().filter_map(|t| t.rsplit('.').next()).collect();
    assert_not_logged(&signatures);
}

#[tokio::test]
async fn rejects_a_token_whose_crit_names_extensions() {
    let app = TestApp::spawn().await;
    // RFC 7515 §4.1.11: a `crit` extension the verifier does not understand fails the token;
    // this verifier understands none (an empty list is invalid too).
    for names in [&["exp"][..], &["b64"], &["urn:example:ext"], &[]] {
        let token = app.token(USER).crit(names).sign();
        app.call(EVENT, &token).await.assert_invalid_token();
    }
    assert_eq!(app.tenant.token_calls() + app.tenant.user_calls(), 0);
}

#[tokio::test]
async fn a_sub_of_dot_segments_never_reaches_the_management_api() {
    let app = TestApp::spawn().await;
    // `/api/v2/users/.` and `/api/v2/users/..` would be the list endpoint and `/api/v2/`.
    for sub in [".", ".."] {
        let token = app.tenant.token(AUDIENCE, sub).sign();
        app.call(EVENT, &token).await.assert_invalid_token();
        app.call("http-api-idp-github-user.json", &token)
            .await
            .assert_invalid_token();
    }
    assert_eq!(
        app.tenant.token_calls(),
        0,
        "no Management API token was even needed"
    );
    assert_eq!(app.tenant.user_calls(), 0);
    assert_eq!(app.github.calls(), 0);
}
