//! The live [`TokenSource`]: the user's identity read from the Auth0 Management API, and the
//! provider's token endpoint with the IdP app's client credentials from the secret.

use reqwest::Client;
use secrecy::SecretString;

use super::IdpError;
use super::connections::Connection;
use super::renewal::{self, RenewalError, Renewed};
use super::tokens::{RenewFailure, Stored, TokenSource};
use crate::deadline::Deadline;
use crate::error::ApiError;
use crate::identities;
use crate::management::Management;

/// The tokens of `user_id`'s identity at `connection`.
pub struct LiveSource<'a> {
    /// The Management API client (and the function's credentials).
    pub management: &'a Management,
    /// The shared HTTP client, for refresh grants.
    pub http: &'a Client,
    /// The verified `sub`.
    pub user_id: &'a str,
    /// The connection asked for.
    pub connection: &'a Connection,
}

impl TokenSource for LiveSource<'_> {
    async fn stored(&self, deadline: &Deadline) -> Result<Stored, ApiError> {
        let user = self.management.user(self.user_id, deadline).await?;
        let identity = identities::pick(&user, &self.connection.name)
            .ok_or_else(|| IdpError::NotLinked(self.connection.name.clone()))?;
        Ok(Stored {
            access_token: identity.access_token.clone(),
            refresh_token: identity.refresh_token.clone(),
        })
    }

    async fn renew(
        &self,
        refresh_token: &SecretString,
        deadline: &Deadline,
    ) -> Result<Renewed, RenewFailure> {
        let Some(token_url) = &self.connection.token_url else {
            return Err(RenewFailure::NotRenewable);
        };
        let credentials = self
            .management
            .credentials()
            .get(deadline)
            .await
            .map_err(|e| RenewFailure::Failed(e.into()))?;
        let client = credentials
            .idp_clients
            .get(&self.connection.name)
            .ok_or(RenewFailure::NotRenewable)?;
        renewal::refresh(
            self.http,
            self.connection,
            token_url,
            client,
            refresh_token,
            deadline,
        )
        .await
        .map_err(|error| match error {
            RenewalError::InvalidGrant => RenewFailure::Refused,
            other => RenewFailure::Failed(IdpError::Renewal(other).into()),
        })
    }
}
