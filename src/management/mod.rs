//! The Auth0 Management API: a client-credentials token cached across warm invocations (and,
//! with the fleet table, shared by every environment), and the user profile that carries the
//! IdP tokens, read within a per-user budget.
//!
//! - [`token`]: the client-credentials grant and the token's shared form;
//! - [`user`]: the profile and its identities;
//! - [`profiles`]: recent profiles and per-user read budgets.

pub mod profiles;
pub mod token;
pub mod user;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use crate::credentials::{CredentialStore, Credentials, CredentialsError};
use crate::deadline::Deadline;
use crate::fleet::{self, Fleet, FleetTable, Turn};
use crate::service::Service;
use crate::single_flight::{SingleFlight, WaitExpired};
use crate::telemetry::Cache;
use crate::tenant::TenantOrigin;
use crate::upstream::{self, Http, UpstreamCause, UpstreamError};
use profiles::Profiles;
pub use token::ManagementToken;
use token::SharedToken;
pub use user::{Identity, User};

/// The user fields read from the Management API: the identities, and the root profile fields a
/// per-user API host may be read from (catalogue `api_host.fields` under `/user/`; a unit test
/// keeps the two in step).
pub const USER_FIELDS: &str = "user_id,identities,connected_accounts,urls,myshopify_domain";

/// Cap on one attempt at a token exchange or user read, within the invocation's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// The fleet table's item for the Management API token.
const TOKEN_KEY: &str = "management#token";

/// Longest an environment holds the fleet's lease on the token exchange: a dead environment
/// delays the others no longer than this.
const EXCHANGE_LEASE: Duration = Duration::from_secs(5);

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
    /// The user has spent their budget of profile reads for now.
    #[error("too many profile reads for this user; try again later")]
    BudgetSpent {
        /// When the budget refills.
        retry_after: Duration,
    },
}

impl UpstreamCause for ManagementError {
    fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            Self::Upstream(error) => Some(error),
            Self::Credentials(_) | Self::UserNotFound | Self::BudgetSpent { .. } => None,
        }
    }
}

impl From<WaitExpired> for ManagementError {
    fn from(_: WaitExpired) -> Self {
        Self::Upstream(UpstreamError::Timeout(Service::TokenEndpoint))
    }
}

/// The Management API client, shared by all invocations of an execution environment.
pub struct Management {
    http: Http,
    origin: TenantOrigin,
    credentials: Arc<CredentialStore>,
    token: SingleFlight<ManagementToken>,
    profiles: Profiles,
    fleet: Option<Arc<FleetTable>>,
}

impl Management {
    /// A client for the tenant at `origin`, authenticating with the M2M client in `credentials`
    /// (the application state's store, shared with whoever else needs the secret), sharing its
    /// token and budgets through `fleet` where the table is configured.
    pub fn new(
        http: Http,
        origin: TenantOrigin,
        credentials: Arc<CredentialStore>,
        fleet: Option<Arc<FleetTable>>,
    ) -> Self {
        Self {
            http,
            origin,
            credentials,
            token: SingleFlight::reported_as(Cache::ManagementToken),
            profiles: Profiles::default(),
            fleet,
        }
    }

    /// A fresh Management API token: the cached one, or one load shared by all callers.
    pub async fn token(
        &self,
        deadline: &Deadline,
    ) -> Result<Arc<ManagementToken>, ManagementError> {
        self.token
            .get_or_load(
                deadline,
                |t| t.is_fresh(Instant::now()),
                || self.load_token(None, deadline),
            )
            .await
    }

