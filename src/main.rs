//! The Lambda entry point: logging, configuration, state, then the runtime loop.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use auth0_idp_proxy::{App, Config, telemetry, upstream};
use lambda_http::{Request, service_fn};

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
            tracing::error!(error = %error, "cannot build the HTTP client");
            return ExitCode::FAILURE;
        }
    };
    let app = Arc::new(App::new(config, http));
    app.prefetch().await;

    let handler = service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.handle(request).await) }
    });
    // Sequential on classic Lambda; several invocations at once where AWS_LAMBDA_MAX_CONCURRENCY
    // says so (Lambda Managed Instances).
    match lambda_http::run_concurrent(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "runtime loop ended");
            ExitCode::FAILURE
        }
    }
}
