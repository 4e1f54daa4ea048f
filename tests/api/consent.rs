//! Consent answers end to end: a frontend is told what the user must do (connect the account or
//! log in again) and which IdP scopes to ask for, whether the function knows it before the call
//! (Token Vault's granted scopes against the rule's `idp-scopes`: nothing is sent) or the IdP
//! says it in its own dialect (RFC 6750, Google, GitHub, Microsoft Graph). After the user
//! consents, the next call goes through. `GET /identities` shows each Token Vault connection's
//! state. Through the handler and the real binary; no token in any log line.

use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID, ScopeDialect};

use crate::binary::RealBinary;
use crate::helpers::{
    AUDIENCE, TestApp, TestResponse, assert_not_logged, event_at, github_token, idp_event, unique,
};

const VAULT_CLIENT: &str = "consent-api-client";
const VAULT_SECRET: &str = "consent-api-client-secret";
const HOUR: Duration = Duration::from_secs(3600);
const DRIVE: &str = "https://www.googleapis.com/auth/drive";
const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
const FILES: &str = "/idp/google-oauth2/drive/v3/files";

/// A stand-in Google whose Drive needs a Drive scope, refused in Google's own form.
async fn drive_google() -> Idp {
    let google = Idp::start_as(Flavor::Google)
        .await
        .expect("stand-in Google starts");
    google.require_scope("/drive/v3/", &[DRIVE_READONLY, DRIVE], ScopeDialect::Google);
    google
}

/// A deployment whose `google-oauth2` connection (a stand-in Google enforcing Drive's scopes in
/// Google's dialect) is served through Token Vault; `github` stays on identities.
struct World {
    app: TestApp,
    google: Idp,
}

impl World {
    async fn spawn() -> Self {
        let google = drive_google().await;
        let connections = json!({
            "github": {"api_base": "{github}"},
            "google-oauth2": {"api_base": google.origin(), "token_source": "token_vault"},
        })
        .to_string();
        let app = TestApp::spawn_with(
            &[("IDP_CONNECTIONS", connections.as_str())],
            KeyPolicy::default(),
        )
        .await;
        app.tenant
            .enable_token_vault("google-oauth2", &google, HOUR);
        app.tenant
            .add_token_vault_client(VAULT_CLIENT, Some(VAULT_SECRET), AUDIENCE);
        let m2m_secret = app.client_secret.lock().expect("lock").clone();
        app.put_secret(
            &json!({
                "client_id": M2M_CLIENT_ID,
                "client_secret": m2m_secret,
                "token_vault_client": {"client_id": VAULT_CLIENT, "client_secret": VAULT_SECRET},
            })
            .to_string(),
        )
        .await;
        Self { app, google }
    }

    /// A caller whose Google account is connected with `scopes`; their Auth0 token.
    fn connected(&self, sub: &str, scopes: &[&str]) -> String {
        self.app.tenant.connect_account_with_scopes(
            sub,
            "google-oauth2",
            json!({"email": "jane@example.test"}),
            scopes,
        );
        self.app.token(sub).sign()
    }

    async fn get(&self, path: &str, jwt: &str) -> TestResponse {
        self.app.send(event_at(path, jwt)).await
    }

