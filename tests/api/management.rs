//! Credentials from Secrets Manager (moto), the cached Management API token and the identity
//! lookup: what warm invocations cost, renewal, rotation and the documented failures.

use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;

use crate::helpers::{TestApp, assert_not_logged, github_token};

const EVENT: &str = "http-api-identities.json";
const USER: &str = "github|1001";

#[tokio::test]
async fn identities_lists_linked_accounts_without_tokens() {
    let app = TestApp::spawn().await;
    let sub = "google-oauth2|42";
    let mut profile = standin::profile(
        sub,
        &[
            ("google-oauth2", "42", "ya29.listed"),
            ("github", "1001", "gho_listed"),
        ],
    );
    profile["identities"][0]["refresh_token"] = "1//refresh-listed".into();
    app.tenant.add_user(profile);
    let response = app.call(EVENT, &app.token(sub).sign()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["user_id"], sub);
    let identities = body["identities"].as_array().expect("array");
    assert_eq!(identities.len(), 2);
    assert_eq!(identities[0]["connection"], "google-oauth2");
    assert_eq!(identities[0]["callable"], true);
    assert_eq!(
        identities[0]["renewable"], false,
        "no idp_clients in the secret"
    );
    assert_eq!(identities[1]["connection"], "github");
    assert_eq!(identities[1]["is_social"], true);
    for secret in ["ya29.listed", "gho_listed", "refresh-listed"] {
        assert!(!response.body.contains(secret));
    }
}

#[tokio::test]
async fn fifty_warm_invocations_cost_one_secret_read_one_exchange_one_jwks_fetch() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    for _ in 0..50 {
        let response = app.call("http-api-idp-github-user.json", &jwt).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(app.secret_reads(), 1);
    assert_eq!(app.tenant.token_calls(), 1);
    assert_eq!(app.tenant.jwks_calls(), 1);
    assert_eq!(app.github.calls(), 50);
}

