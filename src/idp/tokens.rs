//! The IdP access token of each (user, connection): kept across warm invocations, replaced when
//! the IdP refuses it, renewed with the refresh token where the provider allows it.
//!
//! Auth0 stores the IdP tokens of the last login and never renews them, so the function does:
//! - a cached token is used while it is fresh: until shortly before its known expiry, else for
//!   [`TokenPolicy::max_age`], after which Auth0 is read again so that a re-login's new token is
//!   picked up;
//! - a token the IdP refuses is dropped, and Auth0 is read again before anything else is tried;
//!   if Auth0 holds nothing newer, the refresh token is used, once;
//! - a rotated refresh token (single-use providers) is kept here and used next time: values that
//!   Auth0 still holds but this cache has already superseded are not taken back.
//!
//! Everything that loads or renews one (user, connection) runs under that entry's own lock, so
//! concurrent invocations share one Management API read and one refresh grant. Entries are
//! bounded in number, least recently used out first.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;
use secrecy::{ExposeSecret, SecretString};

use super::IdpError;
use super::renewal::Renewed;
use crate::cache;
use crate::deadline::Deadline;
use crate::error::ApiError;
use crate::management::ManagementError;
use crate::upstream::{Service, UpstreamError};

/// How many tokens are kept and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Most (user, connection) entries kept; the least recently used goes first.
    pub capacity: NonZeroUsize,
    /// How long a token of unknown expiry is used before Auth0 is asked again.
    pub max_age: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_age: Duration::from_secs(300),
        }
    }
}

/// The tokens Auth0 holds for one identity.
pub struct Stored {
    /// The IdP access token of the last login.
    pub access_token: Option<SecretString>,
    /// The IdP refresh token of the last login, where the provider issued one.
    pub refresh_token: Option<SecretString>,
}

/// Why a renewal gave no token.
pub enum RenewFailure {
    /// The provider refused the refresh token: it is dead.
    Refused,
    /// The connection cannot be renewed (no token endpoint, or no client credentials for it).
    NotRenewable,
    /// The attempt failed (token endpoint down, secret unreadable, …).
    Failed(ApiError),
}

/// Where tokens come from: Auth0's stored identity, and the provider's token endpoint.
pub trait TokenSource: Sync {
    /// The identity's tokens as Auth0 holds them now.
    fn stored(&self, deadline: &Deadline) -> impl Future<Output = Result<Stored, ApiError>> + Send;

    /// A refresh-token grant with `refresh_token`.
    fn renew(
        &self,
        refresh_token: &SecretString,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Renewed, RenewFailure>> + Send;
}

/// Where a leased token came from, as this invocation saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The cache: no upstream call was made or waited for.
    Cache,
    /// Auth0, read by this invocation or by one it waited for.
    Auth0,
    /// A refresh grant made by this invocation or by one it waited for.
    Renewed,
}

/// A token handed out for one IdP call.
pub struct Lease {
    token: SecretString,
    generation: u64,
    /// The entry it came from: a refusal is settled there even if the cache evicted it since.
    entry: Arc<Entry>,
    /// Where it came from.
    pub origin: Origin,
}

impl Lease {
    /// The access token, for the IdP call's `Authorization` header.
    pub fn token(&self) -> &SecretString {
        &self.token
    }
}

/// Least time left for a refresh grant to start: a single-use refresh token is spent as soon as
/// the provider reads it, so the answer must have time to come back.
const MIN_GRANT_TIME: Duration = Duration::from_secs(1);

/// Unique across entries, so that a lease's generation can never match a token of another
/// entry (one created again for the same key after an eviction).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// The access token in use for one entry.
struct Current {
    token: SecretString,
    obtained_at: Instant,
    /// Known for renewed tokens; Auth0 does not say when a stored token expires.
    lifetime: Option<Duration>,
    /// Auth0 or a grant.
    origin: Origin,
    /// Tells a replaced token from the one a caller saw refused.
    generation: u64,
}

impl Current {
    /// Usable at `now`: a margin before its known expiry, else younger than `max_age`.
    fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        match self.lifetime {
            Some(lifetime) => cache::is_fresh(self.obtained_at, lifetime, now),
            None => now.saturating_duration_since(self.obtained_at) < max_age,
        }
    }
}

