//! The one place where errors become HTTP responses (the error table in README, "How a request
//! flows").
//!
//! Every boundary has its own error enum; [`ApiError`] gathers them and decides status, `error`
//! code, extra headers and log level. Client mistakes are logged at `debug`, infrastructure
//! failures at `error` with their cause chain. No description ever contains a token.

use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::auth::dpop::{ALGS, DpopMode, Scheme};
use crate::auth::{AuthError, Refusal};

use crate::credentials::CredentialsError;
use crate::event::{EventError, TooLarge};
use crate::idp::IdpError;
use crate::idp::connections::{ResolveError, TokenSourceKind};
use crate::idp::consent::{Consent, Reason};
use crate::idp::identity_source::SourceError;
use crate::idp::renewal::RenewalError;
use crate::idp::tokens::TokenError;
use crate::idp::tokens::source::SourceFailure;
use crate::idp::vault_source::VaultError;
use crate::kill_switch::KillSwitchError;
use crate::management::ManagementError;
pub use crate::telemetry::error_chain;
use crate::upstream::UpstreamError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller lacks the required scope.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller could not be authenticated.
    #[error(transparent)]
    Unauthenticated(#[from] Refusal),
    /// The function's own credentials are unavailable.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The Management API token or the user's profile could not be had.
    #[error(transparent)]
    Management(#[from] ManagementError),
    /// The request's connection could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The proxied IdP call failed or was refused.
    #[error(transparent)]
    Idp(#[from] IdpError),
    /// No IdP token could be had for the caller at a connection served from `identities[]`.
    #[error(transparent)]
    Tokens(#[from] TokenError<SourceError>),
    /// No IdP token could be had for the caller at a connection served through Token Vault.
    #[error(transparent)]
    VaultTokens(#[from] TokenError<VaultError>),
    /// An operator stopped the call, or the kill switch cannot be read.
    #[error(transparent)]
    KillSwitch(#[from] KillSwitchError),
    /// The event has a field no request can have.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The answer does not fit in Lambda's response.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// No route matches the path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed {
        /// Methods the route accepts, for the `Allow` header.
        allow: String,
    },
}

/// How an error is answered.
struct Answer {
    status: StatusCode,
    code: &'static str,
    /// `WWW-Authenticate`, `Allow` or `Retry-After`, as needed.
    header: Option<(header::HeaderName, String)>,
    /// Whether the caller (rather than the function or an upstream) is at fault: decides the
    /// log level.
    client_fault: bool,
    /// Extra members of the JSON body, e.g. the connection to log in with again.
    extra: Vec<(&'static str, serde_json::Value)>,
}

impl Answer {
    fn client(status: StatusCode, code: &'static str) -> Self {
        Self {
            status,
            code,
            header: None,
            client_fault: true,
            extra: Vec::new(),
        }
    }

    fn infrastructure(status: StatusCode, code: &'static str) -> Self {
        Self {
            client_fault: false,
            ..Self::client(status, code)
        }
    }

    fn upstream(error: &UpstreamError) -> Self {
        match error {
            UpstreamError::Timeout(_) => {
                Self::infrastructure(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
            }
            UpstreamError::RateLimited { retry_after, .. } => Self::rate_limited(*retry_after),
            _ => Self::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error"),
        }
    }

    fn rate_limited(retry_after: Option<Duration>) -> Self {
        // Whole seconds, rounded up, and at least one: "0" would invite a hot loop.
        let seconds = retry_after
            .map_or(1, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .max(1);
        Self::infrastructure(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .with_header(header::RETRY_AFTER, seconds.to_string())
    }

    fn credentials() -> Self {
        Self::infrastructure(StatusCode::SERVICE_UNAVAILABLE, "credentials_unavailable")
    }

    fn not_linked() -> Self {
        Self::client(StatusCode::NOT_FOUND, "identity_not_linked")
    }

    /// No usable IdP token, or one without the scopes a call needs: what the user must do, with
    /// the scopes to ask for (README, "Consent answers").
    fn consent(consent: &Consent) -> Self {
        let code = match consent.reason {
            Reason::NoToken => "reconsent_required",
            Reason::ScopesMissing => "consent_required",
        };
        let mut extra = vec![
            ("connection", consent.connection.clone().into()),
            ("action", consent.action.as_str().into()),
            ("scopes", consent.scopes.clone().into()),
        ];
        if consent.reason == Reason::ScopesMissing {
            extra.push(("missing", consent.missing.clone().into()));
        }
        Self {
            extra,
            ..Self::client(StatusCode::FORBIDDEN, code)
        }
    }

    fn management(error: &ManagementError) -> Self {
        match error {
            ManagementError::Credentials(_) => Self::credentials(),
            ManagementError::Upstream(error) => Self::upstream(error),
            ManagementError::UserNotFound => Self::not_linked(),
            // The caller's own doing, but answered like Auth0's limit: wait and try again.
            ManagementError::BudgetSpent { retry_after } => Self {
                client_fault: true,
                ..Self::rate_limited(Some(*retry_after))
            },
        }
    }

    fn source(error: &SourceError) -> Self {
        match error {
            SourceError::NotLinked(_) => Self::not_linked(),
            // The tenant's connection and the function's configuration disagree: an operator's
            // fix, logged at error level.
            SourceError::ProviderMismatch { connection, .. } => Self {
                extra: vec![("connection", connection.clone().into())],
                ..Self::infrastructure(StatusCode::BAD_GATEWAY, "provider_mismatch")
            },
            SourceError::Management(error) => Self::management(error),
            SourceError::Credentials(_) => Self::credentials(),
            SourceError::Renewal(RenewalError::Upstream(error)) => Self::upstream(error),
            SourceError::Renewal(_) => {
                Self::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error")
            }
        }
    }

    fn vault(error: &VaultError) -> Self {
        match error {
            VaultError::Credentials(_) => Self::credentials(),
            VaultError::Refused { .. } => {
                Self::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error")
            }
            VaultError::Upstream(error) => Self::upstream(error),
        }
    }

    /// The cache's own answers, and `source`'s for its source's failures; a connection whose
    /// tokens come from `kind` is reconnected or logged in with again.
    fn tokens<E: SourceFailure>(
        error: &TokenError<E>,
        kind: TokenSourceKind,
        source: impl FnOnce(&E) -> Self,
    ) -> Self {
        match error {
            TokenError::ReconsentRequired { connection } => {
                Self::consent(&Consent::no_token(connection, kind, &[]))
            }
            TokenError::OutOfTime => {
                Self::infrastructure(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
            }
            TokenError::Source(error) => source(error),
        }
    }

    /// A `401`: `invalid_dpop_proof` for a proof that does not hold, else `invalid_token`; with
    /// a challenge for each scheme the deployment accepts (RFC 6750 §3, RFC 9449 §7.1), the
    /// error on the one the request used, a bare challenge for a request with no credentials.
    fn unauthenticated(error: &AuthError, mode: DpopMode, scheme: Option<Scheme>) -> Self {
        let code = match error {
            AuthError::Proof(_) => "invalid_dpop_proof",
            _ => "invalid_token",
        };
        let named = match error {
            AuthError::Missing => None,
            _ => Some(code),
        };
        // The scheme the error is about: the one used, else (a bearer token where DPoP is
        // required, a bound token sent as bearer) the one the caller must use.
        let erring = match (error, scheme) {
            (AuthError::DpopRequired | AuthError::BoundAsBearer, _) => Scheme::Dpop,
            (_, Some(scheme)) => scheme,
            (_, None) => Scheme::Bearer,
        };
        let mut challenges = Vec::new();
        if mode.accepts_bearer() {
            challenges.push(match named.filter(|_| erring == Scheme::Bearer) {
                Some(error) => format!(r#"Bearer error="{error}""#),
                None => "Bearer".to_owned(),
            });
        }
        if mode.accepts_dpop() {
            let mut dpop = String::from("DPoP");
            if let Some(error) = named.filter(|_| erring == Scheme::Dpop) {
                dpop.push_str(&format!(r#" error="{error}","#));
            }
            dpop.push_str(&format!(r#" algs="{ALGS}""#));
            challenges.push(dpop);
        }
        Self::client(StatusCode::UNAUTHORIZED, code)
            .with_header(header::WWW_AUTHENTICATE, challenges.join(", "))
    }

    /// RFC 6750 §3.1: the challenge names the scopes the request needs (space-separated).
    fn insufficient_scope(scope: &str) -> Self {
        Self::client(StatusCode::FORBIDDEN, "insufficient_scope").with_header(
            header::WWW_AUTHENTICATE,
            format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
        )
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.header = Some((name, value));
        self
    }
}

impl ApiError {
    fn answer(&self) -> Answer {
        match self {
            Self::Auth(AuthError::InsufficientScope(scope)) => Answer::insufficient_scope(scope),
            Self::Idp(IdpError::InsufficientScope(missing)) => {
                Answer::insufficient_scope(&missing.join(" "))
            }
            Self::Auth(AuthError::KeysUnavailable(Some(source))) => Answer::upstream(source),
            Self::Auth(AuthError::KeysUnavailable(None)) => {
                Answer::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error")
            }
            Self::Unauthenticated(refusal) => match &refusal.error {
                AuthError::KeysUnavailable(Some(source)) => Answer::upstream(source),
                AuthError::KeysUnavailable(None) => {
                    Answer::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error")
                }
                error => Answer::unauthenticated(error, refusal.mode, refusal.scheme),
            },
            // An `AuthError` without its refusal's context: as a bearer-only deployment says it.
            Self::Auth(error) => Answer::unauthenticated(error, DpopMode::Off, None),
            Self::NotFound => Answer::client(StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { allow } => {
                Answer::client(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
                    .with_header(header::ALLOW, allow.clone())
            }
            Self::Credentials(_) => Answer::credentials(),
            Self::Management(error) => Answer::management(error),
            Self::Idp(IdpError::Upstream(error)) => Answer::upstream(error),
            // The host comes from the IdP's profile (through Auth0), not from the caller's
            // request: an IdP answer that cannot be used, as an unsafe one.
            Self::Idp(IdpError::Unsafe(_))
            | Self::Resolve(ResolveError::Host(_))
            | Self::TooLarge(_) => {
                Answer::infrastructure(StatusCode::BAD_GATEWAY, "upstream_error")
            }
            Self::Event(_) => Answer::client(StatusCode::BAD_REQUEST, "invalid_request"),
            Self::Resolve(ResolveError::Unknown(_)) => {
                Answer::client(StatusCode::NOT_FOUND, "unknown_connection")
            }
            Self::Resolve(ResolveError::Profile(error)) => Answer::management(error),
            Self::Idp(IdpError::ForbiddenPath(_)) => {
                Answer::client(StatusCode::FORBIDDEN, "forbidden_path")
            }
            Self::Idp(IdpError::Consent(consent)) => Answer::consent(consent),
            // The secret lacks, or cannot give, what an OAuth 1.0a call is signed with.
            Self::Idp(
                IdpError::NoSigningClient { .. } | IdpError::Signing(_) | IdpError::Credentials(_),
            ) => Answer::credentials(),
            Self::KillSwitch(KillSwitchError::UserBlocked) => {
                Answer::client(StatusCode::FORBIDDEN, "user_blocked")
            }
            Self::KillSwitch(KillSwitchError::ConnectionBlocked(connection)) => Answer {
                extra: vec![("connection", connection.clone().into())],
                ..Answer::client(StatusCode::FORBIDDEN, "connection_blocked")
            },
            Self::KillSwitch(
                KillSwitchError::Unavailable(_) | KillSwitchError::FailedRecently(_),
            ) => Answer::infrastructure(StatusCode::SERVICE_UNAVAILABLE, "kill_switch_unavailable"),
            Self::Tokens(error) => {
                Answer::tokens(error, TokenSourceKind::Identities, Answer::source)
            }
            Self::VaultTokens(error) => {
                Answer::tokens(error, TokenSourceKind::TokenVault, Answer::vault)
            }
        }
    }

    /// The documented JSON response for this error, logged at the level its cause deserves.
    pub fn into_response(self) -> Response<Body> {
        let answer = self.answer();
        crate::telemetry::error_code(answer.code);
        let description = self.to_string();
        if answer.client_fault {
            tracing::debug!(status = answer.status.as_u16(), error = answer.code, %description, "request refused");
        } else {
            tracing::error!(status = answer.status.as_u16(), error = answer.code, cause = %error_chain(&self), "request failed");
        }
        let mut body = json!({ "error": answer.code, "error_description": description });
        for (name, value) in answer.extra {
            body[name] = value;
        }
        let mut response = json_response(answer.status, &body);
        if let Some((name, value)) = answer.header
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// A JSON response of the function's own; never cached by browsers or proxies.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Service;

    fn parts(error: ApiError) -> (u16, serde_json::Value, http::HeaderMap) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let Body::Text(text) = response.into_body() else {
            panic!("text body expected")
        };
        (
            status,
            serde_json::from_str(&text).expect("JSON body"),
            headers,
        )
    }

    #[test]
    fn auth_failures_are_401_with_www_authenticate() {
        let (status, body, headers) = parts(AuthError::Expired.into());
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "the token has expired");
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(headers["content-type"], "application/json");
    }

    #[test]
    fn a_request_without_credentials_gets_the_bare_challenge() {
        let (status, body, headers) = parts(AuthError::Missing.into());
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token"))
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    #[test]
    fn a_rules_missing_permissions_are_named_in_the_challenge() {
        let missing = vec!["github:write".to_owned(), "github:admin".to_owned()];
        let (status, body, headers) = parts(IdpError::InsufficientScope(missing).into());
        assert_eq!(
            (status, &body["error"]),
            (403, &json!("insufficient_scope"))
        );
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer error="insufficient_scope", scope="github:write github:admin""#
        );
    }

    #[test]
    fn missing_scope_is_403_insufficient_scope() {
        let (status, body, headers) =
            parts(AuthError::InsufficientScope("proxy:call".into()).into());
        assert_eq!(status, 403);
        assert_eq!(body["error"], "insufficient_scope");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .expect("ascii")
                .contains(r#"scope="proxy:call""#)
        );
    }

    #[test]
    fn unavailable_keys_are_upstream_errors() {
        let (status, body, _) =
            parts(AuthError::KeysUnavailable(Some(UpstreamError::Timeout(Service::Jwks))).into());
        assert_eq!(
            (status, body["error"].as_str()),
            (504, Some("upstream_timeout"))
        );
        let (status, body, _) = parts(
            AuthError::KeysUnavailable(Some(UpstreamError::Status {
                service: Service::Jwks,
                status: 500,
            }))
            .into(),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_error"))
        );
    }

    #[test]
    fn rate_limits_carry_retry_after_in_whole_seconds() {
        let (status, body, headers) = parts(ApiError::Management(ManagementError::Upstream(
            UpstreamError::RateLimited {
                service: Service::ManagementApi,
                retry_after: Some(std::time::Duration::from_millis(2_100)),
            },
        )));
        assert_eq!(
            (status, body["error"].as_str()),
            (429, Some("rate_limited"))
        );
        assert_eq!(headers["retry-after"], "3");
    }

    #[test]
    fn idp_errors() {
        let (status, body, _) = parts(ApiError::Tokens(TokenError::ReconsentRequired {
            connection: "google-oauth2".into(),
        }));
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("reconsent_required"))
        );
        assert_eq!(body["connection"], "google-oauth2");
        let (status, body, _) = parts(ApiError::Resolve(ResolveError::Unknown("x".into())));
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("unknown_connection"))
        );
        let (status, body, _) = parts(ApiError::Credentials(CredentialsError::Timeout));
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("credentials_unavailable"))
        );
    }

    #[test]
    fn token_vault_errors() {
        let answer = |error: VaultError| parts(ApiError::VaultTokens(TokenError::Source(error)));
        let (status, body, _) = answer(VaultError::Refused {
            connection: "google-oauth2".into(),
            status: 403,
            code: "unauthorized_client".into(),
        });
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_error"))
        );
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("unauthorized_client")),
            "{body}"
        );
        let (status, body, headers) = answer(VaultError::Upstream(UpstreamError::RateLimited {
            service: Service::TokenEndpoint,
            retry_after: None,
        }));
        assert_eq!(
            (status, body["error"].as_str()),
            (429, Some("rate_limited"))
        );
        assert_eq!(headers["retry-after"], "1");
        let (status, body, _) = answer(VaultError::Credentials(CredentialsError::Rejected));
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("credentials_unavailable"))
        );
        let (status, body, _) = parts(ApiError::VaultTokens(TokenError::ReconsentRequired {
            connection: "google-oauth2".into(),
        }));
        assert_eq!(
            (status, body["error"].as_str(), body["connection"].as_str()),
            (403, Some("reconsent_required"), Some("google-oauth2"))
        );
    }

    #[test]
    fn routing_errors() {
        let (status, body, _) = parts(ApiError::NotFound);
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        let (status, _, headers) = parts(ApiError::MethodNotAllowed {
            allow: "GET, HEAD, OPTIONS".into(),
        });
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "GET, HEAD, OPTIONS");
    }

    #[test]
    fn hostile_events_and_unsafe_answers() {
        let (status, body, _) = parts(ApiError::Event(EventError::Body));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
        let (status, body, _) = parts(ApiError::TooLarge(TooLarge { size: 7_340_182 }));
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_error"))
        );
        let (status, body, _) = parts(ApiError::Idp(IdpError::Unsafe(
            crate::idp::UnsafeAnswer::CarriesToken,
        )));
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_error"))
        );
    }
}
