//! The IdP access token of each (user, connection), kept in memory across warm invocations:
//! replaced when the IdP refuses it, renewed with the refresh token where the provider allows it.
//!
//! - [`source`]: the seam below this cache — where tokens come from ([`TokenSource`]);
//! - [`entry`]: one (user, connection)'s state and locks.
//!
//! Auth0 stores the IdP tokens of the last login and never renews them, so the function does
//! (for a source that renews its tokens itself, Auth0 Token Vault, a read of the source takes the
//! refresh grant's place: see [`TokenSource::renews_itself`]):
//! - a cached token is used while it is fresh: until shortly before its known expiry (the
//!   source's [`TokenSource::renewal`] margin), else for [`TokenPolicy::max_age`], after which
//!   the source is read again so that a re-login's new token is picked up;
//! - a token the IdP refuses, or a token of known expiry that has run out, is replaced with the
//!   refresh token, once, where one is held; the source is read again only if that grant is
//!   refused (a re-login) or no refresh token is held, since source reads (Management API
//!   reads) are what the tenant's rate limit is scarcest in; the source's same token is tried
//!   again after [`TokenPolicy::refusal_recheck`] (a 401 may have been about one resource), so a
//!   refusal never sticks for the environment's life;
//! - a rotated refresh token (single-use providers) is kept here and used next time: values that
//!   the source still holds but this cache has already superseded are not taken back.
//!
//! Everything that loads or renews one (user, connection) runs under that entry's own lock, so
//! concurrent invocations share one source read and one refresh grant. Entries are bounded in
//! number, least recently used out first.

pub mod entry;
pub mod source;
#[cfg(test)]
mod tests;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::deadline::Deadline;
use crate::freshness::Renewal;
use crate::secret::IdpAccessToken;
use crate::single_flight;
pub use entry::Provenance;
use entry::{Current, Entry};
use source::{RenewFailure, SourceFailure, TokenSource};

/// How many tokens are kept and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Most (user, connection) entries kept; the least recently used goes first.
    pub capacity: NonZeroUsize,
    /// How long a token of unknown expiry is used before the source is asked again.
    pub max_age: Duration,
    /// How long after an IdP refused a token the source's same token is tried again; until
    /// then the connection's calls answer `reconsent_required` without calling the IdP.
    pub refusal_recheck: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_age: Duration::from_secs(300),
            refusal_recheck: Duration::from_secs(30),
        }
    }
}

/// Why no token could be had, in the cache's own terms; `E` is the source's failure.
#[derive(Debug, thiserror::Error)]
pub enum TokenError<E: SourceFailure> {
    /// The IdP token is missing, expired or revoked and cannot be renewed: the user must log in
    /// with the connection again.
    #[error("the user must log in with connection {connection:?} again")]
    ReconsentRequired {
        /// The connection to log in with.
        connection: String,
    },
    /// The deadline left no time to wait for another invocation's work or to start a grant.
    #[error("no time was left to obtain the IdP token")]
    OutOfTime,
    /// The source failed.
    #[error(transparent)]
    Source(E),
}

/// A token handed out for one IdP call.
#[derive(Clone)]
pub struct Lease {
    token: IdpAccessToken,
    generation: u64,
    /// The entry it came from: a refusal is settled there even if the cache evicted it since.
    entry: Arc<Entry>,
    /// Where it came from.
    pub provenance: Provenance,
}

impl Lease {
    /// The access token, for the IdP call's `Authorization` header.
    pub fn token(&self) -> &IdpAccessToken {
        &self.token
    }
}

/// Least time between two reads of the source for a token that lacks a scope: long enough that
/// a frontend retrying such a call in a loop costs one read (a Token Vault exchange) a second at
/// most, short enough that a user back from a consent screen (a redirect to the provider and
/// back, then the page's own reload) is read anew.
const REREAD_INTERVAL: Duration = Duration::from_secs(1);

/// Least time left for a refresh grant to start: a single-use refresh token is spent as soon as
/// the provider reads it, so the answer must have time to come back.
const MIN_GRANT_TIME: Duration = Duration::from_secs(1);

/// Whose IdP token at which connection: the key of a cached token and of its fleet table item.
/// Named fields, not two `&str` side by side, so that a user id and a connection name (both
/// plain text) cannot change places unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKey<'a> {
    /// The user's id: the verified `sub`.
    pub user: &'a str,
    /// The connection's name.
    pub connection: &'a str,
}

/// The IdP tokens of every (user, connection) seen by this execution environment.
pub struct IdpTokens {
    policy: TokenPolicy,
    // A std lock: held only to find or insert an entry.
    entries: Mutex<LruCache<(String, String), Arc<Entry>>>,
}

