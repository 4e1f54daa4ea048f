//! The [`TokenSource`] of connections served through Auth0 Token Vault: Auth0 keeps the IdP's
//! tokens, renews them itself, and hands an access token out through its access token exchange,
//! with the caller's verified Auth0 access token as the subject token.
//!
//! The exchange is the only call: no Management API read, no refresh grant, and the caller's
//! token goes to Auth0's token endpoint and nowhere else.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::connections::Connection;
use super::tokens::source::{RenewFailure, Renewed, SourceFailure, Stored, TokenSource};
use crate::credentials::{ClientAttempt, ClientCredentials, CredentialStore, CredentialsError};
use crate::deadline::Deadline;
use crate::secret::{CallerToken, IdpAccessToken, IdpRefreshToken};
use crate::service::Service;
use crate::tenant::TenantOrigin;
use crate::upstream::{self, Http, UpstreamCause, UpstreamError};

/// The grant of Token Vault's exchanges.
pub const GRANT_TYPE: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// The kind of subject token sent: an Auth0 access token.
pub const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The kind of token asked for: the connection's IdP access token.
pub const REQUESTED_TOKEN_TYPE: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// Auth0's refusals that mean it holds no token for that user and connection: the user must
/// connect the account (again).
const NOTHING_HELD: &[&str] = &[
    "federated_connection_refresh_token_not_found",
    "invalid_grant",
    "tokenset_not_found",
];

/// Cap on one exchange attempt, within the invocation's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Why Token Vault gave no token.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The client that performs the exchange could not be read, or Auth0 rejects it.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Auth0 refused the exchange for a reason that connecting the account again would not mend
    /// (the client may not use the grant, the API is not linked to it, …).
    #[error(
        "Auth0 refused the Token Vault exchange for connection {connection:?} (HTTP {status}, {code})"
    )]
    Refused {
        /// The connection asked for.
        connection: String,
        /// Auth0's status.
        status: u16,
        /// Auth0's `error` code, printable, or `unknown`.
        code: String,
    },
    /// The token endpoint failed, throttled, timed out or answered garbage.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl SourceFailure for VaultError {
    fn is_outage(&self) -> bool {
        matches!(self, Self::Upstream(_))
    }
}

impl UpstreamCause for VaultError {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::Upstream(error) => Some(error),
            Self::Credentials(_) | Self::Refused { .. } => None,
        }
    }
}

/// The exchange's answer (RFC 8693 §2.2.1); no refresh token comes with it.
#[derive(Deserialize)]
struct Exchanged {
    access_token: IdpAccessToken,
    expires_in: u64,
    issued_token_type: Option<String>,
    token_type: Option<String>,
    /// The scopes the user granted at the provider, space-separated.
    scope: Option<String>,
}

/// The IdP access token that Token Vault holds for the caller at `connection`.
pub struct VaultSource<'a> {
    /// The shared HTTP clients.
    pub http: &'a Http,
    /// The tenant, whose `/oauth/token` performs the exchange.
    pub origin: &'a TenantOrigin,
    /// The function's credentials, for the client that performs the exchange.
    pub credentials: &'a CredentialStore,
    /// The caller's verified Auth0 access token: the subject token.
    pub subject_token: &'a CallerToken,
    /// The connection asked for.
    pub connection: &'a Connection,
}

impl TokenSource for VaultSource<'_> {
    type Error = VaultError;

    fn renews_itself(&self) -> bool {
        true
    }

    async fn stored(&self, deadline: &Deadline) -> Result<Stored, VaultError> {
        self.credentials
            .with_client(deadline, |credentials| async move {
                let client = credentials.vault_client();
                upstream::retry(deadline, || self.exchange(client, deadline)).await
            })
            .await
    }

    /// Auth0 renews the tokens it keeps; the function has nothing to renew with.
    async fn renew(
        &self,
        _: &IdpRefreshToken,
        _: &Deadline,
    ) -> Result<Renewed, RenewFailure<VaultError>> {
        Err(RenewFailure::NotRenewable)
    }
}

