//! The proxy speaks HTTP (DESIGN.md, "A proxy that speaks HTTP"), through the function's Lambda
//! entry point as the real binary runs it: bodies byte for byte, Lambda's 6 MB limit measured on
//! the response as written, conditional requests, `Link` rewriting, caching headers, `HEAD`;
//! and the hostile inputs of issue 14, each answered with its documented error and nothing sent
//! where it should not go.

use std::io::Read;
use std::time::Duration;

use auth0_idp_proxy::auth::jwks::KeyPolicy;
use serde_json::{Value, json};
use standin::{
    CLAIMS_CHALLENGE, CONDITIONAL_ETAG, CONDITIONAL_LAST_MODIFIED, LATIN1_ETAG,
    REPEATED_CHALLENGES, REPEATED_RATE_LIMITS, REPEATED_VARY,
};

use crate::helpers::{
    LambdaAnswer, PLACEHOLDER, TestApp, assert_not_logged, event_text, github_token, idp_event,
};
use crate::metrics::{assert_emf, summary};

const USER: &str = "github|1001";
const HOST: &str = "abc123defg.execute-api.us-east-1.amazonaws.com";
const ORIGIN: &str = "https://app.example.com";

async fn spawn() -> TestApp {
    TestApp::spawn_with(&[("ALLOWED_ORIGINS", ORIGIN)], KeyPolicy::default()).await
}

async fn get(app: &TestApp, jwt: &str, path: &str, query: &str) -> LambdaAnswer {
    app.invoke(&idp_event("GET", path, query, jwt, &[]).to_string())
        .await
}

/// `GET /idp/github/bytes/{kind}?size={units}`.
async fn bytes(app: &TestApp, jwt: &str, kind: &str, units: usize) -> LambdaAnswer {
    let path = format!("/idp/github/bytes/{kind}");
    get(app, jwt, &path, &format!("size={units}")).await
}

/// The REST API sample event for `GET /prod/idp/github/user`, with `jwt`.
fn rest_event(jwt: &str) -> Value {
    let text = event_text("rest-api-idp-github-user.json").replace(PLACEHOLDER, jwt);
    serde_json::from_str(&text).expect("event")
}

/// The bodies `/bytes/{kind}` of the stand-in sends, as bytes on the wire.
pub fn expected_bytes(kind: &str) -> Vec<u8> {
    match kind {
        "binary" => (0..=255).collect(),
        "latin1" => b"caf\xe9".to_vec(),
        "invalid-utf8-json" => b"{\"name\":\"\xff\xfe\"}".to_vec(),
        _ => unreachable!("{kind}"),
    }
}

/// Inflates a gzip body.
pub fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip body");
    text
}

#[tokio::test]
async fn bodies_come_back_byte_for_byte_with_their_content_type() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for (kind, content_type) in [
        ("binary", None),
        ("latin1", Some("text/plain; charset=iso-8859-1")),
        ("invalid-utf8-json", Some("application/json")),
    ] {
        let answer = bytes(&app, &jwt, kind, 256).await;
        assert_eq!(answer.status, 200, "{kind}");
        assert_eq!(answer.body, expected_bytes(kind), "{kind}");
        assert!(
            answer.base64,
            "{kind}: not UTF-8, so base64 in the Lambda response"
        );
        assert_eq!(answer.header("content-type"), content_type, "{kind}");
    }
    let gzip = get(&app, &jwt, "/idp/github/bytes/gzip", "").await;
    assert_eq!(gzip.status, 200);
    assert!(gzip.base64);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gzip.body), r#"{"compressed":true}"#);
    // UTF-8 stays text.
    let user = get(&app, &jwt, "/idp/github/user", "").await;
    assert!(!user.base64);
    assert_eq!(user.json()["login"], "octocat");
    // The IdP was asked for uncompressed answers.
    assert!(
        app.github
            .requests()
            .iter()
            .all(|r| r.header("accept-encoding") == Some("identity"))
    );
}

