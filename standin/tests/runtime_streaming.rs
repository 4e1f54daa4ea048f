//! The stand-in Runtime API speaks Lambda's response-streaming protocol, driven at the wire as a
//! runtime drives it: `GET next`, then a chunked `POST .../response` with
//! `Lambda-Runtime-Function-Response-Mode: streaming`, declaring the error trailers (hyper's
//! HTTP/1 client sends only the trailers a request declares in its `Trailer` header).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::HeaderMap;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use standin::{
    HTTP_INTEGRATION_CONTENT_TYPE, Invocation, MAX_STREAMED_RESPONSE_BYTES, Outcome,
    PRELUDE_WINDOW_BYTES, RuntimeApi, StreamEnd, Streamed,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

const WAIT: Duration = Duration::from_secs(60);

/// The size of the chunks the function writes in the large streams.
const CHUNK: usize = 64 * 1024;

/// The payload byte at `offset`: a pattern that catches a lost, repeated or reordered chunk.
fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `len` (at most [`CHUNK`]) payload bytes from `offset`, sliced from one shared buffer: the
/// function side holds no body either.
fn pattern(offset: u64, len: usize) -> Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| (0..(CHUNK + 251) as u64).map(pattern_byte).collect());
    let start = (offset % 251) as usize;
    pattern.slice(start..start + len)
}

/// Whether `chunk` is the payload from `offset`.
fn is_pattern(chunk: &[u8], offset: u64) -> bool {
    chunk
        .chunks(CHUNK)
        .enumerate()
        .all(|(i, piece)| piece == pattern(offset + (i * CHUNK) as u64, piece.len()))
}

/// The process's resident memory, in bytes (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Plays the runtime's `GET next`: the invocation's id.
async fn next_id(api: &RuntimeApi) -> String {
    let response = reqwest::get(format!(
        "http://{}/2018-06-01/runtime/invocation/next",
        api.address()
    ))
    .await
    .expect("next");
    response.headers()["lambda-runtime-aws-request-id"]
        .to_str()
        .expect("request id")
        .to_owned()
}

/// A streamed response being posted over its own HTTP/1.1 connection.
struct Posting {
    /// The body's frames, one at a time as hyper takes them; dropping it ends the body.
    frames: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    /// The Runtime API's answer: its status, or the client's error.
    answer: JoinHandle<Result<u16, hyper::Error>>,
    /// The connection; aborting it closes the socket.
    connection: JoinHandle<()>,
}

impl Posting {
    async fn data(&self, data: impl Into<Bytes>) {
        self.frames
            .send(Ok(Frame::data(data.into())))
            .await
            .expect("the request is still sending");
    }

    async fn trailers(&self, trailers: HeaderMap) {
        self.frames
            .send(Ok(Frame::trailers(trailers)))
            .await
            .expect("the request is still sending");
    }

    /// Ends the body (the terminating chunk) and waits for the Runtime API's answer.
    async fn finish(self) -> Result<u16, hyper::Error> {
        drop(self.frames);
        self.answer.await.expect("answer task")
    }
}

/// Starts posting a streamed response to invocation `id` as a runtime does.
async fn post_stream(api: &RuntimeApi, id: &str, content_type: &str) -> Posting {
    let socket = tokio::net::TcpStream::connect(api.address())
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
        .await
        .expect("handshake");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let (frames, receiver) = mpsc::channel(1);
    let request = hyper::Request::post(format!("/2018-06-01/runtime/invocation/{id}/response"))
        .header("host", api.address())
        .header("lambda-runtime-function-response-mode", "streaming")
        .header("transfer-encoding", "chunked")
        .header("content-type", content_type)
        .header(
            "trailer",
            "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
        )
        .body(StreamBody::new(ReceiverStream::new(receiver)))
        .expect("request");
    let answer = tokio::spawn(async move {
        sender
            .send_request(request)
            .await
            .map(|response| response.status().as_u16())
    });
    Posting {
        frames,
        answer,
        connection,
    }
}

