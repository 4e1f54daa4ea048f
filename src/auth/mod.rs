//! Caller authentication: the `Authorization: Bearer` (or `DPoP`) Auth0 access token, verified
//! with the tenant's JWKS and strict claim rules. The only identity the rest of the function sees
//! is [`Caller`].
//!
//! - `presented`: the one `Authorization` header and cheap checks before any decoding;
//! - `claims`: the claims read, type-checked, and checked on every sight of a token;
//! - [`jwks`], [`verified`]: the tenant's keys, and tokens verified before;
//! - [`dpop`], [`replay`]: proofs of possession for DPoP-bound tokens, seen once each.

mod caller;
mod claims;
pub mod dpop;
pub mod jwks;
mod presented;
pub mod replay;
pub mod verified;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::deadline::Deadline;
use crate::secret::CallerToken;
use crate::telemetry::{self, Cache};
use crate::upstream::{Http, UpstreamError};
use dpop::{DpopMode, ProofError, Scheme};
use jwks::{KeyCache, KeyError, KeyPolicy};
use replay::Replays;
use verified::{TokenDigest, VerifiedTokens};

pub use caller::Caller;
use claims::{Claims, LEEWAY, map_jwt_error};
pub use presented::{MAX_TOKEN_BYTES, bearer_token, precheck, presented_token};

/// Verified tokens remembered. An entry is a few hundred bytes (the claims), so the cache stays
/// under a megabyte; an environment serving more callers than this within their tokens' lifetimes
/// pays a signature check more often, nothing else.
const VERIFIED_TOKENS: NonZeroUsize = NonZeroUsize::new(1024).expect("not zero");

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("the request has no bearer token")]
    Missing,
    /// More than one `Authorization` header, or not the `Bearer` scheme.
    #[error("the Authorization header is not a single bearer token")]
    NotBearer,
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("the bearer token is too large")]
    Oversized,
    /// Not three base64url segments, or a header or payload that does not decode.
    #[error("the bearer token is malformed")]
    Malformed,
    /// The header's `crit` names extensions that must be understood (RFC 7515 §4.1.11): this
    /// verifier understands none.
    #[error("the token requires header extensions this API does not understand")]
    CriticalExtension,
    /// Signed with something other than RS256 (`none`, HS256, …).
    #[error("the token's signing algorithm is not allowed")]
    Algorithm,
    /// The header names no `kid`, or one the tenant does not publish.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not this tenant.
    #[error("the token was issued by another issuer")]
    Issuer,
    /// `aud` does not contain this API.
    #[error("the token is not meant for this API")]
    Audience,
    /// A required claim is missing, or a claim has the wrong JSON type.
    #[error("the token's {0} claim is missing or invalid")]
    Claim(&'static str),
    /// Valid token, but without the scope this function requires.
    #[error("the token lacks the required scope {0}")]
    InsufficientScope(String),
    /// The tenant's signing keys could not be fetched.
    #[error("the tenant's signing keys are unavailable")]
    KeysUnavailable(#[source] Option<UpstreamError>),
    /// A DPoP-bound token (`cnf.jkt`) presented as a bearer token: no downgrade.
    #[error("the token is DPoP-bound and must be presented with the DPoP scheme and a proof")]
    BoundAsBearer,
    /// A token without `cnf.jkt` presented with the `DPoP` scheme.
    #[error("the token is not DPoP-bound")]
    UnboundAsDpop,
    /// A bearer token where the deployment requires DPoP.
    #[error("this API requires DPoP-bound tokens")]
    DpopRequired,
    /// The DPoP proof is missing or does not hold.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// A refused caller: why, and what the `401`'s challenges offer (the schemes the deployment
/// accepts, the error on the one the request used).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    /// Why.
    #[source]
    pub error: AuthError,
    /// The deployment's DPoP mode.
    pub mode: DpopMode,
    /// The scheme the request used, if it got that far.
    pub scheme: Option<Scheme>,
}

/// The request a caller's token comes with: what a DPoP proof must be for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The URL the caller used (scheme, host and path, REST stage or base path included), when
    /// it can be known.
    pub url: Option<String>,
}

/// Verifies callers' access tokens.
pub struct Authenticator {
    keys: KeyCache,
    validation: Validation,
    rules: Rules,
    // Checked apart from the token's validity ([`Authenticator::authorize`], in `caller`), so that a caller
    // refused for it is already known by its verified `sub`, and the refusal is audited as theirs.
    required_scope: Option<String>,
    verified: VerifiedTokens,
    dpop: DpopMode,
    replays: Replays,
}

