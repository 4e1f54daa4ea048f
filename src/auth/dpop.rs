//! DPoP (RFC 9449): a caller's access token bound to a key its browser holds (`cnf.jkt`), each
//! request carrying a fresh proof signed with that key. The proof is checked here as §4.3 says;
//! the replay of its `jti` in [`super::replay`]; which schemes a deployment accepts by
//! [`DpopMode`] (`DPOP`).

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use url::Url;

/// The proof algorithms accepted: asymmetric only (RFC 9449 §4.3 point 5), those the verifier
/// implements. Auth0's SPA SDK signs with ES256.
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
    Algorithm::RS256,
    Algorithm::EdDSA,
];

/// `algs` as a challenge writes it (RFC 9449 §7.1).
pub const ALGS: &str = "ES256 ES384 PS256 RS256 EdDSA";

/// How far a proof's `iat` may be from the function's clock, either way: proofs are made for
/// each request, so anything older is a replay or a stale copy; browsers' clocks drift, hence
/// the same room ahead.
pub const IAT_WINDOW: Duration = Duration::from_secs(60);

/// Proofs longer than this are refused before decoding (an ES256 proof is about 600 bytes; an
/// RSA key in the header makes it larger).
pub const MAX_PROOF_BYTES: usize = 4 * 1024;

/// Longest `jti` kept: a proof's id is a random string of tens of characters.
const MAX_JTI_BYTES: usize = 256;

/// Members of a JWK that belong to a private or symmetric key (RFC 7518 §6): a proof whose
/// `jwk` carries one has leaked its key, or is not a public key at all.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Which caller tokens a deployment accepts (`DPOP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DpopMode {
    /// Bearer tokens only, as before DPoP: a `DPoP` scheme is refused as unknown.
    Off,
    /// Both: a DPoP-bound token with a valid proof, or an unbound token as a bearer token; a
    /// bound token presented as a bearer token is refused (no downgrade). The default.
    #[default]
    Allowed,
    /// DPoP-bound tokens with a valid proof only.
    Required,
}

impl DpopMode {
    /// `off`, `allowed` or `required`, as `DPOP` spells it.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "off" => Ok(Self::Off),
            "allowed" => Ok(Self::Allowed),
            "required" => Ok(Self::Required),
            other => Err(format!(
                "{other:?} is not a DPoP mode: off, allowed or required"
            )),
        }
    }

    /// Whether bearer tokens are accepted.
    pub fn accepts_bearer(self) -> bool {
        self != Self::Required
    }

    /// Whether DPoP-bound tokens are accepted.
    pub fn accepts_dpop(self) -> bool {
        self != Self::Off
    }
}

/// The `Authorization` scheme a token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
}

/// Why a DPoP proof is refused (`401 invalid_dpop_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No `DPoP` header with a `DPoP` token.
    #[error("the request has no DPoP proof")]
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 point 1).
    #[error("the request has more than one DPoP proof")]
    Several,
    /// Not a JWS, oversized, or a header or payload that does not decode.
    #[error("the DPoP proof is malformed")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    /// An algorithm outside [`ALGORITHMS`] (`none`, HMAC, …).
    #[error("the DPoP proof's algorithm is not allowed")]
    Algorithm,
    /// No `jwk`, one that is not a public key, or one that does not fit the algorithm.
    #[error("the DPoP proof's jwk is not a public key for its algorithm")]
    Key,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another method")]
    Method,
    /// `htu` is not the URL the request was sent to.
    #[error("the DPoP proof is for another URL")]
    Url,
    /// `iat` is missing or outside [`IAT_WINDOW`].
    #[error("the DPoP proof is too old or from the future")]
    IssuedAt,
    /// `ath` is missing or not the access token's hash.
    #[error("the DPoP proof is for another access token")]
    AccessTokenHash,
    /// The `jwk`'s thumbprint is not the token's `cnf.jkt`.
    #[error("the DPoP proof is signed with a key the token is not bound to")]
    Thumbprint,
    /// No usable `jti`.
    #[error("the DPoP proof has no usable jti")]
    Id,
    /// The `jti` was seen before within the window.
    #[error("the DPoP proof was used before")]
    Replayed,
}

/// What a proof must be for: the request and the token it comes with.
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The URL the caller used (scheme, host and path; no query), `None` when it cannot be
    /// known: then no proof can match.
    pub url: Option<&'a str>,
    /// The access token the proof comes with.
    pub access_token: &'a str,
    /// The token's `cnf.jkt`.
    pub jkt: &'a str,
}

/// A proof that holds, but for its `jti`'s replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The proof's `jti`.
    pub jti: String,
    /// Its `iat`.
    pub iat: u64,
}

