//! The Auth0 Management API: a client-credentials token cached across warm invocations, and the
//! user profile that carries the IdP tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::config::TenantOrigin;
use crate::credentials::{CredentialStore, Credentials, CredentialsError};
use crate::deadline::Deadline;
use crate::freshness;
use crate::secret::{IdpAccessToken, IdpRefreshToken};
use crate::service::Service;
use crate::single_flight::{SingleFlight, WaitExpired};
use crate::telemetry::Cache;
use crate::upstream::{self, UpstreamCause, UpstreamError};

/// Cap on one attempt at a token exchange or user read, within the invocation's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Everything but RFC 3986's unreserved characters: user ids hold `|`, which neither `url` nor
/// reqwest encodes in a path.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why the user's profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The function's own credentials are unavailable or rejected.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The token endpoint or the Management API failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The tenant has no such user (deleted since the token was issued).
    #[error("the tenant has no profile for this user")]
    UserNotFound,
}

impl UpstreamCause for ManagementError {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::Upstream(error) => Some(error),
            Self::Credentials(_) | Self::UserNotFound => None,
        }
    }
}

impl From<WaitExpired> for ManagementError {
    fn from(_: WaitExpired) -> Self {
        Self::Upstream(UpstreamError::Timeout(Service::TokenEndpoint))
    }
}

/// A Management API access token and when to stop using it.
pub struct ManagementToken {
    access_token: SecretString,
    obtained_at: Instant,
    lifetime: Duration,
}

impl ManagementToken {
    /// Usable at `now`: not within the renewal margin of its expiry ([`freshness::is_fresh`]).
    pub fn is_fresh(&self, now: Instant) -> bool {
        freshness::is_fresh(self.obtained_at, self.lifetime, now)
    }
}

/// The token endpoint's answer to a client-credentials grant.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: u64,
}

/// A user's profile, reduced to the fields the function asks for.
#[derive(Debug, Deserialize)]
pub struct User {
    /// The Auth0 user id.
    pub user_id: String,
    /// The linked identities; the first is the primary one.
    #[serde(default)]
    pub identities: Vec<Identity>,
}

/// One identity of a user at one connection. `Debug` never shows the tokens.
#[derive(Debug, Deserialize)]
pub struct Identity {
    /// The Auth0 connection name, e.g. `github`, `google-oauth2`.
    pub connection: String,
    /// The provider, e.g. `github`, `google-oauth2`, `oauth2`.
    pub provider: String,
    /// The user's id at the provider (a number for some providers, a string for others).
    #[serde(deserialize_with = "string_or_number")]
    pub user_id: String,
    /// Whether the connection is a social one.
    #[serde(rename = "isSocial", default)]
    pub is_social: bool,
    /// The IdP access token Auth0 stored at the last login.
    pub access_token: Option<IdpAccessToken>,
    /// The IdP refresh token, where the provider issues one.
    pub refresh_token: Option<IdpRefreshToken>,
    /// The access token's lifetime at login, in seconds, where the provider says.
    pub expires_in: Option<u64>,
}

fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    })
}

/// What went wrong with one token request.
enum Exchange {
    /// Auth0 does not accept the client id and secret: not transient, but a reason to read the
    /// secret again.
    InvalidClient,
    /// Anything else.
    Failed(ManagementError),
}

impl UpstreamCause for Exchange {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::InvalidClient => None,
            Self::Failed(error) => error.upstream(),
        }
    }
}

/// The Management API client, shared by all invocations of an execution environment.
pub struct Management {
    http: Client,
    origin: TenantOrigin,
    credentials: Arc<CredentialStore>,
    token: SingleFlight<ManagementToken>,
}

impl Management {
    /// A client for the tenant at `origin`, authenticating with the M2M client in `credentials`
    /// (the application state's store, shared with whoever else needs the secret).
    pub fn new(http: Client, origin: TenantOrigin, credentials: Arc<CredentialStore>) -> Self {
        Self {
            http,
            origin,
            credentials,
            token: SingleFlight::reported_as(Cache::ManagementToken),
        }
    }

    /// A fresh Management API token: the cached one, or one exchange shared by all callers.
    pub async fn token(
        &self,
        deadline: &Deadline,
    ) -> Result<Arc<ManagementToken>, ManagementError> {
        self.token
            .get_or_load(
                deadline,
                |t| t.is_fresh(Instant::now()),
                || self.exchange(deadline),
            )
            .await
    }

