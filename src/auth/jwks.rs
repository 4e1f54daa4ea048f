//! The tenant's signing keys, fetched from `{origin}/.well-known/jwks.json` and cached.
//!
//! Three clocks govern the cache:
//! - keys younger than [`KeyPolicy::refresh_after`] are used as they are, with no call;
//! - older keys are refreshed by the first request that sees them (the others keep using the
//!   cached set meanwhile), and stay usable while the endpoint fails, up to
//!   [`KeyPolicy::max_age`], after which a key removed from the tenant stops working;
//! - a `kid` that is not in the set triggers a refetch at most once per
//!   [`KeyPolicy::unknown_kid_cooldown`], so a flood of made-up `kid`s costs one fetch.
//!
//! A fetch with nothing usable cached is retried while the failure is transient
//! ([`RetryPolicy::STANDARD`]). A refresh while the cached keys are still usable is tried once,
//! with a short cap, and after a failure not again before the same cooldown: the cached keys
//! answer meanwhile, so a failing or hanging endpoint costs one request a short wait, not every
//! request a long one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};

use crate::deadline::Deadline;
use crate::service::Service;
use crate::single_flight;
use crate::telemetry::{self, Cache};
use crate::upstream::{self, Http, RetryPolicy, UpstreamError};

/// Cap on one JWKS request, within the invocation's deadline.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// Cap on a refresh while the cached keys are still usable: they are the fallback, so the
/// request that refreshes should not wait long for a struggling endpoint.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

/// How long keys live and how often the endpoint may be asked again.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// Age after which a request refreshes the set.
    pub refresh_after: Duration,
    /// Age after which cached keys are no longer trusted at all.
    pub max_age: Duration,
    /// Least time between two fetches caused by unknown `kid`s, and between a failed refresh
    /// of still-usable keys and the next.
    pub unknown_kid_cooldown: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            refresh_after: Duration::from_secs(5 * 60),
            max_age: Duration::from_secs(10 * 60),
            unknown_kid_cooldown: Duration::from_secs(30),
        }
    }
}

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The tenant has no usable RS256 key with this `kid`.
    #[error("no signing key matches the token's kid")]
    UnknownKid,
    /// The JWKS could not be fetched and no usable cached keys exist.
    #[error("the signing keys are unavailable")]
    Unavailable(#[source] UpstreamError),
    /// Another request's fetch just failed and no usable cached keys exist.
    #[error("the signing keys are unavailable")]
    RecentlyFailed,
}

/// One fetched set of keys and the times that decide its use.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// When the keys were fetched; `None` before the first successful fetch.
    fetched_at: Option<Instant>,
    /// When a fetch was last tried, successful or not.
    attempted_at: Option<Instant>,
    /// Bumped at every fetch attempt, so that requests that waited for a fetch know one happened.
    generation: u64,
}

impl KeySet {
    fn age(&self, now: Instant) -> Option<Duration> {
        self.fetched_at.map(|t| now.saturating_duration_since(t))
    }

    /// Young enough to use without asking the tenant.
    fn is_fresh(&self, now: Instant, policy: &KeyPolicy) -> bool {
        self.age(now).is_some_and(|age| age < policy.refresh_after)
    }

    /// Still trusted, even though a refresh may be due.
    fn is_usable(&self, now: Instant, policy: &KeyPolicy) -> bool {
        self.age(now).is_some_and(|age| age < policy.max_age)
    }

    /// Whether an unknown `kid` may cause a fetch now.
    fn may_refetch(&self, now: Instant, policy: &KeyPolicy) -> bool {
        self.attempted_at
            .is_none_or(|t| now.saturating_duration_since(t) >= policy.unknown_kid_cooldown)
    }

    /// Whether a refresh of these keys may be tried now: always, unless the last attempt failed
    /// within the cooldown.
    fn may_refresh(&self, now: Instant, policy: &KeyPolicy) -> bool {
        self.attempted_at == self.fetched_at || self.may_refetch(now, policy)
    }

    fn usable_key(&self, kid: &str, now: Instant, policy: &KeyPolicy) -> Option<Arc<DecodingKey>> {
        if self.is_usable(now, policy) {
            self.keys.get(kid).cloned()
        } else {
            None
        }
    }
}

