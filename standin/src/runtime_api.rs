//! A Lambda Runtime API on 127.0.0.1, enough to run the real `bootstrap` binary as Lambda runs
//! it: `GET /2018-06-01/runtime/invocation/next` hands out queued events, and the binary posts
//! each answer to `/invocation/{id}/response` (or `/error`). Like Lambda, it refuses a buffered
//! response over [`MAX_RESPONSE_BYTES`] with `413`, and the invocation ends as
//! [`Outcome::TooLarge`].
//!
//! A response posted with `Lambda-Runtime-Function-Response-Mode: streaming` is read as Lambda's
//! response-streaming protocol instead, frame by frame, and handed to the test as it arrives
//! ([`Outcome::Streamed`]). What AWS documents of it, and what the stand-in does:
//!
//! - The runtime sets `Lambda-Runtime-Function-Response-Mode: streaming` and
//!   `Transfer-Encoding: chunked`, and closes the connection once it has written the response
//!   (Lambda developer guide, "Building a custom runtime" → "Implementing response streaming in
//!   a custom runtime",
//!   <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming>).
//!   A connection that closes before the terminating chunk is a [`StreamEnd::Broken`] stream.
//! - Errors after the runtime has started writing are reported in the HTTP trailers
//!   `Lambda-Runtime-Function-Error-Type` (a string such as `Runtime.APIKeyNotFound`) and
//!   `Lambda-Runtime-Function-Error-Body` ("Base64-encoded information about the error"), which
//!   the runtime must declare in a `Trailer` header; "Lambda treats this as a successful
//!   response" (same page). The stand-in answers `202` and ends the stream as
//!   [`StreamEnd::Failed`], the body decoded.
//! - For an HTTP integration the body is a JSON metadata prelude (`statusCode`, `headers`,
//!   `multiValueHeaders`, `cookies`, each optional), a delimiter of eight NUL bytes that "must
//!   appear within the first 16KB of stream data", then the payload; the caller's stream begins
//!   "after it receives the valid metadata and delimiter" (API Gateway developer guide, "Lambda
//!   proxy integration format for response streaming",
//!   <https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html#response-transfer-mode-lambda-format>;
//!   the stand-in applies the same rule to function URLs). The content type that marks such a
//!   stream, [`HTTP_INTEGRATION_CONTENT_TYPE`], is not in the guides: it is what AWS's runtimes
//!   send (`lambda_runtime` 1.5 `src/requests.rs`, the Node.js runtime's `HttpResponseStream`).
//!   A stream without a valid prelude and delimiter there settles the invocation as
//!   [`Outcome::Error`] (API Gateway answers such a function with its own 500).
//! - "Response streaming functions can return payloads up to 200 MB" (Lambda developer guide,
//!   "Response streaming for Lambda functions",
//!   <https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html>; the
//!   function URL page, `config-rs-invoke-furls.html`, says the same). Past
//!   [`MAX_STREAMED_RESPONSE_BYTES`] the stand-in stops reading, answers `413`, and ends the
//!   stream as [`StreamEnd::TooLarge`]. The bandwidth cap Lambda puts on a stream past its first
//!   6 MB is not simulated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::lock;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// Lambda's limit on a synchronous invocation's response, in bytes, as its error message gives
/// it (`Response payload size exceeded maximum allowed payload size (6291556 bytes)`).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Lambda's limit on a streamed response, in bytes: AWS writes "200 MB" and gives no byte count
/// (see the module's notes), read here as 200 MiB. The stand-in counts every byte the function
/// posts, prelude and delimiter included.
pub const MAX_STREAMED_RESPONSE_BYTES: u64 = 200 * 1024 * 1024;

/// The `Content-Type` of a streamed response for an HTTP integration (function URL, API
/// Gateway): a JSON prelude, eight NUL bytes, then the payload.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// What separates an HTTP-integration stream's prelude from its payload: "The delimiter must be
/// 8 null bytes".
pub const PRELUDE_DELIMITER: [u8; 8] = [0; 8];

/// The delimiter "must appear within the first 16KB of stream data": it must end within this
/// many bytes of the body.
pub const PRELUDE_WINDOW_BYTES: usize = 16 * 1024;

/// The trailer that reports a mid-stream error's type.
const ERROR_TYPE_TRAILER: &str = "lambda-runtime-function-error-type";

