//! Permissions and tokens hold whatever the spelling (issue 33): a method in another case, matrix
//! parameters and look-alike dots in a path, and an identity of another provider than the
//! connection's entry is for. Each is tried through the function's Lambda entry point (the event
//! checks included) and through the real binary.

use serde_json::{Value, json};

use crate::audit::{assert_audit, audit_line};
use crate::binary::RealBinary;
use crate::helpers::{LambdaAnswer, TestApp, github_token, idp_event};

const USER: &str = "github|3300";

/// An open rule over `/files/**` above a guarded file, and an open `/user/**` above guarded
/// e-mail addresses, on a connection whose paths may hold `;`; and `work-github`, a connection
/// of the tenant's own name served by the GitHub entry.
fn connections() -> String {
    json!({
        "github": {"api_base": "{github}", "path_characters": ";", "allow": [
            "* /files/**",
            "GET /files/secret needs files:secret",
            "GET /user/**",
            "GET /user/emails needs pii:read",
            "GET /headers/**",
        ]},
        "work-github": {"strategy": "github", "api_base": "{github}"},
        "own-api": {"api_base": "{github}"},
    })
    .to_string()
}

async fn spawn() -> TestApp {
    spawn_with(&[]).await
}

/// As [`spawn`], with `extra` variables too.
async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
    let connections = connections();
    let mut vars = vec![("IDP_CONNECTIONS", connections.as_str())];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars, auth0_idp_proxy::auth::jwks::KeyPolicy::default()).await
}

/// Runs `event` through the Lambda entry point; the answer and the invocation's audit line.
async fn invoke(app: &TestApp, event: &Value) -> (LambdaAnswer, Value) {
    let (answer, request_id) = app.invoke_traced(&event.to_string()).await;
    (answer, audit_line(&request_id))
}

/// The methods an attacker would spell differently, each with the method it must be read as.
const SPELLINGS: &[(&str, &str)] = &[
    ("get", "GET"),
    ("Get", "GET"),
    ("gET", "GET"),
    ("head", "HEAD"),
];

/// The guarded e-mail addresses under every spelling a `;`-allowing connection lets through.
const MATRIX_PATHS: &[&str] = &[
    "/idp/github/user/emails;x=1",
    "/idp/github/user;v=2/emails",
    "/idp/github/user/emails%3Bx",
    "/idp/github/user/emails%3bx=1",
];

#[tokio::test]
async fn a_method_in_another_case_is_read_in_upper_case_and_its_rules_hold() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for (sent, read) in SPELLINGS {
        let calls = app.github.calls();
        let event = idp_event(sent, "/idp/github/files/secret", "", &jwt, &[]);
        let (answer, audit) = invoke(&app, &event).await;
        assert_eq!(answer.status, 403, "{sent}: {:?}", answer.body);
        assert_eq!(
            answer.header("www-authenticate"),
            Some(r#"Bearer error="insufficient_scope", scope="files:secret""#),
            "{sent}"
        );
        assert_eq!(app.github.calls(), calls, "{sent}: nothing reached the IdP");
        assert_audit(
            &audit,
            json!({"method": read, "sub": USER, "error": "insufficient_scope"}),
        );
    }

    // With the permission, the call is made with the method the rules were checked for.
    let holder = app
        .token(USER)
        .claim("permissions", json!(["files:secret"]))
        .sign();
    for (sent, read) in SPELLINGS
        .iter()
        .chain(&[("patch", "PATCH"), ("pOsT", "POST")])
    {
        let event = idp_event(sent, "/idp/github/files/secret", "", &holder, &[]);
        let (answer, audit) = invoke(&app, &event).await;
        assert_eq!(answer.status, 200, "{sent}: {:?}", answer.body);
        let upstream = app.github.requests();
        let last = upstream.last().expect("a request reached the IdP");
        assert_eq!(last.method, *read, "{sent} forwarded as the checked method");
        assert_audit(&audit, json!({"method": read, "sub": USER}));
    }
}

#[tokio::test]
async fn a_needs_rule_guards_its_resource_under_matrix_parameters_on_any_segment() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for path in MATRIX_PATHS {
        let calls = app.github.calls();
        let (answer, audit) = invoke(&app, &idp_event("GET", path, "", &jwt, &[])).await;
        answer.assert_error(403, "insufficient_scope");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(r#"Bearer error="insufficient_scope", scope="pii:read""#),
            "{path}"
        );
        assert_eq!(app.github.calls(), calls, "{path}: nothing reached the IdP");
        assert_audit(&audit, json!({"sub": USER, "error": "insufficient_scope"}));
    }
    // A segment that an upstream would read as nothing or as a dot segment names no resource.
    for path in [
        "/idp/github/user/;x=1/emails",
        "/idp/github/user/..;x=1/emails",
        "/idp/github/user/%E2%80%A5;/emails",
    ] {
        let (answer, _) = invoke(&app, &idp_event("GET", path, "", &jwt, &[])).await;
        assert_eq!(answer.status, 403, "{path}: {:?}", answer.body);
    }

    // The permission opens every spelling, forwarded as written; other paths stay open.
    let holder = app
        .token(USER)
        .claim("permissions", json!(["pii:read"]))
        .sign();
    let (answer, _) = invoke(
        &app,
        &idp_event("GET", "/idp/github/user/emails;x=1", "", &holder, &[]),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["path_and_query"], "/user/emails;x=1");
    let (answer, _) = invoke(
        &app,
        &idp_event("GET", "/idp/github/user/keys;page=2", "", &jwt, &[]),
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "an open rule stays open with parameters"
    );
}

