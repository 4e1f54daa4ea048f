//! The seam below the memory cache: where an (user, connection)'s IdP tokens come from.
//!
//! [`IdpTokens`](super::IdpTokens) asks a [`TokenSource`] for what is stored for the identity and
//! for a renewal; it never knows whether the answer came from Auth0's Management API, a token
//! exchange, or a level between it and Auth0 (a table shared by the fleet is a `TokenSource` that
//! answers from the table and asks the source it wraps only when it must).

use std::future::Future;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::freshness::Renewal;
use crate::secret::{IdpAccessToken, IdpRefreshToken};

/// The tokens a source holds for one identity now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The IdP access token, if any.
    pub access_token: Option<IdpAccessToken>,
    /// The IdP refresh token, where the provider issued one.
    pub refresh_token: Option<IdpRefreshToken>,
    /// How long the access token is good for from now, where the source knows.
    pub expires_in: Option<Duration>,
    /// Answered by a level in front of the source (the fleet table: what another environment
    /// read or renewed) without reading the source: after the IdP refuses such a token, the
    /// source itself is still worth reading.
    pub shared: bool,
}

/// A renewed access token, and the refresh token to use next time where the provider rotated it.
#[derive(Debug)]
pub struct Renewed {
    /// The new access token.
    pub access_token: IdpAccessToken,
    /// A new refresh token (rotating and single-use providers issue one at every grant);
    /// `None` when the provider issued none.
    pub refresh_token: Option<IdpRefreshToken>,
    /// Whether the refresh token presented is dead now although no new one came (a single-use
    /// provider's grant that issued none): it is then forgotten rather than presented again,
    /// which such a provider answers with `invalid_grant`.
    pub spent: bool,
    /// The access token's lifetime, where the provider says.
    pub expires_in: Option<Duration>,
    /// Another environment's grant, handed over by a level in front of the source (as for
    /// [`Stored::shared`]).
    pub shared: bool,
}

/// A source's failure, as much as the cache needs to know of it.
pub trait SourceFailure: std::error::Error + Send + Sync + 'static {
    /// Whether the source is failing for now (down, slow, rate limiting) rather than answering:
    /// a token the cache still holds may then stand in for a fresh one.
    fn is_outage(&self) -> bool;

    /// Whether the user has no identity at the connection: an answer worth remembering for a
    /// short time, so that calls for an unlinked connection do not each cost a source read.
    fn is_not_linked(&self) -> bool {
        false
    }
}

/// Why a renewal gave no token.
#[derive(Debug)]
pub enum RenewFailure<E> {
    /// The provider refused the refresh token: it is dead.
    Refused,
    /// The connection cannot be renewed (no token endpoint, or no client credentials for it).
    NotRenewable,
    /// The attempt failed (token endpoint down, secret unreadable, …).
    Failed(E),
    /// Another environment is renewing this token and did not finish within the deadline.
    OutOfTime,
}

/// Where tokens come from: what is stored for the identity, and renewal with a refresh token.
pub trait TokenSource: Sync {
    /// This source's failures.
    type Error: SourceFailure;

    /// Whether the source renews its tokens itself (Auth0 Token Vault): each read answers a token
    /// that is good, as far as the source knows, for the `expires_in` it gives, and the cache has
    /// no refresh grant of its own. The cache then trusts what a read just answered even if it
    /// expires within the freshness margin, and after a refusal by the IdP it reads the source
    /// again even when the refused token was read just now: that read is the renewal. Such a
    /// source answers the same token until it has expired, so its tokens are used to their last
    /// second ([`Renewal::AtExpiry`]) rather than read again early.
    fn renews_itself(&self) -> bool {
        false
    }

    /// How much of this source's tokens' life is kept back before they are replaced.
    fn renewal(&self) -> Renewal {
        if self.renews_itself() {
            Renewal::AtExpiry
        } else {
            Renewal::Early
        }
    }

    /// The identity's tokens as the source holds them now.
    fn stored(
        &self,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Stored, Self::Error>> + Send;

    /// A refresh-token grant with `refresh_token`.
    fn renew(
        &self,
        refresh_token: &IdpRefreshToken,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Renewed, RenewFailure<Self::Error>>> + Send;

    /// The "no identity at this connection" answer, for a level that remembers it; `None` for a
    /// source that never gives it.
    fn not_linked(&self) -> Option<Self::Error> {
        None
    }

    /// The IdP refused `token`: a source that keeps tokens for others (the fleet table) drops
    /// it, so that nobody is handed it again. Nothing to do for a source that keeps nothing.
    fn refused(
        &self,
        token: &IdpAccessToken,
        deadline: &Deadline,
    ) -> impl Future<Output = ()> + Send {
        let _ = (token, deadline);
        std::future::ready(())
    }
}
