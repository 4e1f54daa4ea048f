//! Connections served by the provider catalogue's entry of their strategy: a name the table does
//! not hold is served by the entry of the identity's `provider`, learned once; a configured
//! enterprise connection takes its parameters.

use std::time::Duration;

use serde_json::{Value, json};
use standin::{Flavor, Idp, M2M_CLIENT_ID};

use crate::binary::RealBinary;
use crate::helpers::{
    AUDIENCE, TestApp, assert_not_logged, event_at, event_text, github_token, idp_event,
};

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

/// A deployment with a Token Vault connection of its own name mapped to the Google entry
/// (`corp-google`), a Microsoft Entra enterprise connection (`acme-entra`), and GitHub; the
/// stand-in Google behind the Token Vault one.
async fn mapped_deployment() -> (TestApp, Idp) {
    let google = Idp::start_as(Flavor::Google)
        .await
        .expect("stand-in Google starts");
    let connections = json!({
        "github": {"api_base": "{github}"},
        "acme-entra": {"strategy": "waad", "tenant": "contoso.onmicrosoft.com", "api_base": "{github}"},
        "corp-google": {"strategy": "google-oauth2", "token_source": "token_vault",
                        "api_base": google.origin()},
    })
    .to_string();
    let app = TestApp::spawn_with(
        &[("IDP_CONNECTIONS", connections.as_str())],
        Default::default(),
    )
    .await;
    app.tenant
        .enable_token_vault("corp-google", &google, Duration::from_secs(3600));
    app.tenant
        .add_token_vault_client(M2M_CLIENT_ID, None, AUDIENCE);
    (app, google)
}

/// A user with a `corp-github` identity (provider `github`), an `acme-entra` one (provider
/// `waad`) and a Google account connected for Token Vault at `corp-google`; their Auth0 token
/// and the IdP tokens.
fn mapped_user(app: &TestApp, sub: &str) -> (String, Vec<String>) {
    let github = github_token(sub);
    let entra = format!("entra-{github}");
    app.tenant.add_user(json!({
        "user_id": sub,
        "identities": [
            {"provider": "github", "connection": "corp-github", "user_id": "2002",
             "access_token": github, "isSocial": true},
            {"provider": "waad", "connection": "acme-entra", "user_id": "3",
             "access_token": entra, "isSocial": false},
        ],
    }));
    app.github.grant(&github, json!({"login": "corp-octocat"}));
    app.github
        .grant(&entra, json!({"displayName": "Entra user"}));
    let vault =
        app.tenant
            .connect_account(sub, "corp-google", json!({"email": "jane@example.test"}));
    (app.token(sub).sign(), vec![github, entra, vault])
}

#[tokio::test]
async fn a_token_vault_connection_mapped_to_a_strategy_takes_its_entry() {
    let (app, google) = mapped_deployment().await;
    let sub = "github|2003";
    let (jwt, tokens) = mapped_user(&app, sub);
    let reads = app.tenant.user_calls();
    let answer = app
        .send(event_at("/idp/corp-google/oauth2/v3/userinfo", &jwt))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["email"], "jane@example.test");
    assert_eq!(app.tenant.vault_exchanges(), 1);
    assert_eq!(
        app.tenant.user_calls(),
        reads,
        "Token Vault reads no identity"
    );
    let sent = google.requests().pop().expect("a Google call");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {}", tokens[2]).as_str())
    );
    // The Google entry's read-only rules hold for it.
    app.send(post_at("/idp/corp-google/oauth2/v3/userinfo", &jwt))
        .await
        .assert_error(403, "forbidden_path");
    assert_eq!(google.calls(), 1);

    let identities = app.send(event_at("/identities", &jwt)).await.json();
    let vault = identities["token_vault_connections"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(vault, [json!("corp-google")]);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_not_logged(&refs);
}

/// Issue 20 through the real binary: a connection named by the tenant served by its identity's
/// strategy, an enterprise `waad` connection with its tenant, and a Token Vault connection
/// mapped to a strategy, each with its entry's rules; `/identities` says which strategy serves
/// each.
#[tokio::test]
async fn the_real_binary_serves_connections_by_their_strategy() {
    let (app, google) = mapped_deployment().await;
    let sub = "github|2004";
    let (jwt, tokens) = mapped_user(&app, sub);
    let real = RealBinary::start(&app, &[]).await;
    let get = |path: &str| idp_event("GET", path, "", &jwt, &[]);
    for (path, field, expected) in [
        ("/idp/corp-github/user", "login", "corp-octocat"),
        ("/idp/acme-entra/v1.0/me", "displayName", "Entra user"),
        (
            "/idp/corp-google/oauth2/v3/userinfo",
            "email",
            "jane@example.test",
        ),
    ] {
        let answer = real.invoke(&get(path)).await;
        assert_eq!(
            answer.status,
            200,
            "{path}: {:?}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.json()[field], expected, "{path}");
    }
    // The GitHub entry's version header went with the strategy.
    let sent = app.github.requests();
    assert_eq!(sent[0].header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(google.calls(), 1);
    // Each entry's read-only rules: writes are refused before any call.
    for path in [
        "/idp/corp-github/user/repos",
        "/idp/acme-entra/v1.0/me/sendMail",
    ] {
        real.invoke(&idp_event("POST", path, "", &jwt, &[]))
            .await
            .assert_error(403, "forbidden_path");
    }
    assert_eq!(app.github.requests().len(), 2);
    let identities = real.invoke(&get("/identities")).await.json();
    let strategies: Vec<(Value, Value)> = identities["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|i| (i["connection"].clone(), i["strategy"].clone()))
        .collect();
    assert_eq!(
        strategies,
        [
            (json!("corp-github"), json!("github")),
            (json!("acme-entra"), json!("waad"))
        ]
    );
    assert_eq!(
        identities["token_vault_connections"],
        json!(["corp-google"])
    );
    let logs = real.logs().await;
    for token in tokens.iter().chain([&jwt]) {
        assert!(!logs.contains(token.as_str()), "a token reached the logs");
    }
}