#[tokio::test]
async fn lambdas_limit_is_checked_on_the_response_as_written() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    // 3 MiB of U+0001 (18 MiB JSON-escaped) and 3.5 MiB of `\"` (7 MiB escaped): written as
    // base64, they fit, byte for byte.
    for (kind, units, unit_bytes) in [("controls", 3 << 20, 1), ("quotes", 7 << 18, 2)] {
        let answer = bytes(&app, &jwt, kind, units).await;
        assert_eq!(answer.status, 200, "{kind}");
        assert!(answer.base64, "{kind}");
        assert!(
            answer.size <= 6 * 1024 * 1024,
            "{kind}: {} bytes",
            answer.size
        );
        assert_eq!(
            answer.body.len(),
            units * unit_bytes + 2 * usize::from(kind == "quotes")
        );
    }
    // Under the 6 MiB read bound as bytes, over Lambda's limit once base64-encoded (and more
    // so escaped): the documented 502, with its CORS grant, never Lambda's opaque failure.
    for (kind, units) in [("binary", 4_800_000), ("quotes", 2_400_000)] {
        let answer = bytes(&app, &jwt, kind, units).await;
        answer.assert_error(502, "upstream_error");
        assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
        assert!(answer.size < 1024);
    }
}

#[tokio::test]
async fn conditional_requests_reach_the_idp_and_its_304_comes_back_bodiless() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let first = get(&app, &jwt, "/idp/github/conditional", "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("etag"), Some(CONDITIONAL_ETAG));
    assert_eq!(
        first.header("last-modified"),
        Some(CONDITIONAL_LAST_MODIFIED)
    );
    // Answers are per caller: never a public cache directive, and Vary names Authorization.
    assert_eq!(first.header("cache-control"), Some("private, max-age=60"));
    assert!(
        first
            .header_joined("vary")
            .split(", ")
            .any(|v| v.eq_ignore_ascii_case("authorization")),
        "{:?}",
        first.headers
    );

    for (name, value) in [
        ("if-none-match", CONDITIONAL_ETAG),
        ("if-modified-since", CONDITIONAL_LAST_MODIFIED),
    ] {
        let event = idp_event(
            "GET",
            "/idp/github/conditional",
            "",
            &jwt,
            &[(name, json!(value))],
        );
        let answer = app.invoke(&event.to_string()).await;
        assert_eq!(answer.status, 304, "{name}");
        assert!(!answer.has_body && answer.body.is_empty(), "{name}");
        assert_eq!(answer.header("etag"), Some(CONDITIONAL_ETAG));
        assert_eq!(
            answer.header("last-modified"),
            Some(CONDITIONAL_LAST_MODIFIED)
        );
        let sent = app.github.requests().pop().expect("a request");
        assert_eq!(sent.header(name), Some(value), "{name} reached the IdP");
    }
}

#[tokio::test]
async fn links_into_the_api_become_the_functions_own_url_and_others_are_dropped() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let own = format!("https://{HOST}/idp/github");
    let first = get(&app, &jwt, "/idp/github/user/repos", "per_page=2").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("link"),
        Some(
            format!(
                "<{own}/user/repos?per_page=2&page=2>; rel=\"next\", \
                 <{own}/user/repos?per_page=2&page=3>; rel=\"last\""
            )
            .as_str()
        )
    );
    // Following rel="next" through the proxy.
    let next = get(&app, &jwt, "/idp/github/user/repos", "per_page=2&page=2").await;
    let names: Vec<Value> = next
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("repo-3"), json!("repo-4")]);
    assert!(next.header("link").expect("links").contains(&format!(
        "<{own}/user/repos?per_page=2&page=1>; rel=\"first\""
    )));
    // A link to another origin (the stand-in's default) is dropped.
    let user = get(&app, &jwt, "/idp/github/user", "").await;
    assert_eq!(user.header("link"), None);

    // A named HTTP API stage, a REST API stage, and a REST API behind a custom domain's base
    // path: whatever precedes /idp/ in the caller's URL stays in front of it.
    let mut staged = idp_event(
        "GET",
        "/prod/idp/github/user/repos",
        "per_page=4",
        &jwt,
        &[],
    );
    staged["requestContext"]["stage"] = json!("prod");
    let answer = app.invoke(&staged.to_string()).await;
    assert_eq!(
        answer.header("link"),
        Some(
            format!("<https://{HOST}/prod/idp/github/user/repos?per_page=4&page=2>; rel=\"next\", <https://{HOST}/prod/idp/github/user/repos?per_page=4&page=2>; rel=\"last\"")
                .as_str()
        )
    );
    for (host, context_path, prefix) in [
        (HOST, "/prod/idp/github/user/repos", "/prod"),
        ("api.example.com", "/v1/idp/github/user/repos", "/v1"),
    ] {
        let mut rest = rest_event(&jwt);
        rest["path"] = json!("/idp/github/user/repos");
        rest["requestContext"]["path"] = json!(context_path);
        rest["queryStringParameters"] = json!({"per_page": "4", "page": "2"});
        rest["multiValueQueryStringParameters"] = json!({"per_page": ["4"], "page": ["2"]});
        rest["headers"]["Host"] = json!(host);
        rest["multiValueHeaders"]["Host"] = json!([host]);
        let answer = app.invoke(&rest.to_string()).await;
        assert_eq!(answer.status, 200);
        let link = answer.header("link").expect("a link");
        assert!(
            link.contains(&format!(
                "<https://{host}{prefix}/idp/github/user/repos?per_page=4&page=1>; rel=\"first\""
            )),
            "{link}"
        );
    }
}

