//! How a name in a request's path becomes the connection that serves it, in one call: the table
//! (configured or built in), else a connection learned before, else the catalogue entry of the
//! caller's identity's `provider` (learned from then on), and then, for a per-user API host,
//! the connection on the caller's own host. At most one profile read for all of it, shared with
//! the token source through the request's [`RequestProfile`].

use std::sync::Arc;

use super::{Connection, Connections};
use crate::deadline::Deadline;
use crate::idp::host::HostError;
use crate::management::ManagementError;
use crate::management::profiles::{IDENTITIES_MAX_AGE, RequestProfile};

/// Why a request's connection could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No connection of that name is configured, built in, or served by the entry of the
    /// caller's identity there.
    #[error("no connection {0:?} is configured")]
    Unknown(String),
    /// The caller's profile, needed to learn the connection or read its host, could not be read.
    #[error(transparent)]
    Profile(#[from] ManagementError),
    /// The user's per-user API host is missing or outside the connection's host pattern.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl Connections {
    /// The connection that serves `name` for the caller whose profile is `profile`, resolved
    /// once for the request. A profile is read only where the name is not known yet (to learn
    /// its strategy from the identity's `provider`: a connection's strategy is the tenant's,
    /// not the user's, so it is learned once per name) or its API host is per user; a recent
    /// one serves both.
    pub async fn resolve(
        &self,
        name: &str,
        profile: &RequestProfile<'_>,
        deadline: &Deadline,
    ) -> Result<Arc<Connection>, ResolveError> {
        let connection = match self
            .named_or_built_in(name)
            .cloned()
            .or_else(|| self.learned.get(name))
        {
            Some(connection) => connection,
            None => self.learn(name, profile, deadline).await?,
        };
        if connection.api_host.is_none() {
            return Ok(connection);
        }
        // A per-user host is read from the profile and checked before any token is leased.
        let user = profile.recent(IDENTITIES_MAX_AGE, deadline).await?;
        Ok(Arc::new(connection.for_host(&user.host_view(name))?))
    }

    /// The connection `name`, not in the table, served by the catalogue entry of the caller's
    /// identity's `provider` there, kept for the next request.
    async fn learn(
        &self,
        name: &str,
        profile: &RequestProfile<'_>,
        deadline: &Deadline,
    ) -> Result<Arc<Connection>, ResolveError> {
        let user = profile.recent(IDENTITIES_MAX_AGE, deadline).await?;
        let unknown = || ResolveError::Unknown(name.to_owned());
        let identity = user.identity(name).ok_or_else(unknown)?;
        let connection = self
            .for_strategy(name, &identity.provider)
            .map_err(|reason| {
                tracing::debug!(connection = name, %reason, "no entry serves this connection");
                unknown()
            })?;
        Ok(self.learned.insert(connection))
    }
}