/// What the claims of every token are checked against, on every sight of it.
struct Rules {
    issuer: String,
    audience: String,
}

impl Authenticator {
    /// An authenticator for the tenant and API in `config`, fetching keys through `http`, DPoP
    /// proofs' ids remembered in memory only.
    pub fn new(config: &Config, http: Http, policy: KeyPolicy) -> Self {
        Self::with_replays(config, http, policy, Replays::new(None))
    }

    /// As [`Authenticator::new`], DPoP proofs' ids remembered by `replays` (the fleet's table
    /// where it is on).
    pub fn with_replays(config: &Config, http: Http, policy: KeyPolicy, replays: Replays) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            keys: KeyCache::new(
                http,
                config.auth0_origin.join("/.well-known/jwks.json"),
                policy,
            ),
            validation,
            rules: Rules {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
            },
            required_scope: config.required_scope.clone(),
            verified: VerifiedTokens::new(VERIFIED_TOKENS),
            dpop: config.dpop,
            replays,
        }
    }

    /// The signing key cache, e.g. to prefetch it during the cold start.
    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Authenticates the request that carries `headers` for `target`: who the caller is, not
    /// yet what they may do ([`Authenticator::authorize`]).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        target: &Target<'_>,
        deadline: &Deadline,
    ) -> Result<Caller, Refusal> {
        self.authenticate_at(headers, target, deadline, unix_now())
            .await
    }

    /// As [`Authenticator::authenticate`], with the claims' and the proof's times checked
    /// against `now` (Unix seconds), so that tests can move the clock for a token already seen.
    /// A token seen for the first time is also checked by `jsonwebtoken` against the system
    /// clock.
    pub async fn authenticate_at(
        &self,
        headers: &HeaderMap,
        target: &Target<'_>,
        deadline: &Deadline,
        now: u64,
    ) -> Result<Caller, Refusal> {
        let mut scheme = None;
        self.verify(headers, target, deadline, now, &mut scheme)
            .await
            .map_err(|error| Refusal {
                error,
                mode: self.dpop,
                scheme,
            })
    }

    async fn verify(
        &self,
        headers: &HeaderMap,
        target: &Target<'_>,
        deadline: &Deadline,
        now: u64,
        scheme: &mut Option<Scheme>,
    ) -> Result<Caller, AuthError> {
        let (used, token) = presented_token(headers, self.dpop)?;
        *scheme = Some(used);
        precheck(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(AuthError::CriticalExtension);
        }
        let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
        let key = self.keys.key(kid, deadline).await.map_err(|e| match e {
            KeyError::UnknownKid => AuthError::UnknownKey,
            KeyError::Unavailable(source) => AuthError::KeysUnavailable(Some(source)),
            KeyError::RecentlyFailed => AuthError::KeysUnavailable(None),
        })?;
        // Only the signature check is skipped for a token seen before; everything above and
        // below runs on every sight. The scheme is part of what is remembered: a token seen as a
        // bearer token is another entry than the same token seen with DPoP.
        let digest = TokenDigest::presented(used, token);
        let cached = self.verified.get(&digest, &key, now);
        telemetry::cache_lookup(Cache::CallerToken, cached.is_some());
        let fresh = cached.is_none();
        let map = match cached {
            Some(map) => map,
            None => Arc::new(
                jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation)
                    .map_err(map_jwt_error)?
                    .claims,
            ),
        };
        let claims = Claims::from_map(&map)?;
        claims.check(&self.rules, now)?;
        // The scheme must fit the token's binding and the mode; a bound token's proof is
        // checked on every request, the first sight as any other.
        match (used, dpop::bound_key(&map)) {
            (Scheme::Bearer, Some(_)) if self.dpop.accepts_dpop() => {
                return Err(AuthError::BoundAsBearer);
            }
            (Scheme::Bearer, _) if !self.dpop.accepts_bearer() => {
                return Err(AuthError::DpopRequired);
            }
            (Scheme::Dpop, None) => return Err(AuthError::UnboundAsDpop),
            (Scheme::Dpop, Some(jkt)) => {
                self.check_proof(headers, target, token, jkt, deadline, now)
                    .await?;
            }
            (Scheme::Bearer, _) => {}
        }
        let user_id = claims.sub.to_owned();
        let window = claims.window();
        if fresh {
            self.verified.insert(digest, key, Arc::clone(&map), window);
        }
        Ok(Caller {
            user_id,
            token: CallerToken::new(token),
            scopes: claims.scopes(),
        })
    }

    /// The request's one `DPoP` proof holds for `target`, `token` and the key `jkt`, and its
    /// `jti` is new.
    async fn check_proof(
        &self,
        headers: &HeaderMap,
        target: &Target<'_>,
        token: &str,
        jkt: &str,
        deadline: &Deadline,
        now: u64,
    ) -> Result<(), ProofError> {
        let mut proofs = headers.get_all("dpop").iter();
        let proof = proofs.next().ok_or(ProofError::Missing)?;
        if proofs.next().is_some() {
            return Err(ProofError::Several);
        }
        let proof = proof.to_str().map_err(|_| ProofError::Malformed)?.trim();
        let expected = dpop::Expected {
            method: target.method,
            url: target.url.as_deref(),
            access_token: token,
            jkt,
        };
        let checked = dpop::verify(proof, &expected, now)?;
        // Last, so that only proofs that hold are remembered.
        if !self
            .replays
            .first_sight(jkt, &checked.jti, checked.iat, now, deadline)
            .await
        {
            return Err(ProofError::Replayed);
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch, the unit of `exp` and `nbf`.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        map
    }

    #[test]
    fn bearer_token_requires_one_bearer_header() {
        assert!(matches!(
            bearer_token(&headers(&[])),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            bearer_token(&headers(&["Basic abc"])),
            Err(AuthError::NotBearer)
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer a.b.c", "Bearer d.e.f"])),
            Err(AuthError::NotBearer)
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer "])),
            Err(AuthError::Missing)
        ));
        assert_eq!(
            bearer_token(&headers(&["bearer a.b.c"])).ok(),
            Some("a.b.c")
        );
    }

    #[test]
    fn precheck_rejects_wrong_shapes_and_sizes() {
        for bad in [
            "", "a.b", "a.b.c.d", "a..c", "a.b.", "a.b+.c", "a.b.c=", "ä.b.c",
        ] {
            assert!(
                matches!(precheck(bad), Err(AuthError::Malformed)),
                "{bad:?}"
            );
        }
        let huge = format!("{}.b.c", "a".repeat(MAX_TOKEN_BYTES));
        assert!(matches!(precheck(&huge), Err(AuthError::Oversized)));
        assert!(precheck("eyJh.eyJz.c2ln").is_ok());
    }

    fn claims(value: Value) -> Result<(), AuthError> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        Claims::from_map(&map).map(|_| ())
    }

    #[test]
    fn claims_of_the_wrong_type_are_rejected() {
        let good =
            json!({"sub": "github|1", "iss": "i", "aud": ["a", "b"], "exp": 1, "scope": "x y"});
        assert!(claims(good.clone()).is_ok());
        for (claim, bad) in [
            ("sub", json!(7)),
            ("sub", json!("")),
            ("iss", json!(["i"])),
            ("aud", json!([1])),
            ("exp", json!("1")),
            ("nbf", json!(1.5)),
            ("iat", json!(-1)),
            ("scope", json!(["x"])),
            ("permissions", json!("x")),
        ] {
            let mut token = good.clone();
            token[claim] = bad;
            assert!(
                matches!(claims(token), Err(AuthError::Claim(c)) if c == claim),
                "{claim}"
            );
        }
    }

    #[test]
    fn values_are_checked_at_the_time_given_with_the_leeway() {
        let map = json!({"sub": "u", "iss": "i", "aud": ["a", "b"], "exp": 1_000, "nbf": 500});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let claims = Claims::from_map(&map).expect("well typed");
        let rules = |issuer: &str, audience: &str| Rules {
            issuer: issuer.into(),
            audience: audience.into(),
        };
        let check = |rules: &Rules, now| claims.check(rules, now);
        let good = rules("i", "b");
        assert!(check(&good, 470).is_ok() && check(&good, 1_030).is_ok());
        assert!(matches!(check(&good, 1_031), Err(AuthError::Expired)));
        assert!(matches!(check(&good, 469), Err(AuthError::NotYetValid)));
        assert!(matches!(
            check(&rules("j", "b"), 700),
            Err(AuthError::Issuer)
        ));
        assert!(matches!(
            check(&rules("i", "c"), 700),
            Err(AuthError::Audience)
        ));
    }
}