#[tokio::test]
async fn head_is_allowed_where_get_is() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let answer = app
        .invoke(&idp_event("HEAD", "/idp/github/user", "", &jwt, &[]).to_string())
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    let sent = app.github.requests().pop().expect("a request");
    assert_eq!(
        (sent.method.as_str(), sent.path_and_query.as_str()),
        ("HEAD", "/user")
    );
    let delete = app
        .invoke(&idp_event("DELETE", "/idp/github/user", "", &jwt, &[]).to_string())
        .await;
    delete.assert_error(403, "forbidden_path");
    assert_eq!(app.github.calls(), 1);
}

/// Issue 14, item 3.
#[tokio::test]
async fn an_idp_token_echoed_by_the_idp_never_leaves_the_function() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let idp_token = github_token(USER);
    for path in ["/idp/github/echo/headers", "/idp/github/echo/link"] {
        let answer = get(&app, &jwt, path, "").await;
        answer.assert_error(502, "upstream_error");
        assert!(!String::from_utf8_lossy(&answer.body).contains(&idp_token));
        assert!(answer.headers.iter().all(|(_, v)| !v.contains(&idp_token)));
    }
    assert_eq!(app.github.calls(), 2);
    assert_not_logged(&[&idp_token, &jwt]);
}

/// Issue 14, item 6: each answered 400 `invalid_request` where lambda_http's conversion would
/// panic, before any upstream call.
pub fn hostile_events(jwt: &str) -> Vec<(&'static str, Value)> {
    let mut events = Vec::new();
    let mut body = idp_event("POST", "/idp/github/user", "", jwt, &[]);
    body["body"] = json!("not base64 at all!");
    body["isBase64Encoded"] = json!(true);
    events.push(("invalid base64 body", body));
    events.push((
        "invalid Host",
        idp_event(
            "GET",
            "/idp/github/user",
            "",
            jwt,
            &[("host", json!("exa mple.com"))],
        ),
    ));
    events.push((
        "odd X-Forwarded-Proto",
        idp_event(
            "GET",
            "/idp/github/user",
            "",
            jwt,
            &[("x-forwarded-proto", json!("gopher x"))],
        ),
    ));
    events.push((
        "control character in rawQueryString",
        idp_event("GET", "/idp/github/user", "a=\u{1}", jwt, &[]),
    ));
    let long = format!("/idp/github/{}", "a".repeat(70 * 1024));
    events.push(("URI over 64 KiB", idp_event("GET", &long, "", jwt, &[])));
    let mut rest = rest_event(jwt);
    rest["body"] = json!("%%%");
    rest["isBase64Encoded"] = json!(true);
    events.push(("REST API invalid base64 body", rest));
    events
}

#[tokio::test]
async fn hostile_event_fields_get_a_documented_400_and_no_upstream_call() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for (what, event) in hostile_events(&jwt) {
        let answer = app.invoke(&event.to_string()).await;
        answer.assert_error(400, "invalid_request");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(ORIGIN),
            "{what}"
        );
    }
    assert_eq!(app.github.calls(), 0);
    assert_eq!(app.tenant.jwks_calls() + app.tenant.token_calls(), 0);
}

/// Issue 14, item 7.
#[tokio::test]
async fn two_authorization_values_are_refused_in_rest_and_http_api_events() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    let bearer = format!("Bearer {jwt}");
    let mut rest = rest_event(&jwt);
    rest["multiValueHeaders"]["Authorization"] = json!([bearer, bearer]);
    let answer = app.invoke(&rest.to_string()).await;
    answer.assert_error(401, "invalid_token");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(crate::helpers::challenge(Some("invalid_token")).as_str())
    );
    // An HTTP API joins repeated headers with commas.
    let http = idp_event(
        "GET",
        "/idp/github/user",
        "",
        &jwt,
        &[("authorization", json!(format!("{bearer},{bearer}")))],
    );
    app.invoke(&http.to_string())
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(app.github.calls(), 0);
    assert_eq!(app.tenant.token_calls(), 0);
}

