//! One (user, connection)'s entry: the token in use, the newest refresh token, what the source
//! held at its last read, and the locks that make its loads and renewals single-flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Lease;
use super::source::Stored;
use crate::freshness::{self, Renewal};
use crate::secret::{IdpAccessToken, IdpRefreshToken};

/// Where a leased token came from, as the invocation that leased it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// The cache: no upstream call was made or waited for.
    Cache,
    /// The token source (Auth0), read by this invocation or by one it waited for.
    Source,
    /// A refresh grant made by this invocation or by one it waited for.
    Renewed,
    /// A level in front of the source (the fleet table): what another environment read or
    /// renewed, handed over without a source read. The IdP refusing it says nothing of what the
    /// source holds now.
    Shared,
}

impl Provenance {
    /// How the audit line names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Source => "auth0",
            Self::Renewed => "refresh_grant",
            Self::Shared => "token_table",
        }
    }

    /// Where a source's answer came from.
    pub(super) fn of_read(shared: bool) -> Self {
        if shared { Self::Shared } else { Self::Source }
    }
}

/// Unique across entries, so that a lease's generation can never match a token of another
/// entry (one created again for the same key after an eviction).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// The access token in use for one entry.
pub(super) struct Current {
    pub(super) token: IdpAccessToken,
    pub(super) obtained_at: Instant,
    /// Known for renewed tokens; Auth0 does not say when a stored token expires.
    pub(super) lifetime: Option<Duration>,
    /// The source, a grant, or a level in front of them (as the last read that vouched for
    /// it said).
    pub(super) provenance: Provenance,
    /// Tells a replaced token from the one a caller saw refused.
    pub(super) generation: u64,
}

impl Current {
    /// Usable at `now`: `renewal`'s margin before its known expiry, else younger than
    /// `max_age`.
    pub(super) fn is_fresh(&self, now: Instant, max_age: Duration, renewal: Renewal) -> bool {
        match self.lifetime {
            Some(lifetime) => freshness::is_fresh_for(renewal, self.obtained_at, lifetime, now),
            None => now.saturating_duration_since(self.obtained_at) < max_age,
        }
    }
}

/// What one (user, connection) entry knows.
#[derive(Default)]
pub(super) struct State {
    pub(super) current: Option<Current>,
    /// The newest refresh token known: the source's, or a provider's rotated one.
    pub(super) refresh_token: Option<IdpRefreshToken>,
    /// What the source held at the last read, to tell a re-login (new values) from values this
    /// entry has already superseded.
    seen: Option<Stored>,
    /// When the IdP last refused the token in use: the source's unchanged token is tried again
    /// once this is older than the policy's `refusal_recheck`.
    refused_at: Option<Instant>,
    /// When the source was last read again because the token lacked a scope a call needs
    /// (`IdpTokens::reread`), to do so at most every few seconds.
    pub(super) reread_at: Option<Instant>,
}

impl State {
    /// The current token if `usable`, labelled as coming from the cache or from where it was
    /// obtained (when this invocation did or waited for that work).
    pub(super) fn lease(
        &self,
        entry: &Arc<Entry>,
        usable: impl Fn(&Current) -> bool,
        cached: bool,
    ) -> Option<Lease> {
        self.current.as_ref().filter(|c| usable(c)).map(|c| Lease {
            token: c.token.clone(),
            generation: c.generation,
            entry: Arc::clone(entry),
            provenance: if cached {
                Provenance::Cache
            } else {
                c.provenance
            },
        })
    }

    /// Makes `token` the one in use.
    pub(super) fn install(
        &mut self,
        token: IdpAccessToken,
        lifetime: Option<Duration>,
        provenance: Provenance,
    ) {
        self.current = Some(Current {
            token,
            obtained_at: Instant::now(),
            lifetime,
            provenance,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        });
    }

    /// Takes in what the source holds now. New values (a first read, or a re-login) replace
    /// this entry's; values the source already held at the last read do not, since the entry may
    /// have renewed or dropped them since — except a token dropped after a refusal at least
    /// `recheck` ago: one IdP 401 may have been about one resource, not the token, and must not
    /// stand for the environment's life.
    pub(super) fn merge(&mut self, stored: Stored, recheck: Duration) {
        let seen = self.seen.as_ref();
        let recheck_due =
            self.current.is_none() && self.refused_at.is_some_and(|at| at.elapsed() >= recheck);
        let new_access = recheck_due || seen.is_none_or(|s| s.access_token != stored.access_token);
        if recheck_due {
            self.refused_at = None;
        }
        let new_refresh = seen.is_none_or(|s| s.refresh_token != stored.refresh_token);
        let provenance = Provenance::of_read(stored.shared);
        if new_access {
            match stored.access_token.clone() {
                Some(token) => self.install(token, stored.expires_in, provenance),
                None => self.current = None,
            }
        } else if let Some(current) = self.current.as_mut() {
            let same = stored.access_token.as_ref() == Some(&current.token);
            if same {
                // Where it comes from now is what this read says: a token the table hands over
                // again is still only another environment's word.
                current.provenance = provenance;
            }
            if let (true, Some(expires_in)) = (same, stored.expires_in) {
                // The source vouches for the token in use again, with what is left of its life.
                current.obtained_at = Instant::now();
                current.lifetime = Some(expires_in);
            } else if current.lifetime.is_none() {
                // No re-login since: the token in use is still the newest, good for another max
                // age.
                current.obtained_at = Instant::now();
            }
        }
        if new_refresh {
            self.refresh_token = stored.refresh_token.clone();
        }
        self.seen = Some(stored);
    }

    /// Whether the token in use has a known expiry and a refresh token is held to renew it:
    /// once past its margin, a grant replaces it without a read of the source first.
    pub(super) fn renewable_at_expiry(&self) -> bool {
        self.refresh_token.is_some() && self.current.as_ref().is_some_and(|c| c.lifetime.is_some())
    }

    /// Drops the token `lease` carried, unless it was replaced meanwhile.
    pub(super) fn drop_refused(&mut self, lease: &Lease) {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.generation == lease.generation)
        {
            self.current = None;
            self.refused_at = Some(Instant::now());
        }
    }
}

/// One entry: its state, and the lock under which it is loaded or renewed.
#[derive(Default)]
pub(super) struct Entry {
    // A std lock: held only to read or update the state, never across an await.
    state: Mutex<State>,
    // Held for a whole source read or refresh grant, so that concurrent invocations for the same
    // (user, connection) wait and reuse its result.
    pub(super) work: tokio::sync::Mutex<()>,
}

impl Entry {
    /// The entry's state, for a short read or update.
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
