//! The Management API token: the client-credentials grant that obtains one, and the form in
//! which the fleet table shares it.

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{CALL_TIMEOUT, ManagementError};
use crate::credentials::{ClientAttempt, Credentials};
use crate::deadline::Deadline;
use crate::freshness;
use crate::service::Service;
use crate::tenant::TenantOrigin;
use crate::upstream::{self, Http, UpstreamError};

/// A Management API access token and when to stop using it.
pub struct ManagementToken {
    pub(super) access_token: SecretString,
    obtained_at: Instant,
    lifetime: Duration,
}

impl ManagementToken {
    /// Usable at `now`: not within the renewal margin of its expiry ([`freshness::is_fresh`]).
    pub fn is_fresh(&self, now: Instant) -> bool {
        freshness::is_fresh(self.obtained_at, self.lifetime, now)
    }

    /// Whether this is the very token `other` carries.
    pub(super) fn same_as(&self, other: &Self) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
    }
}

/// The token as the fleet table keeps it: wall-clock times, since environments share no clock
/// but the wall clock.
#[derive(Serialize, Deserialize)]
pub(super) struct SharedToken {
    access_token: String,
    issued_at_ms: u64,
    lifetime_ms: u64,
}

impl SharedToken {
    pub(super) fn of(token: &ManagementToken) -> Self {
        let now = crate::fleet::table::now_millis();
        let age = u64::try_from(token.obtained_at.elapsed().as_millis()).unwrap_or(u64::MAX);
        Self {
            access_token: token.access_token.expose_secret().to_owned(),
            issued_at_ms: now.saturating_sub(age),
            lifetime_ms: u64::try_from(token.lifetime.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// When the table should drop it.
    pub(super) fn expires(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.issued_at_ms + self.lifetime_ms)
    }

    /// The token as this environment keeps it, aged as it is.
    pub(super) fn to_token(&self) -> ManagementToken {
        let age = Duration::from_millis(
            crate::fleet::table::now_millis().saturating_sub(self.issued_at_ms),
        );
        let now = Instant::now();
        let lifetime = Duration::from_millis(self.lifetime_ms);
        // An Instant cannot reach back before this machine booted: age the lifetime instead.
        let (obtained_at, lifetime) = match now.checked_sub(age) {
            Some(at) => (at, lifetime),
            None => (now, lifetime.saturating_sub(age)),
        };
        ManagementToken {
            access_token: SecretString::from(self.access_token.as_str()),
            obtained_at,
            lifetime,
        }
    }
}

/// The token endpoint's answer to a client-credentials grant.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: u64,
}

/// One client-credentials grant, retried while the failure is transient. Repeating the grant is
/// safe: at worst Auth0 issues one more token.
pub(super) async fn request(
    http: &Http,
    origin: &TenantOrigin,
    credentials: &Credentials,
    deadline: &Deadline,
) -> Result<ManagementToken, ClientAttempt<ManagementError>> {
    upstream::retry(deadline, || attempt(http, origin, credentials, deadline)).await
}

async fn attempt(
    http: &Http,
    origin: &TenantOrigin,
    credentials: &Credentials,
    deadline: &Deadline,
) -> Result<ManagementToken, ClientAttempt<ManagementError>> {
    let service = Service::TokenEndpoint;
    let audience = origin.join("/api/v2/");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", credentials.m2m.client_id.as_str()),
        (
            "client_secret",
            credentials.m2m.client_secret.expose_secret(),
        ),
        ("audience", audience.as_str()),
    ];
    let request = http.post(origin.join("/oauth/token")).form(&form);
    let failed = |e: UpstreamError| ClientAttempt::Failed(e.into());
    let response = upstream::send(request, service, deadline, CALL_TIMEOUT)
        .await
        .map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        let error = upstream::status_error(service, &response);
        let code = upstream::oauth_error_code(response, service).await;
        // Auth0 answers a wrong secret with 401 (`access_denied` or `invalid_client`).
        if status == StatusCode::UNAUTHORIZED || code.as_deref() == Some("invalid_client") {
            return Err(ClientAttempt::Rejected);
        }
        tracing::warn!(
            status = status.as_u16(),
            error = code.as_deref(),
            "token exchange refused"
        );
        return Err(failed(error));
    }
    let body = upstream::read_body(response, service, upstream::MAX_BODY_BYTES)
        .await
        .map_err(failed)?;
    let token: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| failed(UpstreamError::garbage(service, e)))?;
    tracing::info!(expires_in = token.expires_in, "management token obtained");
    Ok(ManagementToken {
        access_token: token.access_token,
        obtained_at: Instant::now(),
        lifetime: Duration::from_secs(token.expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_shared_token_keeps_its_age_and_lifetime() {
        let now = Instant::now();
        let obtained = now.checked_sub(Duration::from_secs(100)).unwrap_or(now);
        let shared = SharedToken::of(&token(86_400, obtained));
        let back = shared.to_token();
        assert_eq!(back.access_token.expose_secret(), "t");
        assert!(back.is_fresh(Instant::now()));
        let expired = SharedToken::of(&token(10, obtained)).to_token();
        assert!(!expired.is_fresh(Instant::now()));
    }
}
