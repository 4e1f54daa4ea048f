//! The stand-in tenant's Token Vault scopes, My Account API (connected accounts), Multi-Resource
//! Refresh Token, and the stand-in IdP's insufficient-scope answers, checked over HTTP as the
//! function and Auth0's SPA SDK would meet them.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use common::{
    APP, AUDIENCE as API, CLIENT, ORIGIN, VERIFIER, challenge, http, query_of, sign_in, spa_tenant,
};
use serde_json::{Value, json};
use standin::{Flavor, Idp, ScopeDialect, Tenant};

const USER: &str = "google-oauth2|42";
const DRIVE: &str = "https://www.googleapis.com/auth/drive.readonly";

async fn setup() -> (Tenant, Idp) {
    let tenant = spa_tenant(standin::profile(USER, &[("google-oauth2", "42", "unused")])).await;
    let idp = Idp::start_as(Flavor::Google).await.expect("idp starts");
    tenant.enable_token_vault("google-oauth2", &idp, Duration::from_secs(3600));
    tenant.add_token_vault_client("vault-client", Some("vault-secret"), API);
    (tenant, idp)
}

/// A My Account API token for USER with `scopes`.
fn me_token(tenant: &Tenant, scopes: &str) -> String {
    tenant
        .token(&tenant.my_account_audience(), USER)
        .claim("scope", scopes)
        .claim("azp", CLIENT)
        .sign()
}