/// The trailer that reports a mid-stream error's details, base64-encoded.
const ERROR_BODY_TRAILER: &str = "lambda-runtime-function-error-body";

/// How many body chunks a stream holds for the test before the stand-in stops reading the
/// function's stream: the function is back-pressured, and the stand-in never holds the body.
const STREAM_CHUNKS_HELD: usize = 8;

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function's response payload.
    Response(Value),
    /// The function posted a response over [`MAX_RESPONSE_BYTES`] (this many bytes): Lambda
    /// refuses it, and API Gateway answers its own 502.
    TooLarge(usize),
    /// The function reported an invocation error (a streamed response's, in its trailers before
    /// the prelude's delimiter); or its stream had no valid prelude and delimiter, then the
    /// stand-in's own `{"errorType": "MalformedStream", "errorMessage": ...}`.
    Error(Value),
    /// The function streams its response: delivered as soon as the prelude and its delimiter
    /// have arrived (at once when the stream has no prelude), while the body is still coming.
    Streamed(Streamed),
}

/// A streamed response, handed over before its body has arrived: read the body with
/// [`Streamed::chunk`], then learn how the stream ended with [`Streamed::end`] (or both at once
/// with [`Streamed::collect`]). Until a chunk is read the stand-in reads no further than a few
/// chunks ahead, so the function is back-pressured as by a slow caller; dropping this lets the
/// function's stream run to its end, discarded.
#[derive(Debug)]
pub struct Streamed {
    /// The `Content-Type` the function posted the stream with, if any.
    pub content_type: Option<String>,
    /// The JSON metadata prelude of an HTTP-integration stream ([`HTTP_INTEGRATION_CONTENT_TYPE`]);
    /// `None` for any other content type, every byte of which is payload.
    pub prelude: Option<Value>,
    /// When the prelude and its delimiter had arrived (without a prelude: when the request's
    /// head had): when the caller would get its first byte.
    pub received_at: Instant,
    chunks: mpsc::Receiver<Bytes>,
    end: oneshot::Receiver<StreamEnd>,
    received: u64,
}

impl Streamed {
    /// The next piece of the payload (the bytes after the delimiter), as it arrives; `None` once
    /// the stream has ended, however it did.
    pub async fn chunk(&mut self) -> Option<Bytes> {
        let chunk = self.chunks.recv().await?;
        self.received += chunk.len() as u64;
        Some(chunk)
    }

    /// How the stream ended, once it has: the payload not yet read is read and counted.
    pub async fn end(mut self) -> StreamEnd {
        while self.chunk().await.is_some() {}
        self.end.await.unwrap_or(StreamEnd::Broken {
            bytes: self.received,
        })
    }

    /// The rest of the payload and how the stream ended.
    pub async fn collect(mut self) -> (Vec<u8>, StreamEnd) {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await {
            body.extend_from_slice(&chunk);
        }
        let end = self.end().await;
        (body, end)
    }
}

/// How a streamed response ended; `bytes` counts its payload, the bytes after the delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The function ended the stream with the terminating chunk, reporting no error.
    Complete { bytes: u64 },
    /// The function reported a mid-stream error in the trailers: the invocation failed, though
    /// Lambda answers the runtime as for a success and forwards the error to the client (whose
    /// stream, already begun, cannot change its status). `error_body` is decoded from base64
    /// (kept as sent if it is not base64).
    Failed {
        bytes: u64,
        error_type: String,
        error_body: String,
    },
    /// The stream passed [`MAX_STREAMED_RESPONSE_BYTES`]: the invocation fails, the caller's
    /// stream cut short. `bytes` is the payload that came within the limit.
    TooLarge { bytes: u64 },
    /// The connection closed before the terminating chunk.
    Broken { bytes: u64 },
}

struct Queued {
    id: String,
    event: String,
    deadline_ms: u64,
}

struct RuntimeState {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<Instant>>,
    init_errors: Mutex<Vec<Value>>,
    /// How many `next` requests are waiting for an event: 1 while the function is idle.
    waiting: watch::Sender<usize>,
}

/// Counts one `next` request as waiting for as long as it lives.
struct Waiting<'a>(&'a watch::Sender<usize>);