#[tokio::test]
async fn prefetch_does_the_cold_work_before_the_first_invocation() {
    let app = TestApp::spawn().await;
    app.app.prefetch(Duration::from_secs(5)).await;
    assert_eq!(
        (
            app.secret_reads(),
            app.tenant.token_calls(),
            app.tenant.jwks_calls()
        ),
        (1, 1, 1)
    );
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    assert_eq!(
        (
            app.secret_reads(),
            app.tenant.token_calls(),
            app.tenant.jwks_calls()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_token_about_to_expire_is_renewed() {
    let app = TestApp::spawn().await;
    // A 2 s token is renewed 1 s before it expires.
    app.tenant.set_management_token_lifetime(2);
    // A user each call: `GET /identities` answers a user's repeat from its short-lived cache.
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    let second = app.token("github|1002").sign();
    assert_eq!(app.call(EVENT, &second).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let third = app.token("github|1003").sign();
    assert_eq!(app.call(EVENT, &third).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 2);
    assert_eq!(app.secret_reads(), 1);
}

#[tokio::test]
async fn a_refused_management_token_is_replaced_once() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    app.tenant.revoke_management_tokens();
    // Another user: a repeat of the first would be answered from the profile cache.
    let other = app.token("github|1002").sign();
    assert_eq!(app.call(EVENT, &other).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 2);
    assert_eq!(app.secret_reads(), 1);
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_after_invalid_client() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    let old = app.client_secret.lock().expect("lock").clone();
    let new = app.rotate_client_secret().await;
    app.tenant.revoke_management_tokens();
    // Other users: a repeat of the first would be answered from the profile cache.
    let response = app.call(EVENT, &app.token("github|1002").sign()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        app.secret_reads(),
        2,
        "read again once, after the rejection"
    );
    assert_eq!(
        app.tenant.token_calls(),
        3,
        "first, rejected, after rotation"
    );
    let third = app.token("github|1003").sign();
    assert_eq!(app.call(EVENT, &third).await.status, 200);
    assert_eq!((app.secret_reads(), app.tenant.token_calls()), (2, 3));
    assert_not_logged(&[&old, &new]);
}

#[tokio::test]
async fn credentials_rejected_even_after_a_reload_are_503() {
    let app = TestApp::spawn().await;
    app.tenant
        .set_client_secret("the-tenant-has-another-secret");
    let response = app.call(EVENT, &app.token(USER).sign()).await;
    response.assert_error(503, "credentials_unavailable");
    assert_eq!((app.secret_reads(), app.tenant.token_calls()), (2, 2));
}

#[tokio::test]
async fn a_malformed_secret_is_503_and_the_next_invocation_tries_again() {
    let app = TestApp::spawn().await;
    let good = crate::helpers::credentials_json(&app.client_secret.lock().expect("lock"));
    app.put_secret(r#"{"client_id": "m2m", "client_secret": 12345}"#)
        .await;
    let jwt = app.token(USER).sign();
    let response = app.call(EVENT, &jwt).await;
    response.assert_error(503, "credentials_unavailable");
    assert!(!response.body.contains("12345"));
    assert_eq!(app.tenant.token_calls(), 0);
    app.put_secret(&good).await;
    assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    assert_eq!(app.secret_reads(), 2);
}

#[tokio::test]
async fn a_missing_secret_is_503() {
    let app = TestApp::spawn_with(
        &[("CREDENTIALS_SECRET_ID", "no/such/secret")],
        KeyPolicy::default(),
    )
    .await;
    app.call(EVENT, &app.token(USER).sign())
        .await
        .assert_error(503, "credentials_unavailable");
}

#[tokio::test]
async fn a_user_missing_from_the_tenant_is_404() {
    let app = TestApp::spawn().await;
    let jwt = app
        .tenant
        .token(crate::helpers::AUDIENCE, "auth0|deleted")
        .sign();
    app.call(EVENT, &jwt)
        .await
        .assert_error(404, "identity_not_linked");
}

#[tokio::test]
async fn no_token_or_secret_of_the_run_reaches_the_logs() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    assert_eq!(
        app.call("http-api-idp-github-user.json", &jwt).await.status,
        200
    );
    app.tenant.revoke_management_tokens();
    let other = app.token("github|1002").sign();
    assert_eq!(app.call(EVENT, &other).await.status, 200);
    let mut secrets = app.tenant.issued_tokens();
    assert_eq!(secrets.len(), 2);
    secrets.push(app.client_secret.lock().expect("lock").clone());
    secrets.push(github_token(USER));
    secrets.push(github_token("github|1002"));
    secrets.push(jwt);
    secrets.push(other);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_not_logged(&secrets);
}

#[tokio::test]
async fn without_the_table_repeats_and_unlinked_connections_cost_one_read() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    for _ in 0..20 {
        assert_eq!(app.call(EVENT, &jwt).await.status, 200);
    }
    for _ in 0..20 {
        app.send(crate::helpers::event_at(
            "/idp/google-oauth2/oauth2/v3/userinfo",
            &jwt,
        ))
        .await
        .assert_error(404, "identity_not_linked");
    }
    assert_eq!(app.tenant.user_calls(), 1);
}

#[tokio::test]
async fn one_user_gets_a_budget_of_management_reads_a_minute() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    // Each IdP refusal makes the function read Auth0 again: an attacker's cheapest way to
    // spend reads. The budget stops it at 10 a minute per user.
    let mut statuses = Vec::new();
    for _ in 0..15 {
        app.github.expire(&github_token(USER));
        let response = app
            .send(crate::helpers::event_at("/idp/github/user", &jwt))
            .await;
        statuses.push(response.status);
    }
    assert!(app.tenant.user_calls() <= 10, "{}", app.tenant.user_calls());
    assert!(statuses.contains(&429), "{statuses:?}");
    // Another user is not affected.
    let other = app.token("github|1002").sign();
    assert_eq!(app.call(EVENT, &other).await.status, 200);
}
