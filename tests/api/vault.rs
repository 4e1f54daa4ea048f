//! Auth0 Token Vault end to end: connections whose IdP token comes from the stand-in tenant's
//! access token exchange, cached per (user, connection), with a fresh exchange after an IdP 401,
//! `reconsent_required` when Auth0 holds nothing, and the token endpoint's failures and throttling
//! answered as for every Auth0 call. The caller's Auth0 token goes to the token endpoint and
//! nowhere else, and no token reaches a log.

use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{Fault, Flavor, Idp, M2M_CLIENT_ID, TestKey};

use crate::faults::send_within;
use crate::helpers::{AUDIENCE, TestApp, TestResponse, assert_not_logged, event_at, unique};

const USERINFO: &str = "/idp/google-oauth2/oauth2/v3/userinfo";
const GITHUB_USER: &str = "/idp/github/user";
/// The Custom API Client that performs the exchange.
const VAULT_CLIENT: &str = "proxy-api-client";
const VAULT_SECRET: &str = "proxy-api-client-secret";
const HOUR: Duration = Duration::from_secs(3600);
/// Until the stand-in is healed.
const ALWAYS: usize = usize::MAX;

/// A deployment whose `google-oauth2` connection (a stand-in Google) is served through Token
/// Vault, and whose `github` connection is on the Management API's identities.
struct Vault {
    app: TestApp,
    google: Idp,
}

impl Vault {
    /// Token Vault for `google-oauth2` (tokens living `lifetime`), performed by the secret's
    /// `token_vault_client`.
    async fn spawn(lifetime: Duration) -> Self {
        let world = Self::spawn_with(lifetime, &[]).await;
        world.use_vault_client(VAULT_SECRET).await;
        world
    }

    /// As [`Vault::spawn`] with extra variables, and the secret holding the M2M client only.
    async fn spawn_with(lifetime: Duration, extra: &[(&str, &str)]) -> Self {
        let google = Idp::start_as(Flavor::Google)
            .await
            .expect("stand-in Google starts");
        let connections = json!({
            "github": {"api_base": "{github}"},
            "google-oauth2": {"api_base": google.origin(), "token_source": "token_vault"},
        })
        .to_string();
        let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
        vars.extend_from_slice(extra);
        let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
        app.tenant
            .enable_token_vault("google-oauth2", &google, lifetime);
        app.tenant
            .add_token_vault_client(VAULT_CLIENT, Some(VAULT_SECRET), AUDIENCE);
        Self { app, google }
    }

    /// Puts a `token_vault_client` with `secret` into the function's secret.
    async fn use_vault_client(&self, secret: &str) {
        let m2m_secret = self.app.client_secret.lock().expect("lock").clone();
        self.app
            .put_secret(
                &json!({
                    "client_id": M2M_CLIENT_ID,
                    "client_secret": m2m_secret,
                    "token_vault_client": {"client_id": VAULT_CLIENT, "client_secret": secret},
                })
                .to_string(),
            )
            .await;
    }

    /// A caller whose Google account is connected for Token Vault; returns their Auth0 token.
    fn connected(&self, sub: &str) -> String {
        self.app.tenant.connect_account(
            sub,
            "google-oauth2",
            json!({"email": "jane@example.test", "for": sub}),
        );
        self.caller(sub)
    }

    /// A caller's Auth0 access token; no account connected.
    fn caller(&self, sub: &str) -> String {
        self.app.tenant.token(AUDIENCE, sub).sign()
    }

    async fn get(&self, path: &str, jwt: &str) -> TestResponse {
        self.app.send(event_at(path, jwt)).await
    }

    /// The bearer token of the stand-in Google's last request.
    fn last_bearer(&self) -> String {
        let last = self.google.requests().pop().expect("a request");
        let bearer = last.header("authorization").expect("authorization");
        bearer.trim_start_matches("Bearer ").to_owned()
    }