impl VaultSource<'_> {
    /// One exchange. Auth0 holding nothing for the user and connection is a read that found no
    /// token, not a failure.
    async fn exchange(
        &self,
        client: &ClientCredentials,
        deadline: &Deadline,
    ) -> Result<Stored, ClientAttempt<VaultError>> {
        let service = Service::TokenEndpoint;
        let failed = |e: UpstreamError| ClientAttempt::Failed(e.into());
        let form = [
            ("grant_type", GRANT_TYPE),
            ("subject_token", self.subject_token.expose()),
            ("subject_token_type", SUBJECT_TOKEN_TYPE),
            ("requested_token_type", REQUESTED_TOKEN_TYPE),
            ("connection", self.connection.name.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose_secret()),
        ];
        let request = self.http.post(self.origin.join("/oauth/token")).form(&form);
        let response = upstream::send(request, service, deadline, CALL_TIMEOUT)
            .await
            .map_err(failed)?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(failed(upstream::status_error(service, &response)));
        }
        if !status.is_success() {
            let code = upstream::oauth_error_code(response, service).await;
            return self.refusal(status, code);
        }
        let body = upstream::read_body(response, service, upstream::MAX_BODY_BYTES)
            .await
            .map_err(failed)?;
        let answer: Exchanged = serde_json::from_slice(&body)
            .map_err(|e| failed(UpstreamError::garbage(service, e)))?;
        check(&answer).map_err(|what| failed(UpstreamError::garbage(service, what)))?;
        tracing::info!(expires_in = answer.expires_in, "Token Vault token obtained");
        // An empty `scope` says nothing: the scopes are then unknown, not none.
        let scopes = answer.scope.as_deref().filter(|s| !s.trim().is_empty());
        Ok(Stored {
            access_token: Some(answer.access_token.with_scopes(scopes)),
            refresh_token: None,
            expires_in: Some(Duration::from_secs(answer.expires_in)),
            shared: false,
        })
    }

    /// What a refusal means: `Ok` (no token) when Auth0 holds nothing for the user and
    /// connection, else the failure.
    fn refusal(
        &self,
        status: StatusCode,
        code: Option<String>,
    ) -> Result<Stored, ClientAttempt<VaultError>> {
        // Checked first: Auth0 may answer these with a 401 too.
        if let Some(code) = code.as_deref().filter(|c| NOTHING_HELD.contains(c)) {
            tracing::info!(
                error = code,
                "Token Vault holds no token for this user and connection"
            );
            return Ok(Stored::default());
        }
        // Auth0 answers a wrong client secret with 401 (`access_denied` or `invalid_client`).
        if status == StatusCode::UNAUTHORIZED || code.as_deref() == Some("invalid_client") {
            return Err(ClientAttempt::Rejected);
        }
        let code = code.unwrap_or_else(|| "unknown".to_owned());
        tracing::warn!(status = status.as_u16(), error = %code, "Token Vault exchange refused");
        Err(ClientAttempt::Failed(VaultError::Refused {
            connection: self.connection.name.clone(),
            status: status.as_u16(),
            code,
        }))
    }
}

/// Refuses an answer that is not a bearer token for the connection.
fn check(answer: &Exchanged) -> Result<(), &'static str> {
    if answer.access_token.expose().is_empty() {
        return Err("empty access token");
    }
    if answer
        .issued_token_type
        .as_deref()
        .is_some_and(|t| t != REQUESTED_TOKEN_TYPE)
    {
        return Err("issued another type of token");
    }
    if answer
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err("not a bearer token");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Exchanged {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn only_bearer_tokens_of_the_requested_type_are_taken() {
        assert!(
            check(&answer(
                r#"{"access_token": "ya29.a", "expires_in": 3377, "scope": "openid",
                    "issued_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token",
                    "token_type": "Bearer"}"#
            ))
            .is_ok()
        );
        assert!(check(&answer(r#"{"access_token": "a", "expires_in": 60}"#)).is_ok());
        for bad in [
            r#"{"access_token": "", "expires_in": 60}"#,
            r#"{"access_token": "a", "expires_in": 60, "token_type": "DPoP"}"#,
            r#"{"access_token": "a", "expires_in": 60, "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}"#,
        ] {
            assert!(check(&answer(bad)).is_err(), "{bad}");
        }
    }
}