/// Checks `proof` as RFC 9449 §4.3 says, against `expected` at `now` (Unix seconds); everything
/// but the `jti`'s replay.
pub fn verify(proof: &str, expected: &Expected<'_>, now: u64) -> Result<Checked, ProofError> {
    if proof.len() > MAX_PROOF_BYTES || proof.split('.').count() != 3 {
        return Err(ProofError::Malformed);
    }
    // The header as JSON, to see every member the typed header would drop (a private key's).
    let header = segment(proof, 0)?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(ProofError::Type);
    }
    let alg: Algorithm = header
        .get("alg")
        .cloned()
        .and_then(|a| serde_json::from_value(a).ok())
        .ok_or(ProofError::Algorithm)?;
    if !ALGORITHMS.contains(&alg) {
        return Err(ProofError::Algorithm);
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(ProofError::Key);
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(ProofError::Key);
    }
    let thumbprint = thumbprint(jwk).ok_or(ProofError::Key)?;
    let key: Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| ProofError::Key)?;
    let key = DecodingKey::from_jwk(&key).map_err(|_| ProofError::Key)?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => ProofError::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
            | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => ProofError::Key,
            _ => ProofError::Malformed,
        })?
        .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("htm") != Some(expected.method.as_str()) {
        return Err(ProofError::Method);
    }
    let same_url = match (text("htu"), expected.url) {
        (Some(htu), Some(url)) => same_target(htu, url),
        _ => false,
    };
    if !same_url {
        return Err(ProofError::Url);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(ProofError::IssuedAt)?;
    if iat.abs_diff(now) > IAT_WINDOW.as_secs() {
        return Err(ProofError::IssuedAt);
    }
    if text("ath") != Some(access_token_hash(expected.access_token).as_str()) {
        return Err(ProofError::AccessTokenHash);
    }
    if thumbprint != expected.jkt {
        return Err(ProofError::Thumbprint);
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
        .ok_or(ProofError::Id)?;
    Ok(Checked {
        jti: jti.to_owned(),
        iat,
    })
}

/// Segment `index` of a compact JWS, decoded as a JSON object.
fn segment(jws: &str, index: usize) -> Result<Map<String, Value>, ProofError> {
    let text = jws.split('.').nth(index).ok_or(ProofError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProofError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ProofError::Malformed),
    }
}

/// Whether `htu` names the same resource as `url`: both parsed (which normalises case, default
/// ports and dot segments, RFC 3986 §6.2.2–6.2.3), compared without query or fragment
/// (RFC 9449 §4.3 point 9).
fn same_target(htu: &str, url: &str) -> bool {
    let bare = |text: &str| {
        let mut url = Url::parse(text).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    };
    match (bare(htu), bare(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `ath`: the base64url SHA-256 of the access token's ASCII (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

/// The RFC 7638 SHA-256 thumbprint of a public `jwk`, base64url: the required members of its
/// key type, in lexicographic order, without whitespace. `None` for a key type it does not know
/// or a member that is not a string.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| -> Option<String> {
        let value = jwk.get(name)?.as_str()?;
        Some(format!("\"{name}\":{}", serde_json::to_string(value).ok()?))
    };
    let members: Vec<String> = match jwk.get("kty")?.as_str()? {
        "EC" => vec![member("crv")?, member("kty")?, member("x")?, member("y")?],
        "RSA" => vec![member("e")?, member("kty")?, member("n")?],
        "OKP" => vec![member("crv")?, member("kty")?, member("x")?],
        _ => return None,
    };
    let canonical = format!("{{{}}}", members.join(","));
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// The `jkt` of a token's `cnf` claim, if it has one (RFC 9449 §6.1).
pub fn bound_key(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let Value::Object(jwk) = jwk else {
            unreachable!()
        };
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        let mut oct = Map::new();
        oct.insert("kty".into(), "oct".into());
        oct.insert("k".into(), "c2VjcmV0".into());
        assert_eq!(thumbprint(&oct), None);
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 §7.1's example: the token and its ath.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn urls_compare_without_query_and_normalised() {
        let url = "https://api.example.com/prod/idp/github/user";
        assert!(same_target(
            "https://API.example.com:443/prod/idp/github/user?x=1#f",
            url
        ));
        assert!(same_target(
            "https://api.example.com/prod/idp/./github/user",
            url
        ));
        for other in [
            "https://api.example.com/idp/github/user",
            "https://evil.example.com/prod/idp/github/user",
            "http://api.example.com/prod/idp/github/user",
            "https://api.example.com:8443/prod/idp/github/user",
            "https://api.example.com/prod/idp/github/user/",
            "not a url",
        ] {
            assert!(!same_target(other, url), "{other}");
        }
    }

    #[test]
    fn the_mode_is_one_of_three() {
        assert_eq!(DpopMode::parse("required"), Ok(DpopMode::Required));
        assert!(DpopMode::parse("on").is_err());
        assert!(DpopMode::Allowed.accepts_bearer() && DpopMode::Allowed.accepts_dpop());
        assert!(!DpopMode::Off.accepts_dpop() && !DpopMode::Required.accepts_bearer());
    }
}