    /// Runs the client-credentials grant; when Auth0 rejects the client, reads the secret again
    /// (it may have been rotated) and retries once.
    async fn exchange(&self, deadline: &Deadline) -> Result<ManagementToken, ManagementError> {
        let credentials = self.credentials.get(deadline).await?;
        match self.request_token(&credentials, deadline).await {
            Ok(token) => return Ok(token),
            Err(Exchange::Failed(error)) => return Err(error),
            Err(Exchange::InvalidClient) => {
                tracing::warn!("Auth0 rejected the client credentials; reading the secret again");
            }
        }
        let reloaded = self.credentials.reload(&credentials, deadline).await?;
        match self.request_token(&reloaded, deadline).await {
            Ok(token) => Ok(token),
            Err(Exchange::Failed(error)) => Err(error),
            Err(Exchange::InvalidClient) => Err(CredentialsError::Rejected.into()),
        }
    }

    /// One client-credentials grant, retried while the failure is transient. Repeating the grant
    /// is safe: at worst Auth0 issues one more token.
    async fn request_token(
        &self,
        credentials: &Credentials,
        deadline: &Deadline,
    ) -> Result<ManagementToken, Exchange> {
        upstream::retry(deadline, || self.token_attempt(credentials, deadline)).await
    }

    #[tracing::instrument(name = "token_exchange", skip_all)]
    async fn token_attempt(
        &self,
        credentials: &Credentials,
        deadline: &Deadline,
    ) -> Result<ManagementToken, Exchange> {
        let service = Service::TokenEndpoint;
        let audience = self.origin.join("/api/v2/");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", credentials.m2m.client_id.as_str()),
            (
                "client_secret",
                credentials.m2m.client_secret.expose_secret(),
            ),
            ("audience", audience.as_str()),
        ];
        let request = self.http.post(self.origin.join("/oauth/token")).form(&form);
        let response = upstream::send(request, service, deadline, CALL_TIMEOUT)
            .await
            .map_err(|e| Exchange::Failed(e.into()))?;
        let status = response.status();
        if !status.is_success() {
            let error = upstream::status_error(service, &response);
            let body = upstream::read_body(response, service, 4096)
                .await
                .unwrap_or_default();
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            // Auth0 answers a wrong secret with 401 (`access_denied` or `invalid_client`).
            if status == StatusCode::UNAUTHORIZED || code.as_deref() == Some("invalid_client") {
                return Err(Exchange::InvalidClient);
            }
            tracing::warn!(
                status = status.as_u16(),
                error = code.as_deref(),
                "token exchange refused"
            );
            return Err(Exchange::Failed(error.into()));
        }
        let body = upstream::read_body(response, service, upstream::MAX_BODY_BYTES)
            .await
            .map_err(|e| Exchange::Failed(e.into()))?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Exchange::Failed(UpstreamError::garbage(service, e).into()))?;
        tracing::info!(expires_in = token.expires_in, "management token obtained");
        Ok(ManagementToken {
            access_token: token.access_token,
            obtained_at: Instant::now(),
            lifetime: Duration::from_secs(token.expires_in),
        })
    }

    /// The profile of `user_id` with its identities. A token the API refuses (revoked, or
    /// expired early) is dropped and replaced once.
    pub async fn user(&self, user_id: &str, deadline: &Deadline) -> Result<User, ManagementError> {
        let token = self.token(deadline).await?;
        match self.read_user(&token, user_id, deadline).await {
            Err(ManagementError::Upstream(UpstreamError::Status { status: 401, .. })) => {
                tracing::warn!("Management API refused the cached token; exchanging a new one");
                self.token.invalidate(&token);
                let token = self
                    .token
                    .get_or_load(
                        deadline,
                        |t| !SingleFlight::is(t, &token) && t.is_fresh(Instant::now()),
                        || self.exchange(deadline),
                    )
                    .await?;
                self.read_user(&token, user_id, deadline).await
            }
            other => other,
        }
    }

    /// [`Management::get_user`], retried while the failure is transient.
    async fn read_user(
        &self,
        token: &ManagementToken,
        user_id: &str,
        deadline: &Deadline,
    ) -> Result<User, ManagementError> {
        upstream::retry(deadline, || self.get_user(token, user_id, deadline)).await
    }

    #[tracing::instrument(name = "user_read", skip_all)]
    async fn get_user(
        &self,
        token: &ManagementToken,
        user_id: &str,
        deadline: &Deadline,
    ) -> Result<User, ManagementError> {
        let service = Service::ManagementApi;
        let url = self
            .origin
            .join(&user_path(user_id).ok_or(ManagementError::UserNotFound)?);
        let request = self
            .http
            .get(url)
            .query(&[("fields", "user_id,identities"), ("include_fields", "true")])
            .bearer_auth(token.access_token.expose_secret());
        let response = upstream::send(request, service, deadline, CALL_TIMEOUT).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(ManagementError::UserNotFound);
        }
        if !response.status().is_success() {
            return Err(upstream::status_error(service, &response).into());
        }
        let body = upstream::read_body(response, service, upstream::MAX_BODY_BYTES).await?;
        let user: User =
            serde_json::from_slice(&body).map_err(|e| UpstreamError::garbage(service, e))?;
        if user.user_id != user_id {
            return Err(UpstreamError::garbage(service, "profile of another user").into());
        }
        Ok(user)
    }
}

