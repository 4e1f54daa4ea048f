//! DPoP (RFC 9449) at the stand-in tenant, over HTTP as Auth0's SPA SDK with `useDpop: true`
//! meets it: the token endpoint binds the tokens of a sign-in that sends a proof (`cnf.jkt`,
//! `token_type: DPoP`) and refuses a bad proof with `400 invalid_dpop_proof`; a code asked for
//! with `dpop_jkt` and a refresh token issued with a proof go only with a proof by that key; the
//! My Account API takes a bound token only as `DPoP` with a proof for the request.

mod common;

use common::{
    APP, AUDIENCE, CLIENT, ORIGIN, VERIFIER, claims, http, openid_configuration, sign_in,
    spa_tenant,
};
use serde_json::{Value, json};
use standin::{DpopKey, Tenant};

const USER: &str = "github|7";

async fn tenant() -> Tenant {
    spa_tenant(standin::profile(USER, &[("github", "7", "gho_old")])).await
}

fn token_url(tenant: &Tenant) -> String {
    format!("{}/oauth/token", tenant.origin())
}

/// Signs USER in for a refresh token too (with `extra` authorization parameters); returns the
/// code.
async fn code(tenant: &Tenant, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("scope", "openid profile offline_access")];
    params.extend_from_slice(extra);
    let (query, _) = sign_in(tenant, USER, &params).await;
    query["code"].clone()
}

/// A token request with these `proofs` (one `DPoP` header each): status and body.
async fn token_request(tenant: &Tenant, form: &[(&str, &str)], proofs: &[String]) -> (u16, Value) {
    let mut request = http()
        .post(token_url(tenant))
        .header("origin", ORIGIN)
        .form(form);
    for proof in proofs {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.expect("token");
    let status = response.status().as_u16();
    if status == 400 {
        // A refusal reaches the page: it carries CORS like any answer of the sign-in side.
        assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    }
    (status, response.json().await.expect("json"))
}

async fn exchange(tenant: &Tenant, code: &str, proofs: &[String]) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", APP),
    ];
    token_request(tenant, &form, proofs).await
}

async fn refresh(tenant: &Tenant, refresh_token: &str, proofs: &[String]) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT),
        ("refresh_token", refresh_token),
    ];
    token_request(tenant, &form, proofs).await
}