/// The tenant's signing keys, shared by all invocations of an execution environment.
pub struct KeyCache {
    http: Http,
    url: String,
    policy: KeyPolicy,
    // A std lock: held only to copy an `Arc` in or out, never across an await.
    current: RwLock<Arc<KeySet>>,
    // Held for the whole fetch, so that concurrent invocations share one request.
    fetching: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// A cache for the JWKS at `url`; nothing is fetched until asked.
    pub fn new(http: Http, url: String, policy: KeyPolicy) -> Self {
        Self {
            http,
            url,
            policy,
            current: RwLock::new(Arc::new(KeySet::default())),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fetches the keys now, e.g. during the cold start, so the first invocation finds them.
    pub async fn prefetch(&self, deadline: &Deadline) -> Result<(), KeyError> {
        let _guard = self.fetching.lock().await;
        self.fetch_and_store(deadline, RetryPolicy::STANDARD, FETCH_TIMEOUT)
            .await
    }

    /// The verification key for `kid`, fetching or refreshing the set when needed.
    pub async fn key(&self, kid: &str, deadline: &Deadline) -> Result<Arc<DecodingKey>, KeyError> {
        // A hit unless this request fetches (`fetch_and_store` records the miss).
        telemetry::cache_lookup(Cache::Jwks, true);
        let seen = self.snapshot();
        let now = Instant::now();
        if let Some(key) = seen.usable_key(kid, now, &self.policy) {
            // Due for a refresh (and no refresh just failed): one request does it, the others
            // carry on with the cached key.
            if seen.is_fresh(now, &self.policy) || !seen.may_refresh(now, &self.policy) {
                return Ok(key);
            }
            let Ok(_guard) = self.fetching.try_lock() else {
                return Ok(key);
            };
            if self.snapshot().generation == seen.generation
                && let Err(error) = self
                    .fetch_and_store(deadline, RetryPolicy::ONCE, REFRESH_TIMEOUT)
                    .await
            {
                tracing::warn!(error = %error, "JWKS refresh failed; using cached keys");
            }
            return self
                .snapshot()
                .usable_key(kid, Instant::now(), &self.policy)
                .ok_or(KeyError::UnknownKid);
        }

        if seen.is_usable(now, &self.policy) && !seen.may_refetch(now, &self.policy) {
            return Err(KeyError::UnknownKid);
        }
        let _guard = single_flight::lock_within(&self.fetching, deadline)
            .await
            .map_err(|_| KeyError::Unavailable(UpstreamError::Timeout(Service::Jwks)))?;
        let current = self.snapshot();
        if current.generation == seen.generation {
            self.fetch_and_store(deadline, RetryPolicy::STANDARD, FETCH_TIMEOUT)
                .await?;
        } else if current.fetched_at == seen.fetched_at
            && !current.is_usable(Instant::now(), &self.policy)
        {
            // The fetch we waited for failed, and nothing usable is cached: don't hammer the tenant.
            return Err(KeyError::RecentlyFailed);
        }
        self.snapshot()
            .usable_key(kid, Instant::now(), &self.policy)
            .ok_or(KeyError::UnknownKid)
    }

    /// Fetches the JWKS (attempts as `retries` says, each capped at `cap`) and installs it; on
    /// failure keeps the old keys and records the attempt. The caller holds `fetching`.
    async fn fetch_and_store(
        &self,
        deadline: &Deadline,
        retries: RetryPolicy,
        cap: Duration,
    ) -> Result<(), KeyError> {
        telemetry::cache_lookup(Cache::Jwks, false);
        let result = retries
            .run(deadline, || {
                upstream::fetch_json::<JwkSet>(
                    self.http.get(&self.url),
                    Service::Jwks,
                    deadline,
                    cap,
                )
            })
            .await;
        let now = Instant::now();
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let generation = current.generation + 1;
        match result {
            Ok(set) => {
                let keys = usable_keys(&set, &current.keys);
                tracing::debug!(keys = keys.len(), "JWKS fetched");
                *current = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(now),
                    attempted_at: Some(now),
                    generation,
                });
                Ok(())
            }
            Err(error) => {
                *current = Arc::new(KeySet {
                    keys: current.keys.clone(),
                    fetched_at: current.fetched_at,
                    attempted_at: Some(now),
                    generation,
                });
                Err(KeyError::Unavailable(error))
            }
        }
    }
}