    /// Asserts that neither `callers`' Auth0 tokens nor any Token Vault token or client secret
    /// reached the logs or `responses`, and that the callers' tokens reached no IdP.
    fn assert_nothing_leaked(&self, callers: &[&str], responses: &[&TestResponse]) {
        let mut secrets: Vec<String> = callers.iter().map(|s| s.to_string()).collect();
        secrets.extend(self.app.tenant.vault_tokens_issued());
        secrets.push(VAULT_SECRET.to_owned());
        for response in responses {
            for secret in &secrets {
                assert!(!response.body.contains(secret.as_str()), "token in a body");
                for value in response.headers.values() {
                    let value = value.to_str().unwrap_or_default();
                    assert!(!value.contains(secret.as_str()), "token in a header");
                }
            }
        }
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_not_logged(&refs);
        for request in self
            .google
            .requests()
            .iter()
            .chain(&self.app.github.requests())
        {
            for caller in callers {
                let sent = request.headers.iter().any(|(_, v)| v.contains(caller))
                    || String::from_utf8_lossy(&request.body).contains(caller)
                    || request.path_and_query.contains(caller);
                assert!(!sent, "a caller's Auth0 token reached an IdP");
            }
        }
    }
}

#[tokio::test]
async fn a_token_vault_connection_is_served_by_the_exchange_without_the_management_api() {
    let world = Vault::spawn(HOUR).await;
    let jwt = world.connected("google-oauth2|100");
    let first = world.get(USERINFO, &jwt).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["for"], "google-oauth2|100");
    assert_eq!(world.app.tenant.vault_exchanges(), 1);
    assert_eq!(
        world.app.tenant.token_calls(),
        1,
        "no client-credentials grant"
    );
    assert_eq!(world.app.tenant.user_calls(), 0, "no Management API read");
    assert_eq!(world.app.tenant.vault_subject_tokens(), [jwt.as_str()]);
    assert_eq!(
        world.last_bearer(),
        world.app.tenant.vault_tokens_issued()[0]
    );

    // Warm repeats: one upstream call each, the IdP's.
    let mut responses = vec![first];
    for _ in 0..5 {
        let response = world.get(USERINFO, &jwt).await;
        assert_eq!(response.status, 200, "{}", response.body);
        responses.push(response);
    }
    assert_eq!(world.google.calls(), 6);
    assert_eq!(world.app.tenant.token_calls(), 1);
    assert_eq!(world.app.tenant.user_calls(), 0);
    world.assert_nothing_leaked(&[&jwt], &responses.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_dpop_bound_caller_is_served_through_token_vault_without_its_proof_leaving() {
    let world = Vault::spawn(HOUR).await;
    let sub = "google-oauth2|150";
    world.connected(sub);
    let key = standin::DpopKey::generate();
    let jwt = world
        .app
        .tenant
        .token(AUDIENCE, sub)
        .bound_to(&key.jkt())
        .sign();
    let mut event = crate::dpop::event("DPoP", &jwt, &[]);
    event["rawPath"] = json!(USERINFO);
    event["requestContext"]["http"]["path"] = json!(USERINFO);
    let proof = key.proof("GET", &crate::dpop::url_of(&event), Some(&jwt));
    event["headers"]["dpop"] = json!(proof);
    let answer = world.app.invoke(&event.to_string()).await;
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    // The verified token is the subject token; the caller's proof (made for the function's
    // URL) goes nowhere.
    assert_eq!(world.app.tenant.vault_subject_tokens(), [jwt.as_str()]);
    for request in world.google.requests() {
        assert!(request.headers.iter().all(|(_, v)| !v.contains(&proof)));
    }
    assert_not_logged(&[&jwt, &proof]);
}

#[tokio::test]
async fn exchanged_tokens_are_cached_per_user_and_served_only_to_that_user() {
    let world = Vault::spawn(HOUR).await;
    let alice = world.connected("google-oauth2|alice");
    let bob = world.connected("google-oauth2|bob");
    for _ in 0..2 {
        for (jwt, sub) in [(&alice, "google-oauth2|alice"), (&bob, "google-oauth2|bob")] {
            let response = world.get(USERINFO, jwt).await;
            assert_eq!(response.status, 200, "{}", response.body);
            assert_eq!(response.json()["for"], sub);
        }
    }
    assert_eq!(world.app.tenant.vault_exchanges(), 2, "one per user");
    assert_eq!(
        world.app.tenant.vault_subject_tokens(),
        [alice.clone(), bob.clone()],
        "each exchange carried its own caller's token"
    );
    // A user who never connected gets nothing of the others' tokens.
    let carol = world.caller("google-oauth2|carol");
    world
        .get(USERINFO, &carol)
        .await
        .assert_error(403, "reconsent_required");
    world.assert_nothing_leaked(&[&alice, &bob, &carol], &[]);
}

#[tokio::test]
async fn twenty_concurrent_first_calls_share_one_exchange() {
    let world = std::sync::Arc::new(Vault::spawn(HOUR).await);
    let jwt = world.connected("google-oauth2|150");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (world, jwt) = (std::sync::Arc::clone(&world), jwt.clone());
            tokio::spawn(async move { world.get(USERINFO, &jwt).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("task"), 200);
    }
    assert_eq!(world.app.tenant.vault_exchanges(), 1);
    assert_eq!(world.google.calls(), 20);
}

#[tokio::test]
async fn a_user_who_never_connected_the_account_must_reconsent_with_the_connection() {
    let world = Vault::spawn(HOUR).await;
    let sub = "google-oauth2|200";
    let jwt = world.caller(sub);
    let response = world.get(USERINFO, &jwt).await;
    response.assert_error(403, "reconsent_required");
    assert_eq!(response.json()["connection"], "google-oauth2");
    assert_eq!(world.google.calls(), 0);
    assert_eq!(world.app.tenant.vault_exchanges(), 1);

    // Once connected, the next call is served: nothing negative was cached.
    world.connected(sub);
    let response = world.get(USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.app.tenant.vault_exchanges(), 2);

    // Disconnected (the token at the IdP revoked too): re-consent again.
    world.app.tenant.disconnect_account(sub, "google-oauth2");
    world.google.expire(&world.last_bearer());
    let response = world.get(USERINFO, &jwt).await;
    response.assert_error(403, "reconsent_required");
    assert_eq!(response.json()["connection"], "google-oauth2");
    world.assert_nothing_leaked(&[&jwt], &[&response]);
}

#[tokio::test]
async fn auth0s_no_token_refusals_answer_reconsent_and_other_refusals_502() {
    let world = Vault::spawn(HOUR).await;
    let jwt = world.connected("google-oauth2|300");
    for (status, error) in [
        (401, "federated_connection_refresh_token_not_found"),
        (400, "invalid_grant"),
        (404, "tokenset_not_found"),
    ] {
        world
            .app
            .tenant
            .fail_token_vault(Fault::Refuse { status, error }, 1);
        let response = world.get(USERINFO, &jwt).await;
        response.assert_error(403, "reconsent_required");
        assert_eq!(response.json()["connection"], "google-oauth2", "{error}");
    }
    assert_eq!(
        world.app.secret_reads(),
        1,
        "no refusal was taken for a rotated client"
    );
    let before = world.app.tenant.vault_exchanges();
    world.app.tenant.fail_token_vault(
        Fault::Refuse {
            status: 403,
            error: "unauthorized_client",
        },
        1,
    );
    let refused = world.get(USERINFO, &jwt).await;
    refused.assert_error(502, "upstream_error");
    let description = refused.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(description.contains("unauthorized_client"), "{description}");
    assert_eq!(
        world.app.tenant.vault_exchanges(),
        before + 1,
        "not retried"
    );
    assert_eq!(world.google.calls(), 0);

    let served = world.get(USERINFO, &jwt).await;
    assert_eq!(served.status, 200, "{}", served.body);
    world.assert_nothing_leaked(&[&jwt], &[&refused, &served]);
}

#[tokio::test]
async fn an_expired_exchanged_token_is_exchanged_again() {
    let world = Vault::spawn(Duration::from_secs(2)).await;
    let jwt = world.connected("google-oauth2|400");
    assert_eq!(world.get(USERINFO, &jwt).await.status, 200);
    let first = world.last_bearer();
    // Within the token's life, the cached one is used.
    assert_eq!(world.get(USERINFO, &jwt).await.status, 200);
    assert_eq!(world.app.tenant.vault_exchanges(), 1);

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let response = world.get(USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.app.tenant.vault_exchanges(), 2);
    let second = world.last_bearer();
    assert_ne!(first, second, "Auth0 renewed the expired token");
    assert_eq!(world.google.calls(), 3, "the expired token was never sent");
    world.assert_nothing_leaked(&[&jwt], &[&response]);
}

#[tokio::test]
async fn an_idp_401_gets_one_fresh_exchange_and_one_retry() {
    let world = Vault::spawn(HOUR).await;
    let sub = "google-oauth2|500";
    let jwt = world.connected(sub);
    assert_eq!(world.get(USERINFO, &jwt).await.status, 200);
    let cached = world.last_bearer();

    // Auth0 renewed the token meanwhile and the IdP revoked the one cached here.
    let renewed = world
        .app
        .tenant
        .renew_vault_token(sub, "google-oauth2")
        .expect("connected");
    world.google.expire(&cached);
    let response = world.get(USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.app.tenant.vault_exchanges(), 2);
    assert_eq!(world.google.calls(), 3, "the 401, then the retry");
    assert_eq!(world.last_bearer(), renewed);

    // The IdP revokes a token that Auth0 still hands out: one fresh exchange, no retry with the
    // same refused token, re-consent.
    world.google.expire(&renewed);
    let response = world.get(USERINFO, &jwt).await;
    response.assert_error(403, "reconsent_required");
    assert_eq!(response.json()["connection"], "google-oauth2");
    assert_eq!(world.app.tenant.vault_exchanges(), 3);
    assert_eq!(world.google.calls(), 4);
    world.assert_nothing_leaked(&[&jwt], &[&response]);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_within_the_deadline_then_502() {
    let world = Vault::spawn(HOUR).await;
    let jwt = world.connected("google-oauth2|600");
    world
        .app
        .tenant
        .fail_token_vault(Fault::Status(503), ALWAYS);
    send_within(&world.app, event_at(USERINFO, &jwt), Duration::from_secs(5))
        .await
        .assert_error(502, "upstream_error");
    assert_eq!(world.app.tenant.vault_exchanges(), 3);
    assert_eq!(world.google.calls(), 0);

    // One failure is absorbed by a retry.
    world.app.tenant.heal();
    world.app.tenant.fail_token_vault(Fault::Status(500), 1);
    let response = world.get(USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.app.tenant.vault_exchanges(), 5);

    // A hanging endpoint is a timeout within the deadline.
    let other = world.connected("google-oauth2|601");
    world.app.tenant.fail_token_vault(Fault::Hang, 1);
    send_within(
        &world.app,
        event_at(USERINFO, &other),
        Duration::from_millis(1_500),
    )
    .await
    .assert_error(504, "upstream_timeout");
    world.assert_nothing_leaked(&[&jwt, &other], &[&response]);
}

#[tokio::test]
async fn a_throttling_token_endpoint_is_waited_out_within_the_deadline_else_429() {
    let world = Vault::spawn(HOUR).await;
    let jwt = world.connected("google-oauth2|700");
    world
        .app
        .tenant
        .fail_token_vault(Fault::RateLimited { reset_in_secs: 1 }, 1);
    let response = send_within(&world.app, event_at(USERINFO, &jwt), Duration::from_secs(3)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(world.app.tenant.vault_exchanges(), 2);

    let other = world.connected("google-oauth2|701");
    world
        .app
        .tenant
        .fail_token_vault(Fault::RateLimited { reset_in_secs: 30 }, 1);
    let started = Instant::now();
    let response = send_within(
        &world.app,
        event_at(USERINFO, &other),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once"
    );
    response.assert_rate_limited_for(30);
    assert_eq!(world.app.tenant.vault_exchanges(), 3);
}

#[tokio::test]
async fn the_m2m_client_performs_the_exchange_when_the_secret_names_no_token_vault_client() {
    let world = Vault::spawn_with(HOUR, &[]).await;
    let jwt = world.connected("google-oauth2|800");
    // The M2M client is not linked to the API: Auth0 refuses it.
    world
        .get(USERINFO, &jwt)
        .await
        .assert_error(502, "upstream_error");
    world
        .app
        .tenant
        .add_token_vault_client(M2M_CLIENT_ID, None, AUDIENCE);
    let response = world.get(USERINFO, &jwt).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let m2m_secret = world.app.client_secret.lock().expect("lock").clone();
    assert_not_logged(&[&m2m_secret, &jwt]);
}

#[tokio::test]
async fn a_rotated_token_vault_client_secret_is_read_again() {
    let world = Vault::spawn(HOUR).await;
    let jwt = world.connected("google-oauth2|900");
    assert_eq!(world.get(USERINFO, &jwt).await.status, 200);
    let reads = world.app.secret_reads();

    // Rotated at the tenant first: the function still holds the old secret.
    let rotated = unique("vault-rotated-");
    world
        .app
        .tenant
        .add_token_vault_client(VAULT_CLIENT, Some(&rotated), AUDIENCE);
    let other = world.connected("google-oauth2|901");
    world
        .get(USERINFO, &other)
        .await
        .assert_error(503, "credentials_unavailable");
    assert!(
        world.app.secret_reads() > reads,
        "the secret was read again"
    );

    // Then in the secret: the next call reads it and is served.
    world.use_vault_client(&rotated).await;
    let response = world.get(USERINFO, &other).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_not_logged(&[&rotated, VAULT_SECRET]);
}

#[tokio::test]
async fn a_mixed_deployment_serves_identities_and_token_vault_side_by_side() {
    // Token Vault by default, GitHub on the Management API's identities.
    let google = Idp::start_as(Flavor::Google)
        .await
        .expect("stand-in Google starts");
    let connections = json!({
        "github": {"api_base": "{github}", "token_source": "identities"},
        "google-oauth2": {"api_base": google.origin()},
    })
    .to_string();
    let app = TestApp::spawn_with(
        &[
            ("IDP_TOKEN_SOURCE", "token_vault"),
            ("IDP_CONNECTIONS", &connections),
        ],
        KeyPolicy::default(),
    )
    .await;
    app.tenant
        .enable_token_vault("google-oauth2", &google, HOUR);
    app.tenant
        .add_token_vault_client(M2M_CLIENT_ID, None, AUDIENCE);
    let sub = "github|1001";
    let jwt = app.token(sub).sign();
    app.tenant
        .connect_account(sub, "google-oauth2", json!({"email": "octo@example.test"}));

    for _ in 0..2 {
        let github = app.send(event_at(GITHUB_USER, &jwt)).await;
        assert_eq!(github.status, 200, "{}", github.body);
        assert_eq!(github.json()["login"], "octocat");
        let google_user = app.send(event_at(USERINFO, &jwt)).await;
        assert_eq!(google_user.status, 200, "{}", google_user.body);
        assert_eq!(google_user.json()["email"], "octo@example.test");
    }
    assert_eq!(app.tenant.user_calls(), 1, "GitHub's identity, read once");
    assert_eq!(
        app.tenant.vault_exchanges(),
        1,
        "Google's token, exchanged once"
    );
    assert_eq!(
        app.tenant.token_calls(),
        2,
        "one client-credentials grant, one exchange"
    );

    // `/identities` lists the identities and says which connections use Token Vault.
    let identities = app.call("http-api-identities.json", &jwt).await;
    assert_eq!(identities.status, 200, "{}", identities.body);
    let body = identities.json();
    assert_eq!(body["identities"][0]["connection"], "github");
    assert_eq!(body["identities"][0]["token_source"], "identities");
    let vault: Vec<&str> = body["token_vault_connections"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        vault.contains(&"google-oauth2") && !vault.contains(&"github"),
        "{vault:?}"
    );
    let mut secrets = app.tenant.vault_tokens_issued();
    secrets.push(jwt.clone());
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_not_logged(&refs);
}

/// Sends an exchange to the stand-in tenant directly, as JSON or as a form.
async fn exchange(world: &Vault, fields: &Value, as_json: bool) -> (u16, Value) {
    let url = format!("{}/oauth/token", world.app.tenant.origin());
    let http = reqwest::Client::new();
    let request = if as_json {
        http.post(url).json(fields)
    } else {
        let form: Vec<(String, String)> = fields
            .as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        http.post(url).form(&form)
    };
    let response = request.send().await.expect("the stand-in answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_stand_in_exchange_checks_what_auth0_checks_in_form_and_json_bodies() {
    let world = Vault::spawn(HOUR).await;
    let sub = "google-oauth2|1000";
    world.connected(sub);
    let valid = json!({
        "grant_type": "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token",
        "subject_token": world.caller(sub),
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token",
        "connection": "google-oauth2",
        "client_id": VAULT_CLIENT,
        "client_secret": VAULT_SECRET,
    });
    for as_json in [false, true] {
        let (status, body) = exchange(&world, &valid, as_json).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(
            body["issued_token_type"],
            "http://auth0.com/oauth/token-type/federated-connection-access-token"
        );
        assert!(body["expires_in"].as_u64().is_some_and(|s| s > 3500));
    }
    let tenant = &world.app.tenant;
    let with = |field: &str, value: Value| {
        let mut fields = valid.clone();
        fields[field] = value;
        fields
    };
    let foreign_issuer = standin::TokenBuilder::new("https://other.example/", AUDIENCE, sub).sign();
    for (case, fields, status, error) in [
        (
            "wrong secret",
            with("client_secret", json!("nope")),
            401,
            "access_denied",
        ),
        (
            "unknown client",
            with("client_id", json!("nobody")),
            401,
            "access_denied",
        ),
        (
            "another API's token",
            with(
                "subject_token",
                json!(tenant.token("https://other.api/", sub).sign()),
            ),
            400,
            "invalid_request",
        ),
        (
            "another issuer",
            with("subject_token", json!(foreign_issuer)),
            400,
            "invalid_request",
        ),
        (
            "an unpublished key",
            with(
                "subject_token",
                json!(tenant.token(AUDIENCE, sub).key(TestKey::Secondary).sign()),
            ),
            400,
            "invalid_request",
        ),
        (
            "an expired token",
            with(
                "subject_token",
                json!(
                    tenant
                        .token(AUDIENCE, sub)
                        .claim("exp", standin::now() - 3600)
                        .sign()
                ),
            ),
            400,
            "invalid_request",
        ),
        (
            "a refresh token type",
            with(
                "subject_token_type",
                json!("urn:ietf:params:oauth:token-type:refresh_token"),
            ),
            400,
            "invalid_request",
        ),
        (
            "another requested type",
            with("requested_token_type", json!("urn:x")),
            400,
            "invalid_request",
        ),
        (
            "a connection without Token Vault",
            with("connection", json!("github")),
            400,
            "invalid_request",
        ),
        (
            "a user who never connected",
            with("subject_token", json!(world.caller("google-oauth2|none"))),
            401,
            "federated_connection_refresh_token_not_found",
        ),
        (
            // Not the exchange: the tenant's other grants take it, and the Token Vault client is
            // no client-credentials client of the Management API.
            "another grant",
            with("grant_type", json!("client_credentials")),
            401,
            "access_denied",
        ),
    ] {
        for as_json in [false, true] {
            let (got, body) = exchange(&world, &fields, as_json).await;
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(error)),
                "{case}"
            );
        }
    }
}
