//! Fault injection: every upstream fails, throttles or hangs in turn (the stand-in tenant's
//! switches, a cut link to moto, the stand-in IdP's misbehaving paths). Each case asserts the
//! documented answer, how many attempts the upstream saw, and that the next healthy invocation
//! succeeds. Also: 200 simultaneous invocations through one environment, and the summary line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::deadline::SAFETY_MARGIN;
use http::Method;
use lambda_http::Request;
use standin::{Fault, JwksMode};

use crate::helpers::{
    TestApp, TestResponse, assert_not_logged, event, event_at, github_token, within,
};
use crate::metrics::send_traced;

const USER: &str = "github|1001";
const IDENTITIES: &str = "http-api-identities.json";
/// Until the stand-in is healed.
const ALWAYS: usize = usize::MAX;

/// Sends `request` with `budget` to answer, and asserts that the answer came before Lambda's
/// deadline, with most of the safety margin to spare.
pub(crate) async fn send_within(app: &TestApp, request: Request, budget: Duration) -> TestResponse {
    let started = Instant::now();
    let response = app.send(within(request, budget)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < budget - SAFETY_MARGIN / 2,
        "answered after {elapsed:?}, deadline {budget:?}"
    );
    response
}

/// The calls of a cold start so far: secret reads (SDK attempts), token requests, JWKS requests.
fn cold_work(app: &TestApp) -> (usize, usize, usize) {
    (
        app.secret_reads(),
        app.tenant.token_calls(),
        app.tenant.jwks_calls(),
    )
}

#[tokio::test]
async fn token_endpoint_500s_are_retried_three_times_then_502_and_the_next_invocation_succeeds() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant.fail_token_endpoint(Fault::Status(500), ALWAYS);
    send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(5))
        .await
        .assert_error(502, "upstream_error");
    assert_eq!(app.tenant.token_calls(), 3);

    app.tenant.heal();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 4);
    assert_eq!(
        app.secret_reads(),
        1,
        "a failed exchange keeps the credentials"
    );
}

#[tokio::test]
async fn a_token_endpoint_that_recovers_within_the_retries_costs_no_error() {
    let app = TestApp::spawn().await;
    app.tenant.fail_token_endpoint(Fault::Status(503), 1);
    app.tenant.fail_management_api(Fault::Status(408), 1);
    let jwt = app.token(USER).sign();
    let response = send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(5)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!((app.tenant.token_calls(), app.tenant.user_calls()), (2, 2));
}

#[tokio::test]
async fn a_token_endpoint_rate_limit_that_resets_within_the_deadline_is_waited_out() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant
        .fail_token_endpoint(Fault::RateLimited { reset_in_secs: 1 }, 1);
    let response = send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(3)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.tenant.token_calls(), 2);
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 2, "the token is cached as usual");
}

#[tokio::test]
async fn a_hanging_token_endpoint_is_504_within_the_deadline_and_the_next_invocation_succeeds() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant.fail_token_endpoint(Fault::Hang, 1);
    send_within(&app, event(IDENTITIES, &jwt), Duration::from_millis(1_500))
        .await
        .assert_error(504, "upstream_timeout");
    assert_eq!(app.tenant.token_calls(), 1, "a timeout is not retried");

    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.token_calls(), 2);
}

#[tokio::test]
async fn a_management_api_rate_limit_that_resets_within_the_deadline_is_waited_out() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant
        .fail_management_api(Fault::RateLimited { reset_in_secs: 1 }, 1);
    let response = send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(3)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.tenant.user_calls(), 2);
}

#[tokio::test]
async fn a_management_api_rate_limit_beyond_the_deadline_is_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant
        .fail_management_api(Fault::RateLimited { reset_in_secs: 30 }, 1);
    let started = Instant::now();
    let response = send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once, not after waiting"
    );
    response.assert_rate_limited_for(30);
    assert_eq!(app.tenant.user_calls(), 1);

    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.user_calls(), 2);
    assert_eq!(app.tenant.token_calls(), 1, "the token survived the 429");
}

