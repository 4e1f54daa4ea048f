//! Attacks on `RESPONSE_MODE=streaming` and the content API (a review of the streaming change):
//! each test states the input and what the function should do with it, and fails while the
//! defect it names stands.

use std::time::{Duration, Instant};

use auth0_idp_proxy::idp::IdpRequest;
use auth0_idp_proxy::idp::connections::Connections;
use auth0_idp_proxy::streaming::Cut;
use futures_util::StreamExt;
use http::{HeaderMap, Method};
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use serde_json::json;

use crate::audit::audit_line;
use crate::helpers::{TestApp, idp_event, unique};
use crate::metrics::summary;

/// A streaming deployment whose `github` and `box` connections are served by the stand-in.
async fn spawn() -> TestApp {
    crate::downloads::spawn_with(&[("RESPONSE_MODE", "streaming")]).await
}

/// A GitHub user whose token the stand-in accepts: their Auth0 token and IdP token.
fn user(app: &TestApp) -> (String, String) {
    let sub = unique("github|attack-");
    let token = unique("gho_attack_");
    app.github.grant(&token, json!({"login": "jane"}));
    app.tenant
        .add_user(standin::profile(&sub, &[("github", "user-1", &token)]));
    (app.token(&sub).sign(), token)
}

/// `event` (its JSON text) as lambda_runtime hands it over, with Lambda's deadline `budget`
/// away; and its request id.
fn lambda_event(event: &str, budget: Duration) -> (LambdaEvent<LambdaRequest>, String) {
    let payload: LambdaRequest = serde_json::from_str(event).expect("an event");
    let mut context = Context::default();
    context.request_id = unique("attack-");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    context.deadline = u64::try_from((now + budget).as_millis()).expect("fits");
    let request_id = context.request_id.clone();
    (LambdaEvent::new(payload, context), request_id)
}

/// `body` inflated as a caller's client does for `Content-Encoding: gzip` (what inflates of a
/// cut body too).
fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut inflated = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut inflated);
    inflated
}

#[tokio::test]
async fn a_gzip_body_behind_a_first_identity_coding_is_still_checked() {
    // The IdP echoes the token deep in a gzip body whose `Content-Encoding` comes as two field
    // lines, `identity` then `gzip`. The caller gets both (`content-encoding: identity, gzip`)
    // and its client inflates the body: the guard must search what the caller will read, or
    // refuse an encoding list it does not check, as it refuses `gzip, identity` on one line.
    let app = spawn().await;
    let (jwt, token) = user(&app);
    let event = idp_event(
        "GET",
        "/idp/github/bytes/token-late-identity-gzip",
        "size=200000",
        &jwt,
        &[],
    );
    let answer = app.invoke_streamed(&event.to_string()).await;
    let codings = answer.header("content-encoding").map(str::to_owned);
    let inflated = gunzip(&answer.body);
    let carried = memchr::memmem::find(&inflated, token.as_bytes()).is_some();
    assert!(
        !carried,
        "status {}, Content-Encoding {codings:?}, cut {:?}: the caller's client inflates the \
         token from the {} bytes sent",
        answer.status(),
        answer.cut,
        answer.body.len()
    );
}

#[tokio::test]
async fn a_stream_past_the_deadline_is_cut_as_the_deadline_not_as_the_idp_breaking_off() {
    // A large download and a caller that reads slowly: the invocation's deadline comes while
    // the IdP's next bytes are already there. The docs: the stream ends with
    // `Proxy.DeadlinePassed`, the lines carry `stream_cut: deadline`. reqwest's own total
    // timeout (`send_for_stream` sets it to the same deadline, and it is checked before the body
    // is read) ends the body first, and the cut is reported as `upstream_error`
    // (`Proxy.UpstreamBrokeOff`): the operator is told the IdP broke off.
    let app = spawn().await;
    let (jwt, _) = user(&app);
    let event = idp_event(
        "GET",
        "/idp/github/bytes/binary",
        "size=100000000",
        &jwt,
        &[],
    );
    let started = Instant::now();
    let (lambda, request_id) = lambda_event(&event.to_string(), Duration::from_millis(2_000));
    let streamed = app.app.invoke_streamed(lambda).await;
    let mut body = streamed.body;
    let first = body.next().await;
    assert!(
        matches!(first, Some(Ok(_))),
        "the stream started: {first:?}"
    );
    // The caller is slow: the deadline (2 s less the 250 ms margin) passes before it asks again.
    tokio::time::sleep(Duration::from_millis(2_500).saturating_sub(started.elapsed())).await;
    let mut cut = None;
    while let Some(item) = body.next().await {
        if let Err(reason) = item {
            cut = Some(reason);
        }
    }
    drop(body);
    assert_eq!(cut, Some(Cut::Deadline), "ended by the deadline");
    assert_eq!(summary(&request_id)["stream_cut"], "deadline");
}

