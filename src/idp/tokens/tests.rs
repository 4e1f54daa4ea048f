//! The memory cache against a scripted source: reads, renewals, refusals, races, evictions.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::entry::{Current, Provenance};
use super::source::{RenewFailure, Renewed, SourceFailure, Stored, TokenSource};
use super::*;
use crate::secret::{IdpAccessToken, IdpRefreshToken};

/// A scripted source failure: Auth0 down, or a refusal.
#[derive(Debug, thiserror::Error)]
#[error("scripted source failure")]
struct Down;

impl SourceFailure for Down {
    fn is_outage(&self) -> bool {
        true
    }
}

fn stored(access: Option<&str>, refresh: Option<&str>) -> Stored {
    Stored {
        access_token: access.map(IdpAccessToken::new),
        refresh_token: refresh.map(IdpRefreshToken::new),
        expires_in: None,
        shared: false,
    }
}

fn token_of(lease: &Lease) -> &str {
    lease.token().expose()
}

/// A scripted Auth0 and token endpoint that count their calls.
struct Script {
    stored: Mutex<(Option<&'static str>, Option<&'static str>)>,
    reads: AtomicUsize,
    /// Whether Auth0 is down.
    down: AtomicBool,
    /// Whether its answers are a shared level's (the fleet table's), not Auth0's own.
    shared: AtomicBool,
    grants: AtomicUsize,
    /// The refresh token the endpoint accepts; it rotates to `{it}+` at each grant.
    live_refresh: Mutex<Option<String>>,
    /// How long a renewed token is good for.
    renewed_for: Mutex<Duration>,
}

impl Script {
    fn new(access: Option<&'static str>, refresh: Option<&'static str>) -> Self {
        Self {
            stored: Mutex::new((access, refresh)),
            reads: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            shared: AtomicBool::new(false),
            grants: AtomicUsize::new(0),
            live_refresh: Mutex::new(refresh.map(str::to_owned)),
            renewed_for: Mutex::new(Duration::from_secs(3600)),
        }
    }
}

impl TokenSource for Script {
    type Error = Down;

    async fn stored(&self, _: &Deadline) -> Result<Stored, Down> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Down);
        }
        let (access, refresh) = *self.stored.lock().expect("lock");
        Ok(Stored {
            shared: self.shared.load(Ordering::SeqCst),
            ..stored(access, refresh)
        })
    }

    async fn renew(
        &self,
        refresh: &IdpRefreshToken,
        _: &Deadline,
    ) -> Result<Renewed, RenewFailure<Down>> {
        let n = self.grants.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut live = self.live_refresh.lock().expect("lock");
        if live.as_deref() != Some(refresh.expose()) {
            return Err(RenewFailure::Refused);
        }
        let rotated = format!("{}+", refresh.expose());
        *live = Some(rotated.clone());
        Ok(Renewed {
            access_token: IdpAccessToken::new(format!("renewed-{n}")),
            refresh_token: Some(IdpRefreshToken::new(rotated)),
            spent: false,
            expires_in: Some(*self.renewed_for.lock().expect("lock")),
            shared: false,
        })
    }
}

