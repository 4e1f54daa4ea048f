//! `RESPONSE_MODE=streaming`: a successful IdP answer's body streams to the caller as the IdP
//! sends it (past the 6 MB a buffered answer is held to), through every header rule of a
//! buffered answer; a body that carries the IdP token, plain or compressed, is cut before any
//! byte of the token leaves, with the cut logged and counted; the summary and audit lines count
//! the bytes actually sent. Through the handler's streaming entry point and the real binary under
//! the stand-in Runtime API's streaming protocol.

use auth0_idp_proxy::streaming::Cut;
use serde_json::json;

use standin::StreamEnd;

use crate::audit::audit_line;
use crate::binary::RealBinary;
use crate::helpers::{PLACEHOLDER, TestApp, assert_not_logged, event_text, idp_event, unique};
use crate::metrics::summary;

/// A streaming deployment whose `github` and `box` connections are served by the stand-in.
async fn spawn() -> TestApp {
    crate::downloads::spawn_with(&[
        ("RESPONSE_MODE", "streaming"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
    ])
    .await
}

/// A user of `connection` whose token the stand-in accepts: their Auth0 token and IdP token.
fn user(app: &TestApp, connection: &str) -> (String, String) {
    let sub = unique(&format!("{connection}|stream-"));
    let token = unique("gho_stream_");
    app.github
        .grant(&token, json!({"login": "jane", "public_repos": 3}));
    app.tenant
        .add_user(standin::profile(&sub, &[(connection, "user-1", &token)]));
    (app.token(&sub).sign(), token)
}

/// The bytes `/bytes/binary` serves: 0 to 255 over and over.
fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 256) as u8).collect()
}

#[tokio::test]
async fn a_body_over_lambdas_buffered_limit_streams_whole_with_the_header_rules() {
    let app = spawn().await;
    let (jwt, token) = user(&app, "github");
    let size = 20_000_000;
    let event = idp_event(
        "GET",
        "/idp/github/bytes/binary",
        &format!("size={size}"),
        &jwt,
        &[("origin", json!("https://app.example.com"))],
    );
    let answer = app.invoke_streamed(&event.to_string()).await;
    assert_eq!(answer.status(), 200, "{}", answer.prelude);
    assert_eq!(answer.cut, None);
    assert!(
        answer.body.len() == size && answer.body == pattern(size),
        "byte for byte"
    );
    // The rules of a buffered answer: only the passed headers, the caller's Vary, CORS.
    assert!(answer.header("set-cookie").is_none(), "{}", answer.prelude);
    assert_eq!(answer.prelude["cookies"], json!([]));
    assert!(answer.header("x-oauth-scopes").is_none());
    assert!(
        answer
            .header("vary")
            .is_some_and(|v| v.contains("authorization"))
    );
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    // The lines wait for the stream's end, and count what it sent.
    let line = summary(&answer.request_id);
    assert_eq!(line["status"], 200);
    assert!(line.get("stream_cut").is_none(), "{line}");
    let audit = audit_line(&answer.request_id);
    assert_eq!(audit["response_bytes"], size as u64);
    assert_not_logged(&[&token]);
}

#[tokio::test]
async fn a_streamed_answer_keeps_link_rewriting_and_head_has_no_body() {
    let app = spawn().await;
    let (jwt, _) = user(&app, "github");
    let event = idp_event("GET", "/idp/github/user/repos", "per_page=1", &jwt, &[]);
    let answer = app.invoke_streamed(&event.to_string()).await;
    assert_eq!(answer.status(), 200);
    let link = answer.header("link").expect("a Link");
    assert!(link.contains("/idp/github/user/repos?"), "{link}");
    assert!(!link.contains("127.0.0.1"), "{link}");
    let repos: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(repos.as_array().map(Vec::len), Some(1));

    let head = idp_event("HEAD", "/idp/github/bytes/binary", "size=4096", &jwt, &[]);
    let answer = app.invoke_streamed(&head.to_string()).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.body.is_empty());
    assert_eq!(audit_line(&answer.request_id)["response_bytes"], 0);
}

