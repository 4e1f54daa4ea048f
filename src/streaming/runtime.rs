//! Streamed answers written to Lambda's Runtime API as AWS documents it (Lambda developer guide,
//! "Custom runtimes", response streaming): `POST …/invocation/{id}/response` with
//! `Lambda-Runtime-Function-Response-Mode: streaming`, chunked, `Content-Type:
//! application/vnd.awslambda.http-integration-response`; the body is the metadata prelude, eight
//! NUL bytes and the answer's body; a stream cut short ends with the
//! `Lambda-Runtime-Function-Error-Type` and `-Error-Body` **trailers**, which Lambda turns into an
//! abruptly ended response for the caller.
//!
//! lambda_runtime keeps its loop (`next`, the context, concurrency, tracing); this layer takes
//! each invocation over from its response writer, which announces the trailers but writes a
//! stream error as body bytes (TOOLCHAIN.md): a caller would take them for the end of the body.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body::Frame;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{LambdaEvent, LambdaInvocation};
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;

use super::{Cut, Streamed};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The separator between the prelude and the body.
const SEPARATOR: [u8; 8] = [0; 8];

/// The trailer that names a cut stream's error type.
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
/// The trailer that carries a cut stream's error, base64-encoded JSON.
const ERROR_BODY: &str = "lambda-runtime-function-error-body";

/// A tower layer for `lambda_runtime::Runtime` that answers every invocation with `answer` and
/// streams the result to the Runtime API; the runtime's own response writer is not used.
pub struct Layer<H> {
    answer: H,
    client: Arc<PooledClient>,
}

impl<H> Layer<H> {
    /// Answers with `answer`, writing to the Runtime API at `AWS_LAMBDA_RUNTIME_API`.
    pub fn new(answer: H) -> Self {
        Self {
            answer,
            client: Arc::new(PooledClient::builder().build()),
        }
    }
}

impl<S, H: Clone> lambda_runtime::tower::Layer<S> for Layer<H> {
    type Service = Service<H>;

    fn layer(&self, _buffered_writer: S) -> Self::Service {
        Service {
            answer: self.answer.clone(),
            client: Arc::clone(&self.client),
        }
    }
}

/// The service [`Layer`] makes.
#[derive(Clone)]
pub struct Service<H> {
    answer: H,
    client: Arc<PooledClient>,
}

impl<H, F> lambda_runtime::tower::Service<LambdaInvocation> for Service<H>
where
    H: Fn(LambdaEvent<LambdaRequest>) -> F + Clone + Send + 'static,
    F: Future<Output = Streamed> + Send + 'static,
{
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let answer = self.answer.clone();
        let client = Arc::clone(&self.client);
        Box::pin(async move {
            let id = invocation.context.request_id.clone();
            let invocation_id = invocation
                .parts
                .headers
                .get("lambda-runtime-invocation-id")
                .cloned();
            let event: LambdaRequest = match serde_json::from_slice(&invocation.body) {
                Ok(event) => event,
                Err(error) => {
                    // As lambda_runtime reports an event its handler cannot take.
                    let message = format!("the event is not an API Gateway request: {error}");
                    return post_error(
                        &client,
                        &id,
                        invocation_id,
                        "Runtime.UnmarshalError",
                        &message,
                    )
                    .await;
                }
            };
            let event = LambdaEvent::new(event, invocation.context);
            match AssertUnwindSafe(answer(event)).catch_unwind().await {
                Ok(streamed) => post_streamed(&client, &id, invocation_id, streamed).await,
                Err(_) => {
                    tracing::error!("the handler panicked");
                    post_error(
                        &client,
                        &id,
                        invocation_id,
                        "Runtime.Panic",
                        "the handler panicked",
                    )
                    .await
                }
            }
        })
    }
}

fn post(id: &str, outcome: &str, invocation_id: Option<HeaderValue>) -> http::request::Builder {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("/2018-06-01/runtime/invocation/{id}/{outcome}"));
    if let Some(value) = invocation_id {
        request = request.header("lambda-runtime-invocation-id", value);
    }
    request
}

/// Writes `streamed` as the invocation's response: prelude, separator, body; a cut as trailers.
async fn post_streamed(
    client: &PooledClient,
    id: &str,
    invocation_id: Option<HeaderValue>,
    streamed: Streamed,
) -> Result<(), BoxError> {
    let Streamed { prelude, body } = streamed;
    let head = futures_util::stream::iter([
        Ok::<_, BoxError>(Frame::data(Bytes::from(prelude))),
        Ok(Frame::data(Bytes::from_static(&SEPARATOR))),
    ]);
    // Nothing after a cut's trailers, whatever the stream would still give.
    let rest = body.scan(false, |ended, item| {
        let frame = match item {
            _ if *ended => None,
            Ok(chunk) => Some(Ok::<_, BoxError>(Frame::data(chunk))),
            Err(reason) => {
                *ended = true;
                Some(Ok(Frame::trailers(trailers(&reason))))
            }
        };
        futures_util::future::ready(frame)
    });
    let frames = head.chain(rest);
    let request = post(id, "response", invocation_id)
        .header("lambda-runtime-function-response-mode", "streaming")
        .header(http::header::TRANSFER_ENCODING, "chunked")
        .header(
            http::header::CONTENT_TYPE,
            "application/vnd.awslambda.http-integration-response",
        )
        .header(http::header::TRAILER, ERROR_TYPE)
        .header(http::header::TRAILER, ERROR_BODY)
        .body(Body::new(http_body_util::StreamBody::new(frames)))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        tracing::error!(
            status = response.status().as_u16(),
            "the Runtime API refused the streamed response"
        );
    }
    Ok(())
}

/// The trailers that end a stream cut for `reason`.
fn trailers(reason: &Cut) -> HeaderMap {
    let body = serde_json::json!({
        "errorType": error_type(reason),
        "errorMessage": reason.to_string(),
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    let mut trailers = HeaderMap::new();
    trailers.insert(ERROR_TYPE, HeaderValue::from_static(error_type(reason)));
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        trailers.insert(ERROR_BODY, value);
    }
    trailers
}

/// The error type a cut stream reports, as Lambda logs and counts it.
fn error_type(reason: &Cut) -> &'static str {
    match reason {
        Cut::CarriesToken => "Proxy.AnswerCarriesToken",
        Cut::Uncheckable => "Proxy.AnswerUncheckable",
        Cut::TooLarge => "Proxy.AnswerTooLarge",
        Cut::Upstream => "Proxy.UpstreamBrokeOff",
        Cut::Deadline => "Proxy.DeadlinePassed",
    }
}

/// Reports the invocation as failed before any answer: `/invocation/{id}/error`.
async fn post_error(
    client: &PooledClient,
    id: &str,
    invocation_id: Option<HeaderValue>,
    error_type: &str,
    message: &str,
) -> Result<(), BoxError> {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
    let request = post(id, "error", invocation_id)
        .header("lambda-runtime-function-error-type", error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))?;
    client.call(request).await?;
    Ok(())
}