/// A user whose identity at `connection` is of `provider`, with a token the stand-in GitHub
/// would accept.
fn add_user(app: &TestApp, sub: &str, connection: &str, provider: &str) -> String {
    let token = github_token(sub);
    app.tenant.add_user(json!({
        "user_id": sub,
        "identities": [{"connection": connection, "provider": provider, "user_id": "7",
                        "isSocial": true, "access_token": token}],
    }));
    app.github
        .grant(&token, json!({"login": "someone", "id": 7}));
    token
}

#[tokio::test]
async fn an_idp_token_goes_only_to_the_api_of_the_provider_that_issued_it() {
    let app = spawn().await;
    // A tenant connection mapped to GitHub whose identities are Google's.
    let sub = "google-oauth2|3301";
    let google_token = add_user(&app, sub, "work-github", "google-oauth2");
    let jwt = app.token(sub).sign();
    let (answer, audit) = invoke(
        &app,
        &idp_event("GET", "/idp/work-github/user", "", &jwt, &[]),
    )
    .await;
    answer.assert_error(502, "provider_mismatch");
    let body = answer.json();
    assert_eq!(body["connection"], "work-github");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("google-oauth2") && description.contains("github"),
        "{description}"
    );
    assert_eq!(app.github.calls(), 0, "the Google token went nowhere");
    answer.assert_hides(&[&google_token]);
    assert_audit(
        &audit,
        json!({"sub": sub, "error": "provider_mismatch", "idp_status": null}),
    );
    assert!(!crate::helpers::logs().contains(&google_token));

    // `/identities` does not offer it as callable.
    let identities = app
        .send(crate::helpers::event("http-api-identities.json", &jwt))
        .await;
    let view = identities.json();
    assert_eq!(view["identities"][0]["connection"], "work-github");
    assert_eq!(view["identities"][0]["callable"], false, "{view}");

    // The same connection with a GitHub identity is served; a connection of `IDP_CONNECTIONS`
    // alone (no strategy) is not checked, as before.
    let sub = "github|3302";
    add_user(&app, sub, "work-github", "github");
    let jwt = app.token(sub).sign();
    let (answer, _) = invoke(
        &app,
        &idp_event("GET", "/idp/work-github/user", "", &jwt, &[]),
    )
    .await;
    assert_eq!(answer.status, 200);
    let sub = "oauth2|partner|3303";
    add_user(&app, sub, "own-api", "oauth2");
    let jwt = app.token(sub).sign();
    let (answer, _) = invoke(&app, &idp_event("GET", "/idp/own-api/user", "", &jwt, &[])).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn a_marketplace_entry_serves_oauth2_identities_and_no_other_provider() {
    // Discord's entry, pointed at the stand-in: Auth0 writes `oauth2` for it.
    let connections =
        json!({"discord": {"api_base": "{github}", "allow": ["GET /**"]}}).to_string();
    let app = TestApp::spawn_with(
        &[("IDP_CONNECTIONS", &connections)],
        auth0_idp_proxy::auth::jwks::KeyPolicy::default(),
    )
    .await;
    let sub = "oauth2|discord|3304";
    add_user(&app, sub, "discord", "oauth2");
    let jwt = app.token(sub).sign();
    let (answer, _) = invoke(&app, &idp_event("GET", "/idp/discord/user", "", &jwt, &[])).await;
    assert_eq!(answer.status, 200);
    let sub = "github|3305";
    add_user(&app, sub, "discord", "github");
    let jwt = app.token(sub).sign();
    let calls = app.github.calls();
    let (answer, _) = invoke(&app, &idp_event("GET", "/idp/discord/user", "", &jwt, &[])).await;
    answer.assert_error(502, "provider_mismatch");
    assert_eq!(app.github.calls(), calls);
}

/// Asserts that the stand-in's hop-by-hop answer lost exactly the fields its `Connection`
/// nominated.
fn assert_hop_by_hop_dropped(answer: &LambdaAnswer) {
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("etag"), None, "{:?}", answer.headers);
    assert_eq!(answer.header("x-ratelimit-remaining"), None);
    assert_eq!(answer.header("connection"), None);
    assert_eq!(answer.header("x-ratelimit-limit"), Some("5000"));
}