/// `user`'s token at connection `c`.
fn key(user: &str) -> TokenKey<'_> {
    TokenKey {
        user,
        connection: "c",
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

/// User `u`'s token at connection `c`.
async fn lease_u(tokens: &IdpTokens, source: &impl TokenSource) -> Lease {
    tokens
        .lease(key("u"), source, &deadline())
        .await
        .expect("lease")
}

#[test]
fn freshness_follows_known_expiry_else_max_age() {
    let t0 = Instant::now();
    let max_age = Duration::from_secs(300);
    let known = Current {
        token: IdpAccessToken::new("a"),
        obtained_at: t0,
        lifetime: Some(Duration::from_secs(3600)),
        provenance: Provenance::Renewed,
        generation: 1,
    };
    assert!(known.is_fresh(
        t0 + Duration::from_secs(3600 - 301),
        max_age,
        Renewal::Early
    ));
    assert!(!known.is_fresh(
        t0 + Duration::from_secs(3600 - 299),
        max_age,
        Renewal::Early
    ));
    // A source that renews its tokens itself answers the same one until it expires.
    assert!(known.is_fresh(t0 + Duration::from_secs(3598), max_age, Renewal::AtExpiry));
    assert!(!known.is_fresh(t0 + Duration::from_secs(3599), max_age, Renewal::AtExpiry));
    let unknown = Current {
        lifetime: None,
        ..known
    };
    assert!(unknown.is_fresh(t0 + Duration::from_secs(299), max_age, Renewal::Early));
    assert!(!unknown.is_fresh(t0 + Duration::from_secs(300), max_age, Renewal::Early));
}

#[tokio::test]
async fn a_cached_token_costs_no_upstream_call() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let script = Script::new(Some("a0"), None);
    let first = lease_u(&tokens, &script).await;
    assert_eq!(
        (token_of(&first), first.provenance),
        ("a0", Provenance::Source)
    );
    for _ in 0..10 {
        let lease = lease_u(&tokens, &script).await;
        assert_eq!(
            (token_of(&lease), lease.provenance),
            ("a0", Provenance::Cache)
        );
    }
    assert_eq!(script.reads.load(Ordering::SeqCst), 1);
}

/// A cache whose token `a0` (refresh token `r0`) was read once and then handed out from memory.
async fn cached_a0() -> (IdpTokens, Script, Lease) {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let script = Script::new(Some("a0"), Some("r0"));
    let _ = lease_u(&tokens, &script).await;
    let cached = lease_u(&tokens, &script).await;
    (tokens, script, cached)
}

