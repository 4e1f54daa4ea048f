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
    spawn_with(&[]).await
}

/// As [`spawn`], with `extra` variables.
pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
    let connections = json!({
        "github": {"api_base": "{github}"},
        "box": {"api_base": "{github}", "download_host_origin": "{github}"},
    })
    .to_string();
    let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars, KeyPolicy::default()).await
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

/// A deployment whose `dropbox` connection and its content API are served by the stand-in, the
/// content API under `/content` so that its calls can be told from the API's.
async fn spawn_dropbox() -> TestApp {
    let connections = json!({
        "dropbox": {
            "api_base": "{github}",
            "content_api": {
                "api_base": "{github}/content",
                "allow": ["GET /2/files/download", "GET /2/files/get_thumbnail_v2 needs read:files"],
            },
        },
    })
    .to_string();
    TestApp::spawn_with(
        &[("IDP_CONNECTIONS", connections.as_str())],
        KeyPolicy::default(),
    )
    .await
}

#[tokio::test]
async fn a_content_api_takes_the_calls_its_own_rules_allow() {
    let app = spawn_dropbox().await;
    let sub = unique("dropbox|content-");
    let token = unique("sl.dropbox-");
    app.github.grant(&token, json!({"account_id": "dbid:1"}));
    app.tenant
        .add_user(standin::profile(&sub, &[("dropbox", "dbid:1", &token)]));
    let jwt = app.token(&sub).sign();
    let arg = "arg=%7B%22path%22%3A%22%2Freport.pdf%22%7D";
    let call = |method: &str, path: &str, query: &str| {
        idp_event(method, path, query, &jwt, &[]).to_string()
    };

    // A content call goes to the content API, with the connection's token.
    let download = app
        .invoke(&call("GET", "/idp/dropbox/2/files/download", arg))
        .await;
    assert_eq!(
        download.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&download.body)
    );
    let upstream = app
        .github
        .requests()
        .into_iter()
        .find(|r| r.path_and_query.starts_with("/content/2/files/download?"))
        .expect("the call reached the content API");
    assert_eq!(
        upstream.path_and_query,
        format!("/content/2/files/download?{arg}")
    );
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    // Every other call is the API's, under the API's rules.
    let account = app
        .invoke(&call(
            "POST",
            "/idp/dropbox/2/users/get_current_account",
            "",
        ))
        .await;
    assert_eq!(account.status, 200);
    assert!(
        app.github
            .requests()
            .iter()
            .any(|r| r.path_and_query == "/2/users/get_current_account")
    );
    // Allowed by neither: refused before any call.
    for (method, path) in [
        ("GET", "/idp/dropbox/2/users/get_current_account"),
        ("POST", "/idp/dropbox/2/files/upload"),
    ] {
        let refused = app.invoke(&call(method, path, "")).await;
        assert_eq!(refused.status, 403, "{method} {path}");
        assert_eq!(refused.json()["error"], "forbidden_path");
    }
    // A content rule's needs are its own.
    let thumbnail = app
        .invoke(&call("GET", "/idp/dropbox/2/files/get_thumbnail_v2", arg))
        .await;
    assert_eq!(thumbnail.status, 403);
    assert_eq!(thumbnail.json()["error"], "insufficient_scope");
    assert_not_logged(&[&token]);
}
