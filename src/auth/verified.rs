//! Tokens whose RS256 signature already verified, so that a caller's next request with the same
//! token skips the signature check (about 36 µs, most of what authentication costs a warm call).
//!
//! An entry is found by the SHA-256 of the scheme and the whole compact token, header and signature included:
//! a token that differs in one byte anywhere is another entry, verified afresh. It holds the
//! decoded claims and the very key object that verified them, and serves them only:
//! - to a request whose `kid` resolves to that same key object now: a key that leaves the JWKS,
//!   or whose material changes under the same `kid`, makes its entries unusable (and they are
//!   dropped when next seen);
//! - between the token's `nbf` and `exp` (with the verifier's leeway): never past them.
//!
//! Only the signature check is skipped. The header checks and the key lookup before the
//! cache, and every claims check after it (times, issuer, audience, types, scope), run on every
//! sight as on the first.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, SHA256_OUTPUT_LEN};
use jsonwebtoken::DecodingKey;
use lru::LruCache;
use serde_json::{Map, Value};

/// SHA-256 of a compact token: what an entry is found by, so that the cache holds no token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; SHA256_OUTPUT_LEN]);

impl TokenDigest {
    /// The digest of `token` presented with `scheme`: a bound and an unbound use of one token
    /// never share an entry.
    pub fn presented(scheme: super::dpop::Scheme, token: &str) -> Self {
        let prefix: &[u8] = match scheme {
            super::dpop::Scheme::Bearer => b"Bearer ",
            super::dpop::Scheme::Dpop => b"DPoP ",
        };
        let mut context = aws_lc_rs::digest::Context::new(&SHA256);
        context.update(prefix);
        context.update(token.as_bytes());
        let mut bytes = [0; SHA256_OUTPUT_LEN];
        bytes.copy_from_slice(context.finish().as_ref());
        Self(bytes)
    }
}

/// When a verified token may be used, in Unix seconds, leeway included at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `nbf` less the leeway (0 without `nbf`).
    pub from: u64,
    /// `exp` plus the leeway.
    pub until: u64,
}

impl Window {
    /// Whether the window holds `now`.
    pub fn holds(&self, now: u64) -> bool {
        self.from <= now && now <= self.until
    }
}

struct Entry {
    key: Arc<DecodingKey>,
    claims: Arc<Map<String, Value>>,
    window: Window,
}

/// A bounded, least-recently-used set of verified tokens, shared by concurrent invocations.
pub struct VerifiedTokens {
    // A std lock: held for one lookup or insert, never across an await.
    entries: Mutex<LruCache<TokenDigest, Entry>>,
}