    /// A token from the fleet table if another environment holds a fresh one (other than
    /// `refused`), else one exchange for the whole fleet, shared through the table.
    async fn load_token(
        &self,
        refused: Option<&ManagementToken>,
        deadline: &Deadline,
    ) -> Result<ManagementToken, ManagementError> {
        let credentials = self.credentials.get(deadline).await?;
        let Some(fleet) = self.fleet(&credentials) else {
            return self.exchange(deadline).await;
        };
        let usable = |shared: &SharedToken| {
            let token = shared.to_token();
            token.is_fresh(Instant::now()) && refused.is_none_or(|r| !token.same_as(r))
        };
        match fleet
            .take_turn(TOKEN_KEY, usable, EXCHANGE_LEASE, deadline)
            .await
        {
            Ok(Turn::Theirs(shared)) => Ok(shared.to_token()),
            Ok(Turn::Mine { .. }) => {
                let result = self.exchange(deadline).await;
                match &result {
                    Ok(token) => {
                        let shared = SharedToken::of(token);
                        let written = fleet
                            .finish(TOKEN_KEY, &shared, shared.expires(), deadline)
                            .await;
                        if let Err(error) = written {
                            fleet::degraded("share the management token", &error);
                        }
                    }
                    Err(_) => fleet.abandon(TOKEN_KEY, deadline).await,
                }
                result
            }
            // The holder outlived this invocation's patience: one more exchange beats an error.
            Ok(Turn::Busy) => self.exchange(deadline).await,
            Err(error) => {
                fleet::degraded("read the management token", &error);
                self.exchange(deadline).await
            }
        }
    }

    /// The fleet table with the secret's keys, where it is configured and they are usable.
    fn fleet<'a>(&'a self, credentials: &'a Credentials) -> Option<Fleet<'a>> {
        self.fleet
            .as_deref()
            .and_then(|table| table.with_keys(&credentials.store_keys))
    }

    /// Runs the client-credentials grant, retried while the failure is transient (repeating it
    /// is safe: at worst Auth0 issues one more token); when Auth0 rejects the client, reads the
    /// secret again and retries once.
    async fn exchange(&self, deadline: &Deadline) -> Result<ManagementToken, ManagementError> {
        self.credentials
            .with_client(deadline, |credentials| async move {
                token::request(&self.http, &self.origin, &credentials, deadline).await
            })
            .await
    }

    /// The profile of `user_id` read less than `max_age` ago in this environment, if any.
    pub fn recent_user(&self, user_id: &str, max_age: Duration) -> Option<Arc<User>> {
        self.profiles.recent(user_id, max_age)
    }

    /// The profile of `user_id` with its identities, read now, within the user's budget of
    /// reads. A token the API refuses (revoked, or expired early) is dropped and replaced once.
    pub async fn user(
        &self,
        user_id: &str,
        deadline: &Deadline,
    ) -> Result<Arc<User>, ManagementError> {
        self.spend_budget(user_id, deadline).await?;
        let token = self.token(deadline).await?;
        let user = match self.read_user(&token, user_id, deadline).await {
            Err(ManagementError::Upstream(UpstreamError::Status { status: 401, .. })) => {
                tracing::warn!("Management API refused the cached token; exchanging a new one");
                self.token.invalidate(&token);
                let token = self
                    .token
                    .get_or_load(
                        deadline,
                        |t| !SingleFlight::is(t, &token) && t.is_fresh(Instant::now()),
                        || self.load_token(Some(&token), deadline),
                    )
                    .await?;
                self.read_user(&token, user_id, deadline).await
            }
            other => other,
        }?;
        let user = Arc::new(user);
        self.profiles.record(Arc::clone(&user));
        Ok(user)
    }

    /// Counts one profile read against the user's budget: this environment's, and the fleet's
    /// where the table is configured (a table failure leaves only this environment's).
    async fn spend_budget(
        &self,
        user_id: &str,
        deadline: &Deadline,
    ) -> Result<(), ManagementError> {
        let now = Instant::now();
        self.profiles
            .admit(user_id, now)
            .map_err(|retry_after| ManagementError::BudgetSpent { retry_after })?;
        let credentials = self.credentials.get(deadline).await?;
        let Some(fleet) = self.fleet(&credentials) else {
            return Ok(());
        };
        let window = profiles::WINDOW.as_secs();
        let minute = crate::fleet::table::epoch_seconds(SystemTime::now()) / window;
        let key = format!("budget#{minute}#{user_id}");
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs((minute + 2) * window);
        match fleet
            .spend(&key, profiles::READS_PER_MINUTE.into(), expires, deadline)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => {
                let next = SystemTime::UNIX_EPOCH + Duration::from_secs((minute + 1) * window);
                Err(ManagementError::BudgetSpent {
                    retry_after: next
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::from_secs(1)),
                })
            }
            Err(error) => {
                fleet::degraded("count the user's reads", &error);
                Ok(())
            }
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
            .query(&[("fields", USER_FIELDS), ("include_fields", "true")])
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
}