impl<'a> Waiting<'a> {
    fn new(waiting: &'a watch::Sender<usize>) -> Self {
        waiting.send_modify(|n| *n += 1);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// An invocation handed to [`RuntimeApi::queue`], whose outcome comes later.
pub struct Invocation(oneshot::Receiver<Outcome>);

impl Invocation {
    /// How the invocation ended; `None` if it did not within `wait`.
    pub async fn outcome(self, wait: Duration) -> Option<Outcome> {
        tokio::time::timeout(wait, self.0).await.ok()?.ok()
    }
}

/// A running Runtime API.
pub struct RuntimeApi {
    addr: SocketAddr,
    sender: mpsc::UnboundedSender<Queued>,
    state: Arc<RuntimeState>,
}

impl RuntimeApi {
    /// Starts a Runtime API with an empty queue.
    pub async fn start() -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(RuntimeState {
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            init_errors: Mutex::new(Vec::new()),
            waiting: watch::Sender::new(0),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Read whatever buffered response is posted, to measure it as Lambda does. A streamed
            // one is read frame by frame, which this limit does not reach; its own limit is
            // MAX_STREAMED_RESPONSE_BYTES.
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&state));
        let addr = crate::serve(router).await?;
        Ok(Self {
            addr,
            sender,
            state,
        })
    }

    /// `127.0.0.1:port`: the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// When the function first asked for an invocation (the end of its init phase).
    pub fn first_next(&self) -> Option<Instant> {
        *lock(&self.state.first_next)
    }

    /// Errors the function reported during init.
    pub fn init_errors(&self) -> Vec<Value> {
        lock(&self.state.init_errors).clone()
    }

    /// Invokes the function with `event` and a deadline `budget` away; waits at most `wait`.
    pub async fn invoke(&self, event: &str, budget: Duration, wait: Duration) -> Option<Outcome> {
        self.queue(event, budget)?.outcome(wait).await
    }

    /// Queues `event` with a deadline `budget` away; `None` if the Runtime API is gone.
    pub fn queue(&self, event: &str, budget: Duration) -> Option<Invocation> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!("req-{:06}", NEXT.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        lock(&self.state.pending).insert(id.clone(), tx);
        let deadline_ms = (SystemTime::now() + budget)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.sender
            .send(Queued {
                id,
                event: event.to_owned(),
                deadline_ms,
            })
            .ok()?;
        Some(Invocation(rx))
    }

    /// Waits (at most `wait`) until the number of `next` requests waiting for an event
    /// satisfies `reached`: 1 once the function is idle, 0 once a queued event is handed out.
    /// Returns whether it did.
    pub async fn until_waiting(&self, reached: impl Fn(usize) -> bool, wait: Duration) -> bool {
        let mut waiting = self.state.waiting.subscribe();
        tokio::time::timeout(wait, waiting.wait_for(|n| reached(*n)))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    lock(&state.first_next).get_or_insert_with(Instant::now);
    let queued = {
        let _waiting = Waiting::new(&state.waiting);
        state.queue.lock().await.recv().await
    };
    let Some(queued) = queued else {
        return StatusCode::GONE.into_response();
    };
    (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", queued.id),
            ("lambda-runtime-deadline-ms", queued.deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:auth0-idp-proxy".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-67891233-abcdef012345678912345678;Sampled=0".to_owned(),
            ),
        ],
        queued.event,
    )
        .into_response()
}

fn settle(state: &RuntimeState, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&state.pending).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

async fn respond(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if is_streaming(request.headers()) {
        return stream(&state, &id, request).await;
    }
    // Read as the `String` extractor would, within the router's body limit.
    let body = match String::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    if body.len() > MAX_RESPONSE_BYTES {
        settle(&state, &id, Outcome::TooLarge(body.len()));
        let message = serde_json::json!({
            "errorMessage": format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            "errorType": "RequestEntityTooLarge",
        });
        return (StatusCode::PAYLOAD_TOO_LARGE, message.to_string()).into_response();
    }
    settle(&state, &id, Outcome::Response(json(&body))).into_response()
}

async fn fail(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    settle(&state, &id, Outcome::Error(json(&body)))
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: String) -> StatusCode {
    lock(&state.init_errors).push(json(&body));
    StatusCode::ACCEPTED
}

/// Whether the runtime posts its response as a stream.
fn is_streaming(headers: &HeaderMap) -> bool {
    headers
        .get("lambda-runtime-function-response-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("streaming"))
}

/// The stand-in's error for a stream without a valid prelude and delimiter.
fn malformed(message: &str) -> Outcome {
    Outcome::Error(serde_json::json!({
        "errorType": "MalformedStream",
        "errorMessage": message,
    }))
}

/// A mid-stream error reported in `trailers`: its type and decoded body.
fn trailer_error(trailers: &HeaderMap) -> Option<(String, String)> {
    let text = |name| {
        trailers
            .get(name)
            .map(|v: &axum::http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let error_type = text(ERROR_TYPE_TRAILER)?;
    let error_body = text(ERROR_BODY_TRAILER).unwrap_or_default();
    let error_body = match base64::engine::general_purpose::STANDARD.decode(error_body.trim()) {
        Ok(decoded) => String::from_utf8_lossy(&decoded).into_owned(),
        Err(_) => error_body,
    };
    Some((error_type, error_body))
}

/// The invocation, waiting for a stream's prelude. Dropped unsettled (hyper drops the handler
/// when the connection fails), it settles as a stream broken before its delimiter.
struct Waiter(Option<oneshot::Sender<Outcome>>);

impl Waiter {
    fn settle(mut self, outcome: Outcome) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(outcome);
        }
    }

    /// Hands the test a [`Streamed`] and returns what feeds it.
    fn deliver(self, content_type: Option<String>, prelude: Option<Value>) -> Feed {
        let (chunks, chunks_rx) = mpsc::channel(STREAM_CHUNKS_HELD);
        let (end, end_rx) = oneshot::channel();
        self.settle(Outcome::Streamed(Streamed {
            content_type,
            prelude,
            received_at: Instant::now(),
            chunks: chunks_rx,
            end: end_rx,
            received: 0,
        }));
        Feed {
            chunks: Some(chunks),
            end: Some(end),
            bytes: 0,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(malformed(
                "the stream broke (its connection closed) before the prelude's delimiter",
            ));
        }
    }
}

/// Feeds a [`Streamed`] the payload. Dropped unfinished (the connection failed), the stream
/// ends as broken.
struct Feed {
    /// `None` once the test has stopped listening: the rest is counted and discarded.
    chunks: Option<mpsc::Sender<Bytes>>,
    end: Option<oneshot::Sender<StreamEnd>>,
    bytes: u64,
}

impl Feed {
    /// Passes `chunk` on, waiting while the test holds [`STREAM_CHUNKS_HELD`] chunks.
    async fn send(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.bytes += chunk.len() as u64;
        if let Some(chunks) = &self.chunks
            && chunks.send(chunk).await.is_err()
        {
            self.chunks = None;
        }
    }

    fn finish(mut self, end: impl FnOnce(u64) -> StreamEnd) {
        self.chunks = None;
        if let Some(tx) = self.end.take() {
            let _ = tx.send(end(self.bytes));
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(tx) = self.end.take() {
            let _ = tx.send(StreamEnd::Broken { bytes: self.bytes });
        }
    }
}

/// Where a stream is.
enum Phase {
    /// Reading an HTTP-integration stream's prelude: `head` is the body so far, searched for the
    /// delimiter up to `scanned`.
    Prelude {
        waiter: Waiter,
        content_type: Option<String>,
        head: BytesMut,
        scanned: usize,
    },
    /// Passing the payload on.
    Payload(Feed),
    /// The invocation has settled (no valid prelude): the rest is read and discarded.
    Settled,
}

impl Phase {
    /// Takes the next piece of the body.
    async fn take(self, data: Bytes) -> Phase {
        match self {
            Phase::Payload(mut feed) => {
                feed.send(data).await;
                Phase::Payload(feed)
            }
            Phase::Settled => Phase::Settled,
            Phase::Prelude {
                waiter,
                content_type,
                mut head,
                scanned,
            } => {
                head.extend_from_slice(&data);
                let window = &head[..head.len().min(PRELUDE_WINDOW_BYTES)];
                let from = scanned.saturating_sub(PRELUDE_DELIMITER.len() - 1);
                let found = window[from..]
                    .windows(PRELUDE_DELIMITER.len())
                    .position(|w| w == PRELUDE_DELIMITER)
                    .map(|at| from + at);
                let Some(at) = found else {
                    if head.len() >= PRELUDE_WINDOW_BYTES {
                        waiter.settle(malformed(&format!(
                            "no delimiter (8 NUL bytes) after the prelude within the first \
                             {PRELUDE_WINDOW_BYTES} bytes of the stream"
                        )));
                        return Phase::Settled;
                    }
                    let scanned = head.len();
                    return Phase::Prelude {
                        waiter,
                        content_type,
                        head,
                        scanned,
                    };
                };
                let payload = head.split_off(at + PRELUDE_DELIMITER.len()).freeze();
                head.truncate(at);
                match serde_json::from_slice::<Value>(&head) {
                    Ok(prelude) => {
                        let mut feed = waiter.deliver(content_type, Some(prelude));
                        feed.send(payload).await;
                        Phase::Payload(feed)
                    }
                    Err(e) => {
                        waiter.settle(malformed(&format!("the prelude is not valid JSON: {e}")));
                        Phase::Settled
                    }
                }
            }
        }
    }

    /// The function ended the stream, reporting `error` (type, body) in the trailers, if any.
    fn end(self, error: Option<(String, String)>) {
        match (self, error) {
            (Phase::Payload(feed), None) => feed.finish(|bytes| StreamEnd::Complete { bytes }),
            (Phase::Payload(feed), Some((error_type, error_body))) => {
                feed.finish(|bytes| StreamEnd::Failed {
                    bytes,
                    error_type,
                    error_body,
                })
            }
            (Phase::Prelude { waiter, .. }, Some((error_type, error_body))) => {
                let error = match serde_json::from_str::<Value>(&error_body) {
                    Ok(Value::Object(mut error)) => {
                        error
                            .entry("errorType")
                            .or_insert(Value::String(error_type));
                        Value::Object(error)
                    }
                    _ => serde_json::json!({
                        "errorType": error_type,
                        "errorMessage": error_body,
                    }),
                };
                waiter.settle(Outcome::Error(error));
            }
            (Phase::Prelude { waiter, .. }, None) => {
                waiter.settle(malformed("the stream ended before the prelude's delimiter"));
            }
            (Phase::Settled, _) => {}
        }
    }

    /// The stream passed [`MAX_STREAMED_RESPONSE_BYTES`].
    fn too_large(self) {
        match self {
            Phase::Payload(feed) => feed.finish(|bytes| StreamEnd::TooLarge { bytes }),
            Phase::Prelude { waiter, .. } => waiter.settle(malformed(
                "the stream passed Lambda's limit before the prelude's delimiter",
            )),
            Phase::Settled => {}
        }
    }
}

/// Reads a streamed response for invocation `id`, passing it to the waiting test as it comes.
async fn stream(state: &RuntimeState, id: &str, request: Request) -> Response {
    let Some(waiting) = lock(&state.pending).remove(id) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let waiter = Waiter(Some(waiting));
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let with_prelude = content_type.as_deref().is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(HTTP_INTEGRATION_CONTENT_TYPE))
    });
    let mut phase = if with_prelude {
        Phase::Prelude {
            waiter,
            content_type,
            head: BytesMut::new(),
            scanned: 0,
        }
    } else {
        Phase::Payload(waiter.deliver(content_type, None))
    };
    let mut body = request.into_body();
    let mut posted: u64 = 0;
    loop {
        let frame = match body.frame().await {
            None => {
                phase.end(None);
                return StatusCode::ACCEPTED.into_response();
            }
            // The connection closed (or the chunked coding broke) before the terminating chunk;
            // no one reads this answer.
            Some(Err(_)) => {
                drop(phase);
                return StatusCode::BAD_REQUEST.into_response();
            }
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers()
                    && let Some(error) = trailer_error(&trailers)
                {
                    // "Lambda treats this as a successful response."
                    phase.end(Some(error));
                    return StatusCode::ACCEPTED.into_response();
                }
                continue;
            }
        };
        let room = MAX_STREAMED_RESPONSE_BYTES - posted;
        if data.len() as u64 > room {
            // AWS documents the limit, not how a stream that passes it ends: the stand-in passes
            // on what came within it, then stops reading and refuses the rest as it refuses a
            // buffered response that is too large.
            phase = phase.take(data.slice(..room as usize)).await;
            phase.too_large();
            let message = serde_json::json!({
                "errorMessage": format!(
                    "Exceeded maximum allowed payload size ({MAX_STREAMED_RESPONSE_BYTES} bytes)."
                ),
                "errorType": "RequestEntityTooLarge",
            });
            return (StatusCode::PAYLOAD_TOO_LARGE, message.to_string()).into_response();
        }
        posted += data.len() as u64;
        phase = phase.take(data).await;
    }
}