/// What one (user, connection) entry knows.
#[derive(Default)]
struct State {
    current: Option<Current>,
    /// The newest refresh token known: Auth0's, or a provider's rotated one.
    refresh_token: Option<SecretString>,
    /// What Auth0 held at the last read, to tell a re-login (new values) from values this
    /// entry has already superseded.
    auth0: Option<Stored>,
}

fn same(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        _ => false,
    }
}

impl State {
    /// The current token if `usable`, labelled as coming from the cache or from where it was
    /// obtained (when this invocation did or waited for that work).
    fn lease(
        &self,
        entry: &Arc<Entry>,
        usable: impl Fn(&Current) -> bool,
        cached: bool,
    ) -> Option<Lease> {
        self.current.as_ref().filter(|c| usable(c)).map(|c| Lease {
            token: c.token.clone(),
            generation: c.generation,
            entry: Arc::clone(entry),
            origin: if cached { Origin::Cache } else { c.origin },
        })
    }

    fn install(&mut self, token: SecretString, lifetime: Option<Duration>, origin: Origin) {
        self.current = Some(Current {
            token,
            obtained_at: Instant::now(),
            lifetime,
            origin,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        });
    }

    /// Takes in what Auth0 holds now. New values (a first read, or a re-login) replace this
    /// entry's; values Auth0 already held at the last read do not, since the entry may have
    /// renewed or dropped them since.
    fn merge(&mut self, stored: Stored) {
        let seen = self.auth0.as_ref();
        let new_access =
            seen.is_none_or(|s| !same(s.access_token.as_ref(), stored.access_token.as_ref()));
        let new_refresh =
            seen.is_none_or(|s| !same(s.refresh_token.as_ref(), stored.refresh_token.as_ref()));
        if new_access {
            match stored.access_token.clone() {
                Some(token) => self.install(token, None, Origin::Auth0),
                None => self.current = None,
            }
        } else if let Some(current) = self.current.as_mut().filter(|c| c.lifetime.is_none()) {
            // No re-login since: the token in use is still the newest, good for another max age.
            current.obtained_at = Instant::now();
        }
        if new_refresh {
            self.refresh_token = stored.refresh_token.clone();
        }
        self.auth0 = Some(stored);
    }

    /// Drops the token `lease` carried, unless it was replaced meanwhile.
    fn drop_refused(&mut self, lease: &Lease) {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.generation == lease.generation)
        {
            self.current = None;
        }
    }
}

/// One entry: its state, and the lock under which it is loaded or renewed.
#[derive(Default)]
struct Entry {
    // A std lock: held only to read or update the state, never across an await.
    state: Mutex<State>,
    // Held for a whole Auth0 read or refresh grant, so that concurrent invocations for the same
    // (user, connection) wait and reuse its result.
    work: tokio::sync::Mutex<()>,
}

impl Entry {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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

