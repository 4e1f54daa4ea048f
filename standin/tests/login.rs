//! The stand-in tenant's sign-in side, checked as Auth0 (and its SPA SDK) would: PKCE verified,
//! redirect and logout URLs against their allow-lists, codes single-use, silent sign-in only
//! with a session, a re-consent login storing a fresh IdP token.

mod common;

use common::{
    APP, AUDIENCE, CLIENT, ORIGIN, VERIFIER, authorize_params, claims, http, openid_configuration,
    sign_in, spa_tenant,
};
use serde_json::Value;
use standin::Tenant;

const USER: &str = "github|7";

async fn tenant() -> Tenant {
    spa_tenant(standin::profile(USER, &[("github", "7", "gho_old")])).await
}

async fn exchange(tenant: &Tenant, code: &str, verifier: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/oauth/token", tenant.origin()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", APP),
        ])
        .send()
        .await
        .expect("token");
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn code_flow_with_pkce_issues_an_id_token_and_an_access_token_for_the_api() {
    let tenant = tenant().await;
    let page = http()
        .get(format!("{}/authorize", tenant.origin()))
        .query(&authorize_params(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("value=\"github|7\""));

    let (query, _) = sign_in(&tenant, USER, &[]).await;
    assert_eq!(query["state"], "st4te");
    let (status, tokens) = exchange(&tenant, &query["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap(), CLIENT, &tenant);
    assert_eq!(
        (id["sub"].as_str(), id["nonce"].as_str()),
        (Some(USER), Some("n0nce"))
    );
    let access = claims(tokens["access_token"].as_str().unwrap(), AUDIENCE, &tenant);
    assert_eq!(access["azp"], CLIENT);

    let discovery = openid_configuration(&tenant).await;
    assert_eq!(discovery["issuer"], tenant.issuer());
    assert_eq!(discovery["code_challenge_methods_supported"][0], "S256");
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused_and_spends_the_code() {
    let tenant = tenant().await;
    let (query, _) = sign_in(&tenant, USER, &[]).await;
    let (status, body) = exchange(&tenant, &query["code"], "not-the-verifier").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    let (status, _) = exchange(&tenant, &query["code"], VERIFIER).await;
    assert_eq!(status, 403, "a code is single-use");
}

#[tokio::test]
async fn redirect_uris_and_audiences_outside_the_allow_lists_are_refused() {
    let tenant = tenant().await;
    let response = http()
        .get(format!("{}/authorize", tenant.origin()))
        .query(&authorize_params(&[(
            "redirect_uri",
            "http://127.0.0.1:10/",
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.headers().get("location").is_none(),
        "never redirected"
    );

    let response = http()
        .get(format!("{}/authorize", tenant.origin()))
        .query(&authorize_params(&[("audience", "https://other.example")]))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(APP) && location.contains("error=access_denied"),
        "{location}"
    );

    let response = http()
        .get(format!("{}/authorize", tenant.origin()))
        .query(&authorize_params(&[("code_challenge_method", "plain")]))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("error=invalid_request"), "{location}");
}

#[tokio::test]
async fn silent_sign_in_needs_the_session_and_logout_ends_it() {
    let tenant = tenant().await;
    let silent = [("prompt", "none"), ("response_mode", "web_message")];
    let ask = |cookie: Option<String>| {
        let mut request = http()
            .get(format!("{}/authorize", tenant.origin()))
            .query(&authorize_params(&silent));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let page = ask(None).await;
    assert!(
        page.contains("login_required") && page.contains("\"http://127.0.0.1:9\""),
        "{page}"
    );
    let (_, cookie) = sign_in(&tenant, USER, &[]).await;
    let page = ask(Some(cookie.clone())).await;
    assert!(
        page.contains("\"code\"") && page.contains("st4te"),
        "{page}"
    );

    let logout = |return_to: &str| {
        http()
            .get(format!("{}/v2/logout", tenant.origin()))
            .query(&[("client_id", CLIENT), ("returnTo", return_to)])
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(logout("http://127.0.0.1:10/").await.unwrap().status(), 400);
    let response = logout(APP).await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], APP);
    assert!(ask(Some(cookie)).await.contains("login_required"));
}

#[tokio::test]
async fn signing_in_with_a_connection_stores_a_fresh_idp_token() {
    let tenant = tenant().await;
    tenant.on_connection_login("github", |id| format!("gho_fresh_for_{id}"));
    sign_in(&tenant, USER, &[]).await;
    let stored = |t: &Tenant| t.user(USER).unwrap()["identities"][0]["access_token"].clone();
    assert_eq!(
        stored(&tenant),
        "gho_old",
        "a plain sign-in keeps the stored token"
    );
    sign_in(&tenant, USER, &[("connection", "github")]).await;
    assert_eq!(stored(&tenant), "gho_fresh_for_7");
}

#[tokio::test]
async fn the_login_page_offers_only_the_account_login_hint_names() {
    let tenant = tenant().await;
    let mut other = standin::profile("github|8", &[("github", "8", "gho_other")]);
    other["email"] = "other@example.test".into();
    other["app_metadata"] = serde_json::json!({"demo_note": "a <note>"});
    tenant.add_user(other);
    let page = |extra: &'static [(&'static str, &'static str)]| {
        let url = format!("{}/authorize", tenant.origin());
        async move {
            let response = http()
                .get(url)
                .query(&authorize_params(extra))
                .send()
                .await
                .expect("authorize");
            response.text().await.expect("page")
        }
    };
    let users = |html: &str| {
        ["github|7", "github|8"]
            .into_iter()
            .filter(|id| html.contains(&format!("value=\"{id}\"")))
            .collect::<Vec<_>>()
    };
    let all = page(&[]).await;
    assert_eq!(users(&all), ["github|7", "github|8"]);
    assert!(
        all.contains("a &lt;note&gt;"),
        "the demo note, escaped: {all}"
    );
    let hinted = page(&[
        ("connection", "github"),
        ("login_hint", "other@example.test"),
    ])
    .await;
    assert_eq!(users(&hinted), ["github|8"]);
    assert_eq!(
        users(&page(&[("login_hint", "github|7")]).await),
        ["github|7"]
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_cors_for_allowed_web_origins_only() {
    let tenant = tenant().await;
    let preflight = |origin: &'static str| {
        http()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/oauth/token", tenant.origin()),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight(ORIGIN).await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    let refused = preflight("http://127.0.0.1:10").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