    fn drive_calls(&self) -> usize {
        self.google
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/drive/"))
            .count()
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[tokio::test]
async fn granted_scopes_that_lack_the_rules_send_nothing_and_a_consent_lets_the_next_call_through()
{
    let world = World::spawn().await;
    let sub = unique("google-oauth2|consent-");
    let jwt = world.connected(&sub, &["openid", "email"]);

    let refused = world.get(FILES, &jwt).await;
    refused.assert_error(403, "consent_required");
    let body = refused.json();
    assert_eq!(body["connection"], "google-oauth2");
    assert_eq!(body["action"], "connect");
    assert_eq!(strings(&body["missing"]), [DRIVE_READONLY]);
    assert_eq!(
        strings(&body["scopes"]),
        [DRIVE_READONLY, "openid", "email"]
    );
    assert_eq!(world.drive_calls(), 0, "nothing is sent to the IdP");
    // A call that needs no more than was granted goes through with the same token.
    let userinfo = world
        .get("/idp/google-oauth2/oauth2/v3/userinfo", &jwt)
        .await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.body);

    // The user consents to Drive: Token Vault now holds a token that carries it, and the
    // function, which held the older token, reads Token Vault again rather than refusing.
    world
        .app
        .tenant
        .grant_scopes(&sub, "google-oauth2", &[DRIVE_READONLY])
        .expect("connected");
    let files = world.get(FILES, &jwt).await;
    assert_eq!(files.status, 200, "{}", files.body);
    assert_eq!(world.drive_calls(), 1);

    let state = world.get("/identities", &jwt).await;
    assert_eq!(state.status, 200, "{}", state.body);
    let vault = &state.json()["token_vault"];
    assert_eq!(vault[0]["connection"], "google-oauth2");
    assert_eq!(vault[0]["connected"], true);
    assert!(strings(&vault[0]["scopes"]).contains(&DRIVE_READONLY));
    let mut secrets = world.app.tenant.vault_tokens_issued();
    secrets.push(jwt.clone());
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for response in [&refused, &files, &state] {
        for secret in &refs {
            assert!(!response.body.contains(secret), "a token in a body");
        }
    }
    assert_not_logged(&refs);
}

#[tokio::test]
async fn no_connected_account_asks_to_connect_with_the_scopes_the_call_needs() {
    let world = World::spawn().await;
    let sub = unique("google-oauth2|unconnected-");
    let jwt = world.app.token(&sub).sign();
    let refused = world.get(FILES, &jwt).await;
    refused.assert_error(403, "reconsent_required");
    let body = refused.json();
    assert_eq!(
        (&body["connection"], &body["action"]),
        (&json!("google-oauth2"), &json!("connect"))
    );
    assert_eq!(strings(&body["scopes"]), [DRIVE_READONLY]);
    assert!(body.get("missing").is_none());
    let state = world.get("/identities", &jwt).await.json();
    assert_eq!(
        state["token_vault"],
        json!([{"connection": "google-oauth2", "connected": false}])
    );

    // Connected, then disconnected: the same typed answer, nothing sent.
    let jwt = world.connected(&sub, &[DRIVE_READONLY]);
    assert_eq!(world.get(FILES, &jwt).await.status, 200);
    world.app.tenant.disconnect_account(&sub, "google-oauth2");
    let state = world.get("/identities", &jwt).await.json();
    assert_eq!(state["token_vault"][0]["connected"], false);
}

#[tokio::test]
async fn googles_own_insufficient_scope_answer_becomes_a_consent_answer() {
    // Scopes unknown to the function (an identity's token): the IdP decides, in its dialect.
    let google = drive_google().await;
    let connections = json!({
        "github": {"api_base": "{github}"},
        "google-oauth2": {"api_base": google.origin()},
    })
    .to_string();
    let app = TestApp::spawn_with(
        &[("IDP_CONNECTIONS", connections.as_str())],
        KeyPolicy::default(),
    )
    .await;
    let sub = unique("google-oauth2|identity-");
    let token = format!("ya29.{}", unique("consent"));
    google.grant_scoped(&token, json!({"sub": sub}), HOUR, &["openid".to_owned()]);
    app.tenant.add_user(standin::profile(
        &sub,
        &[("google-oauth2", "google-oauth2", &token)],
    ));
    let jwt = app.token(&sub).sign();
    let refused = app.send(event_at(FILES, &jwt)).await;
    refused.assert_error(403, "consent_required");
    let body = refused.json();
    assert_eq!(body["action"], "login");
    assert_eq!(strings(&body["missing"]), [DRIVE_READONLY]);
    assert_eq!(google.requests().len(), 1, "the IdP was asked once");

    // The user logs in again, consenting to Drive: Auth0 holds a new token. The token this
    // environment holds (good for its max age) is refused again for scope, so Auth0 is read
    // once and the call sent again with the new token.
    let consented = format!("ya29.{}", unique("consented"));
    google.grant_scoped(
        &consented,
        json!({"sub": sub}),
        HOUR,
        &["openid".to_owned(), DRIVE_READONLY.to_owned()],
    );
    app.tenant.add_user(standin::profile(
        &sub,
        &[("google-oauth2", "google-oauth2", &consented)],
    ));
    let reads = app.tenant.user_calls();
    let answered = app.send(event_at(FILES, &jwt)).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(app.tenant.user_calls(), reads + 1);
    assert_eq!(google.requests().len(), 3);
    // Without a new consent, the refusal is answered after one more read, not in a loop.
    let other = unique("google-oauth2|identity-");
    let narrow = format!("ya29.{}", unique("narrow"));
    google.grant_scoped(&narrow, json!({"sub": other}), HOUR, &["openid".to_owned()]);
    app.tenant.add_user(standin::profile(
        &other,
        &[("google-oauth2", "google-oauth2", &narrow)],
    ));
    let other_jwt = app.token(&other).sign();
    app.send(event_at(FILES, &other_jwt))
        .await
        .assert_error(403, "consent_required");
    let reads = app.tenant.user_calls();
    app.send(event_at(FILES, &other_jwt))
        .await
        .assert_error(403, "consent_required");
    assert_eq!(app.tenant.user_calls(), reads + 1);
    // With Auth0 failing at that moment, the IdP's answer still stands (after a second, the
    // least time between two such reads).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    app.tenant
        .fail_management_api(standin::Fault::Status(503), 10);
    app.send(event_at(FILES, &other_jwt))
        .await
        .assert_error(403, "consent_required");
    assert_not_logged(&[&token, &consented, &narrow, &jwt, &other_jwt]);
}

#[tokio::test]
async fn github_and_rfc_6750_answers_name_the_scope_to_ask_for() {
    let app = TestApp::spawn().await;
    let sub = unique("github|scopes-");
    let jwt = app.token(&sub).sign();
    app.github.grant_scoped(
        &github_token(&sub),
        json!({"login": "jane"}),
        HOUR,
        &["read:user".to_owned()],
    );
    app.github
        .require_scope("/user/repos", &["repo"], ScopeDialect::GitHub);
    let refused = app.send(event_at("/idp/github/user/repos", &jwt)).await;
    refused.assert_error(403, "consent_required");
    let body = refused.json();
    assert_eq!(
        (&body["connection"], &body["action"]),
        (&json!("github"), &json!("login"))
    );
    assert_eq!(strings(&body["missing"]), ["repo"]);
    // A path whose scope the token holds is answered by the IdP as before.
    assert_eq!(
        app.send(event_at("/idp/github/user", &jwt)).await.status,
        200
    );

    // Any provider's RFC 6750 challenge, on a connection of IDP_CONNECTIONS alone.
    app.github
        .require_scope("/orgs/", &["read:org"], ScopeDialect::Rfc6750);
    let challenged = app.send(event_at("/idp/github/orgs/acme", &jwt)).await;
    challenged.assert_error(403, "consent_required");
    assert_eq!(strings(&challenged.json()["missing"]), ["read:org"]);
    assert_not_logged(&[&github_token(&sub), &jwt]);
}

#[tokio::test]
async fn the_real_binary_gives_the_same_consent_answers() {
    let world = World::spawn().await;
    let sub = unique("google-oauth2|binary-");
    let jwt = world.connected(&sub, &["openid"]);
    let real = RealBinary::start(&world.app, &[]).await;
    let lacking = real.invoke(&idp_event("GET", FILES, "", &jwt, &[])).await;
    lacking.assert_error(403, "consent_required");
    assert_eq!(lacking.json()["action"], "connect");
    assert_eq!(world.drive_calls(), 0);
    let unconnected = world.app.token(&unique("google-oauth2|none-")).sign();
    let none = real
        .invoke(&idp_event("GET", FILES, "", &unconnected, &[]))
        .await;
    none.assert_error(403, "reconsent_required");
    assert_eq!(strings(&none.json()["scopes"]), [DRIVE_READONLY]);
    let logs = real.logs().await;
    for secret in world.app.tenant.vault_tokens_issued().iter().chain([&jwt]) {
        assert!(
            !logs.contains(secret.as_str()),
            "a token in the binary's logs"
        );
    }
}