impl VerifiedTokens {
    /// Room for `capacity` tokens; the least recently used goes first.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The claims of the token with `digest` if it was verified with `key` (the same object, not
    /// merely the same `kid`) and `now` is within its window. An entry that fails either is
    /// dropped.
    pub fn get(
        &self,
        digest: &TokenDigest,
        key: &Arc<DecodingKey>,
        now: u64,
    ) -> Option<Arc<Map<String, Value>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(digest)?;
        if Arc::ptr_eq(&entry.key, key) && entry.window.holds(now) {
            return Some(Arc::clone(&entry.claims));
        }
        entries.pop(digest);
        None
    }

    /// Records that the token with `digest` verified with `key`, its claims usable in `window`.
    pub fn insert(
        &self,
        digest: TokenDigest,
        key: Arc<DecodingKey>,
        claims: Arc<Map<String, Value>>,
        window: Window,
    ) {
        let entry = Entry {
            key,
            claims,
            window,
        };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(digest, entry);
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest of `token` seen as a bearer token.
    fn bearer(token: &str) -> TokenDigest {
        TokenDigest::presented(super::super::dpop::Scheme::Bearer, token)
    }

    fn key() -> Arc<DecodingKey> {
        Arc::new(DecodingKey::from_rsa_raw_components(
            b"\x01\x02",
            b"\x01\x00\x01",
        ))
    }

    fn claims(sub: &str) -> Arc<Map<String, Value>> {
        let mut map = Map::new();
        map.insert("sub".into(), sub.into());
        Arc::new(map)
    }

    const WINDOW: Window = Window {
        from: 1_000,
        until: 2_000,
    };

    #[test]
    fn a_digest_covers_every_byte_of_the_token() {
        let token = "eyJh.eyJz.c2ln";
        assert!(bearer(token) == bearer(token));
        for i in 0..token.len() {
            let mut other = token.as_bytes().to_vec();
            other[i] ^= 1;
            let other = String::from_utf8(other).expect("ascii");
            assert!(bearer(token) != bearer(&other), "byte {i}");
        }
    }

    #[test]
    fn a_window_holds_its_ends_and_nothing_beyond() {
        assert!(WINDOW.holds(1_000) && WINDOW.holds(1_500) && WINDOW.holds(2_000));
        assert!(!WINDOW.holds(999) && !WINDOW.holds(2_001));
    }

    #[test]
    fn serves_claims_only_for_the_key_object_that_verified_them() {
        let tokens = VerifiedTokens::new(NonZeroUsize::MIN.saturating_add(7));
        let (verifier, same_material) = (key(), key());
        let digest = bearer("a.b.c");
        tokens.insert(digest, Arc::clone(&verifier), claims("u"), WINDOW);
        assert_eq!(
            tokens.get(&digest, &verifier, 1_500).as_deref(),
            Some(&*claims("u"))
        );
        // Another key object (a refetched set whose key changed) is a miss, and drops the entry.
        assert!(tokens.get(&digest, &same_material, 1_500).is_none());
        assert!(tokens.get(&digest, &verifier, 1_500).is_none());
        assert!(tokens.is_empty());
    }

    #[test]
    fn never_serves_a_token_outside_its_window() {
        let tokens = VerifiedTokens::new(NonZeroUsize::MIN.saturating_add(7));
        let verifier = key();
        let digest = bearer("a.b.c");
        for now in [999, 2_001] {
            tokens.insert(digest, Arc::clone(&verifier), claims("u"), WINDOW);
            assert!(tokens.get(&digest, &verifier, now).is_none(), "{now}");
            assert!(tokens.is_empty(), "dropped at {now}");
        }
    }

    #[test]
    fn holds_at_most_its_capacity_dropping_the_least_recently_used() {
        let tokens = VerifiedTokens::new(NonZeroUsize::MIN.saturating_add(1));
        let verifier = key();
        let [a, b, c] = ["a.a.a", "b.b.b", "c.c.c"].map(bearer);
        tokens.insert(a, Arc::clone(&verifier), claims("a"), WINDOW);
        tokens.insert(b, Arc::clone(&verifier), claims("b"), WINDOW);
        assert!(tokens.get(&a, &verifier, 1_500).is_some());
        tokens.insert(c, Arc::clone(&verifier), claims("c"), WINDOW);
        assert_eq!(tokens.len(), 2);
        assert!(
            tokens.get(&b, &verifier, 1_500).is_none(),
            "b was used least"
        );
        assert!(tokens.get(&a, &verifier, 1_500).is_some());
        assert!(tokens.get(&c, &verifier, 1_500).is_some());
    }

    #[test]
    fn concurrent_users_share_the_cache_safely() {
        let tokens = Arc::new(VerifiedTokens::new(NonZeroUsize::MIN.saturating_add(63)));
        let verifier = key();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (tokens, verifier) = (Arc::clone(&tokens), Arc::clone(&verifier));
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        let digest = bearer(&format!("{t}.{}.x", i % 16));
                        match tokens.get(&digest, &verifier, 1_500) {
                            Some(claims) => assert_eq!(claims["sub"], format!("{t}-{}", i % 16)),
                            None => tokens.insert(
                                digest,
                                Arc::clone(&verifier),
                                super::tests::claims(&format!("{t}-{}", i % 16)),
                                WINDOW,
                            ),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert!(tokens.len() <= 64);
    }
}
