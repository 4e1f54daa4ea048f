//! DPoP-bound caller tokens (RFC 9449): a bound token is accepted only with a fresh proof for
//! this very request, signed with the key it is bound to; every defect of a proof is a `401
//! invalid_dpop_proof` and nothing reaches the IdP; a bound token is never accepted as a bearer
//! token; `DPOP=required` refuses bearer tokens and `DPOP=off` the `DPoP` scheme. Through the
//! handler and the real binary.

use auth0_idp_proxy::auth::dpop::ALGS;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::DpopKey;

use crate::binary::RealBinary;
use crate::helpers::{LambdaAnswer, PLACEHOLDER, TestApp, event_text, unique};

const USER: &str = "github|1001";

/// The URL a caller of `event` (a v2 event) used, as its proof's `htu` names it.
pub fn url_of(event: &Value) -> String {
    format!(
        "https://{}{}",
        event["requestContext"]["domainName"]
            .as_str()
            .unwrap_or_default(),
        event["rawPath"].as_str().unwrap_or_default()
    )
}

/// `GET /idp/github/user` with `Authorization: {scheme} {token}` and the `DPoP` proofs given.
pub fn event(scheme: &str, token: &str, proofs: &[&str]) -> Value {
    let mut event: Value = serde_json::from_str(
        &event_text("http-api-idp-github-user.json").replace(PLACEHOLDER, token),
    )
    .expect("event");
    event["headers"]["authorization"] = json!(format!("{scheme} {token}"));
    if !proofs.is_empty() {
        // Payload v2 joins repeated fields with commas, as API Gateway does.
        event["headers"]["dpop"] = json!(proofs.join(","));
    }
    event
}

/// The REST API (v1) event of `GET /prod/idp/github/user` with a DPoP token and proof.
fn rest_event(token: &str, proof: &str) -> Value {
    let mut event: Value = serde_json::from_str(
        &event_text("rest-api-idp-github-user.json").replace(PLACEHOLDER, token),
    )
    .expect("event");
    for (name, value) in [
        ("Authorization", format!("DPoP {token}")),
        ("DPoP", proof.to_owned()),
    ] {
        event["headers"][name] = json!(value);
        event["multiValueHeaders"][name] = json!([value]);
    }
    event
}

/// A deployment with `DPOP=mode`.
async fn spawn(mode: &str) -> TestApp {
    TestApp::spawn_with(&[("DPOP", mode)], KeyPolicy::default()).await
}

/// An access token bound to `key`.
fn bound(app: &TestApp, key: &DpopKey) -> String {
    app.token(USER).bound_to(&key.jkt()).sign()
}

