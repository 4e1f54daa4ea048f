//! Loopback stand-ins for the world the function talks to, shared by the integration tests and
//! the local demo: an Auth0 tenant ([`Tenant`], with the sign-in side a single page application
//! uses, [`SpaClient`], and Token Vault), identity provider APIs ([`Idp`]) and signing keys to
//! mint the tenant's tokens ([`TestKey`]), a DPoP client key that signs proofs ([`DpopKey`]; the
//! tenant issues DPoP-bound tokens to a sign-in that sends one), and a TCP relay that ends pooled
//! connections on command ([`Relay`]).
//!
//! Every stand-in listens on 127.0.0.1 only, on a port the OS picks, and counts the calls it
//! serves so tests can assert exactly how many upstream calls a scenario costs.

mod consent;
mod dpop;
mod fault;
mod idp;
mod keys;
mod login;
mod m2m_client;
mod management_api;
mod moto;
mod my_account;
mod oauth_error;
mod opaque_token;
mod rate_limit;
mod relay;
mod runtime_api;
mod scopes;
mod secrets;
mod tenant;
mod tenant_state;
mod vault;
mod x_api;

pub use dpop::{DpopKey, DpopProofBuilder, dpop_ath, jwk_thumbprint};
pub use fault::Fault;
pub use idp::{
    AnswerFormat, CLAIMS_CHALLENGE, CONDITIONAL_ETAG, CONDITIONAL_LAST_MODIFIED, ClientAuth,
    Flavor, Idp, LATIN1_ETAG, LIST_SIZE, REPEATED_CHALLENGES, REPEATED_RATE_LIMITS, REPEATED_VARY,
    Recorded, RefreshBehaviour, RefreshRules,
};
pub use jsonwebtoken::Algorithm;
pub use keys::{TestKey, TokenBuilder, now};
pub use login::SpaClient;
pub use m2m_client::M2M_CLIENT_ID;
pub use moto::{LinkMode, Moto, MotoLink};
pub use opaque_token::new_token;
pub use rate_limit::Plan;
pub use relay::{Ending, Relay};
pub use runtime_api::{
    HTTP_INTEGRATION_CONTENT_TYPE, Invocation, MAX_STREAMED_RESPONSE_BYTES, Outcome,
    PRELUDE_WINDOW_BYTES, RuntimeApi, StreamEnd, Streamed,
};
pub use scopes::ScopeDialect;
pub use secrets::{create_token_table, dynamodb_client, secrets_client};
pub use tenant::{JwksMode, Tenant, profile};
pub use x_api::XApi;

use std::net::SocketAddr;

/// A CORS preflight's answer: `204` with `cors` (the grant for an allowed web origin), or
/// `403` when there is none.
pub(crate) fn preflight_answer(
    cors: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = if cors.is_empty() {
        axum::http::StatusCode::FORBIDDEN
    } else {
        axum::http::StatusCode::NO_CONTENT
    };
    let mut response = status.into_response();
    response.headers_mut().extend(cors);
    response
}

/// Locks a stand-in's state; a test that panicked while holding it must not hide the others'
/// results behind poisoning.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `router` on a fresh loopback port until the process ends; returns its address.
pub(crate) async fn serve(router: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // The server lives as long as the test or demo; an error here only ends the stand-in.
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}
