//! A stand-in Auth0 tenant on 127.0.0.1: the JWKS endpoint, with switches to rotate keys and to
//! make the endpoint fail, and counters of the calls it served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::keys::{TestKey, TokenBuilder};

/// How the JWKS endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    /// Serves the published keys.
    Serve,
    /// Answers 500.
    Fail,
    /// Never answers.
    Hang,
}

#[derive(Debug)]
struct TenantState {
    jwks_calls: AtomicUsize,
    published: Mutex<Vec<TestKey>>,
    jwks_mode: Mutex<JwksMode>,
}

/// A running stand-in tenant. Dropping it does not stop the server; it lives until the process
/// (test binary or demo) ends.
#[derive(Debug, Clone)]
pub struct Tenant {
    addr: SocketAddr,
    state: Arc<TenantState>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tenant {
    /// Starts a tenant that publishes the primary test key.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(TenantState {
            jwks_calls: AtomicUsize::new(0),
            published: Mutex::new(vec![TestKey::Primary]),
            jwks_mode: Mutex::new(JwksMode::Serve),
        });
        let router = Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(Arc::clone(&state));
        let addr = crate::serve(router).await?;
        Ok(Self { addr, state })
    }

    /// `http://127.0.0.1:port`: the value for `AUTH0_DOMAIN`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `iss` of this tenant's tokens: the origin with a trailing slash, as Auth0's.
    pub fn issuer(&self) -> String {
        format!("{}/", self.origin())
    }

    /// A valid token of this tenant for `audience` and `sub`, to adjust before signing.
    pub fn token(&self, audience: &str, sub: &str) -> TokenBuilder {
        TokenBuilder::new(&self.issuer(), audience, sub)
    }

    /// How many times the JWKS was requested.
    pub fn jwks_calls(&self) -> usize {
        self.state.jwks_calls.load(Ordering::SeqCst)
    }

    /// Replaces the published signing keys (key rotation, or removal).
    pub fn publish(&self, keys: &[TestKey]) {
        *lock(&self.state.published) = keys.to_vec();
    }

    /// Changes how the JWKS endpoint behaves.
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        *lock(&self.state.jwks_mode) = mode;
    }
}

async fn jwks(State(state): State<Arc<TenantState>>) -> Response {
    state.jwks_calls.fetch_add(1, Ordering::SeqCst);
    let mode = *lock(&state.jwks_mode);
    match mode {
        JwksMode::Serve => {
            let keys: Vec<_> = lock(&state.published).iter().map(|k| k.jwk()).collect();
            axum::Json(json!({ "keys": keys })).into_response()
        }
        JwksMode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        JwksMode::Hang => std::future::pending().await,
    }
}