/// Issue 14, item 8.
#[tokio::test]
async fn one_idp_refusal_is_checked_again_and_a_claims_challenge_passes_through() {
    let app =
        TestApp::spawn_with(&[("IDP_TOKEN_REFUSAL_RECHECK", "1")], KeyPolicy::default()).await;
    let jwt = app.token(USER).sign();
    // Microsoft Graph's claims challenge: the IdP's 401 as it sent it, its challenge renamed so
    // that it cannot read as this API's own; the token stays in use.
    let claims = get(&app, &jwt, "/idp/github/claims", "").await;
    assert_eq!(claims.status, 401);
    assert_eq!(claims.json()["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        claims.header("x-idp-www-authenticate"),
        Some(CLAIMS_CHALLENGE)
    );
    assert_eq!(claims.header("www-authenticate"), None);
    let user_reads = app.tenant.user_calls();
    assert_eq!(get(&app, &jwt, "/idp/github/user", "").await.status, 200);
    assert_eq!(
        app.tenant.user_calls(),
        user_reads,
        "the token stayed cached"
    );

    // A plain 401 on one path: the token is dropped, and with nothing to renew it with, the
    // answer is reconsent_required…
    get(&app, &jwt, "/idp/github/refused", "")
        .await
        .assert_error(403, "reconsent_required");
    let calls = app.github.calls();
    // …and stays so, without calling the IdP, for IDP_TOKEN_REFUSAL_RECHECK…
    get(&app, &jwt, "/idp/github/user", "")
        .await
        .assert_error(403, "reconsent_required");
    assert_eq!(app.github.calls(), calls);
    // …after which the same token is tried again, and a healthy path works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let healthy = get(&app, &jwt, "/idp/github/user", "").await;
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.json()["login"], "octocat");
    assert_eq!(app.github.calls(), calls + 1);
}

/// Issue 14, item 9.
#[tokio::test]
async fn semicolons_and_look_alike_dots_are_refused_unless_the_connection_allows_them() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for path in [
        "/idp/github/user;x",
        "/idp/github/user%3Bx",
        "/idp/github/user%3bx",
        "/idp/github/%E2%80%A4%E2%80%A4/user",
        "/idp/github/%EF%BC%8E%EF%BC%8E",
        "/idp/github/user/\u{ff0e}",
    ] {
        get(&app, &jwt, path, "")
            .await
            .assert_error(403, "forbidden_path");
    }
    assert_eq!(app.github.calls(), 0);

    let allowing = TestApp::spawn_with(
        &[(
            "IDP_CONNECTIONS",
            r#"{"github": {"api_base": "{github}", "path_characters": ";"}}"#,
        )],
        KeyPolicy::default(),
    )
    .await;
    let jwt = allowing.token(USER).sign();
    let answer = get(&allowing, &jwt, "/idp/github/user%3Bx", "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        allowing
            .github
            .requests()
            .pop()
            .expect("a request")
            .path_and_query,
        "/user;x"
    );
    get(&allowing, &jwt, "/idp/github/%E2%80%A4%E2%80%A4", "")
        .await
        .assert_error(403, "forbidden_path");
}

/// The premise of the test above: lambda_http's own conversion panics on every one of them.
#[test]
fn hostile_events_make_lambda_https_own_conversion_panic() {
    let jwt = "a.b.c";
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let survived: Vec<&str> = hostile_events(jwt)
        .into_iter()
        .filter(|(_, event)| {
            let text = event.to_string();
            std::panic::catch_unwind(|| lambda_http::request::from_str(&text)).is_ok()
        })
        .map(|(what, _)| what)
        .collect();
    std::panic::set_hook(hook);
    assert!(survived.is_empty(), "{survived:?}");
}

/// The REST API sample event re-pointed at `GET /prod/idp/github{path}?{query}` with `jwt`.
pub fn rest_at(jwt: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let mut rest = rest_event(jwt);
    rest["path"] = json!(format!("/idp/github{path}"));
    rest["requestContext"]["path"] = json!(format!("/prod/idp/github{path}"));
    rest["pathParameters"]["proxy"] = json!(format!("idp/github{path}"));
    if !query.is_empty() {
        let single: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!([v])))
            .collect();
        rest["queryStringParameters"] = Value::Object(single);
        rest["multiValueQueryStringParameters"] = Value::Object(multi);
    }
    rest
}