/// Token Vault's exchange for USER at google-oauth2: status and body.
async fn exchange(tenant: &Tenant) -> (u16, Value) {
    let subject = tenant.token(API, USER).sign();
    let response = http()
        .post(format!("{}/oauth/token", tenant.origin()))
        .form(&[
            ("grant_type", "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"),
            ("client_id", "vault-client"),
            ("client_secret", "vault-secret"),
            ("subject_token", &subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("requested_token_type", "http://auth0.com/oauth/token-type/federated-connection-access-token"),
            ("connection", "google-oauth2"),
        ])
        .send()
        .await
        .expect("exchange");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

async fn location(response: reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs connect → ticket → consent (`decision`) → callback; returns the connect answer and the
/// query the application's redirect URI receives.
async fn connect_flow(
    tenant: &Tenant,
    scopes: &[&str],
    decision: &str,
) -> (Value, HashMap<String, String>) {
    let response = http()
        .post(format!(
            "{}/me/v1/connected-accounts/connect",
            tenant.origin()
        ))
        .bearer_auth(me_token(tenant, "create:me:connected_accounts"))
        .json(&json!({
            "connection": "google-oauth2",
            "redirect_uri": APP,
            "state": "app-state",
            "scopes": scopes,
            "code_challenge": challenge(VERIFIER),
            "code_challenge_method": "S256",
        }))
        .send()
        .await
        .expect("connect");
    assert_eq!(response.status(), 201);
    let started: Value = response.json().await.expect("json");
    let ticket = started["connect_params"]["ticket"].as_str().unwrap();
    let connect_uri = started["connect_uri"].as_str().unwrap();
    assert_eq!(connect_uri, format!("{}/connect", tenant.origin()));
    assert!(started["auth_session"].is_string());
    assert!(started["expires_in"].as_u64().unwrap() > 0);
    // The browser: the ticket leads to the IdP's consent page.
    let to_idp = location(
        http()
            .get(connect_uri)
            .query(&[("ticket", ticket)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let asked = query_of(&to_idp);
    assert_eq!(asked["scope"], scopes.join(" "));
    let page = http()
        .get(&to_idp)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for scope in scopes {
        assert!(page.contains(scope), "the consent page lists {scope}");
    }
    let mut form: Vec<(String, String)> = asked.into_iter().collect();
    form.push(("decision".into(), decision.into()));
    let authorize = to_idp.split_once('?').unwrap().0.to_owned();
    let to_tenant = location(http().post(authorize).form(&form).send().await.unwrap()).await;
    let to_app = location(http().get(&to_tenant).send().await.unwrap()).await;
    assert!(to_app.starts_with(APP));
    (started, query_of(&to_app))
}

async fn complete(
    tenant: &Tenant,
    auth_session: &str,
    connect_code: &str,
    verifier: &str,
) -> reqwest::Response {
    http()
        .post(format!(
            "{}/me/v1/connected-accounts/complete",
            tenant.origin()
        ))
        .bearer_auth(me_token(tenant, "create:me:connected_accounts"))
        .json(&json!({
            "auth_session": auth_session,
            "connect_code": connect_code,
            "redirect_uri": APP,
            "code_verifier": verifier,
        }))
        .send()
        .await
        .expect("complete")
}

#[tokio::test]
async fn the_exchange_answers_the_granted_scopes() {
    let (tenant, idp) = setup().await;
    let profile = json!({"sub": "42"});
    tenant.connect_account("auth0|plain", "google-oauth2", profile.clone());
    tenant.connect_account_with_scopes(USER, "google-oauth2", profile, &["openid", "email"]);
    let (status, body) = exchange(&tenant).await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "openid email");
    let first = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        idp.token_scopes(&first),
        Some(vec!["openid".into(), "email".into()])
    );

    let second = tenant
        .grant_scopes(USER, "google-oauth2", &[DRIVE, "email"])
        .expect("connected");
    assert_ne!(first, second);
    let (_, body) = exchange(&tenant).await;
    assert_eq!(body["scope"], format!("openid email {DRIVE}"));
    assert_eq!(body["access_token"], second);
    assert!(
        tenant
            .grant_scopes("auth0|nobody", "google-oauth2", &[DRIVE])
            .is_none()
    );
    assert_eq!(
        tenant.granted_scopes("auth0|plain", "google-oauth2"),
        Some(vec!["openid".into(), "profile".into()])
    );
}

#[tokio::test]
async fn the_user_read_lists_connected_accounts() {
    let (tenant, _) = setup().await;
    tenant.connect_account_with_scopes(USER, "google-oauth2", json!({}), &[DRIVE]);
    let profile = tenant.user(USER).unwrap();
    let accounts = profile["connected_accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    let account = &accounts[0];
    assert!(account["id"].as_str().unwrap().starts_with("cac_"));
    assert!(
        account["connection_id"]
            .as_str()
            .unwrap()
            .starts_with("con_")
    );
    assert_eq!(account["connection"], "google-oauth2");
    assert_eq!(account["strategy"], "google-oauth2");
    assert_eq!(account["access_type"], "offline");
    assert_eq!(account["scopes"], json!([DRIVE]));
    assert_eq!(account["created_at"].as_str().unwrap().len(), 20);
    tenant.disconnect_account(USER, "google-oauth2");
    assert_eq!(tenant.user(USER).unwrap()["connected_accounts"], json!([]));
}

#[tokio::test]
async fn connecting_through_the_my_account_api_stores_the_scopes() {
    let (tenant, idp) = setup().await;
    idp.require_scope("/drive/v3/", &[DRIVE], ScopeDialect::Google);
    let (started, back) = connect_flow(&tenant, &["openid", DRIVE], "allow").await;
    assert_eq!(back["state"], "app-state");
    let session = started["auth_session"].as_str().unwrap();

    // A wrong verifier is refused, and spends the session.
    let refused = complete(
        &tenant,
        session,
        &back["connect_code"],
        "wrong-verifier-wrong-verifier-wrong-verifier",
    )
    .await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert_eq!(problem["validation_errors"][0]["field"], "code_verifier");

    let (started, back) = connect_flow(&tenant, &["openid", DRIVE], "allow").await;
    let done = complete(
        &tenant,
        started["auth_session"].as_str().unwrap(),
        &back["connect_code"],
        VERIFIER,
    )
    .await;
    assert_eq!(done.status(), 201);
    let account: Value = done.json().await.unwrap();
    assert_eq!(account["connection"], "google-oauth2");
    assert_eq!(account["access_type"], "offline");
    assert_eq!(account["scopes"], json!(["openid", DRIVE]));
    assert!(account.get("connection_id").is_none());

    // The next exchange has the scopes, and the IdP accepts the token for Drive.
    let (_, body) = exchange(&tenant).await;
    assert_eq!(body["scope"], format!("openid {DRIVE}"));
    let drive = http()
        .get(format!("{}/drive/v3/files", idp.origin()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(drive.status(), 200);

    // Listed, then deleted.
    let list = http()
        .get(format!(
            "{}/me/v1/connected-accounts/accounts",
            tenant.origin()
        ))
        .bearer_auth(me_token(&tenant, "read:me:connected_accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let listed: Value = list.json().await.unwrap();
    assert_eq!(listed["accounts"][0]["id"], account["id"]);
    assert!(listed.get("next").is_none());
    let url = format!(
        "{}/me/v1/connected-accounts/accounts/{}",
        tenant.origin(),
        account["id"].as_str().unwrap()
    );
    let deleted = http()
        .delete(&url)
        .bearer_auth(me_token(&tenant, "delete:me:connected_accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = http()
        .delete(&url)
        .bearer_auth(me_token(&tenant, "delete:me:connected_accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let (status, body) = exchange(&tenant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("federated_connection_refresh_token_not_found"))
    );
}

#[tokio::test]
async fn a_second_connection_adds_to_the_scopes_granted() {
    let (tenant, _) = setup().await;
    tenant.connect_account_with_scopes(USER, "google-oauth2", json!({"sub": "42"}), &["openid"]);
    let before = tenant.connected_accounts(USER)[0]["id"].clone();
    let (started, back) = connect_flow(&tenant, &[DRIVE], "allow").await;
    let done = complete(
        &tenant,
        started["auth_session"].as_str().unwrap(),
        &back["connect_code"],
        VERIFIER,
    )
    .await;
    let account: Value = done.json().await.unwrap();
    assert_eq!(account["scopes"], json!(["openid", DRIVE]));
    assert_eq!(account["id"], before, "the same connected account");
}

#[tokio::test]
async fn a_denied_consent_returns_an_error_to_the_application() {
    let (tenant, _) = setup().await;
    let (_, back) = connect_flow(&tenant, &[DRIVE], "deny").await;
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "app-state");
    assert!(!back.contains_key("connect_code"));
}

#[tokio::test]
async fn the_my_account_api_refuses_as_auth0_does() {
    let (tenant, _) = setup().await;
    let url = format!("{}/me/v1/connected-accounts/connect", tenant.origin());
    let body = json!({"connection": "google-oauth2", "redirect_uri": APP});
    let none = http().post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let problem: Value = none.json().await.unwrap();
    assert_eq!(
        (problem["status"].as_u64(), problem["title"].as_str()),
        (Some(401), Some("Unauthorized"))
    );

    let wrong_audience = tenant
        .token(API, USER)
        .claim("scope", "create:me:connected_accounts")
        .sign();
    let refused = http()
        .post(&url)
        .bearer_auth(wrong_audience)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let reader = me_token(&tenant, "read:me:connected_accounts");
    let refused = http()
        .post(&url)
        .bearer_auth(&reader)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("create:me:connected_accounts")
    );

    let creator = me_token(&tenant, "create:me:connected_accounts");
    for (bad, field) in [
        (json!({"redirect_uri": APP}), "connection"),
        (json!({"connection": "google-oauth2"}), "redirect_uri"),
        (
            json!({"connection": "nowhere", "redirect_uri": APP}),
            "connection",
        ),
        (
            json!({"connection": "google-oauth2", "redirect_uri": "http://evil.test/"}),
            "redirect_uri",
        ),
    ] {
        let refused = http()
            .post(&url)
            .bearer_auth(&creator)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["validation_errors"][0]["field"], field, "{bad}");
    }

    // The SPA's origin gets its preflight and CORS headers; another origin does not.
    let preflight = http()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let elsewhere = http()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
}

/// Signs USER in with `offline_access` through the SPA flow; returns the refresh token.
async fn sign_in_offline(tenant: &Tenant) -> String {
    let scope = "openid profile email offline_access read:things";
    let (query, _) = sign_in(tenant, USER, &[("state", "s"), ("scope", scope)]).await;
    let code = &query["code"];
    let tokens: Value = http()
        .post(format!("{}/oauth/token", tenant.origin()))
        .json(&json!({
            "grant_type": "authorization_code",
            "client_id": CLIENT,
            "code": code,
            "redirect_uri": APP,
            "code_verifier": VERIFIER,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

async fn refresh(tenant: &Tenant, body: Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}/oauth/token", tenant.origin()))
        .header("origin", ORIGIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_refresh_token_reaches_the_my_account_api_where_a_policy_allows() {
    let (tenant, _) = setup().await;
    let me = tenant.my_account_audience();
    let wanted = "openid profile email offline_access create:me:connected_accounts";
    let refresh_token = sign_in_offline(&tenant).await;

    // No policy yet: Auth0 ignores the audience and answers for the sign-in's.
    let (status, body) = refresh(&tenant, json!({"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": refresh_token, "audience": me, "scope": wanted})).await;
    assert_eq!(status, 200);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"][0],
        API
    );
    assert!(!body["scope"].as_str().unwrap().contains("create:me"));

    tenant.allow_refresh_audience(
        CLIENT,
        &me,
        &["create:me:connected_accounts", "read:me:connected_accounts"],
    );
    let (status, body) = refresh(&tenant, json!({"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": refresh_token, "audience": me, "scope": format!("{wanted} delete:me:connected_accounts")})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["scope"], wanted,
        "only what the policy allows, with the sign-in's OpenID scopes"
    );
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"][0], me.as_str());
    assert_eq!(access["scope"], wanted);
    assert!(body["id_token"].is_string());
    assert!(body["refresh_token"].is_string(), "rotated");

    // The token works at the My Account API.
    let list = http()
        .get(format!(
            "{}/me/v1/connected-accounts/accounts",
            tenant.origin()
        ))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 403, "read:me was not asked for");

    // Without an audience: the sign-in's.
    let (_, body) = refresh(
        &tenant,
        json!({"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": refresh_token}),
    )
    .await;
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"][0],
        API
    );
    assert_eq!(
        body["scope"],
        "openid profile email offline_access read:things"
    );

    let (status, body) = refresh(
        &tenant,
        json!({"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": "v1.nope"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    let (status, _) = refresh(&tenant, json!({"grant_type": "refresh_token", "client_id": "other", "refresh_token": refresh_token})).await;
    assert_eq!(status, 403);
}

async fn call(idp: &Idp, token: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", idp.origin()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_idp_refuses_a_missing_scope_in_each_dialect() {
    let idp = Idp::start().await.unwrap();
    let narrow = "narrow-token";
    idp.grant_scoped(
        narrow,
        json!({"login": "octocat"}),
        Duration::from_secs(60),
        &["read:user".into()],
    );
    let unscoped = "unscoped-token";
    idp.grant(unscoped, json!({"login": "octocat"}));

    // Nothing configured: nothing checked.
    assert_eq!(call(&idp, unscoped, "/rfc/x").await.status(), 200);

    idp.require_scope("/rfc/", &["write", "admin"], ScopeDialect::Rfc6750);
    let refused = call(&idp, narrow, "/rfc/x").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\", scope=\"write admin\""
    );
    // A token of unknown scopes holds none where a requirement is configured.
    assert_eq!(call(&idp, unscoped, "/rfc/x").await.status(), 403);

    idp.require_scope(
        "/drive/v3/",
        &[DRIVE, "https://www.googleapis.com/auth/drive"],
        ScopeDialect::Google,
    );
    let refused = call(&idp, narrow, "/drive/v3/files").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{DRIVE} https://www.googleapis.com/auth/drive\""
        )
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        body["error"]["errors"][0]["reason"],
        "insufficientPermissions"
    );
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    );
    assert_eq!(
        body["error"]["details"][0]["metadata"]["service"],
        "drive.googleapis.com"
    );

    idp.require_scope(
        "/user/repos",
        &["repo", "public_repo"],
        ScopeDialect::GitHub,
    );
    let refused = call(&idp, narrow, "/user/repos").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["x-oauth-scopes"], "read:user");
    assert_eq!(
        refused.headers()["x-accepted-oauth-scopes"],
        "repo, public_repo"
    );
    let repo = "repo-token";
    idp.grant_scoped(
        repo,
        json!({"login": "octocat"}),
        Duration::from_secs(60),
        &["repo".into(), "read:user".into()],
    );
    let allowed = call(&idp, repo, "/user/repos").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-oauth-scopes"], "repo, read:user");
    assert_eq!(
        allowed.headers()["x-accepted-oauth-scopes"],
        "repo, public_repo"
    );

    idp.require_scope("/v1.0/me/drive", &["Files.Read"], ScopeDialect::Graph);
    let refused = call(&idp, narrow, "/v1.0/me/drive/root").await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    for key in ["date", "request-id", "client-request-id"] {
        assert!(body["error"]["innerError"][key].is_string(), "{key}");
    }
    // Other paths are untouched.
    assert_eq!(call(&idp, narrow, "/v1.0/me").await.status(), 200);
}
