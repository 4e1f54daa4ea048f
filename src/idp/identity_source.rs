//! The [`TokenSource`] of connections whose IdP tokens Auth0 keeps in the user's `identities[]`:
//! the identity read from the Management API, and refresh grants at the provider's token
//! endpoint with the IdP app's client credentials from the secret.

use super::connections::Connection;
use super::renewal::{self, RenewalError};
use super::tokens::source::{RenewFailure, Renewed, SourceFailure, Stored, TokenSource};
use crate::credentials::{CredentialStore, CredentialsError};
use crate::deadline::Deadline;
use crate::management::ManagementError;
use crate::management::profiles::{self, RequestProfile};
use crate::secret::IdpRefreshToken;

/// Why the identity's tokens could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The user has no identity at that connection.
    #[error("the user has no identity linked at connection {0:?}")]
    NotLinked(String),
    /// The user's identity at the connection is of a provider the connection's entry is not
    /// for (a renamed or mis-mapped connection): its token is not sent to this API.
    #[error(
        "connection {connection:?} serves identities of {}, but the user's identity there is of provider {provider:?}",
        expected.join(", ")
    )]
    ProviderMismatch {
        /// The connection asked for.
        connection: String,
        /// The identity's `provider`, as the Management API says it.
        provider: String,
        /// The providers the connection's entry is for.
        expected: Vec<String>,
    },
    /// The user's profile could not be read.
    #[error(transparent)]
    Management(#[from] ManagementError),
    /// The IdP app's client credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The refresh grant failed for a reason a new login would not mend.
    #[error(transparent)]
    Renewal(#[from] RenewalError),
}

impl SourceFailure for SourceError {
    fn is_outage(&self) -> bool {
        matches!(self, Self::Management(ManagementError::Upstream(_)))
    }

    fn is_not_linked(&self) -> bool {
        matches!(self, Self::NotLinked(_))
    }
}

/// The tokens of `user_id`'s identity at `connection`.
pub struct IdentitySource<'a> {
    /// The function's credentials, for the IdP apps' clients.
    pub credentials: &'a CredentialStore,
    /// The shared HTTP clients, for refresh grants.
    pub http: &'a crate::upstream::Http,
    /// The caller's profile, as this request reads it (at most once).
    pub profile: &'a RequestProfile<'a>,
    /// The connection asked for.
    pub connection: &'a Connection,
}

impl IdentitySource<'_> {
    fn not_linked_error(&self) -> SourceError {
        SourceError::NotLinked(self.connection.name.clone())
    }
}

impl TokenSource for IdentitySource<'_> {
    type Error = SourceError;

    async fn stored(&self, deadline: &Deadline) -> Result<Stored, SourceError> {
        // A profile read moments ago that lacks the connection answers for it: calls for an
        // unlinked connection do not each cost a Management API read.
        if let Some(user) = self.profile.held(profiles::NOT_LINKED_MAX_AGE)
            && user.identity(&self.connection.name).is_none()
        {
            return Err(self.not_linked_error());
        }
        let user = self.profile.fresh(deadline).await?;
        let identity = user
            .identity(&self.connection.name)
            .ok_or_else(|| self.not_linked_error())?;
        // An IdP token goes only to the API of the provider that issued it.
        if !self.connection.serves_provider(&identity.provider) {
            return Err(SourceError::ProviderMismatch {
                connection: self.connection.name.clone(),
                provider: identity.provider.clone(),
                expected: self.connection.providers.clone(),
            });
        }
        Ok(Stored {
            // An OAuth 1.0a identity's token goes with its secret: its calls are signed.
            access_token: identity
                .access_token
                .clone()
                .map(|token| token.with_secret(identity.access_token_secret.clone())),
            refresh_token: identity.refresh_token.clone(),
            // Auth0's `expires_in` is the lifetime at login, not what is left of it.
            expires_in: None,
            shared: false,
        })
    }

    fn not_linked(&self) -> Option<SourceError> {
        Some(self.not_linked_error())
    }

    async fn renew(
        &self,
        refresh_token: &IdpRefreshToken,
        deadline: &Deadline,
    ) -> Result<Renewed, RenewFailure<SourceError>> {
        let Some(token_url) = &self.connection.token_url else {
            return Err(RenewFailure::NotRenewable);
        };
        let credentials = self
            .credentials
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
            other => RenewFailure::Failed(other.into()),
        })
    }
}
