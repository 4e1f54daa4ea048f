//! The operator's kill switch: a user or a connection stopped by editing one secret, no deploy;
//! answered 403 `user_blocked` / `connection_blocked` before any upstream call, the same with
//! and without the fleet table; a list is used for 30 s, the last one kept while the secret
//! cannot be read.

use std::time::Duration;

use auth0_idp_proxy::App;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::fleet::TablePolicy;
use serde_json::json;
use standin::M2M_CLIENT_ID;

use crate::audit::{assert_audit, audit_line};
use crate::helpers::{TestApp, TestResponse, event, event_at, moto, send_to, unique};
use crate::metrics::with_request_id;

const USER: &str = "github|1001";
const OTHER: &str = "github|2002";
const GITHUB_USER: &str = "/idp/github/user";

/// A test app whose kill switch is the secret it names (not created yet), with `extra`
/// configuration.
async fn spawn(extra: &[(&str, &str)]) -> (TestApp, String) {
    let switch = unique("auth0-idp-proxy/kill-switch-");
    let mut vars = vec![("KILL_SWITCH_SECRET_ID", switch.as_str())];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(&vars, KeyPolicy::default()).await;
    (app, switch)
}

/// `app` reading its kill switch at every call, as if each call came after the cache time.
fn every_call(mut app: TestApp) -> TestApp {
    app.app = app.app.with_kill_switch_max_age(Duration::ZERO);
    app
}

async fn get(app: &App, path: &str, jwt: &str) -> TestResponse {
    send_to(app, event_at(path, jwt)).await
}