#[tokio::test]
async fn a_stream_the_writer_abandons_is_not_logged_as_a_whole_answer() {
    // The writer stops taking the body after its first chunk (the caller went away, the
    // Runtime API refused the stream): `ending::reported` says so (`Ending::abandoned`), but
    // `logged` drops that, and the summary and audit lines read as a `200` sent whole — no
    // `stream_cut`, no count, nothing to tell it from a complete download.
    let app = spawn().await;
    let (jwt, _) = user(&app);
    let event = idp_event(
        "GET",
        "/idp/github/bytes/binary",
        "size=20000000",
        &jwt,
        &[],
    );
    let (lambda, request_id) = lambda_event(&event.to_string(), Duration::from_secs(30));
    let streamed = app.app.invoke_streamed(lambda).await;
    let mut body = streamed.body;
    let first = body.next().await;
    let sent = match first {
        Some(Ok(chunk)) => chunk.len() as u64,
        other => panic!("the stream did not start: {other:?}"),
    };
    drop(body);
    let line = summary(&request_id);
    let audit = audit_line(&request_id);
    assert_eq!(audit["response_bytes"], sent);
    let marked = |line: &serde_json::Value| {
        line.get("stream_cut").is_some() || line.to_string().contains("abandon")
    };
    assert!(
        marked(&line) && marked(&audit),
        "a stream abandoned after {sent} of 20000000 bytes logs as a whole answer:\n{line}\n{audit}"
    );
}

/// A call of `method` on `path` for `connection`, by a caller holding nothing, as the proxy
/// checks it before any upstream call: the URL it would go to, or why it is refused.
fn routed(
    connection: &auth0_idp_proxy::idp::connections::Connection,
    method: Method,
    path: &str,
) -> Result<String, String> {
    let headers = HeaderMap::new();
    IdpRequest::new(
        connection,
        method,
        path,
        Some("arg=%7B%22path%22%3A%22%2Freport.pdf%22%7D"),
        &headers,
        b"",
        &|_| false,
    )
    .map(|request| request.url.to_string())
    .map_err(|error| format!("{error:?}"))
}

#[test]
fn a_needs_on_the_connections_rules_still_holds_for_a_content_call() {
    // The operator protects every Dropbox file call with a permission. The content API's
    // catalogue rules (no `needs`) are consulted first and, allowing the call, settle it: a
    // caller without `dropbox:files` downloads any file of the user's.
    let connections = Connections::from_json(
        &json!({"dropbox": {"allow": [
            "POST /2/users/get_current_account",
            "* /2/files/** needs dropbox:files",
        ]}})
        .to_string(),
    )
    .expect("valid IDP_CONNECTIONS");
    let dropbox = connections.get("dropbox").expect("dropbox");
    for method in [Method::GET, Method::POST] {
        let verdict = routed(dropbox, method.clone(), "/2/files/download");
        assert!(
            verdict
                .as_ref()
                .is_err_and(|e| e.contains("InsufficientScope")),
            "{method} /2/files/download without dropbox:files: {verdict:?}"
        );
    }
}

#[test]
fn an_operators_narrowed_allow_list_is_not_widened_by_the_content_api() {
    // `IDP_CONNECTIONS` replaces the entry's `allow` whole: this operator lets callers read the
    // account only. The catalogue's `content_api` stays, with its own rules, and now lets every
    // caller download, preview and export the user's files.
    let connections = Connections::from_json(
        &json!({"dropbox": {"allow": ["POST /2/users/get_current_account"]}}).to_string(),
    )
    .expect("valid IDP_CONNECTIONS");
    let dropbox = connections.get("dropbox").expect("dropbox");
    for path in [
        "/2/files/download",
        "/2/files/export",
        "/2/files/get_preview",
    ] {
        let verdict = routed(dropbox, Method::GET, path);
        assert!(
            verdict.is_err(),
            "GET {path}, which the operator's rules do not allow, would be sent to {verdict:?}"
        );
    }
}