/// `/api/v2/users/{user_id}`, the id exactly one encoded segment; `None` for `.` and `..`, which
/// URL parsers resolve as dot segments whatever their encoding (`%2E` included), calling the
/// list endpoint or `/api/v2/` instead. The verified `sub` is never one; this holds even so.
fn user_path(user_id: &str) -> Option<String> {
    (user_id != "." && user_id != "..").then(|| {
        format!(
            "/api/v2/users/{}",
            utf8_percent_encode(user_id, PATH_SEGMENT)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_path_is_exactly_one_segment_under_users() {
        for id in ["github|42", "a.b", "...", "x/../y", "%2e%2e", "auth0|.."] {
            let path = user_path(id).expect("a path");
            let url = url::Url::parse(&format!("https://t.example{path}")).expect("url");
            let segments: Vec<_> = url.path_segments().expect("segments").collect();
            assert_eq!(segments.len(), 4, "{id}: {url}");
            assert_eq!(&segments[..3], ["api", "v2", "users"], "{id}");
        }
        assert_eq!(user_path("."), None);
        assert_eq!(user_path(".."), None);
    }

    fn token(lifetime: u64, obtained_at: Instant) -> ManagementToken {
        ManagementToken {
            access_token: SecretString::from("t"),
            obtained_at,
            lifetime: Duration::from_secs(lifetime),
        }
    }

    #[test]
    fn a_token_is_renewed_a_margin_before_it_expires() {
        let t0 = Instant::now();
        let day = token(86_400, t0);
        assert!(day.is_fresh(t0));
        assert!(day.is_fresh(t0 + Duration::from_secs(86_400 - 301)));
        assert!(!day.is_fresh(t0 + Duration::from_secs(86_400 - 299)));
        let minute = token(60, t0);
        assert!(minute.is_fresh(t0 + Duration::from_secs(53)));
        assert!(!minute.is_fresh(t0 + Duration::from_secs(55)));
        assert!(!token(0, t0).is_fresh(t0));
    }

    #[test]
    fn user_ids_are_fully_encoded_in_the_path() {
        assert_eq!(
            utf8_percent_encode("github|42", PATH_SEGMENT).to_string(),
            "github%7C42"
        );
        assert_eq!(
            utf8_percent_encode("oauth2|x/../y?z", PATH_SEGMENT).to_string(),
            "oauth2%7Cx%2F..%2Fy%3Fz"
        );
    }

    #[test]
    fn identities_parse_numeric_ids_and_hide_tokens() {
        let user: User =
            serde_json::from_str(include_str!("../tests/fixtures/management-user.json"))
                .expect("sample profile");
        assert_eq!(user.identities.len(), 2);
        let github = &user.identities[1];
        assert_eq!(github.connection, "github");
        assert_eq!(github.user_id, "1001");
        assert!(github.is_social);
        let debug = format!("{user:?}");
        assert!(!debug.contains("ya29."), "{debug}");
        assert!(!debug.contains("gho_"), "{debug}");
    }
}
