//! A token seen before: its signature is not checked again (`auth::verified`), and every attack
//! on it is still refused on the second sight and after: another `alg` or `kid`, a signature
//! one byte off, another audience, the clock past `exp` or before `nbf`, its key gone from the
//! JWKS.

use std::time::Duration;

use auth0_idp_proxy::Config;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::auth::{AuthError, Authenticator};
use auth0_idp_proxy::deadline::Deadline;
use auth0_idp_proxy::upstream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use standin::{TestKey, now};

use crate::helpers::{TestApp, event};
use crate::metrics::send_traced;

const EVENT: &str = "http-api-identities.json";
const USER: &str = "github|1001";

/// Calls twice with `token` and asserts both are refused with a description holding `why`.
async fn refused_twice(app: &TestApp, token: &str, why: &str) {
    for sight in ["first", "second"] {
        let response = app.call(EVENT, token).await;
        response.assert_invalid_token();
        let description = response.json()["error_description"]
            .as_str()
            .expect("text")
            .to_owned();
        assert!(description.contains(why), "{sight} sight: {description}");
    }
}

/// Accepts `token` twice, the second time from the cache of verified tokens.
async fn seen_twice(app: &TestApp, token: &str) {
    for hit in [false, true] {
        let (response, line) = send_traced(app, event(EVENT, token), &[token]).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(line["caller_token_cache_hit"], hit, "{line}");
    }
}

/// `token` with its header's JSON changed by `edit`, payload and signature kept.
fn with_header(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (header, rest) = token.split_once('.').expect("three segments");
    let mut json: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    edit(&mut json);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json.to_string()))
}

/// `token` with byte `at` of its decoded signature flipped.
fn signature_off_by_one_byte(token: &str, at: usize) -> String {
    let (message, signature) = token.rsplit_once('.').expect("three segments");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    bytes[at] ^= 0x01;
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A `GET` whose URL is not known: enough for bearer tokens.
const GET: auth0_idp_proxy::auth::Target<'static> = auth0_idp_proxy::auth::Target {
    method: &http::Method::GET,
    url: None,
};
#[tokio::test]
async fn a_repeat_token_skips_only_the_signature_check() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    seen_twice(&app, &token).await;
    // Another token of the same user is another entry.
    let other = app.token(USER).claim("jti", "another").sign();
    seen_twice(&app, &other).await;
}

#[tokio::test]
async fn another_alg_or_kid_on_a_token_seen_before_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    seen_twice(&app, &token).await;
    for alg in ["HS256", "RS384", "PS256"] {
        let altered = with_header(&token, |h| h["alg"] = alg.into());
        refused_twice(&app, &altered, "algorithm").await;
    }
    refused_twice(
        &app,
        &app.token(USER).sign_hs256_with_public_key(),
        "algorithm",
    )
    .await;
    for kid in [
        Value::from(TestKey::Secondary.kid()),
        "made-up".into(),
        Value::Null,
    ] {
        let altered = with_header(&token, |h| h["kid"] = kid.clone());
        refused_twice(&app, &altered, "key").await;
    }
    seen_twice_again(&app, &token).await;
}

/// The original token is still accepted from the cache after the attacks around it.
async fn seen_twice_again(app: &TestApp, token: &str) {
    let (response, line) = send_traced(app, event(EVENT, token), &[token]).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(line["caller_token_cache_hit"], true, "{line}");
}

#[tokio::test]
async fn a_signature_one_byte_off_is_refused_on_every_sight() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    seen_twice(&app, &token).await;
    for at in [0, 100, 255] {
        refused_twice(&app, &signature_off_by_one_byte(&token, at), "signature").await;
    }
    seen_twice_again(&app, &token).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_on_every_sight() {
    let app = TestApp::spawn().await;
    let token = app.token(USER).sign();
    seen_twice(&app, &token).await;
    let other = app
        .token(USER)
        .claim("aud", "https://other.example.com")
        .sign();
    refused_twice(&app, &other, "not meant for this API").await;
    // The cached token's signature under the other audience's payload.
    let payload = other.split('.').nth(1).expect("payload");
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = payload;
    refused_twice(&app, &parts.join("."), "signature").await;
}

#[tokio::test]
async fn a_token_seen_before_stops_working_when_its_key_leaves_the_jwks() {
    let policy = KeyPolicy {
        refresh_after: Duration::from_millis(150),
        max_age: Duration::from_secs(60),
        unknown_kid_cooldown: Duration::from_millis(100),
    };
    let app = TestApp::spawn_with(&[], policy).await;
    let token = app.token(USER).sign();
    seen_twice(&app, &token).await;
    app.tenant.publish(&[TestKey::Secondary]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    refused_twice(&app, &token, "signing key is unknown").await;
}

/// An authenticator configured as the handler's, for a clock of the test's choosing.
fn authenticator(app: &TestApp) -> Authenticator {
    let config = Config::from_lookup(|name| {
        app.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test configuration is valid");
    let http = upstream::build_client().expect("HTTP client");
    Authenticator::new(&config, http, KeyPolicy::default())
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    headers
}

#[tokio::test]
async fn a_token_seen_before_is_refused_past_exp_and_before_nbf() {
    let app = TestApp::spawn().await;
    let auth = authenticator(&app);
    let deadline = Deadline::after(Duration::from_secs(10));
    let t0 = u64::try_from(now()).expect("after 1970");
    let token = app
        .token(USER)
        .claim("exp", t0 + 600)
        .claim("nbf", t0)
        .sign();
    let headers = bearer(&token);
    for at in [t0, t0 + 1, t0 + 630, t0 - 30] {
        let caller = auth.authenticate_at(&headers, &GET, &deadline, at).await;
        assert_eq!(caller.expect("within the window").user_id, USER, "at {at}");
    }
    for _ in 0..2 {
        let late = auth
            .authenticate_at(&headers, &GET, &deadline, t0 + 631)
            .await
            .map_err(|r| r.error);
        assert!(matches!(late, Err(AuthError::Expired)), "{late:?}");
    }
    let fresh = authenticator(&app);
    fresh
        .authenticate_at(&headers, &GET, &deadline, t0)
        .await
        .expect("valid now");
    for _ in 0..2 {
        let early = fresh
            .authenticate_at(&headers, &GET, &deadline, t0 - 31)
            .await
            .map_err(|r| r.error);
        assert!(matches!(early, Err(AuthError::NotYetValid)), "{early:?}");
    }
}