/// The streamed outcome of an invocation; panics on any other.
fn streamed(outcome: Option<Outcome>) -> Streamed {
    match outcome {
        Some(Outcome::Streamed(streamed)) => streamed,
        other => panic!("expected a streamed response, got {other:?}"),
    }
}

/// The error of an invocation that a malformed stream failed; panics on any other outcome.
fn malformed(outcome: Option<Outcome>) -> Value {
    match outcome {
        Some(Outcome::Error(error)) => {
            assert_eq!(error["errorType"], "MalformedStream");
            error
        }
        other => panic!("expected a malformed stream, got {other:?}"),
    }
}

/// Queues an invocation on `api`, takes it as the runtime does (`GET next`) and starts posting
/// its streamed response as `content_type`.
async fn invoke(api: &RuntimeApi, content_type: &str) -> (Invocation, Posting) {
    let invocation = api.queue("{}", WAIT).expect("queued");
    let id = next_id(api).await;
    let posting = post_stream(api, &id, content_type).await;
    (invocation, posting)
}

/// A fresh Runtime API with one invocation whose response is being posted as `content_type`.
async fn start(content_type: &str) -> (RuntimeApi, Invocation, Posting) {
    let api = RuntimeApi::start().await.expect("runtime API");
    let (invocation, posting) = invoke(&api, content_type).await;
    (api, invocation, posting)
}

/// The trailers a runtime sends to fail its stream: the error's type, and its body in base64.
fn error_trailers(error_type: &str, error_body: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert(
        "lambda-runtime-function-error-type",
        error_type.parse().expect("value"),
    );
    trailers.insert(
        "lambda-runtime-function-error-body",
        base64::engine::general_purpose::STANDARD
            .encode(error_body)
            .parse()
            .expect("value"),
    );
    trailers
}

/// The Runtime API's answer to the function's posting, once the function's task is done.
async fn answer(function: JoinHandle<Result<u16, hyper::Error>>) -> u16 {
    function.await.expect("function").expect("answer")
}

const PRELUDE: &str =
    r#"{"statusCode":201,"headers":{"content-type":"text/plain"},"cookies":["a=b","c=d"]}"#;

#[tokio::test]
async fn a_stream_arrives_as_its_prelude_then_the_exact_body_across_many_chunks() {
    let (_api, invocation, posting) = start(HTTP_INTEGRATION_CONTENT_TYPE).await;

    // The prelude in three pieces, the delimiter split across two chunks, then 600 chunks of
    // 1 to 997 bytes.
    let sizes: Vec<usize> = (0..600).map(|i| 1 + (i * 389) % 997).collect();
    let total: u64 = 5 + sizes.iter().map(|&n| n as u64).sum::<u64>();
    let started = Instant::now();
    let function = tokio::spawn(async move {
        let (a, rest) = PRELUDE.split_at(10);
        let (b, c) = rest.split_at(30);
        posting.data(a.to_owned()).await;
        posting.data(b.to_owned()).await;
        posting.data(format!("{c}\0\0\0")).await;
        let mut first = vec![0u8; 5];
        first.extend_from_slice(&pattern(0, 5));
        posting.data(first).await;
        let mut offset = 5;
        for size in sizes {
            posting.data(pattern(offset, size)).await;
            offset += size as u64;
        }
        posting.finish().await
    });

    let streamed = streamed(invocation.outcome(WAIT).await);
    assert!(streamed.received_at >= started);
    assert_eq!(
        streamed.content_type.as_deref(),
        Some(HTTP_INTEGRATION_CONTENT_TYPE)
    );
    let prelude = streamed.prelude.clone().expect("a prelude");
    assert_eq!(prelude["statusCode"], 201);
    assert_eq!(prelude["headers"]["content-type"], "text/plain");
    assert_eq!(prelude["cookies"], json!(["a=b", "c=d"]));

    let (body, end) = streamed.collect().await;
    assert_eq!(end, StreamEnd::Complete { bytes: total });
    assert_eq!(body.len() as u64, total);
    assert!(is_pattern(&body, 0), "the body is exactly what was sent");
    assert_eq!(answer(function).await, 202);
}

