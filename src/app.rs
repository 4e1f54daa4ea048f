//! The request handler: authenticate, route, answer. Holds everything that lives across warm
//! invocations of one execution environment.

use std::time::Instant;

use http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use reqwest::Client;

use crate::auth::jwks::KeyPolicy;
use crate::auth::{Authenticator, Caller};
use crate::config::Config;
use crate::cors::Cors;
use crate::deadline::Deadline;
use crate::error::ApiError;
use crate::routes::{self, Route};

/// The function's state, built once per cold start and shared by every invocation.
pub struct App {
    config: Config,
    auth: Authenticator,
    cors: Cors,
}

impl App {
    /// Builds the state from `config`, with `http` as the one client for every outbound call.
    pub fn new(config: Config, http: Client) -> Self {
        Self::with_key_policy(config, http, KeyPolicy::default())
    }

    /// As [`App::new`], with the JWKS cache timings given (tests shorten them).
    pub fn with_key_policy(config: Config, http: Client, policy: KeyPolicy) -> Self {
        Self {
            auth: Authenticator::new(&config, http, policy),
            cors: Cors::new(config.allowed_origins.clone()),
            config,
        }
    }

    /// Work worth doing during the cold start, so that the first invocation finds it done.
    /// Failures are only logged: the first invocation tries again.
    pub async fn prefetch(&self) {
        let deadline = Deadline::after(self.config.default_budget);
        if let Err(error) = self.auth.keys().prefetch(&deadline).await {
            tracing::warn!(error = %crate::error::error_chain(&error), "JWKS prefetch failed");
        }
    }

    /// Answers one request. Never fails: every error is a documented JSON response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let context = request.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_default();
        let deadline = Deadline::from_epoch_millis(
            context.map_or(0, |c| c.deadline),
            self.config.default_budget,
        );
        let path = routes::request_path(&request);
        let route = routes::route(path);
        let route_name = match (&route, request.method()) {
            (_, &Method::OPTIONS) => "preflight",
            (Some(Route::Identities), _) => "identities",
            (Some(Route::Idp { .. }), _) => "idp",
            (None, _) => "none",
        };

        let response = if request.method() == Method::OPTIONS {
            self.cors.preflight(request.headers())
        } else {
            let mut response = match self.serve(&request, route, &deadline).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            };
            self.cors.decorate(request.headers(), &mut response);
            response
        };

        tracing::info!(
            request_id,
            route = route_name,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1e3,
            "invocation"
        );
        response
    }

    async fn serve(
        &self,
        request: &Request,
        route: Option<Route<'_>>,
        deadline: &Deadline,
    ) -> Result<Response<Body>, ApiError> {
        // Authentication comes first, so that nothing about routes or connections is revealed
        // to an anonymous caller.
        let caller = self.auth.authenticate(request.headers(), deadline).await?;
        let route = route.ok_or(ApiError::NotFound)?;
        if let Some(methods) = routes::allowed_methods(&route)
            && !methods.contains(request.method())
        {
            return Err(ApiError::MethodNotAllowed {
                allow: "GET, OPTIONS",
            });
        }
        match route {
            Route::Identities => self.identities(&caller).await,
            Route::Idp { .. } => Err(ApiError::NotImplemented),
        }
    }

    async fn identities(&self, _caller: &Caller) -> Result<Response<Body>, ApiError> {
        Err(ApiError::NotImplemented)
    }
}
