//! The IdP token's lifecycle end to end: cached per user, replaced after a re-login, renewed with
//! the refresh token (rotated or not) against stand-in Google and GitHub token endpoints, and a
//! typed `reconsent_required` when nothing helps. No token ever reaches a log or a response.

use std::sync::Arc;
use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID};

use crate::helpers::{TestApp, TestResponse, assert_not_logged, event_at};
use crate::metrics::send_traced;

const GOOGLE_USERINFO: &str = "/idp/google-oauth2/oauth2/v3/userinfo";
const GITHUB_USER: &str = "/idp/github/user";

/// A test app whose `google-oauth2` connection points at a stand-in Google and whose `github`
/// connection has the stand-in GitHub's token endpoint; the secret carries both IdP apps.
struct Renewing {
    app: TestApp,
    google: Idp,
}

/// The stand-in Google app's secret: characters that client authentication must encode.
const GOOGLE_APP_SECRET: &str = "google+app/secret=";

impl Renewing {
    async fn spawn(extra: &[(&str, &str)]) -> Self {
        Self::spawn_with_google_auth("body", extra).await
    }

    /// As [`Renewing::spawn`], with the Google app authenticating by `token_auth`.
    async fn spawn_with_google_auth(token_auth: &str, extra: &[(&str, &str)]) -> Self {
        let google = Idp::start_as(Flavor::Google)
            .await
            .expect("stand-in Google starts");
        let connections = json!({
            "github": {"api_base": "{github}", "token_url": "{github}/login/oauth/access_token"},
            "google-oauth2": {"api_base": google.origin(), "token_url": google.token_url(),
                              "token_auth": token_auth},
        })
        .to_string();
        let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
        vars.extend_from_slice(extra);
        let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
        google.register_client("google-app", GOOGLE_APP_SECRET);
        app.github
            .register_client("github-app", "github-app-secret");
        let client_secret = app.client_secret.lock().expect("lock").clone();
        app.put_secret(
            &json!({
                "client_id": M2M_CLIENT_ID,
                "client_secret": client_secret,
                "idp_clients": {
                    "google-oauth2": {"client_id": "google-app", "client_secret": GOOGLE_APP_SECRET},
                    "github": {"client_id": "github-app", "client_secret": "github-app-secret"},
                },
            })
            .to_string(),
        )
        .await;
        Self { app, google }
    }

    /// A user whose `connection` identity holds `access_token` (expired at the IdP unless
    /// `live`) and `refresh_token` (known to the IdP's token endpoint unless `None`).
    fn user(
        &self,
        sub: &str,
        connection: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        live: bool,
    ) -> String {
        let idp = self.idp(connection);
        let mut profile = standin::profile(sub, &[(connection, "4242", access_token)]);
        let person = json!({"email": "jane@example.test", "for": sub});
        if let Some(refresh_token) = refresh_token {
            profile["identities"][0]["refresh_token"] = json!(refresh_token);
            idp.issue_refresh_token(refresh_token, person.clone());
        }
        idp.grant(access_token, person);
        if !live {
            idp.expire(access_token);
        }
        self.app.tenant.add_user(profile);
        self.app.tenant.token(crate::helpers::AUDIENCE, sub).sign()
    }

    fn idp(&self, connection: &str) -> &Idp {
        match connection {
            "github" => &self.app.github,
            _ => &self.google,
        }
    }

    async fn get(&self, path: &str, jwt: &str) -> TestResponse {
        self.app.send(event_at(path, jwt)).await
    }

    /// Asserts that no token the IdPs issued or Auth0 stored reached the logs or `responses`.
    fn assert_no_token_leaked(&self, stored: &[&str], responses: &[&TestResponse]) {
        let mut secrets: Vec<String> = stored.iter().map(|s| s.to_string()).collect();
        secrets.extend(self.google.issued_tokens());
        secrets.extend(self.app.github.issued_tokens());
        for response in responses {
            for secret in &secrets {
                assert!(!response.body.contains(secret.as_str()), "token in a body");
                for value in response.headers.values() {
                    assert!(
                        !value.to_str().unwrap_or_default().contains(secret.as_str()),
                        "token in a header"
                    );
                }
            }
        }
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_not_logged(&refs);
    }
}