/// Keys that need a refresh after 100 ms, stay trusted for a minute, and are not refetched
/// within 500 ms of a failed attempt.
fn refresh_soon() -> KeyPolicy {
    KeyPolicy {
        refresh_after: Duration::from_millis(100),
        max_age: Duration::from_secs(60),
        unknown_kid_cooldown: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn a_failing_jwks_endpoint_leaves_cached_keys_in_use_and_is_asked_once_per_cooldown() {
    let app = TestApp::spawn_with(&[], refresh_soon()).await;
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.jwks_calls(), 1);

    app.tenant.set_jwks_mode(JwksMode::Fail);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(
        app.tenant.jwks_calls(),
        2,
        "one refresh attempt, not retried"
    );
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.jwks_calls(), 2, "not again within the cooldown");

    app.tenant.heal();
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.jwks_calls(), 3, "refreshed once healthy");
}

#[tokio::test]
async fn a_hanging_jwks_endpoint_delays_one_request_briefly_while_cached_keys_answer() {
    let app = TestApp::spawn_with(&[], refresh_soon()).await;
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    app.tenant.set_jwks_mode(JwksMode::Hang);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let response = send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(5)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the refresh gave up after its short cap: {:?}",
        started.elapsed()
    );
    assert_eq!(app.tenant.jwks_calls(), 2);
}

#[tokio::test]
async fn a_jwks_endpoint_down_without_cached_keys_is_502_or_504_and_the_next_invocation_succeeds() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant.set_jwks_mode(JwksMode::Fail);
    send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(5))
        .await
        .assert_error(502, "upstream_error");
    assert_eq!(app.tenant.jwks_calls(), 3, "retried twice");

    app.tenant.set_jwks_mode(JwksMode::Hang);
    send_within(&app, event(IDENTITIES, &jwt), Duration::from_millis(1_500))
        .await
        .assert_error(504, "upstream_timeout");
    assert_eq!(app.tenant.jwks_calls(), 4, "a timeout is not retried");

    app.tenant.heal();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(app.tenant.jwks_calls(), 5);
}

#[tokio::test]
async fn secrets_manager_down_is_503_and_the_first_invocation_after_it_recovers_succeeds() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.secrets_manager.cut().await;
    send_within(&app, event(IDENTITIES, &jwt), Duration::from_secs(3))
        .await
        .assert_error(503, "credentials_unavailable");
    assert_eq!(app.secret_reads(), 3, "the SDK's three attempts");
    assert_eq!(app.tenant.token_calls(), 0);

    app.secrets_manager.restore().await.expect("link restored");
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!((app.secret_reads(), app.tenant.token_calls()), (4, 1));
}

#[tokio::test]
async fn a_failed_cold_start_prefetch_is_redone_by_the_first_invocation() {
    let app = TestApp::spawn().await;
    app.secrets_manager.cut().await;
    app.tenant.set_jwks_mode(JwksMode::Fail);
    app.app.prefetch(Duration::from_secs(3)).await;
    assert_eq!(cold_work(&app), (3, 0, 3));

    app.secrets_manager.restore().await.expect("link restored");
    app.tenant.heal();
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    assert_eq!(cold_work(&app), (4, 1, 4));
}

#[tokio::test]
async fn a_hanging_idp_is_504_within_the_deadline_and_the_next_call_succeeds() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    assert_eq!(app.call(IDENTITIES, &jwt).await.status, 200);
    let hang = event_at("/idp/github/hang", &jwt);
    send_within(&app, hang, Duration::from_millis(1_500))
        .await
        .assert_error(504, "upstream_timeout");
    assert_eq!(app.github.calls(), 1);

    let response = app.send(event_at("/idp/github/user", &jwt)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.github.calls(), 2);
}

#[tokio::test]
async fn a_transient_idp_5xx_to_a_get_is_retried_within_the_deadline() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.github.fail_next(1);
    let response = send_within(
        &app,
        event_at("/idp/github/user", &jwt),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.github.calls(), 2);

    // A failure that outlasts the attempts is the documented 502.
    app.github.fail_next(10);
    send_within(
        &app,
        event_at("/idp/github/user", &jwt),
        Duration::from_secs(3),
    )
    .await
    .assert_error(502, "upstream_error");
    assert_eq!(app.github.calls(), 5, "three attempts in all");
}

