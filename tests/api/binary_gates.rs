//! The issue-23 gates through the real binary under a stand-in Runtime API: an allow rule that
//! needs a permission, and the operator's kill switch read from Secrets Manager (moto) as
//! Lambda's environment configures the SDK.

use std::time::Duration;

use serde_json::Value;
use standin::{Outcome, RuntimeApi};

use crate::binary::{output_of, start_bootstrap};
use crate::helpers::TestApp;

const USER: &str = "github|1001";

/// A rule that needs a permission, through the real binary: the RFC 6750 challenge in the
/// Lambda response, no IdP call, and the refusal on the audit line.
#[tokio::test]
async fn the_real_binary_refuses_a_call_its_rule_needs_a_permission_for() {
    use crate::helpers::idp_event;

    let connections = serde_json::json!({"github": {"api_base": "{github}", "allow": [
        "GET /user", "POST /user/repos needs github:write"]}})
    .to_string();
    let app = TestApp::spawn_with(
        &[("IDP_CONNECTIONS", &connections)],
        auth0_idp_proxy::auth::jwks::KeyPolicy::default(),
    )
    .await;
    let jwt = app.token(USER).sign();
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let child = start_bootstrap(&app, &runtime, &[]);
    let event = idp_event("POST", "/idp/github/user/repos", "", &jwt, &[]);
    let Some(Outcome::Response(response)) = runtime
        .invoke(
            &event.to_string(),
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .await
    else {
        panic!("no response; logs: {}", output_of(child).await);
    };
    assert_eq!(response["statusCode"], 403, "{response}");
    assert_eq!(
        response["headers"]["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="github:write""#
    );
    assert_eq!(app.github.calls(), 0);
    let logs = output_of(child).await;
    let audit = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "audit")
        .expect("an audit line");
    assert_eq!(audit["error"], "insufficient_scope", "{audit}");
    assert_eq!(audit["sub"], USER, "{audit}");
    assert!(!logs.contains(&jwt));
}

/// The kill switch through the real binary: the secret read as Lambda's environment reads it
/// (the SDK's endpoint from the environment), a stopped user refused, another one served.
#[tokio::test]
async fn the_real_binary_refuses_a_user_the_kill_switch_stops() {
    use crate::helpers::{idp_event, unique};

    let switch = unique("auth0-idp-proxy/kill-switch-");
    let app = TestApp::spawn_with(
        &[("KILL_SWITCH_SECRET_ID", &switch)],
        auth0_idp_proxy::auth::jwks::KeyPolicy::default(),
    )
    .await;
    app.write_secret(&switch, &serde_json::json!({"users": [USER]}).to_string())
        .await;
    let (stopped, other) = (app.token(USER).sign(), app.token("github|2002").sign());
    let runtime = RuntimeApi::start().await.expect("runtime API");
    let child = start_bootstrap(&app, &runtime, &[]);
    let mut statuses = Vec::new();
    for jwt in [&stopped, &other] {
        let event = idp_event("GET", "/idp/github/user", "", jwt, &[]).to_string();
        let Some(Outcome::Response(response)) = runtime
            .invoke(&event, Duration::from_secs(10), Duration::from_secs(30))
            .await
        else {
            panic!("no response; logs: {}", output_of(child).await);
        };
        let body: Value =
            serde_json::from_str(response["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        statuses.push((response["statusCode"].clone(), body["error"].clone()));
    }
    assert_eq!(
        statuses,
        [
            (serde_json::json!(403), serde_json::json!("user_blocked")),
            (serde_json::json!(200), Value::Null)
        ]
    );
    let logs = output_of(child).await;
    assert!(!logs.contains(&stopped) && !logs.contains(&other));
}