#[tokio::test]
async fn an_operator_stops_a_user_then_a_connection_by_editing_the_secret() {
    let (app, switch) = spawn(&[]).await;
    let app = every_call(app);
    app.write_secret(&switch, r#"{"users": [], "connections": []}"#)
        .await;
    let (user, other) = (app.token(USER).sign(), app.token(OTHER).sign());
    assert_eq!(get(&app.app, GITHUB_USER, &user).await.status, 200);

    app.write_secret(&switch, &json!({"users": [USER]}).to_string())
        .await;
    let calls = app.github.calls();
    let (request, id) = with_request_id(event_at(GITHUB_USER, &user));
    app.send(request).await.assert_error(403, "user_blocked");
    assert_audit(
        &audit_line(&id),
        json!({"sub": USER, "error": "user_blocked", "idp_status": null}),
    );
    app.call("http-api-identities.json", &user)
        .await
        .assert_error(403, "user_blocked");
    assert_eq!(get(&app.app, GITHUB_USER, &other).await.status, 200);
    assert_eq!(app.github.calls(), calls + 1, "only the other user's call");

    app.write_secret(&switch, &json!({"connections": ["github"]}).to_string())
        .await;
    let refused = get(&app.app, GITHUB_USER, &other).await;
    refused.assert_error(403, "connection_blocked");
    assert_eq!(refused.json()["connection"], "github");
    assert_eq!(
        app.call("http-api-identities.json", &user).await.status,
        200,
        "the user is no longer stopped; identities is no connection's route"
    );

    app.write_secret(&switch, "{}").await;
    assert_eq!(get(&app.app, GITHUB_USER, &user).await.status, 200);
}

#[tokio::test]
async fn a_list_is_read_once_for_its_max_age_then_again() {
    let (app, switch) = spawn(&[]).await;
    app.write_secret(&switch, "{}").await;
    let jwt = app.token(USER).sign();
    assert_eq!(get(&app.app, GITHUB_USER, &jwt).await.status, 200);
    let reads = app.secret_reads();

    // Within the 30 s: the edit is not read yet, and no call reads the secret.
    app.write_secret(&switch, &json!({"users": [USER]}).to_string())
        .await;
    for _ in 0..5 {
        assert_eq!(get(&app.app, GITHUB_USER, &jwt).await.status, 200);
    }
    assert_eq!(app.secret_reads(), reads);

    // Past it (the same environment, its cache time run out): read, and in force.
    let app = every_call(app);
    get(&app.app, GITHUB_USER, &jwt)
        .await
        .assert_error(403, "user_blocked");
    assert_eq!(app.secret_reads(), reads + 1);
}

#[tokio::test]
async fn an_unreadable_switch_keeps_the_last_list_and_without_one_answers_503() {
    let (app, switch) = spawn(&[]).await;
    let app = every_call(app);
    let jwt = app.token(USER).sign();

    // No secret yet: nothing is known of what is stopped, so nothing is called.
    let calls = app.github.calls();
    let (request, id) = with_request_id(event_at(GITHUB_USER, &jwt));
    app.send(request)
        .await
        .assert_error(503, "kill_switch_unavailable");
    assert_eq!(app.github.calls(), calls);
    assert_audit(
        &audit_line(&id),
        json!({"error": "kill_switch_unavailable"}),
    );

    app.write_secret(&switch, &json!({"users": [USER]}).to_string())
        .await;
    get(&app.app, GITHUB_USER, &jwt)
        .await
        .assert_error(403, "user_blocked");

    // A malformed edit, or Secrets Manager down: the last list stays in force.
    app.write_secret(&switch, r#"{"users": "not a list"}"#)
        .await;
    get(&app.app, GITHUB_USER, &jwt)
        .await
        .assert_error(403, "user_blocked");
    app.secrets_manager.cut().await;
    get(&app.app, GITHUB_USER, &jwt)
        .await
        .assert_error(403, "user_blocked");
}

#[tokio::test]
async fn with_the_fleet_table_a_token_shared_by_the_table_does_not_get_past_the_switch() {
    let table = unique("tokens-");
    let (app, switch) = spawn(&[("TOKEN_TABLE", table.as_str())]).await;
    let app = every_call(app);
    let client_secret = app.client_secret.lock().expect("lock").clone();
    app.put_secret(
        &json!({"client_id": M2M_CLIENT_ID, "client_secret": client_secret,
                "token_store_keys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]})
        .to_string(),
    )
    .await;
    let dynamodb = standin::dynamodb_client(moto().endpoint()).await;
    standin::create_token_table(&dynamodb, &table)
        .await
        .expect("table created in moto");
    app.write_secret(&switch, "{}").await;
    let jwt = app.token(USER).sign();
    let first = app
        .environment(&dynamodb, TablePolicy::default())
        .await
        .with_kill_switch_max_age(Duration::ZERO);
    let second = app
        .environment(&dynamodb, TablePolicy::default())
        .await
        .with_kill_switch_max_age(Duration::ZERO);
    assert_eq!(get(&first, GITHUB_USER, &jwt).await.status, 200);
    let scan = dynamodb
        .scan()
        .table_name(&table)
        .send()
        .await
        .expect("scan");
    assert!(scan.count() > 0, "the first environment shared its tokens");

    app.write_secret(&switch, &json!({"users": [USER]}).to_string())
        .await;
    let calls = app.github.calls();
    for environment in [&first, &second] {
        get(environment, GITHUB_USER, &jwt)
            .await
            .assert_error(403, "user_blocked");
    }
    assert_eq!(app.github.calls(), calls);

    app.write_secret(&switch, "{}").await;
    assert_eq!(get(&second, GITHUB_USER, &jwt).await.status, 200);
    let identities = send_to(&second, event("http-api-identities.json", &jwt)).await;
    assert_eq!(identities.status, 200, "{}", identities.body);
}

#[tokio::test]
async fn a_switch_never_read_answers_503_at_once_until_the_next_try() {
    // The default cache times: after a failed first read, the next try is 5 s away.
    let (app, switch) = spawn(&[]).await;
    let jwt = app.token(USER).sign();
    let calls = app.github.calls();
    get(&app.app, GITHUB_USER, &jwt)
        .await
        .assert_error(503, "kill_switch_unavailable");
    let reads = app.secret_reads();

    // The operator creates the switch at once: until the next try, requests are answered 503
    // without another read (each would wait out the same outage) and without an IdP call.
    app.write_secret(&switch, &json!({"users": []}).to_string())
        .await;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        get(&app.app, GITHUB_USER, &jwt)
            .await
            .assert_error(503, "kill_switch_unavailable");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(app.secret_reads(), reads, "no read before the next try");
    assert_eq!(app.github.calls(), calls);

    // After it, the switch is read and in force (here: nobody stopped).
    tokio::time::sleep(auth0_idp_proxy::kill_switch::RETRY_AFTER_FAILURE).await;
    let ok = get(&app.app, GITHUB_USER, &jwt).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(app.secret_reads() > reads, "read again after the wait");
}