/// Which Lambda response shape an answer was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// An HTTP API or Function URL: one string per header name.
    V2,
    /// A REST API: every value in `multiValueHeaders`.
    V1,
}

/// The events of `/headers/repeated` answered `status`, in both payloads, and the function's
/// own URL for `github` that each one's `Link`s must point to.
pub fn repeated_events(jwt: &str, status: u16) -> Vec<(Payload, Value, String)> {
    let query = format!("status={status}");
    vec![
        (
            Payload::V2,
            idp_event("GET", "/idp/github/headers/repeated", &query, jwt, &[]),
            format!("https://{HOST}/idp/github"),
        ),
        (
            Payload::V1,
            rest_at(jwt, "/headers/repeated", &[("status", &query[7..])]),
            format!("https://{HOST}/prod/idp/github"),
        ),
    ]
}

/// Asserts that every repeated field of `/headers/repeated` reached the caller: in payload v2
/// as one line joined with `, `, in payload v1 one value each; `Vary` merged with the
/// function's own members, each once; `Link`s rewritten to `own` or dropped as README says.
pub fn assert_repeated_fields(answer: &LambdaAnswer, payload: Payload, own: &str) {
    let expect = |values: &[&str]| -> Vec<String> {
        match payload {
            Payload::V2 => vec![values.join(", ")],
            Payload::V1 => values.iter().map(|v| (*v).to_owned()).collect(),
        }
    };
    // `Authorization` is the IdP's already: not named twice.
    assert_eq!(
        answer.values("vary"),
        [format!(
            "{}, Accept-Encoding, X-Requested-With, origin",
            REPEATED_VARY[0]
        )],
        "{payload:?}: {:?}",
        answer.headers
    );
    let next = format!("<{own}/user/repos?page=2>; rel=\"next\"");
    let last = format!("<{own}/user/repos?page=5>; rel=\"last\"");
    assert_eq!(
        answer.values("link"),
        expect(&[&next, &last]),
        "{payload:?}"
    );
    assert_eq!(
        answer.values("x-idp-www-authenticate"),
        expect(&REPEATED_CHALLENGES),
        "{payload:?}"
    );
    assert_eq!(answer.values("www-authenticate"), Vec::<&str>::new());
    assert_eq!(
        answer.values("x-ratelimit-limit"),
        expect(&REPEATED_RATE_LIMITS),
        "{payload:?}"
    );
    assert_eq!(answer.values("access-control-allow-origin"), [ORIGIN]);
    assert_eq!(answer.json()["repeated"], true);
}

#[tokio::test]
async fn repeated_header_fields_reach_the_caller_in_both_payloads() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    // A success and an IdP error, passed through alike.
    for status in [200, 403] {
        for (payload, event, own) in repeated_events(&jwt, status) {
            let answer = app.invoke(&event.to_string()).await;
            assert_eq!(answer.status, status, "{payload:?}");
            assert_repeated_fields(&answer, payload, &own);
        }
    }
    assert_eq!(app.github.calls(), 4);
}

/// The `/headers/latin1-etag` event in both payloads.
pub fn latin1_events(jwt: &str) -> Vec<(Payload, Value)> {
    vec![
        (
            Payload::V2,
            idp_event("GET", "/idp/github/headers/latin1-etag", "", jwt, &[]),
        ),
        (Payload::V1, rest_at(jwt, "/headers/latin1-etag", &[])),
    ]
}

/// Asserts that the answer to `/headers/latin1-etag` is the IdP's, whole but for its `ETag`.
pub fn assert_latin1_etag_dropped(answer: &LambdaAnswer, payload: Payload) {
    assert_eq!(answer.status, 200, "{payload:?}");
    assert_eq!(answer.json(), json!({"etag": "latin-1"}), "{payload:?}");
    assert_eq!(answer.values("etag"), Vec::<&str>::new(), "{payload:?}");
    assert_eq!(answer.values("vary"), ["Accept, authorization, origin"]);
    assert_eq!(answer.values("access-control-allow-origin"), [ORIGIN]);
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_header_value_that_is_not_utf8_is_dropped_and_counted_never_the_answer() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    // The premise: the stand-in sends the ETag's byte 0xE9 as it is.
    let direct = reqwest::Client::new()
        .get(format!("{}/headers/latin1-etag", app.github.origin()))
        .bearer_auth(github_token(USER))
        .send()
        .await
        .expect("the stand-in answers");
    assert_eq!(direct.headers()["etag"].as_bytes(), LATIN1_ETAG);

    for (payload, event) in latin1_events(&jwt) {
        let (answer, request_id) = app.invoke_traced(&event.to_string()).await;
        assert_latin1_etag_dropped(&answer, payload);
        let line = summary(&request_id);
        assert_emf(&line);
        assert_eq!(line["status"], 200, "the status the caller got");
        assert_eq!(line["HeaderValuesDropped"], 1, "{line}");
    }
    // An answer with nothing to drop says nothing of it.
    let (answer, request_id) = app
        .invoke_traced(&idp_event("GET", "/idp/github/user", "", &jwt, &[]).to_string())
        .await;
    assert_eq!(answer.status, 200);
    assert!(summary(&request_id).get("HeaderValuesDropped").is_none());
    let logs = crate::helpers::logs();
    assert!(logs.contains("\"header\":\"etag\""), "the name is logged");
    assert!(!logs.contains("caf\u{e9}") && !logs.contains("caf\u{fffd}"));
}

