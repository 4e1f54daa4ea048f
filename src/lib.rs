//! auth0-idp-proxy: an AWS Lambda function that calls an external identity provider's API on
//! behalf of a user signed in through Auth0, without the IdP token ever reaching the browser.
//!
//! # Layout
//! - [`config`]: the environment, parsed and validated once per cold start.
//! - [`app`]: the handler and the state shared across warm invocations.
//! - [`routes`]: which route a v1, v2 or Function URL event asks for.
//! - [`auth`]: the caller's Auth0 access token, verified against the tenant's cached JWKS.
//! - [`credentials`]: the M2M (and IdP app) client credentials, from Secrets Manager.
//! - [`management`]: the cached Management API token and the user's profile.
//! - [`identities`]: picking a connection's identity; the token-free `/identities` view.
//! - [`idp`]: the connection table, path normalisation, the IdP token's cache and renewal
//!   (`idp::tokens`, `idp::renewal`, `idp::source`) and the proxied IdP call.
//! - [`cache`]: single-flight shared values, safe under concurrent invocations.
//! - [`cors`]: preflight answers and CORS grants for `ALLOWED_ORIGINS`.
//! - [`error`]: the one mapping from typed errors to documented JSON responses.
//! - [`upstream`]: the shared HTTP client and deadline-bounded outbound calls.
//! - [`deadline`]: the invocation's deadline, from which every timeout is cut.
//! - [`telemetry`]: JSON logs; the summary line of each invocation, a CloudWatch EMF document.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod cors;
pub mod credentials;
pub mod deadline;
pub mod error;
pub mod identities;
pub mod idp;
pub mod management;
pub mod routes;
pub mod telemetry;
pub mod upstream;

pub use app::App;
pub use config::Config;
