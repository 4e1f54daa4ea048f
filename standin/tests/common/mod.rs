//! What the stand-in tenant's HTTP tests share (each file in `tests/` is a crate of its own and
//! takes this in with `mod common;`): the SPA they register, a client that shows redirects
//! instead of following them, PKCE, a sign-in on the login page, discovery, and the checked
//! claims of a token the tenant signed.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::redirect::Policy;
use serde_json::Value;
use sha2::{Digest, Sha256};
use standin::{SpaClient, Tenant, TestKey};

/// The SPA's page: its callback and logout URL.
pub const APP: &str = "http://127.0.0.1:9/";
/// The SPA's web origin.
pub const ORIGIN: &str = "http://127.0.0.1:9";
/// The SPA's client ID.
pub const CLIENT: &str = "spa";
/// The API the SPA signs in for.
pub const AUDIENCE: &str = "https://api.example.test";
/// The PKCE code verifier of the sign-ins.
pub const VERIFIER: &str = "a-code-verifier-of-enough-length-0123456789";

/// A tenant with the API [`AUDIENCE`], the SPA [`CLIENT`] (callback and logout at [`APP`], web
/// origin [`ORIGIN`]) and the user `profile`.
pub async fn spa_tenant(profile: Value) -> Tenant {
    let tenant = Tenant::start("secret").await.expect("tenant starts");
    tenant.register_api(AUDIENCE);
    tenant.register_spa(SpaClient {
        client_id: CLIENT.into(),
        callback_urls: vec![APP.into()],
        logout_urls: vec![APP.into()],
        web_origins: vec![ORIGIN.into()],
    });
    tenant.add_user(profile);
    tenant
}

/// A client that answers with a redirect rather than following it, as the tests read them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// The PKCE `S256` challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

/// The query of a redirect's `location`, decoded (empty where it has none).
pub fn query_of(location: &str) -> HashMap<String, String> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(query).expect("query")
}

/// The SPA's authorization parameters (code flow with PKCE by [`VERIFIER`] for [`AUDIENCE`],
/// state `st4te`, nonce `n0nce`, scope `openid profile`), each of `extra` in place of the one
/// it names or added.
pub fn authorize_params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("client_id", CLIENT),
        ("redirect_uri", APP),
        ("response_type", "code"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge_method", "S256"),
        ("audience", AUDIENCE),
        ("scope", "openid profile"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("code_challenge".into(), challenge(VERIFIER)));
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        params.push((k.to_string(), v.to_string()));
    }
    params
}

/// Picks `user` on the login page, with [`authorize_params`] changed by `extra`; returns the
/// query of the redirect to [`APP`] and the session cookie.
pub async fn sign_in(
    tenant: &Tenant,
    user: &str,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, String) {
    let mut form = authorize_params(extra);
    form.push(("demo_user".into(), user.into()));
    let response = http()
        .post(format!("{}/authorize", tenant.origin()))
        .form(&form)
        .send()
        .await
        .expect("pick");
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (base, _) = location.split_once('?').expect("a query");
    assert_eq!(base, APP);
    (query_of(&location), cookie)
}

/// The tenant's OpenID discovery document.
pub async fn openid_configuration(tenant: &Tenant) -> Value {
    http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            tenant.origin()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The claims of `token`, checked as the tenant's (signed by its primary key, its issuer) for
/// `audience`.
pub fn claims(token: &str, audience: &str, tenant: &Tenant) -> Value {
    let key = DecodingKey::from_rsa_pem(TestKey::Primary.public_pem().as_bytes()).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[tenant.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("valid token")
        .claims
}