#[tokio::test]
async fn a_hundred_repeat_calls_cost_a_hundred_idp_calls_and_one_management_call() {
    let app = TestApp::spawn().await;
    let jwt = app.token("github|1001").sign();
    for _ in 0..100 {
        let response = app.send(event_at(GITHUB_USER, &jwt)).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(app.github.calls(), 100);
    assert_eq!(app.tenant.user_calls(), 1);
    assert_eq!(app.tenant.token_calls(), 1);
}

#[tokio::test]
async fn an_expired_google_token_is_renewed_once_and_the_call_succeeds() {
    let world = Renewing::spawn(&[]).await;
    let jwt = world.user(
        "google-oauth2|4242",
        "google-oauth2",
        "ya29.expired-at-login",
        Some("1//google-refresh"),
        false,
    );
    let identities = world.app.call("http-api-identities.json", &jwt).await;
    assert_eq!(identities.json()["identities"][0]["renewable"], true);

    let (first, line) = send_traced(
        &world.app,
        event_at(GOOGLE_USERINFO, &jwt),
        &[
            "google-oauth2|4242",
            "ya29.expired-at-login",
            "1//google-refresh",
        ],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["email"], "jane@example.test");
    assert_eq!(line["Connection"], "google-oauth2");
    assert_eq!(line["Renewals"], 1, "{line}");
    assert!(line.get("RenewalFailures").is_none(), "{line}");
    let audit = crate::audit::audit_line(line["request_id"].as_str().expect("request id"));
    crate::audit::assert_audit(
        &audit,
        json!({"renewed": true, "token_from": "refresh_grant", "idp_status": 200}),
    );
    // One 401 with the stored token, then the call with the renewed one.
    assert_eq!(world.google.calls(), 2);
    assert_eq!(world.google.grants(), 1);
    assert_eq!(
        world.google.presented_refresh_tokens(),
        ["1//google-refresh"]
    );
    let renewed = world.google.issued_tokens();
    let sent = world.google.requests();
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {}", renewed[0]).as_str())
    );

    // The renewed token is cached: the next call is the IdP's alone.
    let user_reads = world.app.tenant.user_calls();
    let second = world.get(GOOGLE_USERINFO, &jwt).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(world.google.calls(), 3);
    assert_eq!(world.google.grants(), 1);
    assert_eq!(world.app.tenant.user_calls(), user_reads);
    world.assert_no_token_leaked(
        &["ya29.expired-at-login", "1//google-refresh"],
        &[&identities, &first, &second],
    );
}