#[tokio::test]
async fn fields_the_idps_connection_header_nominates_are_dropped() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let event = idp_event("GET", "/idp/github/headers/hop-by-hop", "", &jwt, &[]);
    let (answer, _) = invoke(&app, &event).await;
    assert_hop_by_hop_dropped(&answer);
}

#[tokio::test]
async fn an_authenticated_refusal_is_audited_with_the_callers_sub_and_an_anonymous_one_without() {
    let app = spawn_with(&[("REQUIRED_SCOPE", "call:idp")]).await;
    let jwt = app.token(USER).sign();
    let (answer, audit) = invoke(&app, &idp_event("GET", "/idp/github/user", "", &jwt, &[])).await;
    answer.assert_error(403, "insufficient_scope");
    assert_audit(&audit, json!({"sub": USER, "error": "insufficient_scope"}));

    let scoped = app.token(USER).claim("scope", "call:idp").sign();
    let (answer, audit) = invoke(
        &app,
        &idp_event("DELETE", "/idp/github/user", "", &scoped, &[]),
    )
    .await;
    answer.assert_error(403, "forbidden_path");
    assert_audit(&audit, json!({"sub": USER, "error": "forbidden_path"}));

    let anonymous = idp_event(
        "GET",
        "/idp/github/user",
        "",
        &jwt,
        &[("authorization", Value::Null)],
    );
    let (answer, audit) = invoke(&app, &anonymous).await;
    answer.assert_error(401, "invalid_token");
    assert_audit(&audit, json!({"sub": null, "error": "invalid_token"}));
    let forged = idp_event("GET", "/idp/github/user", "", &format!("{jwt}x"), &[]);
    let (answer, audit) = invoke(&app, &forged).await;
    answer.assert_error(401, "invalid_token");
    assert_audit(&audit, json!({"sub": null}));
}

/// Every bullet through the real binary, in one process: the spellings, the matrix parameters,
/// the foreign provider and the authenticated refusal's audit line.
#[tokio::test]
async fn the_real_binary_holds_permissions_and_tokens_whatever_the_spelling() {
    let app = spawn_with(&[("REQUIRED_SCOPE", "call:idp")]).await;
    let jwt = app.token(USER).claim("scope", "call:idp").sign();
    let foreign = "google-oauth2|3306";
    let google_token = add_user(&app, foreign, "work-github", "google-oauth2");
    let foreign_jwt = app.token(foreign).claim("scope", "call:idp").sign();
    let unscoped = app.token(USER).sign();
    let binary = RealBinary::start(&app, &[]).await;

    for (sent, _) in SPELLINGS {
        let event = idp_event(sent, "/idp/github/files/secret", "", &jwt, &[]);
        let answer = binary.invoke(&event).await;
        assert_eq!(answer.status, 403, "{sent}");
    }
    for path in MATRIX_PATHS {
        let answer = binary.invoke(&idp_event("GET", path, "", &jwt, &[])).await;
        assert_eq!(answer.status, 403, "{path}");
    }
    let answer = binary
        .invoke(&idp_event(
            "GET",
            "/idp/work-github/user",
            "",
            &foreign_jwt,
            &[],
        ))
        .await;
    answer.assert_error(502, "provider_mismatch");
    assert_eq!(app.github.calls(), 0, "nothing reached the IdP");
    let answer = binary
        .invoke(&idp_event("GET", "/idp/github/user", "", &unscoped, &[]))
        .await;
    answer.assert_error(403, "insufficient_scope");
    // Allowed, with a method spelled in lower case: forwarded in upper case.
    let answer = binary
        .invoke(&idp_event("get", "/idp/github/user", "", &jwt, &[]))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        app.github.requests().last().map(|r| r.method.clone()),
        Some("GET".to_owned())
    );

    let hop_by_hop = binary
        .invoke(&idp_event(
            "GET",
            "/idp/github/headers/hop-by-hop",
            "",
            &jwt,
            &[],
        ))
        .await;
    assert_hop_by_hop_dropped(&hop_by_hop);

    let logs = binary.logs().await;
    let audits: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "audit")
        .collect();
    assert_eq!(audits.len(), SPELLINGS.len() + MATRIX_PATHS.len() + 4);
    for audit in &audits[..SPELLINGS.len()] {
        assert!(
            audit["method"] == "GET" || audit["method"] == "HEAD",
            "{audit}"
        );
    }
    let scope_refusal = &audits[audits.len() - 3];
    assert_eq!(
        scope_refusal["error"], "insufficient_scope",
        "{scope_refusal}"
    );
    assert_eq!(scope_refusal["sub"], USER, "{scope_refusal}");
    assert!(!logs.contains(&google_token));
    assert!(!logs.contains(&jwt));
}
