//! Connections served by the provider catalogue's entry of their strategy: a name the table does
//! not hold is served by the entry of the identity's `provider`, learned once; a configured
//! enterprise connection takes its parameters.

use serde_json::json;

use crate::helpers::{TestApp, assert_not_logged, event_at, event_text, github_token};

/// A v2 `POST` event at `raw_path`.
fn post_at(raw_path: &str, token: &str) -> lambda_http::Request {
    let text = event_text("http-api-identities.json")
        .replace("REPLACE_WITH_AN_AUTH0_ACCESS_TOKEN", token)
        .replace("\"/identities\"", &format!("{raw_path:?}"))
        .replace("\"method\": \"GET\"", "\"method\": \"POST\"");
    lambda_http::request::from_str(&text).expect("event")
}

const USER: &str = "github|2002";

/// The stand-in tenant's user `sub` with a GitHub identity on connection `connection`.
fn add_user(app: &TestApp, sub: &str, connection: &str) -> String {
    let token = github_token(sub);
    app.tenant.add_user(json!({
        "user_id": sub,
        "identities": [{"provider": "github", "connection": connection, "user_id": "2002",
                        "access_token": token, "isSocial": true}],
    }));
    app.github
        .grant(&token, json!({"login": "corp-octocat", "for": sub}));
    token
}

#[tokio::test]
async fn a_connection_of_another_name_is_served_by_its_identitys_strategy() {
    let app = TestApp::spawn().await;
    let idp_token = add_user(&app, USER, "corp-github");
    let jwt = app.token(USER).sign();

    let before = app.tenant.user_calls();
    let first = app.send(event_at("/idp/corp-github/user", &jwt)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The profile read to learn the strategy also gives the token: one read, not two.
    assert_eq!(app.tenant.user_calls(), before + 1);
    assert_eq!(first.json()["login"], "corp-octocat");
    let sent = &app.github.requests()[0];
    // The GitHub entry's headers and the overridden base (the stand-in) came with the strategy.
    assert_eq!(sent.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {idp_token}").as_str())
    );
    // The strategy's read-only allow rules hold for it.
    let write = app.send(post_at("/idp/corp-github/user/repos", &jwt)).await;
    write.assert_error(403, "forbidden_path");

    // Learned once: a second call reads no profile to find the strategy again.
    let reads = app.tenant.user_calls();
    let second = app.send(event_at("/idp/corp-github/user", &jwt)).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(app.tenant.user_calls(), reads);

    let identities = app.send(event_at("/identities", &jwt)).await;
    let view = &identities.json()["identities"][0];
    assert_eq!(view["connection"], "corp-github");
    assert_eq!(view["strategy"], "github");
    assert_eq!(view["callable"], true);
    assert_not_logged(&[&idp_token, &jwt]);
}

#[tokio::test]
async fn a_connection_whose_strategy_has_no_entry_is_unknown() {
    let app = TestApp::spawn().await;
    let sub = "oauth2|7";
    app.tenant.add_user(json!({
        "user_id": sub,
        "identities": [{"provider": "oauth2", "connection": "my-custom", "user_id": "7",
                        "access_token": "custom-token", "isSocial": true}],
    }));
    let jwt = app.token(sub).sign();
    app.send(event_at("/idp/my-custom/me", &jwt))
        .await
        .assert_error(404, "unknown_connection");
    app.send(event_at("/idp/never-linked/me", &jwt))
        .await
        .assert_error(404, "unknown_connection");
    assert!(app.github.requests().is_empty());
}

#[tokio::test]
async fn an_enterprise_connection_takes_its_tenant_and_nothing_else() {
    let app = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            r#"{"github": {"api_base": "{github}"},
                "acme-entra": {"strategy": "waad", "tenant": "contoso.onmicrosoft.com", "api_base": "{github}"}}"#,
        )],
        Default::default(),
    )
    .await;
    let sub = "waad|contoso|3";
    let token = github_token(sub);
    app.tenant.add_user(json!({
        "user_id": sub,
        "identities": [{"provider": "waad", "connection": "acme-entra", "user_id": "3",
                        "access_token": token, "isSocial": false}],
    }));
    app.github
        .grant(&token, json!({"displayName": "Entra user"}));
    let jwt = app.token(sub).sign();
    let response = app.send(event_at("/idp/acme-entra/v1.0/me", &jwt)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["displayName"], "Entra user");
    let identities = app.send(event_at("/identities", &jwt)).await;
    let view = &identities.json()["identities"][0];
    assert_eq!(view["strategy"], "waad");
    assert_eq!(view["callable"], true);
}