    fn entry(&self, user_id: &str, connection: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            entries.get_or_insert((user_id.to_owned(), connection.to_owned()), || {
                Arc::new(Entry::default())
            }),
        )
    }

    /// A token for `user_id` at `connection`: the cached one if fresh, else one Auth0 read (and
    /// a renewal if Auth0 holds no usable token) shared by every invocation that needs it.
    pub async fn lease(
        &self,
        user_id: &str,
        connection: &str,
        source: &impl TokenSource,
        deadline: &Deadline,
    ) -> Result<Lease, ApiError> {
        let entry = self.entry(user_id, connection);
        let max_age = self.policy.max_age;
        let fresh = |c: &Current| c.is_fresh(Instant::now(), max_age);
        if let Some(lease) = entry.state().lease(&entry, fresh, true) {
            return Ok(lease);
        }
        let _work = wait_for(&entry, deadline).await?;
        if let Some(lease) = entry.state().lease(&entry, fresh, false) {
            return Ok(lease);
        }
        let stored = match source.stored(deadline).await {
            Ok(stored) => stored,
            Err(error @ ApiError::Management(ManagementError::Upstream(_))) => {
                return self
                    .without_auth0(&entry, connection, source, deadline, error)
                    .await;
            }
            Err(error) => return Err(error),
        };
        let fresh_now = {
            let mut state = entry.state();
            state.merge(stored);
            state.lease(&entry, fresh, false)
        };
        match fresh_now {
            Some(lease) => Ok(lease),
            // Auth0 holds no token, or only one this entry already saw refused or expire.
            None => self.renew(&entry, connection, source, deadline).await,
        }
    }

    /// Auth0 is failing: a token past its max age (never one past a known expiry) beats an
    /// error, and the IdP will say if it is dead; a token past its known expiry is renewed
    /// without Auth0 where possible.
    async fn without_auth0(
        &self,
        entry: &Arc<Entry>,
        connection: &str,
        source: &impl TokenSource,
        deadline: &Deadline,
        error: ApiError,
    ) -> Result<Lease, ApiError> {
        let (stale, renewable) = {
            let state = entry.state();
            let stale = state.lease(entry, |c| c.lifetime.is_none(), true);
            (stale, state.refresh_token.is_some())
        };
        if let Some(lease) = stale {
            tracing::warn!(connection, "Auth0 unavailable; using the cached IdP token");
            return Ok(lease);
        }
        if renewable && entry.state().current.is_some() {
            tracing::warn!(
                connection,
                "Auth0 unavailable; renewing the expired IdP token"
            );
            return self.renew(entry, connection, source, deadline).await;
        }
        Err(error)
    }

    /// The IdP refused `refused`: drops it and finds a replacement, to retry the call with once.
    /// Auth0 is read again first (the user may have logged in again); if it holds nothing new,
    /// the refresh token is used. A token obtained by a grant just now is not renewed again.
    pub async fn replace_refused(
        &self,
        connection: &str,
        refused: &Lease,
        source: &impl TokenSource,
        deadline: &Deadline,
    ) -> Result<Lease, ApiError> {
        let entry = &refused.entry;
        let max_age = self.policy.max_age;
        // Dropped before waiting, so that no other invocation is handed the dead token
        // meanwhile.
        entry.state().drop_refused(refused);
        let _work = wait_for(entry, deadline).await?;
        // Another invocation replaced it while this one waited.
        let replaced = |c: &Current| c.is_fresh(Instant::now(), max_age);
        if let Some(lease) = entry.state().lease(entry, replaced, false) {
            return Ok(lease);
        }
        match refused.origin {
            Origin::Renewed => return Err(reconsent(connection)),
            Origin::Auth0 => {}
            Origin::Cache => {
                let stored = source.stored(deadline).await?;
                let mut state = entry.state();
                state.merge(stored);
                if let Some(lease) = state.lease(entry, replaced, false) {
                    return Ok(lease);
                }
            }
        }
        self.renew(entry, connection, source, deadline).await
    }

    /// The IdP refused even the replacement: forget it, so the next call starts from Auth0.
    pub fn forget(&self, refused: &Lease) {
        refused.entry.state().drop_refused(refused);
    }

    /// Runs the refresh grant for `entry`, whose `work` lock the caller holds.
    async fn renew(
        &self,
        entry: &Arc<Entry>,
        connection: &str,
        source: &impl TokenSource,
        deadline: &Deadline,
    ) -> Result<Lease, ApiError> {
        let refresh_token = entry
            .state()
            .refresh_token
            .clone()
            .ok_or_else(|| reconsent(connection))?;
        if deadline.remaining() < MIN_GRANT_TIME {
            return Err(timed_out());
        }
        match source.renew(&refresh_token, deadline).await {
            Ok(renewed) => {
                let mut state = entry.state();
                state.install(renewed.access_token, renewed.expires_in, Origin::Renewed);
                if let Some(rotated) = renewed.refresh_token {
                    state.refresh_token = Some(rotated);
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
            Err(RenewFailure::Failed(error)) => Err(error),
        }
    }
}

fn reconsent(connection: &str) -> ApiError {
    IdpError::ReconsentRequired {
        connection: connection.to_owned(),
    }
    .into()
}

fn timed_out() -> ApiError {
    IdpError::Upstream(UpstreamError::Timeout(Service::Idp)).into()
}

/// Waits for an entry's work lock, no longer than the deadline.
async fn wait_for<'a>(
    entry: &'a Entry,
    deadline: &Deadline,
) -> Result<tokio::sync::MutexGuard<'a, ()>, ApiError> {
    cache::lock_within(&entry.work, deadline)
        .await
        .map_err(|_| timed_out())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    fn stored(access: Option<&str>, refresh: Option<&str>) -> Stored {
        Stored {
            access_token: access.map(secret),
            refresh_token: refresh.map(secret),
        }
    }

    fn token_of(lease: &Lease) -> &str {
        lease.token().expose_secret()
    }

    /// A scripted Auth0 and token endpoint that count their calls.
    struct Script {
        stored: Mutex<(Option<&'static str>, Option<&'static str>)>,
        reads: AtomicUsize,
        /// Whether Auth0 is down.
        down: std::sync::atomic::AtomicBool,
        grants: AtomicUsize,
        /// The refresh token the endpoint accepts; it rotates to `{it}+` at each grant.
        live_refresh: Mutex<Option<String>>,
    }

    impl Script {
        fn new(access: Option<&'static str>, refresh: Option<&'static str>) -> Self {
            Self {
                stored: Mutex::new((access, refresh)),
                reads: AtomicUsize::new(0),
                down: std::sync::atomic::AtomicBool::new(false),
                grants: AtomicUsize::new(0),
                live_refresh: Mutex::new(refresh.map(str::to_owned)),
            }
        }
    }

    impl TokenSource for Script {
        async fn stored(&self, _: &Deadline) -> Result<Stored, ApiError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(ManagementError::Upstream(UpstreamError::Timeout(
                    Service::ManagementApi,
                ))
                .into());
            }
            let (access, refresh) = *self.stored.lock().expect("lock");
            Ok(stored(access, refresh))
        }

        async fn renew(
            &self,
            refresh: &SecretString,
            _: &Deadline,
        ) -> Result<Renewed, RenewFailure> {
            let n = self.grants.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut live = self.live_refresh.lock().expect("lock");
            if live.as_deref() != Some(refresh.expose_secret()) {
                return Err(RenewFailure::Refused);
            }
            let rotated = format!("{}+", refresh.expose_secret());
            *live = Some(rotated.clone());
            Ok(Renewed {
                access_token: secret(&format!("renewed-{n}")),
                refresh_token: Some(secret(&rotated)),
                expires_in: Some(Duration::from_secs(3600)),
            })
        }
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    /// User `u`'s token at connection `c`.
    async fn lease_u(tokens: &IdpTokens, source: &impl TokenSource) -> Lease {
        tokens
            .lease("u", "c", source, &deadline())
            .await
            .expect("lease")
    }

    #[test]
    fn freshness_follows_known_expiry_else_max_age() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(300);
        let known = Current {
            token: secret("a"),
            obtained_at: t0,
            lifetime: Some(Duration::from_secs(3600)),
            origin: Origin::Renewed,
            generation: 1,
        };
        assert!(known.is_fresh(t0 + Duration::from_secs(3600 - 301), max_age));
        assert!(!known.is_fresh(t0 + Duration::from_secs(3600 - 299), max_age));
        let unknown = Current {
            lifetime: None,
            ..known
        };
        assert!(unknown.is_fresh(t0 + Duration::from_secs(299), max_age));
        assert!(!unknown.is_fresh(t0 + Duration::from_secs(300), max_age));
    }

    #[tokio::test]
    async fn a_cached_token_costs_no_upstream_call() {
        let tokens = IdpTokens::new(TokenPolicy::default());
        let script = Script::new(Some("a0"), None);
        let first = lease_u(&tokens, &script).await;
        assert_eq!((token_of(&first), first.origin), ("a0", Origin::Auth0));
        for _ in 0..10 {
            let lease = lease_u(&tokens, &script).await;
            assert_eq!((token_of(&lease), lease.origin), ("a0", Origin::Cache));
        }
        assert_eq!(script.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_token_is_replaced_by_a_relogin_before_any_renewal() {
        let tokens = IdpTokens::new(TokenPolicy::default());
        let script = Script::new(Some("a0"), Some("r0"));
        let _ = lease_u(&tokens, &script).await;
        let cached = lease_u(&tokens, &script).await;
        *script.stored.lock().expect("lock") = (Some("a1-relogin"), Some("r1"));
        let replaced = tokens
            .replace_refused("c", &cached, &script, &deadline())
            .await
            .expect("replacement");
        assert_eq!(token_of(&replaced), "a1-relogin");
        assert_eq!(script.grants.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_refused_token_is_renewed_and_the_rotated_refresh_token_kept() {
        let tokens = IdpTokens::new(TokenPolicy::default());
        let script = Script::new(Some("a0"), Some("r0"));
        let first = lease_u(&tokens, &script).await;
        let renewed = tokens
            .replace_refused("c", &first, &script, &deadline())
            .await
            .expect("renewed");
        assert_eq!(
            (token_of(&renewed), renewed.origin),
            ("renewed-0", Origin::Renewed)
        );
        // The renewed token is refused too: it is not renewed again by the same invocation.
        assert!(matches!(
            tokens
                .replace_refused("c", &renewed, &script, &deadline())
                .await,
            Err(ApiError::Idp(IdpError::ReconsentRequired { .. }))
        ));
        // A later invocation: Auth0 still holds the original (superseded) values, so the
        // rotated refresh token is the one used.
        let again = lease_u(&tokens, &script).await;
        assert_eq!(again.origin, Origin::Renewed);
        assert_eq!(token_of(&again), "renewed-1");
        assert_eq!(script.grants.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_dead_refresh_token_means_reconsent_and_is_not_tried_again() {
        let tokens = IdpTokens::new(TokenPolicy::default());
        let script = Script::new(Some("a0"), Some("r0"));
        *script.live_refresh.lock().expect("lock") = None;
        let first = lease_u(&tokens, &script).await;
        assert!(matches!(
            tokens
                .replace_refused("c", &first, &script, &deadline())
                .await,
            Err(ApiError::Idp(IdpError::ReconsentRequired { .. }))
        ));
        assert!(tokens.lease("u", "c", &script, &deadline()).await.is_err());
        assert_eq!(script.grants.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_refusals_share_one_renewal() {
        let tokens = Arc::new(IdpTokens::new(TokenPolicy::default()));
        let script = Arc::new(Script::new(Some("a0"), Some("r0")));
        let leases: Vec<_> = (0..20)
            .map(|_| {
                let (tokens, script) = (Arc::clone(&tokens), Arc::clone(&script));
                tokio::spawn(async move {
                    let lease = tokens.lease("u", "c", &*script, &deadline()).await.ok()?;
                    if token_of(&lease) != "a0" {
                        // Arrived after the renewal: the IdP accepts this one.
                        return Some(token_of(&lease).to_owned());
                    }
                    let replaced = tokens
                        .replace_refused("c", &lease, &*script, &deadline())
                        .await
                        .ok()?;
                    Some(token_of(&replaced).to_owned())
                })
            })
            .collect();
        for lease in leases {
            assert_eq!(lease.await.expect("task").as_deref(), Some("renewed-0"));
        }
        assert_eq!(script.grants.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_past_its_max_age_is_used_while_auth0_is_down() {
        let policy = TokenPolicy {
            max_age: Duration::from_millis(20),
            ..TokenPolicy::default()
        };
        let tokens = IdpTokens::new(policy);
        let script = Script::new(Some("a0"), None);
        let _ = lease_u(&tokens, &script).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        script.down.store(true, Ordering::SeqCst);
        let stale = tokens
            .lease("u", "c", &script, &deadline())
            .await
            .expect("stale lease");
        assert_eq!((token_of(&stale), stale.origin), ("a0", Origin::Cache));
        assert_eq!(
            script.reads.load(Ordering::SeqCst),
            2,
            "Auth0 was asked first"
        );
        // With nothing cached, Auth0's failure is the answer.
        assert!(matches!(
            tokens.lease("v", "c", &script, &deadline()).await,
            Err(ApiError::Management(_))
        ));
    }

    #[tokio::test]
    async fn a_refusal_is_settled_on_its_own_entry_even_after_an_eviction() {
        let policy = TokenPolicy {
            capacity: NonZeroUsize::MIN,
            ..TokenPolicy::default()
        };
        let tokens = IdpTokens::new(policy);
        let script = Script::new(Some("a0"), Some("r0"));
        let leased = lease_u(&tokens, &script).await;
        // Another user's call evicts u's entry while u's IdP call is in flight.
        let _ = tokens
            .lease("v", "c", &script, &deadline())
            .await
            .expect("lease");
        let replaced = tokens
            .replace_refused("c", &leased, &script, &deadline())
            .await
            .expect("renewed, not re-consent");
        assert_eq!(token_of(&replaced), "renewed-0");
    }

    #[tokio::test]
    async fn a_refused_token_is_not_handed_out_while_its_replacement_is_found() {
        let tokens = Arc::new(IdpTokens::new(TokenPolicy::default()));
        let script = Arc::new(Script::new(Some("a0"), Some("r0")));
        let cached = lease_u(&tokens, &*script).await;
        // Another invocation is busy with this entry (an Auth0 read, say).
        let entry = tokens.entry("u", "c");
        let busy = entry.work.lock().await;
        let replacing = {
            let (tokens, script) = (Arc::clone(&tokens), Arc::clone(&script));
            tokio::spawn(async move {
                tokens
                    .replace_refused("c", &cached, &*script, &deadline())
                    .await
                    .map(|l| token_of(&l).to_owned())
                    .ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            entry.state().current.is_none(),
            "the refused token is gone before the wait ends"
        );
        drop(busy);
        assert_eq!(replacing.await.expect("task").as_deref(), Some("renewed-0"));
    }

    #[tokio::test]
    async fn a_renewed_token_shorter_lived_than_the_margin_is_still_used_once() {
        struct Brief;
        impl TokenSource for Brief {
            async fn stored(&self, _: &Deadline) -> Result<Stored, ApiError> {
                Ok(stored(None, Some("r")))
            }
            async fn renew(&self, _: &SecretString, _: &Deadline) -> Result<Renewed, RenewFailure> {
                Ok(Renewed {
                    access_token: secret("brief"),
                    refresh_token: None,
                    expires_in: Some(Duration::from_secs(1)),
                })
            }
        }
        let tokens = IdpTokens::new(TokenPolicy::default());
        let lease = lease_u(&tokens, &Brief).await;
        assert_eq!((token_of(&lease), lease.origin), ("brief", Origin::Renewed));
    }

    #[tokio::test]
    async fn no_grant_starts_too_close_to_the_deadline() {
        let tokens = IdpTokens::new(TokenPolicy::default());
        let script = Script::new(None, Some("r0"));
        let short = Deadline::after(MIN_GRANT_TIME / 2);
        assert!(matches!(
            tokens.lease("u", "c", &script, &short).await,
            Err(ApiError::Idp(IdpError::Upstream(UpstreamError::Timeout(_))))
        ));
        assert_eq!(script.grants.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn entries_are_bounded_least_recently_used_first() {
        let policy = TokenPolicy {
            capacity: NonZeroUsize::new(2).expect("non-zero"),
            ..TokenPolicy::default()
        };
        let tokens = IdpTokens::new(policy);
        let script = Script::new(Some("a0"), None);
        for user in ["a", "b", "a", "c"] {
            let _ = tokens.lease(user, "c", &script, &deadline()).await;
        }
        assert_eq!(tokens.len(), 2);
        assert_eq!(script.reads.load(Ordering::SeqCst), 3);
        let _ = tokens.lease("a", "c", &script, &deadline()).await;
        assert_eq!(script.reads.load(Ordering::SeqCst), 3, "a was kept");
        let _ = tokens.lease("b", "c", &script, &deadline()).await;
        assert_eq!(script.reads.load(Ordering::SeqCst), 4, "b was evicted");
    }
}
