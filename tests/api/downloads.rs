//! Signed download redirects: a provider's `302` to its pre-signed download host (Box's
//! `dl.boxcloud.com`, pointed at the stand-in with `download_host_origin`) is followed by the
//! function without the IdP token or any credential-carrying header, and the caller gets the
//! file; a redirect anywhere else is passed on as before, without its `Location`. Through the
//! handler and the real binary; no token in any log line.

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::json;

use crate::binary::RealBinary;
use crate::helpers::{TestApp, assert_not_logged, idp_event, unique};

/// A deployment whose `box` connection is served by the stand-in, downloads included.
async fn spawn() -> TestApp {
    let connections = json!({
        "github": {"api_base": "{github}"},
        "box": {"api_base": "{github}", "download_host_origin": "{github}"},
    })
    .to_string();
    TestApp::spawn_with(
        &[("IDP_CONNECTIONS", connections.as_str())],
        KeyPolicy::default(),
    )
    .await
}

/// A Box user whose token the stand-in accepts; their Auth0 token and the Box token.
fn box_user(app: &TestApp) -> (String, String) {
    let sub = unique("box|downloads-");
    let token = unique("box-token-");
    app.github.grant(&token, json!({"login": "jane"}));
    app.tenant
        .add_user(standin::profile(&sub, &[("box", "box-user", &token)]));
    (app.token(&sub).sign(), token)
}

#[tokio::test]
async fn a_redirect_to_the_download_host_is_followed_without_the_token() {
    let app = spawn().await;
    let (jwt, token) = box_user(&app);
    let headers = [
        ("cookie", json!("session=caller-cookie")),
        ("if-none-match", json!("\"v1\"")),
    ];
    let file = app
        .invoke(
            &idp_event(
                "GET",
                "/idp/box/2.0/files/42/content",
                "size=4096",
                &jwt,
                &headers,
            )
            .to_string(),
        )
        .await;
    assert_eq!(
        file.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&file.body)
    );
    let expected: Vec<u8> = (0..4096).map(|i| (i % 256) as u8).collect();
    assert!(file.body == expected, "the file, byte for byte");
    assert!(file.header("location").is_none());

    let requests = app.github.requests();
    let api = requests
        .iter()
        .find(|r| r.path_and_query.starts_with("/2.0/files/42/content"))
        .expect("the API call");
    assert_eq!(
        api.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    let download = requests
        .iter()
        .find(|r| r.path_and_query.starts_with("/d/1/42/download"))
        .expect("the download");
    for credential in ["authorization", "cookie", "x-shopify-access-token"] {
        assert!(
            download.header(credential).is_none(),
            "{credential} sent to the download host"
        );
    }
    assert_eq!(download.header("if-none-match"), Some("\"v1\""));
    assert!(
        !download
            .headers
            .iter()
            .any(|(_, v)| v.contains(&token) || v.contains(&jwt))
    );

    // HEAD follows too, and answers without a body.
    let head = app
        .invoke(&idp_event("HEAD", "/idp/box/2.0/files/7/content", "", &jwt, &[]).to_string())
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_not_logged(&[&token, &jwt]);
}

#[tokio::test]
async fn a_redirect_anywhere_else_is_not_followed() {
    let app = spawn().await;
    let (jwt, token) = box_user(&app);
    for to in ["evil.example", "dl.boxcloud.com.evil.example"] {
        let answer = app
            .invoke(
                &idp_event(
                    "GET",
                    "/idp/box/2.0/files/9/content",
                    &format!("to={to}"),
                    &jwt,
                    &[],
                )
                .to_string(),
            )
            .await;
        assert_eq!(answer.status, 302, "{to}");
        assert!(answer.header("location").is_none(), "{to}");
    }
    assert!(
        !app.github
            .requests()
            .iter()
            .any(|r| r.path_and_query.starts_with("/d/1/")),
        "nothing fetched"
    );
    // A connection without download hosts passes Box's redirect on as before.
    let github_user = app.token(&unique("github|downloads-")).sign();
    let github = app
        .invoke(
            &idp_event(
                "GET",
                "/idp/github/2.0/files/9/content",
                "",
                &github_user,
                &[],
            )
            .to_string(),
        )
        .await;
    assert_eq!(github.status, 302);
    assert!(github.header("location").is_none());
    assert_not_logged(&[&token, &jwt]);
}

#[tokio::test]
async fn the_real_binary_follows_a_download_redirect() {
    let app = spawn().await;
    let (jwt, token) = box_user(&app);
    let real = RealBinary::start(&app, &[]).await;
    let file = real
        .invoke(&idp_event(
            "GET",
            "/idp/box/2.0/files/5/content",
            "size=1000",
            &jwt,
            &[],
        ))
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body.len(), 1000);
    let logs = real.logs().await;
    assert!(!logs.contains(&token) && !logs.contains(&jwt));
}
