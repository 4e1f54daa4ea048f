//! A Lambda Runtime API on 127.0.0.1, enough to run the real `bootstrap` binary as Lambda runs
//! it: `GET /2018-06-01/runtime/invocation/next` hands out queued events, and the binary posts
//! each answer to `/invocation/{id}/response` (or `/error`). Like Lambda, it refuses a response
//! over [`MAX_RESPONSE_BYTES`] with `413`, and the invocation ends as
//! [`Outcome::TooLarge`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::lock;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// Lambda's limit on a synchronous invocation's response, in bytes, as its error message gives
/// it (`Response payload size exceeded maximum allowed payload size (6291556 bytes)`).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function's response payload.
    Response(Value),
    /// The function posted a response over [`MAX_RESPONSE_BYTES`] (this many bytes): Lambda
    /// refuses it, and API Gateway answers its own 502.
    TooLarge(usize),
    /// The function reported an invocation error.
    Error(Value),
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
            // Read whatever is posted, to measure it as Lambda does.
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
    body: String,
) -> Response {
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