#[tokio::test]
async fn a_refused_token_is_renewed_before_auth0_is_read_again() {
    let (tokens, script, cached) = cached_a0().await;
    let replaced = tokens
        .replace_refused("c", &cached, &script, &deadline())
        .await
        .expect("replacement");
    assert_eq!(
        (token_of(&replaced), replaced.provenance),
        ("renewed-0", Provenance::Renewed)
    );
    // A grant gives a working token whether or not the user logged in again: no second read.
    assert_eq!(script.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_relogin_is_found_when_the_grant_is_refused() {
    let (tokens, script, cached) = cached_a0().await;
    // The user revoked the app and logged in again: the old refresh token is dead.
    *script.stored.lock().expect("lock") = (Some("a1-relogin"), Some("r1"));
    *script.live_refresh.lock().expect("lock") = Some("r1".to_owned());
    let replaced = tokens
        .replace_refused("c", &cached, &script, &deadline())
        .await
        .expect("replacement");
    assert_eq!(token_of(&replaced), "a1-relogin");
    assert_eq!(script.grants.load(Ordering::SeqCst), 1);
    assert_eq!(script.reads.load(Ordering::SeqCst), 2);
    // Without a re-login, a refused grant is the end of it.
    let refused = lease_u(&tokens, &script).await;
    *script.live_refresh.lock().expect("lock") = None;
    assert!(matches!(
        tokens
            .replace_refused("c", &refused, &script, &deadline())
            .await,
        Err(TokenError::ReconsentRequired { .. })
    ));
}

#[tokio::test]
async fn a_renewed_token_at_its_expiry_is_renewed_without_reading_auth0() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let script = Script::new(Some("a0"), Some("r0"));
    *script.renewed_for.lock().expect("lock") = Duration::from_secs(1);
    let first = lease_u(&tokens, &script).await;
    let renewed = tokens
        .replace_refused("c", &first, &script, &deadline())
        .await
        .expect("renewed");
    assert_eq!(token_of(&renewed), "renewed-0");
    // Good for 1 s, it is within its margin at once: the next call renews it, and Auth0 is
    // not read (it holds only what the cache renewed from).
    let next = lease_u(&tokens, &script).await;
    assert_eq!(
        (token_of(&next), next.provenance),
        ("renewed-1", Provenance::Renewed)
    );
    assert_eq!(script.reads.load(Ordering::SeqCst), 1);
    assert_eq!(script.grants.load(Ordering::SeqCst), 2);
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
        (token_of(&renewed), renewed.provenance),
        ("renewed-0", Provenance::Renewed)
    );
    // The renewed token is refused too: it is not renewed again by the same invocation.
    assert!(matches!(
        tokens
            .replace_refused("c", &renewed, &script, &deadline())
            .await,
        Err(TokenError::ReconsentRequired { .. })
    ));
    // A later invocation: Auth0 still holds the original (superseded) values, so the
    // rotated refresh token is the one used.
    let again = lease_u(&tokens, &script).await;
    assert_eq!(again.provenance, Provenance::Renewed);
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
        Err(TokenError::ReconsentRequired { .. })
    ));
    assert!(tokens.lease(key("u"), &script, &deadline()).await.is_err());
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
                let lease = tokens.lease(key("u"), &*script, &deadline()).await.ok()?;
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
        .lease(key("u"), &script, &deadline())
        .await
        .expect("stale lease");
    assert_eq!(
        (token_of(&stale), stale.provenance),
        ("a0", Provenance::Cache)
    );
    assert_eq!(
        script.reads.load(Ordering::SeqCst),
        2,
        "Auth0 was asked first"
    );
    // With nothing cached, Auth0's failure is the answer.
    assert!(matches!(
        tokens.lease(key("v"), &script, &deadline()).await,
        Err(TokenError::Source(Down))
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
        .lease(key("v"), &script, &deadline())
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
    let entry = tokens.entry(key("u"));
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
        type Error = Down;

        async fn stored(&self, _: &Deadline) -> Result<Stored, Down> {
            Ok(stored(None, Some("r")))
        }
        async fn renew(
            &self,
            _: &IdpRefreshToken,
            _: &Deadline,
        ) -> Result<Renewed, RenewFailure<Down>> {
            Ok(Renewed {
                access_token: IdpAccessToken::new("brief"),
                refresh_token: None,
                spent: false,
                expires_in: Some(Duration::from_secs(1)),
                shared: false,
            })
        }
    }
    let tokens = IdpTokens::new(TokenPolicy::default());
    let lease = lease_u(&tokens, &Brief).await;
    assert_eq!(
        (token_of(&lease), lease.provenance),
        ("brief", Provenance::Renewed)
    );
}

#[tokio::test]
async fn no_grant_starts_too_close_to_the_deadline() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let script = Script::new(None, Some("r0"));
    let short = Deadline::after(MIN_GRANT_TIME / 2);
    assert!(matches!(
        tokens.lease(key("u"), &script, &short).await,
        Err(TokenError::OutOfTime)
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
        let _ = tokens.lease(key(user), &script, &deadline()).await;
    }
    assert_eq!(tokens.len(), 2);
    assert_eq!(script.reads.load(Ordering::SeqCst), 3);
    let _ = tokens.lease(key("a"), &script, &deadline()).await;
    assert_eq!(script.reads.load(Ordering::SeqCst), 3, "a was kept");
    let _ = tokens.lease(key("b"), &script, &deadline()).await;
    assert_eq!(script.reads.load(Ordering::SeqCst), 4, "b was evicted");
}

/// A scripted source that renews its tokens itself (Token Vault): each read answers the token it
/// holds now and its remaining life; no refresh grant.
struct SelfRenewing {
    held: Mutex<Option<(&'static str, Duration)>>,
    reads: AtomicUsize,
}

impl SelfRenewing {
    fn new(token: &'static str, expires_in: Duration) -> Self {
        Self {
            held: Mutex::new(Some((token, expires_in))),
            reads: AtomicUsize::new(0),
        }
    }