#[tokio::test]
async fn the_functions_own_errors_are_whole_answers_in_the_stream() {
    let app = spawn().await;
    let event = idp_event("GET", "/idp/github/user", "", "not-a-jwt", &[]);
    let answer = app.invoke_streamed(&event.to_string()).await;
    assert_eq!(answer.status(), 401);
    assert!(answer.header("www-authenticate").is_some());
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON error");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(answer.cut, None);
}

#[tokio::test]
async fn a_body_carrying_the_token_is_cut_before_any_byte_of_it() {
    let app = spawn().await;
    for kind in ["token-late", "token-late-gzip"] {
        let (jwt, token) = user(&app, "github");
        let event = idp_event(
            "GET",
            &format!("/idp/github/bytes/{kind}"),
            "size=3000000",
            &jwt,
            &[],
        );
        let answer = app.invoke_streamed(&event.to_string()).await;
        assert_eq!(
            answer.status(),
            200,
            "{kind}: the head left before the token came"
        );
        assert_eq!(answer.cut, Some(Cut::CarriesToken), "{kind}");
        // Not the token, nor its start.
        let sent = if kind.ends_with("gzip") {
            let mut inflated = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&answer.body[..]),
                &mut inflated,
            );
            inflated
        } else {
            answer.body.clone()
        };
        assert!(
            sent.iter().all(|b| *b == b'.'),
            "{kind}: no byte of the token"
        );
        assert!(sent.len() <= 1_500_000, "{kind}");
        let line = summary(&answer.request_id);
        assert_eq!(line["stream_cut"], "carries_token", "{line}");
        assert_eq!(line["StreamsCut"], 1, "{line}");
        let audit = audit_line(&answer.request_id);
        assert_eq!(audit["stream_cut"], "carries_token");
        assert_eq!(audit["response_bytes"], answer.body.len() as u64);
        assert_not_logged(&[&token]);
    }
}

#[tokio::test]
async fn a_signed_download_streams_from_the_download_host() {
    let app = spawn().await;
    let (jwt, token) = user(&app, "box");
    let size = 8_000_000;
    let event = idp_event(
        "GET",
        "/idp/box/2.0/files/7/content",
        &format!("size={size}"),
        &jwt,
        &[],
    );
    let answer = app.invoke_streamed(&event.to_string()).await;
    assert_eq!(answer.status(), 200, "{}", answer.prelude);
    assert!(answer.header("location").is_none());
    assert!(answer.body == pattern(size), "the file, byte for byte");
    let download = app
        .github
        .requests()
        .into_iter()
        .find(|r| r.path_and_query.starts_with("/d/1/7/download"))
        .expect("the download");
    assert!(download.header("authorization").is_none());
    assert_not_logged(&[&token]);
}

/// The real binary in streaming mode, with `app`'s configuration.
async fn streaming_binary(app: &TestApp) -> RealBinary {
    RealBinary::start(app, &[("RESPONSE_MODE", "streaming")]).await
}