/// Asserts a `401 invalid_dpop_proof` whose challenge says so, and that the IdP was not called.
fn assert_bad_proof(app: &TestApp, answer: &LambdaAnswer, calls: usize, what: &str) {
    assert_eq!(
        answer.status,
        401,
        "{what}: {:?}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["error"], "invalid_dpop_proof", "{what}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(&format!(
            r#"DPoP error="invalid_dpop_proof", algs="{ALGS}""#
        )),
        "{what}: {challenge}"
    );
    assert_eq!(app.github.calls(), calls, "{what}: nothing reached the IdP");
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_served_and_the_proof_is_checked_every_time() {
    let app = spawn("allowed").await;
    let key = DpopKey::generate();
    let token = bound(&app, &key);
    let url = url_of(&event("DPoP", &token, &[]));
    for _ in 0..3 {
        // A new proof each time: the verified-token cache spares the token's signature only.
        let proof = key.proof("GET", &url, Some(&token));
        let answer = app
            .invoke(&event("DPoP", &token, &[&proof]).to_string())
            .await;
        assert_eq!(
            answer.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    // Seen before, the token is still refused without a proof, or with the same one again.
    let calls = app.github.calls();
    let answer = app.invoke(&event("DPoP", &token, &[]).to_string()).await;
    assert_bad_proof(&app, &answer, calls, "no proof");
    let proof = key.proof("GET", &url, Some(&token));
    let first = app
        .invoke(&event("DPoP", &token, &[&proof]).to_string())
        .await;
    assert_eq!(first.status, 200);
    let calls = app.github.calls();
    let again = app
        .invoke(&event("DPoP", &token, &[&proof]).to_string())
        .await;
    assert_bad_proof(&app, &again, calls, "a replayed jti");
}

/// Every kind of defective request for the bound `token` of `key` (`other` another key), each
/// with the error it must get: the proof's defects RFC 9449 §4.3 lists, two proofs, and the token
/// sent as a bearer token.
fn defective_requests(
    key: &DpopKey,
    other: &DpopKey,
    token: &str,
) -> Vec<(&'static str, Value, &'static str)> {
    let url = url_of(&event("DPoP", token, &[]));
    let now = standin::now();
    let proof = |b: standin::DpopProofBuilder| b.sign();
    let base = || key.proof_builder("GET", &url, Some(token));
    let at = |htu: &str| proof(key.proof_builder("GET", htu, Some(token)));
    let proofs: Vec<(&str, String)> = vec![
        (
            "wrong htm",
            proof(key.proof_builder("POST", &url, Some(token))),
        ),
        (
            "htu on another host",
            at(&url.replace("abc123defg", "evil")),
        ),
        ("htu on another path", at(&url.replace("/user", "/users"))),
        (
            "htu with a stage the caller did not use",
            at(&url.replace("/idp/", "/prod/idp/")),
        ),
        ("an old iat", proof(base().iat(now - 120))),
        ("a future iat", proof(base().iat(now + 120))),
        ("no iat", proof(base().without("iat"))),
        ("wrong ath", proof(base().ath_of("another-token"))),
        ("no ath", proof(base().without("ath"))),
        ("no jti", proof(base().without("jti"))),
        (
            "a key the token is not bound to",
            other.proof("GET", &url, Some(token)),
        ),
        (
            "signed by another key than its jwk",
            proof(base().signed_by(other)),
        ),
        (
            "an HMAC proof",
            proof(base().hs256(b"a shared secret of some length")),
        ),
        ("unsigned", proof(base().unsigned())),
        ("a private key in jwk", proof(base().with_private_key())),
        ("no typ", proof(base().without_header("typ"))),
        ("a wrong typ", proof(base().header("typ", "JWT"))),
        ("no jwk", proof(base().without_header("jwk"))),
        ("not a JWS", "not-a-proof".to_owned()),
    ];
    let mut requests: Vec<(&'static str, Value, &'static str)> = proofs
        .into_iter()
        .map(|(what, proof)| (what, event("DPoP", token, &[&proof]), "invalid_dpop_proof"))
        .collect();
    let (a, b) = (
        key.proof("GET", &url, Some(token)),
        key.proof("GET", &url, Some(token)),
    );
    requests.push((
        "two DPoP headers",
        event("DPoP", token, &[&a, &b]),
        "invalid_dpop_proof",
    ));
    let proof = key.proof("GET", &url, Some(token));
    requests.push((
        "a bound token sent as bearer",
        event("Bearer", token, &[&proof]),
        "invalid_token",
    ));
    requests
}

/// Asserts that `answer`, to a request of [`defective_requests`], is the 401 `error` and that
/// the IdP was not called.
fn assert_refused(app: &TestApp, answer: &LambdaAnswer, calls: usize, what: &str, error: &str) {
    if error == "invalid_dpop_proof" {
        return assert_bad_proof(app, answer, calls, what);
    }
    assert_eq!(answer.status, 401, "{what}");
    assert_eq!(answer.json()["error"], error, "{what}");
    assert_eq!(app.github.calls(), calls, "{what}: nothing reached the IdP");
}

#[tokio::test]
async fn every_defect_of_a_proof_is_refused_before_anything_is_called() {
    let app = spawn("allowed").await;
    let (key, other) = (DpopKey::generate(), DpopKey::generate());
    let token = bound(&app, &key);
    for (what, event, error) in defective_requests(&key, &other, &token) {
        let calls = app.github.calls();
        let answer = app.invoke(&event.to_string()).await;
        assert_refused(&app, &answer, calls, what, error);
    }
}

#[tokio::test]
async fn the_real_binary_refuses_every_defect_of_a_proof() {
    let app = spawn("allowed").await;
    let binary = RealBinary::start(&app, &[]).await;
    let (key, other) = (DpopKey::generate(), DpopKey::generate());
    let token = bound(&app, &key);
    for (what, event, error) in defective_requests(&key, &other, &token) {
        let calls = app.github.calls();
        let answer = binary.invoke(&event).await;
        assert_refused(&app, &answer, calls, what, error);
    }
    let url = url_of(&event("DPoP", &token, &[]));
    let good = key.proof("GET", &url, Some(&token));
    let answer = binary.invoke(&event("DPoP", &token, &[&good])).await;
    assert_eq!(answer.status, 200, "and a good proof passes");
    let logs = binary.logs().await;
    assert!(!logs.contains(&token) && !logs.contains(&good));
}

#[tokio::test]
async fn a_bound_token_is_never_a_bearer_token_and_the_modes_hold() {
    let app = spawn("allowed").await;
    let key = DpopKey::generate();
    let token = bound(&app, &key);
    let calls = app.github.calls();
    // No downgrade: a stolen bound token sent as bearer is refused, proof or not.
    for proofs in [vec![], vec![key.proof("GET", "https://x/", Some(&token))]] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let answer = app
            .invoke(&event("Bearer", &token, &proofs).to_string())
            .await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json()["error"], "invalid_token");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(format!(r#"Bearer, DPoP error="invalid_token", algs="{ALGS}""#).as_str())
        );
    }
    // An unbound token with the DPoP scheme.
    let plain = app.token(USER).sign();
    let answer = app.invoke(&event("DPoP", &plain, &[]).to_string()).await;
    assert_eq!(answer.json()["error"], "invalid_token");
    // An unbound token as bearer: as always.
    let answer = app.invoke(&event("Bearer", &plain, &[]).to_string()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(app.github.calls(), calls + 1);

    let required = spawn("required").await;
    let answer = required
        .invoke(&event("Bearer", &required.token(USER).sign(), &[]).to_string())
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(format!(r#"DPoP error="invalid_token", algs="{ALGS}""#).as_str()),
        "required: only the DPoP challenge"
    );
    let key = DpopKey::generate();
    let token = bound(&required, &key);
    let url = url_of(&event("DPoP", &token, &[]));
    let proof = key.proof("GET", &url, Some(&token));
    let answer = required
        .invoke(&event("DPoP", &token, &[&proof]).to_string())
        .await;
    assert_eq!(answer.status, 200);

    let off = spawn("off").await;
    let key = DpopKey::generate();
    let token = bound(&off, &key);
    let proof = key.proof("GET", &url, Some(&token));
    let answer = off
        .invoke(&event("DPoP", &token, &[&proof]).to_string())
        .await;
    assert_eq!(answer.status, 401, "off: the DPoP scheme is unknown");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
}

#[tokio::test]
async fn the_real_binary_checks_proofs_and_refuses_a_jti_replayed_in_another_environment() {
    // Two execution environments on one token table (the replay check needs no sealing keys).
    let table = unique("dpop-");
    crate::fleet::create_table(&table).await;
    let app = TestApp::spawn_with(
        &[("DPOP", "allowed"), ("TOKEN_TABLE", table.as_str())],
        KeyPolicy::default(),
    )
    .await;
    let key = DpopKey::generate();
    let token = bound(&app, &key);
    let endpoint = crate::fleet::table_moto().endpoint().to_owned();
    let vars = [("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())];
    let one = RealBinary::start(&app, &vars).await;
    let two = RealBinary::start(&app, &vars).await;
    // A REST API's event: the proof names the stage the caller used.
    let url = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod/idp/github/user";
    let proof = key.proof("GET", url, Some(&token));
    let answer = one.invoke(&rest_event(&token, &proof)).await;
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    let calls = app.github.calls();
    let replayed = two.invoke(&rest_event(&token, &proof)).await;
    assert_bad_proof(
        &app,
        &replayed,
        calls,
        "a jti replayed in another environment",
    );
    let without_stage = key.proof("GET", &url.replace("/prod/", "/"), Some(&token));
    let answer = two.invoke(&rest_event(&token, &without_stage)).await;
    assert_bad_proof(&app, &answer, calls, "htu without the stage");
    let logs = format!("{}{}", one.logs().await, two.logs().await);
    assert!(!logs.contains(&token) && !logs.contains(&proof));
}