/// An event for each way the function answers with an error of its own — refused before it is
/// a request, refused by authentication, by routing, by the connection's rules, after the IdP's
/// answer, over Lambda's limit — in both payloads, with the status and code each must get.
/// The re-consent comes last: it leaves the token refused.
pub fn own_error_events(jwt: &str) -> Vec<(Payload, u16, &'static str, Value)> {
    let no_token = idp_event(
        "GET",
        "/idp/github/user",
        "",
        jwt,
        &[("authorization", Value::Null)],
    );
    let mut rest_no_token = rest_event(jwt);
    for field in ["headers", "multiValueHeaders"] {
        rest_no_token[field]
            .as_object_mut()
            .expect("headers")
            .remove("Authorization");
    }
    let mut rest_hostile = rest_event(jwt);
    rest_hostile["body"] = json!("%%%");
    rest_hostile["isBase64Encoded"] = json!(true);
    let get = |path: &str, query: &str| idp_event("GET", path, query, jwt, &[]);
    vec![
        (
            Payload::V2,
            400,
            "invalid_request",
            hostile_events(jwt)[0].1.clone(),
        ),
        (Payload::V1, 400, "invalid_request", rest_hostile),
        (Payload::V2, 401, "invalid_token", no_token),
        (Payload::V1, 401, "invalid_token", rest_no_token),
        (
            Payload::V2,
            401,
            "invalid_token",
            idp_event(
                "GET",
                "/idp/github/user",
                "",
                jwt,
                &[("authorization", json!("Bearer not.a.jwt"))],
            ),
        ),
        (Payload::V2, 404, "not_found", get("/nowhere", "")),
        (
            Payload::V2,
            404,
            "unknown_connection",
            get("/idp/nope/user", ""),
        ),
        (
            Payload::V2,
            405,
            "method_not_allowed",
            idp_event("POST", "/identities", "", jwt, &[]),
        ),
        (
            Payload::V2,
            403,
            "forbidden_path",
            idp_event("DELETE", "/idp/github/user", "", jwt, &[]),
        ),
        (
            Payload::V1,
            403,
            "forbidden_path",
            rest_at(jwt, "/user;x", &[]),
        ),
        (
            Payload::V2,
            502,
            "upstream_error",
            get("/idp/github/echo/headers", ""),
        ),
        (
            Payload::V2,
            502,
            "upstream_error",
            get("/idp/github/bytes/binary", "size=4800000"),
        ),
        (
            Payload::V1,
            502,
            "upstream_error",
            rest_at(jwt, "/bytes/binary", &[("size", "4800000")]),
        ),
        (
            Payload::V2,
            403,
            "reconsent_required",
            get("/idp/github/refused", ""),
        ),
    ]
}

/// Asserts an error of the function's own with its one merged `Vary` and its CORS grant.
pub fn assert_own_error(answer: &LambdaAnswer, payload: Payload, status: u16, code: &str) {
    answer.assert_error(status, code);
    assert_eq!(
        answer.values("vary"),
        ["authorization, origin"],
        "{payload:?} {code}: {:?}",
        answer.headers
    );
    assert_eq!(answer.values("access-control-allow-origin"), [ORIGIN]);
}

#[tokio::test]
async fn every_error_answer_of_the_functions_own_varies_on_authorization_and_origin_once() {
    let app = spawn().await;
    let jwt = app.token(USER).sign();
    for (payload, status, code, event) in own_error_events(&jwt) {
        let (answer, request_id) = app.invoke_traced(&event.to_string()).await;
        assert_own_error(&answer, payload, status, code);
        assert_eq!(summary(&request_id)["status"], status, "{code}");
    }
}