/// The RSA signing keys of a JWKS, by `kid`; keys for other uses or algorithms are left out. A
/// key that `previous` already holds under the same `kid` with the same material stays the same
/// object: tokens verified with it stay verified (`auth::verified`) across routine refreshes,
/// and only a key that left or changed invalidates them.
fn usable_keys(
    set: &JwkSet,
    previous: &HashMap<String, Arc<DecodingKey>>,
) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|jwk| {
            matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        })
        .filter(|jwk| matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let key = match previous.get(&kid) {
                Some(old) if same_material(old, &key) => Arc::clone(old),
                _ => Arc::new(key),
            };
            Some((kid, key))
        })
        .collect()
}

/// Whether two keys verify the same signatures.
fn same_material(a: &DecodingKey, b: &DecodingKey) -> bool {
    use jsonwebtoken::DecodingKeyKind::{RsaModulusExponent, SecretOrDer};
    a.family() == b.family()
        && match (a.kind(), b.kind()) {
            (RsaModulusExponent { n, e }, RsaModulusExponent { n: n2, e: e2 }) => {
                n == n2 && e == e2
            }
            (SecretOrDer(a), SecretOrDer(b)) => a == b,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(fetched: Option<Instant>, attempted: Option<Instant>) -> KeySet {
        KeySet {
            fetched_at: fetched,
            attempted_at: attempted,
            ..KeySet::default()
        }
    }

    #[test]
    fn empty_set_is_neither_fresh_nor_usable() {
        let policy = KeyPolicy::default();
        let now = Instant::now();
        let empty = set(None, None);
        assert!(!empty.is_fresh(now, &policy));
        assert!(!empty.is_usable(now, &policy));
        assert!(empty.may_refetch(now, &policy));
    }

    #[test]
    fn keys_are_fresh_then_stale_then_expired() {
        let policy = KeyPolicy::default();
        let t0 = Instant::now();
        let keys = set(Some(t0), Some(t0));
        assert!(keys.is_fresh(t0 + Duration::from_secs(299), &policy));
        let stale = t0 + Duration::from_secs(301);
        assert!(!keys.is_fresh(stale, &policy));
        assert!(keys.is_usable(stale, &policy));
        assert!(!keys.is_usable(t0 + Duration::from_secs(600), &policy));
    }

    #[test]
    fn unknown_kid_refetch_waits_for_the_cooldown() {
        let policy = KeyPolicy::default();
        let t0 = Instant::now();
        let keys = set(Some(t0), Some(t0));
        assert!(!keys.may_refetch(t0 + Duration::from_secs(29), &policy));
        assert!(keys.may_refetch(t0 + Duration::from_secs(30), &policy));
    }

    #[test]
    fn a_failed_refresh_is_not_tried_again_within_the_cooldown() {
        let policy = KeyPolicy::default();
        let t0 = Instant::now();
        let stale = t0 + Duration::from_secs(301);
        assert!(set(Some(t0), Some(t0)).may_refresh(stale, &policy));
        let failed = set(Some(t0), Some(stale));
        assert!(!failed.may_refresh(stale + Duration::from_secs(29), &policy));
        assert!(failed.may_refresh(stale + Duration::from_secs(30), &policy));
    }

    #[test]
    fn keeps_only_rsa_signing_keys_with_a_kid() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .expect("valid JWKS");
        let keys = usable_keys(&set, &HashMap::new());
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
    }

    #[test]
    fn a_refetch_keeps_unchanged_keys_and_replaces_changed_ones() {
        let jwks = |n: &str| -> JwkSet {
            serde_json::from_value(serde_json::json!({"keys": [
                {"kty": "RSA", "kid": "a", "n": "sXch", "e": "AQAB"},
                {"kty": "RSA", "kid": "b", "n": n, "e": "AQAB"}
            ]}))
            .expect("valid JWKS")
        };
        let first = usable_keys(&jwks("sXch"), &HashMap::new());
        let same = usable_keys(&jwks("sXch"), &first);
        assert!(Arc::ptr_eq(&first["a"], &same["a"]) && Arc::ptr_eq(&first["b"], &same["b"]));
        let changed = usable_keys(&jwks("AQAB"), &first);
        assert!(Arc::ptr_eq(&first["a"], &changed["a"]));
        assert!(
            !Arc::ptr_eq(&first["b"], &changed["b"]),
            "new material under kid b"
        );
    }
}
