//! Issue 34 through the real binary: Lambda freezes an execution environment between
//! invocations, and while it is frozen an upstream (or anything on the way) may end the idle
//! keep-alive connections the function pooled, with a FIN or a RST (or forget them, as a NAT
//! gateway does past its idle timeout, and reset them at their next use). Here a TCP relay in
//! front of each stand-in ends them while the process is stopped (SIGSTOP), and the first call
//! after it resumes (SIGCONT) is a write: it is answered as if nothing had happened, and the upstream sees
//! it exactly once. Reads still share their pooled connection, and a read that meets a dead one
//! is retried.
//!
//! The event is handed to the binary while it is stopped, as Lambda has it ready when it thaws
//! an environment. A FIN or a RST is usually seen by the pooled connection's task before the
//! write is sent; a forgotten connection is not, so it is the ending that failed on main every
//! time (502, and a single-use refresh token's grant lost).

use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{Ending, Flavor, Idp, M2M_CLIENT_ID, Relay, TokenBuilder};

use crate::binary::RealBinary;
use crate::helpers::{AUDIENCE, LambdaAnswer, TestApp, idp_event};

/// The ways an idle connection dies while the environment is frozen: the server closes it (FIN)
/// or resets it (RST), or something on the way forgets it and resets it at its next use.
pub const ENDINGS: [Ending; 3] = [Ending::Fin, Ending::Rst, Ending::Forgotten];

/// `env` with `from` (an origin) replaced by `to` in every value: the function's configuration
/// re-pointed through a relay, as extra variables for [`RealBinary::start`].
pub fn through(env: &[(String, String)], from: &str, to: &str) -> Vec<(String, String)> {
    env.iter()
        .filter(|(_, value)| value.contains(from))
        .map(|(name, value)| (name.clone(), value.replace(from, to)))
        .collect()
}