#[tokio::test]
async fn twenty_concurrent_calls_with_an_expired_token_share_one_refresh_grant() {
    let world = Arc::new(Renewing::spawn(&[]).await);
    let jwt = world.user(
        "google-oauth2|2020",
        "google-oauth2",
        "ya29.expired-twenty",
        Some("1//refresh-twenty"),
        false,
    );
    // A slow token endpoint, so that every call is in flight while the grant runs.
    world.google.set_token_delay(Duration::from_millis(200));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (world, jwt) = (Arc::clone(&world), jwt.clone());
            tokio::spawn(async move { world.get(GOOGLE_USERINFO, &jwt).await })
        })
        .collect();
    let mut responses = Vec::new();
    for call in calls {
        responses.push(call.await.expect("task"));
    }
    for response in &responses {
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(world.google.grants(), 1);
    assert_eq!(world.app.tenant.user_calls(), 1);
    world.assert_no_token_leaked(
        &["ya29.expired-twenty", "1//refresh-twenty"],
        &responses.iter().collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_is_used_next_time() {
    let world = Renewing::spawn(&[]).await;
    // GitHub App user tokens: single-use refresh tokens; here they live 2 s, so the cache
    // considers them stale after 1 s (a tenth of the lifetime, at least 1 s, is kept back).
    world.app.github.set_token_lifetime(Duration::from_secs(2));
    let jwt = world.user(
        "github|7007",
        "github",
        "ghu_expired_at_login",
        Some("ghr_first"),
        false,
    );
    let first = world.get(GITHUB_USER, &jwt).await;
    assert_eq!(first.status, 200, "{}", first.body);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = world.get(GITHUB_USER, &jwt).await;
    assert_eq!(second.status, 200, "{}", second.body);

    let presented = world.app.github.presented_refresh_tokens();
    assert_eq!(presented.len(), 2, "one grant per expiry");
    assert_eq!(presented[0], "ghr_first");
    let issued = world.app.github.issued_tokens();
    assert!(
        issued.contains(&presented[1]),
        "the second grant used the refresh token the first one returned"
    );
    // 401 with the stored token, 200 with the first renewed one, 200 with the second: the
    // stale renewed token was replaced before it was ever sent.
    assert_eq!(world.app.github.calls(), 3);
    world.assert_no_token_leaked(&["ghu_expired_at_login", "ghr_first"], &[&first, &second]);
}

#[tokio::test]
async fn a_refused_refresh_token_answers_reconsent_required_for_each_flavor() {
    let world = Renewing::spawn(&[]).await;
    for (sub, connection, access, path) in [
        (
            "google-oauth2|5005",
            "google-oauth2",
            "ya29.dead",
            GOOGLE_USERINFO,
        ),
        ("github|5005", "github", "ghu_dead", GITHUB_USER),
    ] {
        // The refresh token is not one the IdP knows: `invalid_grant` (Google, HTTP 400) or
        // `bad_refresh_token` (GitHub, HTTP 200).
        let jwt = world.user(sub, connection, access, None, false);
        let mut profile = standin::profile(sub, &[(connection, "5005", access)]);
        profile["identities"][0]["refresh_token"] = json!("revoked-refresh-token");
        world.app.tenant.add_user(profile);

        let secrets = [sub, access, "revoked-refresh-token"];
        let (response, line) = send_traced(&world.app, event_at(path, &jwt), &secrets).await;
        response.assert_error(403, "reconsent_required");
        assert_eq!(response.json()["connection"], connection);
        assert_eq!(world.idp(connection).grants(), 1, "{connection}");
        assert_eq!(line["Connection"], connection);
        assert_eq!(line["ErrorCode"], "reconsent_required");
        assert_eq!(line["Reconsents"], 1, "{line}");
        assert_eq!(line["RenewalFailures"], 1, "{line}");

        // The dead refresh token is not tried again.
        let (again, line) = send_traced(&world.app, event_at(path, &jwt), &secrets).await;
        again.assert_error(403, "reconsent_required");
        assert_eq!(world.idp(connection).grants(), 1, "{connection}");
        assert_eq!(line["Reconsents"], 1, "{line}");
        assert!(line.get("RenewalFailures").is_none(), "{line}");
        world.assert_no_token_leaked(&[access, "revoked-refresh-token"], &[&response, &again]);
    }
}

#[tokio::test]
async fn a_refused_token_is_renewed_before_auth0_is_read_again() {
    let world = Renewing::spawn(&[]).await;
    let sub = "google-oauth2|6005";
    let jwt = world.user(sub, "google-oauth2", "ya29.first", Some("1//r5"), true);
    assert_eq!(world.get(GOOGLE_USERINFO, &jwt).await.status, 200);
    world.google.expire("ya29.first");

    let response = world.get(GOOGLE_USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    // A grant gives a working token whether or not the user logged in again, and Management
    // reads are what the tenant's rate limit is scarcest in: no second read.
    assert_eq!(world.google.grants(), 1);
    assert_eq!(world.app.tenant.user_calls(), 1);
}

#[tokio::test]
async fn a_relogin_token_replaces_a_refused_one_when_the_grant_is_refused() {
    let world = Renewing::spawn(&[]).await;
    let sub = "google-oauth2|6006";
    let jwt = world.user(sub, "google-oauth2", "ya29.before", Some("1//r6"), true);
    assert_eq!(world.get(GOOGLE_USERINFO, &jwt).await.status, 200);

    // The user revoked the app and logged in again: Auth0 now holds new tokens, and the IdP
    // refuses the old ones.
    world.google.expire("ya29.before");
    world.google.revoke_refresh_token("1//r6");
    let mut profile = standin::profile(sub, &[("google-oauth2", "6006", "ya29.after")]);
    profile["identities"][0]["refresh_token"] = json!("1//r7");
    world.app.tenant.add_user(profile);
    world
        .google
        .grant("ya29.after", json!({"email": "jane@example.test"}));

    let response = world.get(GOOGLE_USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.google.presented_refresh_tokens(), ["1//r6"]);
    assert_eq!(world.app.tenant.user_calls(), 2);
    let last = world.google.requests().pop().expect("a request");
    assert_eq!(last.header("authorization"), Some("Bearer ya29.after"));
}

#[tokio::test]
async fn a_token_of_unknown_expiry_is_reread_after_the_max_age() {
    let world = Renewing::spawn(&[("IDP_TOKEN_MAX_AGE", "1")]).await;
    let sub = "google-oauth2|8008";
    let jwt = world.user(sub, "google-oauth2", "ya29.live", None, true);
    for _ in 0..3 {
        assert_eq!(world.get(GOOGLE_USERINFO, &jwt).await.status, 200);
    }
    assert_eq!(world.app.tenant.user_calls(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(world.get(GOOGLE_USERINFO, &jwt).await.status, 200);
    assert_eq!(world.app.tenant.user_calls(), 2, "Auth0 read again");
    assert_eq!(world.google.calls(), 4);
}

#[tokio::test]
async fn without_the_idp_apps_credentials_an_expired_token_needs_reconsent() {
    let app = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            r#"{"github": {"api_base": "{github}", "token_url": "{github}/login/oauth/access_token"}}"#,
        )],
        KeyPolicy::default(),
    )
    .await;
    let sub = "github|9009";
    let mut profile = standin::profile(sub, &[("github", "9009", "ghu_expired")]);
    profile["identities"][0]["refresh_token"] = json!("ghr_unusable");
    app.tenant.add_user(profile);
    app.github.issue_refresh_token("ghr_unusable", Value::Null);
    let jwt = app.tenant.token(crate::helpers::AUDIENCE, sub).sign();

    let identities = app.call("http-api-identities.json", &jwt).await;
    assert_eq!(identities.json()["identities"][0]["renewable"], false);
    let response = app.send(event_at(GITHUB_USER, &jwt)).await;
    response.assert_error(403, "reconsent_required");
    assert_eq!(app.github.grants(), 0);
}

#[tokio::test]
async fn the_idp_app_may_authenticate_with_http_basic() {
    let world = Renewing::spawn_with_google_auth("basic", &[]).await;
    let jwt = world.user(
        "google-oauth2|1212",
        "google-oauth2",
        "ya29.expired-basic",
        Some("1//refresh-basic"),
        false,
    );
    let response = world.get(GOOGLE_USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.google.grant_client_auth(), ["basic"]);
    assert_not_logged(&[GOOGLE_APP_SECRET, "1//refresh-basic"]);
}

#[tokio::test]
async fn a_failing_grant_is_an_upstream_error_and_keeps_the_refresh_token() {
    let world = Renewing::spawn(&[]).await;
    let jwt = world.user(
        "google-oauth2|1313",
        "google-oauth2",
        "ya29.expired-1313",
        Some("1//kept"),
        false,
    );
    // The IdP app's secret was rotated at Google but not yet in the function's secret.
    world
        .google
        .register_client("google-app", "rotated-at-google");
    let refused = world.get(GOOGLE_USERINFO, &jwt).await;
    refused.assert_error(502, "upstream_error");
    assert_eq!(world.google.grants(), 1);

    // Fixed: the same refresh token still works, without a new login.
    world
        .google
        .register_client("google-app", GOOGLE_APP_SECRET);
    let response = world.get(GOOGLE_USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.google.grants(), 2);
    assert_eq!(world.google.presented_refresh_tokens(), ["1//kept"]);
    assert_eq!(world.google.grant_client_auth(), ["body", "body"]);
    world.assert_no_token_leaked(&["ya29.expired-1313", "1//kept"], &[&refused, &response]);
}
