//! The Lambda entry point: logging, configuration, state, prefetch, then the runtime loop.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use auth0_idp_proxy::fleet::TablePolicy;
use auth0_idp_proxy::streaming::{self, ResponseMode};
use auth0_idp_proxy::{App, Config, aws, telemetry, upstream};
use lambda_http::request::LambdaRequest;
use lambda_http::{LambdaEvent, service_fn};
use lambda_runtime::Runtime;
use lambda_runtime::layers::TracingLayer;

/// How long the cold start waits for its prefetch before taking the first invocation; the
/// prefetch goes on in the background past it, and the first invocation joins it.
const PREFETCH_BUDGET: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(error = %error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let http = match upstream::build_client() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(error = %error, "cannot build the HTTP clients");
            return ExitCode::FAILURE;
        }
    };
    let aws = aws::load().await;
    let dynamodb = config
        .token_table
        .is_some()
        .then(|| aws_sdk_dynamodb::Client::new(&aws));
    // The SDK configuration, not a client: the Secrets Manager clients are made at their first
    // read, so a cold start without the prefetch does not pay for them before it is ready.
    let app = Arc::new(
        App::builder(config, http, aws)
            .token_table(dynamodb.as_ref(), TablePolicy::default())
            .build(),
    );

    // `COLD_START_PREFETCH=off` leaves all the work to the first invocation: a benchmark knob,
    // to measure what the prefetch buys.
    if std::env::var("COLD_START_PREFETCH").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        tracing::debug!("cold-start prefetch is off");
    } else {
        let prefetch = tokio::spawn({
            let app = Arc::clone(&app);
            async move { app.prefetch(PREFETCH_BUDGET * 3).await }
        });
        let _ = tokio::time::timeout(PREFETCH_BUDGET, prefetch).await;
    }

    // lambda_runtime with the function's own event adapter (`event`), not lambda_http's: that
    // one panics on some hostile events and alters non-UTF-8 bodies.
    let mode = app.response_mode();
    let handler = service_fn({
        let app = Arc::clone(&app);
        move |event: LambdaEvent<LambdaRequest>| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.invoke(event).await) }
        }
    });
    // Sequential on classic Lambda; several invocations at once where AWS_LAMBDA_MAX_CONCURRENCY
    // says so (Lambda Managed Instances).
    let runtime = Runtime::new(handler);
    let ran = match mode {
        ResponseMode::Buffered => runtime.layer(TracingLayer::new()).run_concurrent().await,
        // The same loop; each answer written as a stream by the function's own writer.
        ResponseMode::Streaming => {
            let answer = move |event: LambdaEvent<LambdaRequest>| {
                let app = Arc::clone(&app);
                async move { app.invoke_streamed(event).await }
            };
            runtime
                .layer(streaming::runtime::Layer::new(answer))
                .layer(TracingLayer::new())
                .run_concurrent()
                .await
        }
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "runtime loop ended");
            ExitCode::FAILURE
        }
    }
}