/// `vars` as [`RealBinary::start`] takes them.
pub fn borrowed(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `binary`'s answer to `event` handed to it after a freeze ([`RealBinary::invoke_after_freeze`])
/// during which `relay` ended `how` every connection it held. Asserts that a pooled connection
/// was there to end (without one, the test would not test anything) and that the answer is a
/// 200, as if nothing had happened.
pub async fn after_ending(
    binary: &RealBinary,
    relay: &Relay,
    how: Ending,
    event: &Value,
) -> LambdaAnswer {
    let mut ended = 0;
    let answer = binary
        .invoke_after_freeze(event, async {
            ended = relay.end_connections(how).await;
        })
        .await;
    assert!(ended >= 1, "{how:?}: no pooled connection to end");
    assert_eq!(
        answer.status,
        200,
        "{how:?}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    answer
}

/// As [`after_ending`] for a write, and asserts that `writes` (the upstream's count of it) grew
/// by exactly one.
pub async fn written_once_after_ending(
    binary: &RealBinary,
    relay: &Relay,
    how: Ending,
    event: &Value,
    writes: impl Fn() -> usize,
) -> LambdaAnswer {
    let before = writes();
    let answer = after_ending(binary, relay, how, event).await;
    assert_eq!(
        writes(),
        before + 1,
        "{how:?}: the upstream saw the write once"
    );
    answer
}

/// A caller's Auth0 token from `token`, issued by the tenant as seen through `relay`: Auth0
/// names its own origin the issuer.
fn issued_through(token: TokenBuilder, relay: &Relay) -> String {
    token.claim("iss", format!("{}/", relay.origin())).sign()
}

/// `POST /idp/github/user/repos` creating repository `name`.
fn create_repo(jwt: &str, name: &str) -> Value {
    let mut event = idp_event(
        "POST",
        "/idp/github/user/repos",
        "",
        jwt,
        &[("content-type", json!("application/json"))],
    );
    event["body"] = json!(json!({ "name": name }).to_string());
    event["isBase64Encoded"] = json!(false);
    event
}

#[tokio::test]
async fn a_write_after_a_thaw_reaches_the_idp_once_whatever_ended_its_pooled_connection() {
    let app = TestApp::spawn().await;
    let jwt = app.token("github|1001").sign();
    let relay = Relay::start(&app.github.origin()).await.expect("relay");
    let connections = json!({"github": {"api_base": relay.origin(),
                                        "allow": ["GET /**", "POST /user/repos"]}})
    .to_string();
    let real = RealBinary::start(&app, &[("IDP_CONNECTIONS", &connections)]).await;
    let read = idp_event("GET", "/idp/github/user", "", &jwt, &[]);

    for how in ENDINGS {
        // A read leaves its connection in the pool, where the write could find it.
        assert_eq!(real.invoke(&read).await.status, 200, "{how:?}");
        let name = format!("created-after-a-{how:?}");
        let seen = || {
            let requests = app.github.requests();
            let body = |r: &standin::Recorded| String::from_utf8_lossy(&r.body).contains(&name);
            requests
                .iter()
                .filter(|r| r.method == "POST" && body(r))
                .count()
        };
        let write = create_repo(&jwt, &name);
        let answer = written_once_after_ending(&real, &relay, how, &write, seen).await;
        assert_eq!(answer.json()["method"], "POST", "the stand-in's echo");

        // A read after the freeze is answered too (retried past the dead connection), and the
        // next one shares the connection it left in the pool.
        assert_eq!(real.invoke(&read).await.status, 200, "{how:?}");
        after_ending(&real, &relay, how, &read).await;
        let opened = relay.accepted();
        assert_eq!(real.invoke(&read).await.status, 200, "{how:?}");
        assert_eq!(
            relay.accepted(),
            opened,
            "{how:?}: reads reuse a connection"
        );
    }
    let logs = real.logs().await;
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test]
async fn a_client_credentials_exchange_after_a_thaw_is_made_once_whatever_ended_its_connection() {
    let app = TestApp::spawn().await;
    // A token never fresh: each new user's identity read needs its own exchange.
    app.tenant.set_management_token_lifetime(1);
    let tenant = Relay::start(&app.tenant.origin()).await.expect("relay");
    let extra = through(&app.env, &app.tenant.origin(), &tenant.origin());
    let real = RealBinary::start(&app, &borrowed(&extra)).await;
    let read = |sub: &str| {
        let jwt = issued_through(app.token(sub), &tenant);
        idp_event("GET", "/idp/github/user", "", &jwt, &[])
    };
    assert_eq!(real.invoke(&read("github|2001")).await.status, 200);

    for (n, how) in ENDINGS.into_iter().enumerate() {
        // A new user: identities to read, with a token that needs an exchange first.
        let event = read(&format!("github|{}", 2002 + n));
        let exchanges = || app.tenant.token_calls();
        written_once_after_ending(&real, &tenant, how, &event, exchanges).await;
    }
    let logs = real.logs().await;
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test]
async fn a_token_vault_exchange_after_a_thaw_is_made_once_whatever_ended_its_connection() {
    const CLIENT: &str = "proxy-api-client";
    const SECRET: &str = "proxy-api-client-secret";
    let google = Idp::start_as(Flavor::Google)
        .await
        .expect("stand-in Google");
    let connections = json!({"github": {"api_base": "{github}"},
                             "google-oauth2": {"api_base": google.origin(),
                                               "token_source": "token_vault"}})
    .to_string();
    let app = TestApp::spawn_with(&[("IDP_CONNECTIONS", &connections)], KeyPolicy::default()).await;
    app.tenant
        .enable_token_vault("google-oauth2", &google, Duration::from_secs(3600));
    app.tenant
        .add_token_vault_client(CLIENT, Some(SECRET), AUDIENCE);
    let m2m_secret = app.client_secret.lock().expect("lock").clone();
    app.put_secret(
        &json!({"client_id": M2M_CLIENT_ID, "client_secret": m2m_secret,
                "token_vault_client": {"client_id": CLIENT, "client_secret": SECRET}})
        .to_string(),
    )
    .await;
    let tenant = Relay::start(&app.tenant.origin()).await.expect("relay");
    let extra = through(&app.env, &app.tenant.origin(), &tenant.origin());
    let real = RealBinary::start(&app, &borrowed(&extra)).await;
    let call = |sub: &str| {
        app.tenant
            .connect_account(sub, "google-oauth2", json!({"email": "jane@example.test"}));
        let jwt = issued_through(app.tenant.token(AUDIENCE, sub), &tenant);
        idp_event(
            "GET",
            "/idp/google-oauth2/oauth2/v3/userinfo",
            "",
            &jwt,
            &[],
        )
    };
    assert_eq!(real.invoke(&call("google-oauth2|1")).await.status, 200);

    for (n, how) in ENDINGS.into_iter().enumerate() {
        // A GitHub user's identities, read from the Management API, leave a connection to the
        // tenant in the pool, where the exchange could find it.
        let reader = issued_through(app.token(&format!("github|{}", 3001 + n)), &tenant);
        let read = idp_event("GET", "/idp/github/user", "", &reader, &[]);
        assert_eq!(real.invoke(&read).await.status, 200, "{how:?}");
        let event = call(&format!("google-oauth2|{}", 2 + n));
        let exchanges = || app.tenant.vault_exchanges();
        written_once_after_ending(&real, &tenant, how, &event, exchanges).await;
    }
    let logs = real.logs().await;
    assert!(!logs.contains("panicked"), "{logs}");
}