#[tokio::test]
async fn a_sign_in_with_a_proof_gets_tokens_bound_to_its_key_and_refreshes_with_it() {
    let tenant = tenant().await;
    let key = DpopKey::generate();
    let proof = || key.proof("POST", &token_url(&tenant), None);

    let code = code(&tenant, &[]).await;
    let (status, tokens) = exchange(&tenant, &code, &[proof()]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access = claims(tokens["access_token"].as_str().unwrap(), AUDIENCE, &tenant);
    assert_eq!(access["cnf"], json!({"jkt": key.jkt()}));
    assert_eq!(access["sub"], USER);
    // The ID token is not an access token: no binding there.
    let id = claims(tokens["id_token"].as_str().unwrap(), CLIENT, &tenant);
    assert!(id.get("cnf").is_none());

    // The refresh token is bound to the key (RFC 9449 §5): refreshed with its proof only.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&tenant, refresh_token, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let other = DpopKey::generate();
    let (status, body) = refresh(
        &tenant,
        refresh_token,
        &[other.proof("POST", &token_url(&tenant), None)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, renewed) = refresh(&tenant, refresh_token, &[proof()]).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["token_type"], "DPoP");
    let access = claims(renewed["access_token"].as_str().unwrap(), AUDIENCE, &tenant);
    assert_eq!(access["cnf"]["jkt"], key.jkt());
    // The rotated refresh token stays bound.
    let rotated = renewed["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&tenant, rotated, &[]).await;
    assert_eq!(status, 400);
    let (status, _) = refresh(&tenant, rotated, &[proof()]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_a_proof_tokens_stay_bearer_tokens() {
    let tenant = tenant().await;
    let code = code(&tenant, &[]).await;
    let (status, tokens) = exchange(&tenant, &code, &[]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = claims(tokens["access_token"].as_str().unwrap(), AUDIENCE, &tenant);
    assert!(access.get("cnf").is_none());
    // An unbound refresh token may be refreshed with or without a proof; with one, the new
    // access token is bound.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (status, plain) = refresh(&tenant, refresh_token, &[]).await;
    assert_eq!(
        (status, plain["token_type"].as_str()),
        (200, Some("Bearer"))
    );
    let key = DpopKey::generate();
    let (status, bound) = refresh(
        &tenant,
        refresh_token,
        &[key.proof("POST", &token_url(&tenant), None)],
    )
    .await;
    assert_eq!((status, bound["token_type"].as_str()), (200, Some("DPoP")));
    let access = claims(bound["access_token"].as_str().unwrap(), AUDIENCE, &tenant);
    assert_eq!(access["cnf"]["jkt"], key.jkt());
}

#[tokio::test]
async fn the_token_endpoint_refuses_each_bad_proof() {
    let tenant = tenant().await;
    let key = DpopKey::generate();
    let url = token_url(&tenant);
    let base = || key.proof_builder("POST", &url, None);
    let now = standin::now();
    let replayed = base().sign();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("typ JWT", vec![base().header("typ", "JWT").sign()]),
        ("no typ", vec![base().without_header("typ").sign()]),
        ("HS256", vec![base().hs256(b"a shared secret").sign()]),
        ("alg none", vec![base().unsigned().sign()]),
        ("private key in jwk", vec![base().with_private_key().sign()]),
        ("no jwk", vec![base().without_header("jwk").sign()]),
        (
            "another key's signature",
            vec![base().signed_by(&DpopKey::generate()).sign()],
        ),
        ("htm GET", vec![base().claim("htm", "GET").sign()]),
        (
            "htu another path",
            vec![
                base()
                    .claim("htu", format!("{}/authorize", tenant.origin()))
                    .sign(),
            ],
        ),
        (
            "htu another host",
            vec![
                base()
                    .claim("htu", "https://tenant.example/oauth/token")
                    .sign(),
            ],
        ),
        ("old iat", vec![base().iat(now - 600).sign()]),
        ("future iat", vec![base().iat(now + 600).sign()]),
        ("no jti", vec![base().without("jti").sign()]),
        ("no iat", vec![base().without("iat").sign()]),
        ("two DPoP headers", vec![base().sign(), base().sign()]),
        ("not a JWS", vec!["not-a-proof".to_owned()]),
    ];
    for (name, proofs) in cases {
        let code = code(&tenant, &[]).await;
        let (status, body) = exchange(&tenant, &code, &proofs).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{name}");
        assert!(body["error_description"].is_string(), "{name}");
    }
    // A jti is used once.
    let code1 = code(&tenant, &[]).await;
    let (status, _) = exchange(&tenant, &code1, std::slice::from_ref(&replayed)).await;
    assert_eq!(status, 200);
    let code2 = code(&tenant, &[]).await;
    let (status, body) = exchange(&tenant, &code2, &[replayed]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // A query on htu is ignored (RFC 9449 §4.3).
    let code3 = code(&tenant, &[]).await;
    let proof = base().claim("htu", format!("{url}?x=1")).sign();
    let (status, body) = exchange(&tenant, &code3, &[proof]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")));
}

#[tokio::test]
async fn a_code_asked_for_with_dpop_jkt_goes_only_with_that_keys_proof() {
    let tenant = tenant().await;
    let key = DpopKey::generate();
    let jkt = key.jkt();
    let bound = [("dpop_jkt", jkt.as_str())];

    let code1 = code(&tenant, &bound).await;
    let (status, body) = exchange(&tenant, &code1, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let code2 = code(&tenant, &bound).await;
    let other = DpopKey::generate().proof("POST", &token_url(&tenant), None);
    let (status, body) = exchange(&tenant, &code2, &[other]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let code3 = code(&tenant, &bound).await;
    let proof = key.proof("POST", &token_url(&tenant), None);
    let (status, tokens) = exchange(&tenant, &code3, &[proof]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
}

#[tokio::test]
async fn discovery_and_cors_speak_dpop() {
    let tenant = tenant().await;
    let discovery = openid_configuration(&tenant).await;
    let algs = discovery["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")));
    assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")));
    let preflight = http()
        .request(reqwest::Method::OPTIONS, token_url(&tenant))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,dpop")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.split(", ").any(|h| h == "dpop"), "{allowed}");
}

/// `GET` the My Account API's account list with `authorization` and `proofs`.
async fn list_accounts(
    tenant: &Tenant,
    authorization: &str,
    proofs: &[String],
) -> reqwest::Response {
    let mut request = http()
        .get(format!(
            "{}/me/v1/connected-accounts/accounts?connection=google-oauth2",
            tenant.origin()
        ))
        .header("authorization", authorization);
    for proof in proofs {
        request = request.header("dpop", proof);
    }
    request.send().await.expect("list")
}

#[tokio::test]
async fn the_my_account_api_takes_a_bound_token_only_with_its_proof() {
    let tenant = tenant().await;
    let key = DpopKey::generate();
    let me = tenant.my_account_audience();
    let bound = tenant
        .token(&me, USER)
        .claim("scope", "read:me:connected_accounts")
        .bound_to(&key.jkt())
        .sign();
    let url = format!("{}/me/v1/connected-accounts/accounts", tenant.origin());
    let dpop = format!("DPoP {bound}");

    // The request's query (`?connection=…`) is no part of `htu`.
    let ok = list_accounts(&tenant, &dpop, &[key.proof("GET", &url, Some(&bound))]).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"accounts": []}));

    // Each defect is refused with the DPoP challenge.
    let base = || key.proof_builder("GET", &url, Some(&bound));
    let replayed = base().sign();
    assert_eq!(
        list_accounts(&tenant, &dpop, std::slice::from_ref(&replayed))
            .await
            .status(),
        200
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no proof", vec![]),
        ("replayed", vec![replayed]),
        ("wrong ath", vec![base().ath_of("another token").sign()]),
        ("no ath", vec![base().without("ath").sign()]),
        ("htm", vec![base().claim("htm", "DELETE").sign()]),
        (
            "htu",
            vec![
                base()
                    .claim("htu", format!("{}/me/v1/other", tenant.origin()))
                    .sign(),
            ],
        ),
        (
            "another key",
            vec![
                DpopKey::generate()
                    .proof_builder("GET", &url, Some(&bound))
                    .sign(),
            ],
        ),
        ("two proofs", vec![base().sign(), base().sign()]),
        ("HS256", vec![base().hs256(b"secret").sign()]),
    ];
    for (name, proofs) in cases {
        let refused = list_accounts(&tenant, &dpop, &proofs).await;
        assert_eq!(refused.status(), 401, "{name}");
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{name}: {challenge}"
        );
    }
    // A bound token as a bearer token, an unbound one as DPoP: invalid tokens.
    let bearer = list_accounts(&tenant, &format!("Bearer {bound}"), &[]).await;
    assert_eq!(bearer.status(), 401);
    assert_eq!(
        bearer.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let unbound = tenant
        .token(&me, USER)
        .claim("scope", "read:me:connected_accounts")
        .sign();
    let proof = key.proof("GET", &url, Some(&unbound));
    let refused = list_accounts(&tenant, &format!("DPoP {unbound}"), &[proof]).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "DPoP error=\"invalid_token\""
    );
    assert_eq!(
        list_accounts(&tenant, &format!("Bearer {unbound}"), &[])
            .await
            .status(),
        200
    );
}