#[tokio::test]
async fn error_trailers_fail_the_stream_with_the_decoded_error() {
    let (_api, invocation, posting) = start(HTTP_INTEGRATION_CONTENT_TYPE).await;
    let error_body = r#"{"errorType":"Upstream","errorMessage":"the IdP went away"}"#;
    let function = tokio::spawn(async move {
        posting
            .data(format!("{PRELUDE}\0\0\0\0\0\0\0\0partial"))
            .await;
        posting.data("ly sent").await;
        posting
            .trailers(error_trailers("Runtime.StreamError", error_body))
            .await;
        posting.finish().await
    });

    let (body, end) = streamed(invocation.outcome(WAIT).await).collect().await;
    assert_eq!(body, b"partially sent");
    assert_eq!(
        end,
        StreamEnd::Failed {
            bytes: 14,
            error_type: "Runtime.StreamError".to_owned(),
            error_body: error_body.to_owned(),
        }
    );
    // "Lambda treats this as a successful response."
    assert_eq!(answer(function).await, 202);
}

#[tokio::test]
async fn error_trailers_before_the_delimiter_fail_the_invocation() {
    let (_api, invocation, posting) = start(HTTP_INTEGRATION_CONTENT_TYPE).await;
    let function = tokio::spawn(async move {
        posting.data(r#"{"statusCode":"#).await;
        posting
            .trailers(error_trailers("Runtime.StreamError", "no status yet"))
            .await;
        posting.finish().await
    });
    match invocation.outcome(WAIT).await {
        Some(Outcome::Error(error)) => {
            assert_eq!(error["errorType"], "Runtime.StreamError");
            assert_eq!(error["errorMessage"], "no status yet");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
    assert_eq!(answer(function).await, 202);
}

#[tokio::test]
async fn a_100_mb_stream_is_read_as_it_arrives_and_never_held_whole() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    let api = RuntimeApi::start().await.expect("runtime API");
    let invocation = api.queue("{}", WAIT).expect("queued");
    let id = next_id(&api).await;
    // The baseline comes before the posting's connection opens, so no `start` here.
    let resident_before = resident_bytes();
    let posting = post_stream(&api, &id, HTTP_INTEGRATION_CONTENT_TYPE).await;
    let sent = Arc::new(AtomicU64::new(0));
    let function = tokio::spawn({
        let sent = Arc::clone(&sent);
        async move {
            posting.data(format!("{PRELUDE}\0\0\0\0\0\0\0\0")).await;
            let mut offset = 0;
            while offset < TOTAL {
                let size = CHUNK.min((TOTAL - offset) as usize);
                posting.data(pattern(offset, size)).await;
                offset += size as u64;
                sent.store(offset, Ordering::SeqCst);
            }
            posting.finish().await
        }
    });

    let mut streamed = streamed(invocation.outcome(WAIT).await);
    let at_prelude = sent.load(Ordering::SeqCst);
    assert!(
        at_prelude < TOTAL,
        "the prelude is handed over while the function is still sending"
    );

    // Unread, the stream holds the function back: what it has sent is bounded by the
    // stand-in's few chunks, hyper's buffers and the loopback socket's buffers (which Linux
    // may grow to tcp_rmem's maximum), not by the body.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = sent.load(Ordering::SeqCst);
    assert!(
        stalled < TOTAL / 2,
        "an unread stream stalls the function; it sent {stalled} bytes"
    );

    let mut received = 0u64;
    let mut most_ahead = 0u64;
    let mut most_resident = 0u64;
    while let Some(chunk) = streamed.chunk().await {
        assert!(is_pattern(&chunk, received), "chunk at {received}");
        received += chunk.len() as u64;
        most_ahead = most_ahead.max(sent.load(Ordering::SeqCst).saturating_sub(received));
        most_resident = most_resident.max(resident_bytes().unwrap_or_default());
    }
    assert_eq!(streamed.end().await, StreamEnd::Complete { bytes: TOTAL });
    assert_eq!(answer(function).await, 202);
    assert!(
        most_ahead < TOTAL / 2,
        "the function was at most {most_ahead} bytes ahead of the reader"
    );
    if let Some(before) = resident_before {
        // Other tests run in this process at the same time; the bound leaves them room, but
        // a stand-in that held this body would pass it.
        let grew = most_resident.saturating_sub(before);
        assert!(
            grew < 64 * 1024 * 1024,
            "resident memory grew by {grew} bytes"
        );
        eprintln!("resident memory grew by at most {grew} bytes");
    }
    eprintln!(
        "sent at the prelude {at_prelude}, stalled unread at {stalled}, at most {most_ahead} ahead"
    );
}

#[tokio::test]
async fn a_stream_past_lambdas_limit_ends_too_large() {
    let (_api, invocation, posting) = start(HTTP_INTEGRATION_CONTENT_TYPE).await;
    let head = format!("{PRELUDE}\0\0\0\0\0\0\0\0");
    let limit_payload = MAX_STREAMED_RESPONSE_BYTES - head.len() as u64;
    let function = tokio::spawn(async move {
        let frames = posting.frames.clone();
        posting.data(head).await;
        let mut offset = 0;
        // A megabyte past the limit, unless the Runtime API stops the request first.
        while offset < limit_payload + 1024 * 1024 {
            let size = CHUNK;
            if frames
                .send(Ok(Frame::data(pattern(offset, size))))
                .await
                .is_err()
            {
                break;
            }
            offset += size as u64;
        }
        drop(frames);
        posting.finish().await
    });

    let mut streamed = streamed(invocation.outcome(WAIT).await);
    let mut received = 0u64;
    while let Some(chunk) = streamed.chunk().await {
        assert!(is_pattern(&chunk, received), "chunk at {received}");
        received += chunk.len() as u64;
    }
    assert_eq!(
        streamed.end().await,
        StreamEnd::TooLarge {
            bytes: limit_payload
        }
    );
    assert_eq!(received, limit_payload);
    // The Runtime API answers 413, or the function finds its connection closed mid-request.
    match function.await.expect("function") {
        Ok(status) => assert_eq!(status, 413),
        Err(e) => eprintln!("the function's request failed: {e}"),
    }
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_a_broken_stream() {
    let (_api, invocation, posting) = start(HTTP_INTEGRATION_CONTENT_TYPE).await;
    posting.data(format!("{PRELUDE}\0\0\0\0\0\0\0\0")).await;
    for i in 0..3 {
        posting.data(pattern(i * 1000, 1000)).await;
    }
    let mut streamed = streamed(invocation.outcome(WAIT).await);
    let mut received = 0;
    while received < 3000 {
        received += streamed.chunk().await.expect("a chunk").len();
    }
    // The function dies: its connection closes without the terminating chunk.
    posting.connection.abort();
    posting.answer.abort();
    let end = tokio::time::timeout(WAIT, streamed.end())
        .await
        .expect("the stream ends");
    assert_eq!(end, StreamEnd::Broken { bytes: 3000 });
    drop(posting.frames);
}

#[tokio::test]
async fn a_stream_without_its_delimiter_in_the_first_16_kb_is_malformed() {
    let api = RuntimeApi::start().await.expect("runtime API");

    // No delimiter at all: settled once 16 KB have come.
    let (invocation, posting) = invoke(&api, HTTP_INTEGRATION_CONTENT_TYPE).await;
    let function = tokio::spawn(async move {
        posting.data(r#"{"statusCode":200,"x":""#).await;
        for _ in 0..20 {
            posting.data(vec![b'a'; 1024]).await;
        }
        posting.finish().await
    });
    let error = malformed(invocation.outcome(WAIT).await);
    let message = error["errorMessage"].as_str().expect("a message");
    assert!(
        message.contains(&PRELUDE_WINDOW_BYTES.to_string()),
        "{message}"
    );
    assert_eq!(answer(function).await, 202);

    // The delimiter just past the first 16 KB.
    let (invocation, posting) = invoke(&api, HTTP_INTEGRATION_CONTENT_TYPE).await;
    let padding = "a".repeat(PRELUDE_WINDOW_BYTES - 20);
    let function = tokio::spawn(async move {
        posting
            .data(format!(r#"{{"statusCode":200,"x":"{padding}"}}"#))
            .await;
        posting.data("\0".repeat(8)).await;
        posting.finish().await
    });
    malformed(invocation.outcome(WAIT).await);
    answer(function).await;

    // A prelude that is not JSON.
    let (invocation, posting) = invoke(&api, HTTP_INTEGRATION_CONTENT_TYPE).await;
    let function = tokio::spawn(async move {
        posting.data("statusCode: 200\0\0\0\0\0\0\0\0body").await;
        posting.finish().await
    });
    let error = malformed(invocation.outcome(WAIT).await);
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{error}"
    );
    answer(function).await;

    // A stream that ends before its delimiter.
    let (invocation, posting) = invoke(&api, HTTP_INTEGRATION_CONTENT_TYPE).await;
    let function = tokio::spawn(async move {
        posting.data(r#"{"statusCode":200}"#).await;
        posting.finish().await
    });
    malformed(invocation.outcome(WAIT).await);
    answer(function).await;
}

#[tokio::test]
async fn a_stream_of_another_content_type_is_all_payload() {
    let (_api, invocation, posting) = start("application/octet-stream").await;
    let function = tokio::spawn(async move {
        posting.data("{\"a\":1}\0\0\0\0\0\0\0\0").await;
        posting.data("rest").await;
        posting.finish().await
    });
    let streamed = streamed(invocation.outcome(WAIT).await);
    assert_eq!(streamed.prelude, None);
    assert_eq!(
        streamed.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let (body, end) = streamed.collect().await;
    assert_eq!(body, b"{\"a\":1}\0\0\0\0\0\0\0\0rest");
    assert_eq!(end, StreamEnd::Complete { bytes: 19 });
    assert_eq!(answer(function).await, 202);
}

#[tokio::test]
async fn a_buffered_response_is_read_whole_as_before() {
    let api = RuntimeApi::start().await.expect("runtime API");
    let client = reqwest::Client::new();
    let url = |id: &str| {
        format!(
            "http://{}/2018-06-01/runtime/invocation/{id}/response",
            api.address()
        )
    };

    let invocation = api.queue("{}", WAIT).expect("queued");
    let id = next_id(&api).await;
    let response = client
        .post(url(&id))
        .body(r#"{"statusCode":200,"body":"hello"}"#)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 202);
    match invocation.outcome(WAIT).await {
        Some(Outcome::Response(value)) => {
            assert_eq!(value, json!({"statusCode": 200, "body": "hello"}));
        }
        other => panic!("expected a response, got {other:?}"),
    }

    // Over Lambda's 6,291,556 bytes: refused with 413, as before.
    let invocation = api.queue("{}", WAIT).expect("queued");
    let id = next_id(&api).await;
    let body = format!(r#"{{"body":"{}"}}"#, "a".repeat(6_291_556));
    let size = body.len();
    let response = client
        .post(url(&id))
        .body(body)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    let refusal: Value = response.json().await.expect("JSON");
    assert_eq!(refusal["errorType"], "RequestEntityTooLarge");
    assert!(matches!(
        invocation.outcome(WAIT).await,
        Some(Outcome::TooLarge(n)) if n == size
    ));
}