    fn hold(&self, held: Option<(&'static str, Duration)>) {
        *self.held.lock().expect("lock") = held;
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl TokenSource for SelfRenewing {
    type Error = Down;

    fn renews_itself(&self) -> bool {
        true
    }

    async fn stored(&self, _: &Deadline) -> Result<Stored, Down> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let held = *self.held.lock().expect("lock");
        Ok(Stored {
            access_token: held.map(|(t, _)| IdpAccessToken::new(t)),
            refresh_token: None,
            expires_in: held.map(|(_, e)| e),
            shared: false,
        })
    }

    async fn renew(
        &self,
        _: &IdpRefreshToken,
        _: &Deadline,
    ) -> Result<Renewed, RenewFailure<Down>> {
        panic!("a source that renews itself is never asked for a grant")
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_self_renewing_source_is_read_once_until_its_token_nears_expiry() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let vault = SelfRenewing::new("v0", HOUR);
    let first = lease_u(&tokens, &vault).await;
    assert_eq!(
        (token_of(&first), first.provenance),
        ("v0", Provenance::Source)
    );
    for _ in 0..5 {
        assert_eq!(lease_u(&tokens, &vault).await.provenance, Provenance::Cache);
    }
    assert_eq!(vault.reads(), 1, "known expiry, not the max age, decides");
}

#[tokio::test]
async fn a_self_renewing_sources_refused_token_gets_one_fresh_read_even_just_after_a_read() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let vault = SelfRenewing::new("v0", HOUR);
    let first = lease_u(&tokens, &vault).await;
    // The source renewed its token meanwhile: the fresh read replaces the refused one.
    vault.hold(Some(("v1", HOUR)));
    let replaced = tokens
        .replace_refused("c", &first, &vault, &deadline())
        .await
        .expect("replacement");
    assert_eq!((token_of(&replaced), vault.reads()), ("v1", 2));
    // The source hands the refused token out again: no retry with it, re-consent.
    assert!(matches!(
        tokens
            .replace_refused("c", &replaced, &vault, &deadline())
            .await,
        Err(TokenError::ReconsentRequired { .. })
    ));
    assert_eq!(vault.reads(), 3);
}

#[tokio::test]
async fn a_self_renewing_sources_token_is_used_to_its_end_when_the_source_still_vouches_for_it() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    // Within the freshness margin from the start: the cache reads again each time, and the
    // source's answer is used however short its remaining life.
    let vault = SelfRenewing::new("v0", Duration::from_secs(1));
    for expected_reads in 1..=3 {
        let lease = lease_u(&tokens, &vault).await;
        assert_eq!(
            (token_of(&lease), lease.provenance, vault.reads()),
            ("v0", Provenance::Source, expected_reads)
        );
    }
}

#[tokio::test]
async fn a_self_renewing_source_holding_nothing_means_reconsent() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let vault = SelfRenewing::new("v0", HOUR);
    vault.hold(None);
    assert!(matches!(
        tokens.lease(key("u"), &vault, &deadline()).await,
        Err(TokenError::ReconsentRequired { .. })
    ));
    // Connected since: the next call is served.
    vault.hold(Some(("v1", HOUR)));
    assert_eq!(token_of(&lease_u(&tokens, &vault).await), "v1");
}

#[tokio::test]
async fn a_refusal_is_checked_again_after_the_recheck_time_not_before() {
    let policy = TokenPolicy {
        refusal_recheck: Duration::from_millis(50),
        ..TokenPolicy::default()
    };
    let tokens = IdpTokens::new(policy);
    let source = Script::new(Some("a"), None);
    let first = lease_u(&tokens, &source).await;
    // The IdP refused it for one resource; no refresh token to renew it with.
    let error = tokens
        .replace_refused("c", &first, &source, &deadline())
        .await
        .err();
    assert!(matches!(error, Some(TokenError::ReconsentRequired { .. })));
    let again = tokens.lease(key("u"), &source, &deadline()).await.err();
    assert!(
        matches!(again, Some(TokenError::ReconsentRequired { .. })),
        "within the recheck time, the refusal stands"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let rechecked = lease_u(&tokens, &source).await;
    assert_eq!(token_of(&rechecked), "a");
    assert_eq!(rechecked.provenance, Provenance::Source);
    // Refused again: it stands again for the recheck time.
    tokens.forget(&rechecked, &source, &deadline()).await;
    assert!(tokens.lease(key("u"), &source, &deadline()).await.is_err());
}

#[tokio::test]
async fn a_refused_token_that_a_shared_level_handed_over_is_read_again_from_the_source() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    // The table hands over another environment's read; no refresh token to fall back on.
    let source = Script::new(Some("a0"), None);
    source.shared.store(true, Ordering::SeqCst);
    let first = lease_u(&tokens, &source).await;
    assert_eq!(
        (token_of(&first), first.provenance),
        ("a0", Provenance::Shared)
    );
    // The user logged in again; the table no longer holds the refused token.
    *source.stored.lock().expect("lock") = (Some("a1-relogin"), None);
    source.shared.store(false, Ordering::SeqCst);
    let replaced = tokens
        .replace_refused("c", &first, &source, &deadline())
        .await
        .expect("the source's newer token");
    assert_eq!(
        (token_of(&replaced), replaced.provenance),
        ("a1-relogin", Provenance::Source)
    );
    assert_eq!(source.reads.load(Ordering::SeqCst), 2);
    // Read from the source just now and refused: not read again.
    assert!(matches!(
        tokens
            .replace_refused("c", &replaced, &source, &deadline())
            .await,
        Err(TokenError::ReconsentRequired { .. })
    ));
    assert_eq!(source.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_the_shared_level_vouches_for_again_is_labelled_as_its() {
    let policy = TokenPolicy {
        max_age: Duration::from_millis(20),
        ..TokenPolicy::default()
    };
    let tokens = IdpTokens::new(policy);
    let source = Script::new(Some("a0"), None);
    assert_eq!(
        lease_u(&tokens, &source).await.provenance,
        Provenance::Source
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Past its max age, the same token comes back from the table, not from Auth0.
    source.shared.store(true, Ordering::SeqCst);
    let again = lease_u(&tokens, &source).await;
    assert_eq!(
        (token_of(&again), again.provenance),
        ("a0", Provenance::Shared)
    );
    // So its refusal is settled by the source: the same token there, nothing to renew with.
    source.shared.store(false, Ordering::SeqCst);
    assert!(matches!(
        tokens
            .replace_refused("c", &again, &source, &deadline())
            .await,
        Err(TokenError::ReconsentRequired { .. })
    ));
    assert_eq!(
        source.reads.load(Ordering::SeqCst),
        3,
        "the source was read"
    );
}

#[tokio::test]
async fn a_token_lacking_a_scope_is_read_again_once_in_a_while_and_a_new_one_replaces_it() {
    let tokens = IdpTokens::new(TokenPolicy::default());
    let source = Script::new(Some("narrow"), None);
    let first = tokens
        .lease(key("u"), &source, &deadline())
        .await
        .expect("read");
    // Read from the source just now: not read again.
    let same = tokens
        .reread(first, &source, &deadline())
        .await
        .expect("held");
    assert_eq!(
        (token_of(&same), source.reads.load(Ordering::SeqCst)),
        ("narrow", 1)
    );
    // Held from before, and the user has consented since: the source's new token replaces it.
    *source.stored.lock().expect("lock") = (Some("wide"), None);
    let cached = tokens
        .lease(key("u"), &source, &deadline())
        .await
        .expect("cache");
    assert_eq!(cached.provenance, Provenance::Cache);
    let wide = tokens
        .reread(cached, &source, &deadline())
        .await
        .expect("read");
    assert_eq!(
        (token_of(&wide), source.reads.load(Ordering::SeqCst)),
        ("wide", 2)
    );
    // A caller retrying at once costs no further read.
    let again = tokens
        .lease(key("u"), &source, &deadline())
        .await
        .expect("cache");
    let held = tokens
        .reread(again, &source, &deadline())
        .await
        .expect("held");
    assert_eq!(
        (token_of(&held), source.reads.load(Ordering::SeqCst)),
        ("wide", 2)
    );
}