#[tokio::test]
async fn an_idp_5xx_to_a_post_is_502_and_never_retried() {
    let app = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            r#"{"github": {"api_base": "{github}", "allow": ["GET /**", "POST /fail"]}}"#,
        )],
        KeyPolicy::default(),
    )
    .await;
    let jwt = app.token(USER).sign();
    let mut request = event_at("/idp/github/fail", &jwt);
    *request.method_mut() = Method::POST;
    send_within(&app, request, Duration::from_secs(5))
        .await
        .assert_error(502, "upstream_error");
    assert_eq!(app.github.calls(), 1);

    let response = app.send(event_at("/idp/github/user", &jwt)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.github.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_simultaneous_cold_invocations_cost_one_secret_read_and_one_exchange() {
    let app = Arc::new(TestApp::spawn().await);
    let jwt = app.token(USER).sign();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (app, jwt) = (Arc::clone(&app), jwt.clone());
            tokio::spawn(async move {
                let request = within(event_at("/idp/github/user", &jwt), Duration::from_secs(20));
                app.send(request).await
            })
        })
        .collect();
    for task in tasks {
        let response = task.await.expect("invocation task");
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(cold_work(&app), (1, 1, 1));
    assert_eq!(app.github.calls(), 200);
}

#[tokio::test]
async fn each_invocation_logs_one_summary_line_with_upstream_times_and_cache_hits() {
    let app = TestApp::spawn().await;
    let jwt = app.token(USER).sign();
    app.tenant.fail_token_endpoint(Fault::Status(500), 1);
    let budget = Duration::from_secs(5);
    let token = github_token(USER);
    let secrets = [jwt.as_str(), token.as_str()];

    let cold = within(event_at("/idp/github/user", &jwt), budget);
    let (response, line) = send_traced(&app, cold, &secrets).await;
    assert_eq!(response.status, 200);
    assert_eq!(line["Route"], "idp");
    assert_eq!(line["Connection"], "github");
    assert_eq!(line["status"], 200);
    for upstream in [
        "SecretsManagerTime",
        "TokenEndpointTime",
        "ManagementApiTime",
        "JwksTime",
        "IdpTime",
    ] {
        assert!(line[upstream].as_f64().is_some(), "{upstream} in {line}");
    }
    for cache in [
        "jwks_cache_hit",
        "management_token_cache_hit",
        "credentials_cache_hit",
    ] {
        assert_eq!(line[cache], false, "{cache} in {line}");
    }
    assert_eq!(line["IdpTokenCacheMisses"], 1, "{line}");
    assert!(
        line["Duration"].as_f64().expect("duration")
            >= line["TokenEndpointTime"].as_f64().expect("token")
    );

    // Another user: the first one's profile is fresh in the cache and would cost no read.
    let other = app.token("github|1002").sign();
    let warm = within(event(IDENTITIES, &other), budget);
    let (response, line) = send_traced(&app, warm, &secrets).await;
    assert_eq!(response.status, 200);
    assert_eq!(line["Route"], "identities");
    assert!(line.get("Connection").is_none(), "{line}");
    assert!(line["ManagementApiTime"].as_f64().is_some(), "{line}");
    for absent in [
        "SecretsManagerTime",
        "TokenEndpointTime",
        "JwksTime",
        "IdpTime",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
    for cache in [
        "jwks_cache_hit",
        "management_token_cache_hit",
        "credentials_cache_hit",
    ] {
        assert_eq!(line[cache], true, "{cache} in {line}");
    }

    // A repeat IdP call: the IdP's time alone, every cache hit.
    let repeat = within(event_at("/idp/github/user", &jwt), budget);
    let (response, line) = send_traced(&app, repeat, &secrets).await;
    assert_eq!(response.status, 200);
    assert!(line["IdpTime"].as_f64().is_some(), "{line}");
    for absent in [
        "SecretsManagerTime",
        "TokenEndpointTime",
        "ManagementApiTime",
        "JwksTime",
    ] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
    assert_eq!(line["IdpTokenCacheHits"], 1, "{line}");
    assert_eq!(line["jwks_cache_hit"], true, "{line}");

    let mut secrets = app.tenant.issued_tokens();
    secrets.push(app.client_secret.lock().expect("lock").clone());
    secrets.push(github_token(USER));
    secrets.push(jwt);
    assert_not_logged(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
}