impl IdpTokens {
    /// An empty cache.
    pub fn new(policy: TokenPolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(LruCache::new(policy.capacity)),
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, key: TokenKey<'_>) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            entries.get_or_insert((key.user.to_owned(), key.connection.to_owned()), || {
                Arc::new(Entry::default())
            }),
        )
    }

    fn fresh(&self, renewal: Renewal) -> impl Fn(&Current) -> bool + use<> {
        let max_age = self.policy.max_age;
        move |c: &Current| c.is_fresh(Instant::now(), max_age, renewal)
    }

    /// A token for `key`: the cached one if fresh, else one source read (and a renewal if the
    /// source holds no usable token) shared by every invocation that needs it.
    pub async fn lease<S: TokenSource>(
        &self,
        key: TokenKey<'_>,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Lease, TokenError<S::Error>> {
        let connection = key.connection;
        let entry = self.entry(key);
        let fresh = self.fresh(source.renewal());
        if let Some(lease) = entry.state().lease(&entry, &fresh, true) {
            return Ok(lease);
        }
        let _work = wait_for(&entry, deadline).await?;
        if let Some(lease) = entry.state().lease(&entry, &fresh, false) {
            return Ok(lease);
        }
        if source.renewal() == Renewal::Early && entry.state().renewable_at_expiry() {
            return self
                .renew_else_read(&entry, connection, source, deadline)
                .await;
        }
        let stored = match source.stored(deadline).await {
            Ok(stored) => stored,
            Err(error) if error.is_outage() => {
                return self
                    .without_source(&entry, connection, source, deadline, error)
                    .await;
            }
            Err(error) => return Err(TokenError::Source(error)),
        };
        // A level in front of the source handed over a token to renew, without reading it.
        let unread = stored.shared;
        let fresh_now = {
            let mut state = entry.state();
            state.merge(stored, self.policy.refusal_recheck);
            if source.renews_itself() {
                // What the source just answered is the best there is, however short its life.
                state.lease(&entry, |_| true, false)
            } else {
                state.lease(&entry, &fresh, false)
            }
        };
        match fresh_now {
            Some(lease) => Ok(lease),
            None if unread => {
                self.renew_else_read(&entry, connection, source, deadline)
                    .await
            }
            // The source holds no token, or only one this entry already saw refused or expire.
            None => self.renew(&entry, connection, source, deadline).await,
        }
    }

    /// The source is failing: a token past its max age (never one past a known expiry) beats an
    /// error, and the IdP will say if it is dead; a token past its known expiry is renewed
    /// without the source where possible.
    async fn without_source<S: TokenSource>(
        &self,
        entry: &Arc<Entry>,
        connection: &str,
        source: &S,
        deadline: &Deadline,
        error: S::Error,
    ) -> Result<Lease, TokenError<S::Error>> {
        let (stale, renewable) = {
            let state = entry.state();
            let stale = state.lease(entry, |c| c.lifetime.is_none(), true);
            (stale, state.refresh_token.is_some())
        };
        if let Some(lease) = stale {
            tracing::warn!(
                connection,
                "token source unavailable; using the cached IdP token"
            );
            return Ok(lease);
        }
        if renewable && entry.state().current.is_some() {
            tracing::warn!(
                connection,
                "token source unavailable; renewing the expired IdP token"
            );
            return self.renew(entry, connection, source, deadline).await;
        }
        Err(TokenError::Source(error))
    }

    /// The IdP refused `refused`: drops it and finds a replacement, to retry the call with.
    /// Where a refresh token is held, the grant comes first and the source is read only if the
    /// grant is refused ([`Self::renew_else_read`]); without one, the source is read again (the
    /// user may have logged in again). A token read from the source or obtained by a grant just
    /// now is not read or renewed again; one that a level in front of the source handed over
    /// ([`Provenance::Shared`]) is: a replacement that came from that level too is worth
    /// replacing once more, from the source.
    pub async fn replace_refused<S: TokenSource>(
        &self,
        connection: &str,
        refused: &Lease,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Lease, TokenError<S::Error>> {
        let entry = &refused.entry;
        // Dropped before waiting, so that no other invocation is handed the dead token
        // meanwhile.
        entry.state().drop_refused(refused);
        source.refused(refused.token(), deadline).await;
        let _work = wait_for(entry, deadline).await?;
        // Another invocation replaced it while this one waited.
        let replaced = self.fresh(source.renewal());
        if let Some(lease) = entry.state().lease(entry, &replaced, false) {
            return Ok(lease);
        }
        let read_again = match refused.provenance {
            Provenance::Renewed => return Err(reconsent(connection)),
            // Read just now: the source would answer the same, unless reading it is how its
            // tokens are renewed.
            Provenance::Source => source.renews_itself(),
            // Another environment's token: the level in front answers first (it may hold a
            // newer one), then the source itself.
            Provenance::Cache | Provenance::Shared => true,
        };
        if read_again && source.renewal() == Renewal::Early && entry.state().refresh_token.is_some()
        {
            return self
                .renew_else_read(entry, connection, source, deadline)
                .await;
        }
        if read_again {
            let stored = source.stored(deadline).await.map_err(TokenError::Source)?;
            let mut state = entry.state();
            state.merge(stored, self.policy.refusal_recheck);
            // A value the source answered before, refused since, is not taken back (`merge`).
            let usable = |c: &Current| source.renews_itself() || replaced(c);
            if let Some(lease) = state.lease(entry, usable, false) {
                return Ok(lease);
            }
        }
        self.renew(entry, connection, source, deadline).await
    }

    /// A call needs IdP scopes that `held` was not granted: reads the source again, since the
    /// user may have consented to more since (Token Vault then holds a new token). A token read
    /// from the source just now is returned as it is; otherwise the token stays in use unless
    /// the source holds another one. Levels in front of the source (the fleet table) are told
    /// first, so that they do not hand the same token back.
    pub async fn reread<S: TokenSource>(
        &self,
        held: Lease,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Lease, TokenError<S::Error>> {
        if matches!(held.provenance, Provenance::Source | Provenance::Renewed) {
            return Ok(held);
        }
        let entry = Arc::clone(&held.entry);
        {
            let mut state = entry.state();
            let recent = state
                .reread_at
                .is_some_and(|at| at.elapsed() < REREAD_INTERVAL);
            if recent {
                return Ok(held);
            }
            state.reread_at = Some(Instant::now());
        }
        let _work = wait_for(&entry, deadline).await?;
        // Another invocation replaced it while this one waited.
        let replaced = |c: &Current| c.generation != held.generation;
        if let Some(lease) = entry.state().lease(&entry, replaced, false) {
            return Ok(lease);
        }
        source.refused(held.token(), deadline).await;
        let stored = source.stored(deadline).await.map_err(TokenError::Source)?;
        let mut state = entry.state();
        state.merge(stored, self.policy.refusal_recheck);
        Ok(state.lease(&entry, |_| true, false).unwrap_or(held))
    }

    /// The IdP refused even the replacement: forget it (here and in the source), so the next
    /// call starts from the source.
    pub async fn forget<S: TokenSource>(&self, refused: &Lease, source: &S, deadline: &Deadline) {
        refused.entry.state().drop_refused(refused);
        source.refused(refused.token(), deadline).await;
    }

    /// Runs the refresh grant for `entry`, whose `work` lock the caller holds, and only if the
    /// grant is refused (or the token cannot be renewed) reads the source once more: the user
    /// may have logged in again since its last read, and Auth0 then holds new tokens. The grant
    /// goes first because either gives a working token, while Management API reads are what a
    /// tenant's rate limit is scarcest in (the Free plan serves 2 a second to the whole tenant;
    /// the grant is counted by the IdP, against the user).
    async fn renew_else_read<S: TokenSource>(
        &self,
        entry: &Arc<Entry>,
        connection: &str,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Lease, TokenError<S::Error>> {
        match self.renew(entry, connection, source, deadline).await {
            Err(TokenError::ReconsentRequired { .. }) => {}
            other => return other,
        }
        let stored = source.stored(deadline).await.map_err(TokenError::Source)?;
        let mut state = entry.state();
        state.merge(stored, self.policy.refusal_recheck);
        // Only new values (a re-login) are taken; what the source held before stays refused.
        state
            .lease(entry, self.fresh(source.renewal()), false)
            .ok_or_else(|| reconsent(connection))
    }

    /// Runs the refresh grant for `entry`, whose `work` lock the caller holds.
    async fn renew<S: TokenSource>(
        &self,
        entry: &Arc<Entry>,
        connection: &str,
        source: &S,
        deadline: &Deadline,
    ) -> Result<Lease, TokenError<S::Error>> {
        let refresh_token = entry
            .state()
            .refresh_token
            .clone()
            .ok_or_else(|| reconsent(connection))?;
        if deadline.remaining() < MIN_GRANT_TIME {
            return Err(TokenError::OutOfTime);
        }
        match source.renew(&refresh_token, deadline).await {
            Ok(renewed) => {
                let mut state = entry.state();
                let provenance = if renewed.shared {
                    Provenance::Shared
                } else {
                    Provenance::Renewed
                };
                state.install(renewed.access_token, renewed.expires_in, provenance);
                if let Some(rotated) = renewed.refresh_token {
                    state.refresh_token = Some(rotated);
                } else if renewed.spent {
                    state.refresh_token = None;
                }
                tracing::info!(connection, "IdP token renewed");
                // Handed out even if its lifetime is shorter than the freshness margin.
                state
                    .lease(entry, |_| true, false)
                    .ok_or_else(|| reconsent(connection))
            }
            Err(RenewFailure::Refused) => {
                tracing::info!(connection, "IdP refused the refresh token");
                entry.state().refresh_token = None;
                Err(reconsent(connection))
            }
            Err(RenewFailure::NotRenewable) => Err(reconsent(connection)),
            Err(RenewFailure::Failed(error)) => Err(TokenError::Source(error)),
            Err(RenewFailure::OutOfTime) => Err(TokenError::OutOfTime),
        }
    }
}

fn reconsent<E: SourceFailure>(connection: &str) -> TokenError<E> {
    TokenError::ReconsentRequired {
        connection: connection.to_owned(),
    }
}

/// Waits for an entry's work lock, no longer than the deadline.
async fn wait_for<'a, E: SourceFailure>(
    entry: &'a Entry,
    deadline: &Deadline,
) -> Result<tokio::sync::MutexGuard<'a, ()>, TokenError<E>> {
    single_flight::lock_within(&entry.work, deadline)
        .await
        .map_err(|_| TokenError::OutOfTime)
}