#[tokio::test]
async fn the_real_binary_streams_through_the_runtime_apis_streaming_protocol() {
    let app = spawn().await;
    let binary = streaming_binary(&app).await;
    let (jwt, token) = user(&app, "github");
    let size = 12_000_000;
    // A REST API's event (payload v1), as the streaming deployment sends.
    let mut event: serde_json::Value = serde_json::from_str(
        &event_text("rest-api-idp-github-user.json").replace(PLACEHOLDER, &jwt),
    )
    .expect("event");
    event["path"] = json!("/idp/github/bytes/binary");
    event["requestContext"]["path"] = json!("/prod/idp/github/bytes/binary");
    event["queryStringParameters"] = json!({"size": size.to_string()});
    event["multiValueQueryStringParameters"] = json!({"size": [size.to_string()]});
    let streamed = binary.invoke_streamed(&event).await;
    assert_eq!(
        streamed.content_type.as_deref(),
        Some(standin::HTTP_INTEGRATION_CONTENT_TYPE)
    );
    let prelude = streamed.prelude.clone().expect("a prelude");
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    assert!(prelude["headers"].get("set-cookie").is_none());
    let (body, end) = streamed.collect().await;
    assert_eq!(end, StreamEnd::Complete { bytes: size as u64 });
    assert!(body == pattern(size), "byte for byte");

    // The function's own error: a whole answer in the stream.
    let missing = binary
        .invoke_streamed(
            &serde_json::from_str(&event_text("http-api-missing-token.json")).expect("event"),
        )
        .await;
    assert_eq!(
        missing.prelude.as_ref().map(|p| p["statusCode"].clone()),
        Some(json!(401))
    );
    let (body, end) = missing.collect().await;
    assert!(matches!(end, StreamEnd::Complete { .. }));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")["error"],
        "invalid_token"
    );
    let logs = binary.logs().await;
    assert!(!logs.contains(&token));
}

#[tokio::test]
async fn the_real_binary_ends_a_stream_carrying_the_token_with_lambdas_error_trailers() {
    let app = spawn().await;
    let binary = streaming_binary(&app).await;
    let (jwt, token) = user(&app, "github");
    let event = idp_event(
        "GET",
        "/idp/github/bytes/token-late",
        "size=2000000",
        &jwt,
        &[],
    );
    let streamed = binary.invoke_streamed(&event).await;
    assert_eq!(
        streamed.prelude.as_ref().map(|p| p["statusCode"].clone()),
        Some(json!(200))
    );
    let (body, end) = streamed.collect().await;
    let StreamEnd::Failed {
        bytes,
        error_type,
        error_body,
    } = end
    else {
        panic!("not ended with the error trailers: {end:?}");
    };
    assert_eq!(error_type, "Proxy.AnswerCarriesToken");
    assert_eq!(bytes, body.len() as u64);
    let error: serde_json::Value = serde_json::from_str(&error_body).expect("the error's JSON");
    assert_eq!(error["errorType"], "Proxy.AnswerCarriesToken");
    assert!(body.iter().all(|b| *b == b'.'), "no byte of the token");
    assert!(!error_body.contains(&token));
    let logs = binary.logs().await;
    assert!(!logs.contains(&token), "the token reached the logs");
    assert!(
        logs.contains("\"stream_cut\":\"carries_token\""),
        "the cut is logged"
    );
    assert!(logs.contains("\"StreamsCut\":1"), "and counted");
}

#[tokio::test]
async fn the_real_binary_in_buffered_mode_refuses_what_only_a_stream_could_carry() {
    let app = spawn().await;
    let binary = RealBinary::start(&app, &[("RESPONSE_MODE", "buffered")]).await;
    let (jwt, _) = user(&app, "github");
    let event = idp_event("GET", "/idp/github/bytes/binary", "size=8000000", &jwt, &[]);
    let answer = binary.invoke(&event).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "upstream_error");
}

#[tokio::test]
async fn the_real_binary_streams_every_streaming_sample_event() {
    let app = spawn().await;
    let binary = streaming_binary(&app).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events/streaming");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("events/streaming/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "the streaming mode has sample events");
    for name in names {
        let (jwt, _) = user(&app, "box");
        let event: serde_json::Value = serde_json::from_str(
            &event_text(&format!("streaming/{name}")).replace(PLACEHOLDER, &jwt),
        )
        .expect("a JSON event");
        let streamed = binary.invoke_streamed(&event).await;
        let status = streamed.prelude.as_ref().map(|p| p["statusCode"].clone());
        assert_eq!(status, Some(json!(200)), "{name}");
        let (body, end) = streamed.collect().await;
        assert!(matches!(end, StreamEnd::Complete { .. }), "{name}: {end:?}");
        assert!(!body.is_empty(), "{name}: the file");
    }
}
