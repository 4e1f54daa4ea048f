//! auth0-idp-proxy: an AWS Lambda function that calls an external identity provider's API on
//! behalf of a user signed in through Auth0, without the IdP token ever reaching the browser.
//!
//! # Layout
//! From the handler down; a module only uses modules listed below it, so the imports form no
//! circle.
//! - [`app`]: the handler and the state shared across warm invocations; it owns the function's
//!   credentials and hands them to whoever needs them.
//! - [`event`]: the Lambda side of an invocation: the event checked before it becomes a request
//!   (lambda_http's conversion panics on some hostile fields), and the response written as the
//!   Lambda response, byte for byte and measured against Lambda's 6 MB limit, every value of a
//!   repeated header kept and a value it cannot carry dropped and counted.
//! - [`error`]: the one mapping from every boundary's error enum to documented JSON responses;
//!   the only code that knows them all.
//! - [`cors`]: preflight answers and CORS grants for `ALLOWED_ORIGINS`.
//! - [`vary`]: the response's `Vary`: the IdP's members and the function's own merged into one
//!   field, each once.
//! - [`auth`]: the caller's Auth0 access token, verified against the tenant's cached JWKS.
//! - [`config`]: the environment, parsed and validated once per cold start.
//! - [`routes`]: which route a v1, v2 or Function URL event asks for, and which methods it takes.
//! - [`idp`]: the IdP side. `idp::connections` (the connection table, and
//!   `Connections::resolve`: how a request's connection name becomes the connection that serves
//!   it, in one call), `idp::path` (path normalisation), the proxied call itself, and the IdP token path in three parts:
//!   - `idp::tokens`: the per-(user, connection) token cache in memory, with its own
//!     [`TokenError`](idp::tokens::TokenError). Below it, one seam,
//!     [`TokenSource`](idp::tokens::source::TokenSource): where tokens come from and how one is
//!     renewed. A new source (Auth0 Token Vault's exchange) is another `TokenSource`; a new level
//!     between memory and Auth0 (a table shared by the fleet) is a `TokenSource` that wraps the
//!     one below it. Neither touches the proxied call, the routes or the error mapping beyond
//!     adding its own error's answer.
//!   - `idp::fleet_source`: the fleet table as that level: tokens one environment read or
//!     renewed serve every environment; renewals run under the table's lease.
//!   - `idp::identity_source`: the source of connections on `identities`: the user's
//!     `identities[]` from the Management API, and refresh grants with the IdP apps' clients.
//!   - `idp::vault_source`: the source of connections on `token_vault`: Auth0 Token Vault's
//!     access token exchange, with the caller's verified token as the subject token.
//!   - `idp::renewal`: the refresh-token grant itself.
//!   - `idp::response`: the IdP's answer shaped for the caller: headers passed, rewritten
//!     (`Link`, `Cache-Control`) or dropped, the body byte for byte, never the IdP token.
//! - [`identities`]: the token-free `/identities` view.
//! - [`management`]: the Management API token (cached, and shared through the fleet table) and
//!   the user's profile, read within a per-user budget and at most once per request
//!   (`management::profiles`).
//! - [`kill_switch`]: the users and connections an operator has stopped, from a secret read
//!   with a 30 s cache.
//! - [`credentials`]: the M2M (IdP app, Token Vault) client credentials, from Secrets Manager.
//! - [`aws`]: the AWS SDK configuration, from Lambda's environment, shared by the SDK clients
//!   (Secrets Manager, DynamoDB).
//! - [`fleet`]: the DynamoDB table shared by every execution environment (`TOKEN_TABLE`):
//!   sealed values (`fleet::seal`), versions and leases (`fleet::table`); a failing table is
//!   logged and skipped.
//! - [`secret`]: redacted newtypes for IdP access and refresh tokens and the caller's token.
//! - [`single_flight`]: shared values loaded by one invocation at a time, safe under concurrency.
//! - [`freshness`]: when a token with a known lifetime stops being worth using.
//! - [`upstream`]: the shared HTTP clients (pooled for idempotent requests, a fresh connection
//!   for each write), deadline-bounded sends, `UpstreamError` and the one retry policy.
//! - [`audit`]: the audit line of each request: who called what at which provider, how it
//!   ended; never a query, a token or a header value that could carry one.
//! - [`telemetry`]: JSON logs; the summary line of each invocation, a CloudWatch EMF document.
//! - [`tenant`]: the Auth0 tenant's origin, which every client of the tenant joins its endpoints
//!   to.
//! - [`service`]: the names of the remote services, for errors, logs and the summary line.
//! - [`deadline`]: the invocation's deadline, from which every timeout is cut.

// The proxied call's future nests the resolver, the token sources and the IdP call, one async
// layer each: computing its layout takes more than the default 128 query levels in some builds
// (clippy of this crate alone).
#![recursion_limit = "256"]

pub mod app;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod config;
pub mod cors;
pub mod credentials;
pub mod deadline;
pub mod error;
pub mod event;
pub mod fleet;
pub mod freshness;
pub mod identities;
pub mod idp;
pub mod kill_switch;
pub mod management;
pub mod routes;
pub mod secret;
pub mod service;
pub mod single_flight;
pub mod streaming;
pub mod telemetry;
pub mod tenant;
pub mod upstream;
pub mod vary;

pub use app::{App, AppBuilder};
pub use config::Config;
