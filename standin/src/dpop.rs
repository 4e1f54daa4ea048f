//! DPoP (RFC 9449) for the stand-ins and the tests: a client's key pair that signs proofs
//! ([`DpopKey`], as the SPA SDK's browser key does), a builder for broken proofs
//! ([`DpopProofBuilder`]), the RFC 7638 thumbprint ([`jwk_thumbprint`]) and the `ath` of an access
//! token ([`dpop_ath`]); and, inside the crate, the checks RFC 9449 §4.3 asks of whoever receives
//! a proof: the tenant's token endpoint ([`crate::login`]) and its My Account API.
//!
//! A proof is a JWS whose header carries `typ: dpop+jwt`, an asymmetric `alg` and the public key
//! (`jwk`) it is signed with, and whose claims say which request it was made for: `htm` (method),
//! `htu` (URL without query and fragment), `iat`, a unique `jti`, and with an access token its
//! hash `ath`. A token bound to the key carries the key's thumbprint as `cnf.jkt`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::lock;

/// The proof signing algorithms the stand-in tenant accepts (and advertises as
/// `dpop_signing_alg_values_supported`): asymmetric ones only. Auth0's SPA SDK signs ES256.
pub(crate) const PROOF_ALGS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// How old a proof's `iat` may be, in seconds.
pub(crate) const MAX_AGE_SECS: i64 = 60;
/// How far ahead of the stand-in's clock a proof's `iat` may be, in seconds.
pub(crate) const MAX_AHEAD_SECS: i64 = 10;

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The RFC 7638 thumbprint of a public JWK: the base64url SHA-256 of its required members (`EC`:
/// `crv`, `kty`, `x`, `y`; `RSA`: `e`, `kty`, `n`; `OKP`: `crv`, `kty`, `x`; `oct`: `k`, `kty`)
/// in lexicographic order, without whitespace. `None` when a required member is missing or not a
/// string, or the `kty` is unknown. Other members (`kid`, `alg`, `use`, a private `d`…) do not
/// change it.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        _ => return None,
    };
    // Written out member by member: the order is the RFC's, whatever serde_json's map keeps.
    let mut text = String::from("{");
    for (i, name) in required.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::String((*name).to_owned()).to_string());
        text.push(':');
        text.push_str(&Value::String(value.to_owned()).to_string());
    }
    text.push('}');
    Some(b64(Sha256::digest(text.as_bytes())))
}

/// The `ath` of `access_token` (RFC 9449 §4.2): the base64url SHA-256 of its ASCII text.
pub fn dpop_ath(access_token: &str) -> String {
    b64(Sha256::digest(access_token.as_bytes()))
}

/// A fresh `jti`: 16 random bytes, base64url.
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .unwrap_or_else(|e| panic!("the system's random source failed: {e}"));
    b64(bytes)
}

/// A DPoP client key: a fresh P-256 key pair that signs ES256 proofs, as the key Auth0's SPA SDK
/// generates in the browser (`useDpop: true`). Clones share the key.
///
/// ```
/// let key = standin::DpopKey::generate();
/// let proof = key.proof("GET", "https://api.example/identities", Some("the.access.token"));
/// assert_eq!(proof.split('.').count(), 3);
/// assert_eq!(key.jkt().len(), 43);
/// ```
#[derive(Clone)]
pub struct DpopKey {
    pair: Arc<EcdsaKeyPair>,
    /// The public JWK: `{"kty": "EC", "crv": "P-256", "x", "y"}`.
    jwk: Value,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt())
            .finish_non_exhaustive()
    }
}

impl Default for DpopKey {
    fn default() -> Self {
        Self::generate()
    }
}

impl DpopKey {
    /// A fresh key pair.
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap_or_else(|e| panic!("generating a P-256 key: {e}"));
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        });
        Self {
            pair: Arc::new(pair),
            jwk,
        }
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`): what a proof's header carries.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The key's RFC 7638 SHA-256 thumbprint, base64url (43 characters): the `cnf.jkt` of the
    /// tokens bound to it (see [`crate::TokenBuilder::bound_to`]).
    pub fn jkt(&self) -> String {
        jwk_thumbprint(&self.jwk).unwrap_or_else(|| unreachable!("an EC JWK has its members"))
    }

    /// The private scalar `d`, base64url: what a proof must never carry.
    fn private_d(&self) -> String {
        let d = self
            .pair
            .private_key()
            .as_be_bytes()
            .unwrap_or_else(|e| panic!("reading the private key: {e}"));
        b64(d.as_ref())
    }

    /// A valid proof for a request `method` `htu` made now: header `typ: dpop+jwt`,
    /// `alg: ES256`, `jwk`; claims `jti` (random), `htm`, `htu`, `iat`, and `ath` for
    /// `access_token` when given (a request to a resource server; none at the token endpoint).
    pub fn proof(&self, method: &str, htu: &str, access_token: Option<&str>) -> String {
        self.proof_builder(method, htu, access_token).sign()
    }

    /// The same proof as [`DpopKey::proof`], to change before signing (broken proofs for tests).
    pub fn proof_builder(
        &self,
        method: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> DpopProofBuilder {
        let Value::Object(header) = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
        else {
            unreachable!("a JSON object literal")
        };
        let Value::Object(mut claims) = json!({
            "jti": random_jti(),
            "htm": method,
            "htu": htu,
            "iat": crate::now(),
        }) else {
            unreachable!("a JSON object literal")
        };
        if let Some(token) = access_token {
            claims.insert("ath".to_owned(), Value::String(dpop_ath(token)));
        }
        DpopProofBuilder {
            header,
            claims,
            signer: Signer::Key(self.clone()),
            key: self.clone(),
        }
    }
}

/// What signs a [`DpopProofBuilder`]'s proof.
#[derive(Debug, Clone)]
enum Signer {
    /// ES256 with this key (the proof's own, or another one).
    Key(DpopKey),
    /// HMAC-SHA256 with this secret.
    Hs256(Vec<u8>),
    /// Nothing: an empty signature.
    Unsigned,
}

/// A proof to adjust before signing: every header member and claim can be replaced or removed,
/// and the signature made with another key, with HMAC, or not at all. Whatever `alg` the header
/// says, the signature is made as the builder was told (ES256 by default).
///
/// ```
/// let key = standin::DpopKey::generate();
/// let old = key
///     .proof_builder("POST", "http://127.0.0.1:1/oauth/token", None)
///     .iat(standin::now() - 3600)
///     .sign();
/// let hmac = key.proof_builder("GET", "https://api.example/x", None).hs256(b"secret").sign();
/// # let _ = (old, hmac);
/// ```
#[derive(Debug, Clone)]
pub struct DpopProofBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signer: Signer,
    /// The proof's own key (its `jwk`).
    key: DpopKey,
}

impl DpopProofBuilder {
    /// Sets (or replaces) a header member with any JSON value (`typ`, `alg`, `jwk`, `kid`, `crit`…).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets (or replaces) a claim with any JSON value (`htm`, `htu`, `jti`, `ath`, `nonce`…).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `iat` (seconds since the epoch): an old or a future proof.
    pub fn iat(self, iat: i64) -> Self {
        self.claim("iat", iat)
    }

    /// Sets `ath` to the hash of `access_token` (another token's, for a wrong one).
    pub fn ath_of(self, access_token: &str) -> Self {
        self.claim("ath", dpop_ath(access_token))
    }

    /// Adds the key's private scalar `d` to the header's `jwk` (a proof that leaks its key, or
    /// invites the verifier to trust key material the sender chose).
    pub fn with_private_key(mut self) -> Self {
        let mut jwk = self.key.jwk();
        jwk["d"] = Value::String(self.key.private_d());
        self.header.insert("jwk".to_owned(), jwk);
        self
    }

    /// Signs with `other` (ES256) while the header keeps the proof's own `jwk`: a signature that
    /// does not verify against the key it names.
    pub fn signed_by(mut self, other: &DpopKey) -> Self {
        self.signer = Signer::Key(other.clone());
        self
    }

    /// Signs HMAC-SHA256 with `secret`, with `alg: HS256` in the header (a symmetric proof,
    /// which proves nothing).
    pub fn hs256(mut self, secret: &[u8]) -> Self {
        self.signer = Signer::Hs256(secret.to_vec());
        self.header("alg", "HS256")
    }

    /// No signature at all, with `alg: none` in the header.
    pub fn unsigned(mut self) -> Self {
        self.signer = Signer::Unsigned;
        self.header("alg", "none")
    }

    /// The compact JWS: `header.claims.signature`, base64url each.
    pub fn sign(&self) -> String {
        let input = format!(
            "{}.{}",
            b64(Value::Object(self.header.clone()).to_string()),
            b64(Value::Object(self.claims.clone()).to_string())
        );
        let signature = match &self.signer {
            Signer::Key(key) => key
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap_or_else(|e| panic!("signing a proof: {e}"))
                .as_ref()
                .to_vec(),
            Signer::Hs256(secret) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, input.as_bytes())
                    .as_ref()
                    .to_vec()
            }
            Signer::Unsigned => Vec::new(),
        };
        format!("{input}.{}", b64(signature))
    }
}

/// What a proof must have been made for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// The request's method.
    pub(crate) method: &'a str,
    /// The URL the request was sent to (any query or fragment is ignored).
    pub(crate) url: &'a str,
    /// The access token presented with the proof: its hash must be the proof's `ath`.
    pub(crate) access_token: Option<&'a str>,
    /// The verifier's clock, seconds since the epoch.
    pub(crate) now: i64,
}

/// A proof that holds: its key's thumbprint and its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) jkt: String,
    pub(crate) jti: String,
}

/// The URL without query and fragment (RFC 9449 §4.3, check 9).
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the proof's {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("the proof's {what} is not a JSON object")),
    }
}

/// Checks `proof` as RFC 9449 §4.3 says, for a request as `expected` (everything but replay:
/// see [`Replay`]): one well-formed JWS; `typ` `dpop+jwt`; an `alg` of [`PROOF_ALGS`]; no `crit`;
/// a public `jwk` only; the signature with that key; `htm` the request's method; `htu` its URL
/// (query and fragment ignored); `iat` within [`MAX_AGE_SECS`] before and [`MAX_AHEAD_SECS`]
/// after `now`; a `jti`; `ath` the hash of the access token when one is presented. `Err` says
/// what is wrong.
pub(crate) fn verify(proof: &str, expected: Expected<'_>) -> Result<Verified, String> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [header_part, claims_part, _signature] = parts[..] else {
        return Err("the proof is not a compact JWS".to_owned());
    };
    let header = decode_object(header_part, "header")?;
    let claims = decode_object(claims_part, "claims")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("the proof's typ is not dpop+jwt".to_owned());
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !PROOF_ALGS.contains(&alg) {
        return Err(format!(
            "the proof's alg {alg:?} is not an accepted asymmetric algorithm"
        ));
    }
    if header.contains_key("crit") {
        return Err("the proof has a crit header this server does not understand".to_owned());
    }
    let Some(jwk) = header.get("jwk").filter(|j| j.is_object()) else {
        return Err("the proof has no jwk".to_owned());
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.get(*m).is_some()) {
        return Err("the proof's jwk holds a private key".to_owned());
    }
    let jkt = jwk_thumbprint(jwk).ok_or("the proof's jwk is not a public key")?;
    let algorithm: jsonwebtoken::Algorithm = alg.parse().map_err(|_| "unknown alg".to_owned())?;
    let key = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone())
        .ok()
        .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(&jwk).ok())
        .ok_or("the proof's jwk is not a usable public key")?;
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|_| "the proof's signature does not verify with its jwk".to_owned())?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or("the proof has no jti")?;
    if text("htm") != Some(expected.method) {
        return Err(format!("the proof's htm is not {}", expected.method));
    }
    match text("htu") {
        Some(htu) if without_query(htu) == without_query(expected.url) => {}
        _ => {
            return Err(format!(
                "the proof's htu is not {}",
                without_query(expected.url)
            ));
        }
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("the proof has no iat")?;
    if iat < expected.now - MAX_AGE_SECS || iat > expected.now + MAX_AHEAD_SECS {
        return Err("the proof's iat is not recent".to_owned());
    }
    if let Some(token) = expected.access_token
        && text("ath") != Some(dpop_ath(token).as_str())
    {
        return Err("the proof's ath is not the access token's hash".to_owned());
    }
    Ok(Verified {
        jkt,
        jti: jti.to_owned(),
    })
}

/// The `jti`s of the proofs accepted within the last [`MAX_AGE_SECS`] + [`MAX_AHEAD_SECS`]
/// (older ones are refused for their `iat` anyway): a proof is used once.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// `(jkt, jti)` → when it may be forgotten.
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl Replay {
    /// Records `proof`'s `jti`; `false` if it was seen before.
    pub(crate) fn first_use(&self, proof: &Verified, now: i64) -> bool {
        let mut seen = lock(&self.seen);
        seen.retain(|_, forget| *forget > now);
        seen.insert(
            (proof.jkt.clone(), proof.jti.clone()),
            now + MAX_AGE_SECS + MAX_AHEAD_SECS,
        )
        .is_none()
    }
}

/// The request's one `DPoP` header: `Ok(None)` without any, `Err` for several or an unreadable
/// one (RFC 9449 §4.3, check 1).
pub(crate) fn proof_header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, String> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one DPoP header".to_owned());
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| "the DPoP header is not text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.example/idp/github/user";

    fn expected(access_token: Option<&str>) -> Expected<'_> {
        Expected {
            method: "GET",
            url: URL,
            access_token,
            now: crate::now(),
        }
    }

    #[test]
    fn rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its published thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        assert_eq!(
            jwk_thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn rfc_9449_example_thumbprint_and_ath() {
        // RFC 9449 §4.1 (Figure 2's key) and §6.1 (its jkt); §7.1 (the access token's ath).
        let jwk = json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256",
        });
        assert_eq!(
            jwk_thumbprint(&jwk).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
        assert_eq!(
            dpop_ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn the_rfc_9449_example_proof_verifies_at_its_time() {
        // RFC 9449 §4.1, Figure 1: a token request's proof, made at iat 1562262616.
        let proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
        let at = |now| Expected {
            method: "POST",
            url: "https://server.example.com/token",
            access_token: None,
            now,
        };
        let verified = verify(proof, at(1_562_262_616)).unwrap();
        assert_eq!(verified.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        assert_eq!(verified.jti, "-BwC3ESc6acc2lTc");
        assert!(verify(proof, at(crate::now())).is_err(), "an old proof");
    }

    #[test]
    fn the_thumbprint_is_43_base64url_characters_stable_and_per_key() {
        let key = DpopKey::generate();
        let jkt = key.jkt();
        assert_eq!(jkt.len(), 43);
        assert!(
            jkt.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(key.jkt(), jkt);
        assert_eq!(key.clone().jkt(), jkt);
        assert_ne!(DpopKey::generate().jkt(), jkt);
        // Members outside the required ones change nothing.
        let mut decorated = key.jwk();
        decorated["kid"] = json!("k1");
        decorated["use"] = json!("sig");
        assert_eq!(jwk_thumbprint(&decorated), Some(jkt));
    }

    #[test]
    fn the_thumbprint_agrees_with_jsonwebtokens() {
        // A second implementation: jsonwebtoken's Jwk::thumbprint (RFC 7638).
        for _ in 0..8 {
            let key = DpopKey::generate();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
            let theirs = jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(key.jkt(), theirs);
        }
    }

    #[test]
    fn a_proof_verifies_with_jsonwebtoken_against_its_own_jwk() {
        let key = DpopKey::generate();
        let proof = key.proof("GET", URL, Some("the-token"));
        let header = jsonwebtoken::decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let jwk = header.jwk.expect("a jwk in the header");
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(&proof, &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], URL);
        assert_eq!(claims["ath"], dpop_ath("the-token"));
        assert!((claims["iat"].as_i64().unwrap() - crate::now()).abs() <= 1);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
        // Only the public members travel.
        let header = decode_object(proof.split('.').next().unwrap(), "header").unwrap();
        assert_eq!(header["jwk"], key.jwk());
        assert_eq!(
            header["jwk"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["crv", "kty", "x", "y"]
        );
        // Each proof has its own jti; none has ath without a token.
        let other = key.proof("POST", URL, None);
        let claims = decode_object(other.split('.').nth(1).unwrap(), "claims").unwrap();
        assert!(claims.get("ath").is_none());
        assert_ne!(
            claims["jti"],
            decode_object(proof.split('.').nth(1).unwrap(), "claims").unwrap()["jti"]
        );
    }

    #[test]
    fn the_verifier_accepts_a_good_proof_and_names_its_key() {
        let key = DpopKey::generate();
        let verified = verify(&key.proof("GET", URL, Some("t")), expected(Some("t"))).unwrap();
        assert_eq!(verified.jkt, key.jkt());
        // A query or fragment on either side is ignored.
        let proof = key.proof("GET", &format!("{URL}?page=2#top"), Some("t"));
        assert!(verify(&proof, expected(Some("t"))).is_ok());
    }

    #[test]
    fn the_verifier_refuses_each_defect() {
        let key = DpopKey::generate();
        let base = || key.proof_builder("GET", URL, Some("t"));
        let now = crate::now();
        let cases: Vec<(&str, String)> = vec![
            ("typ missing", base().without_header("typ").sign()),
            ("typ JWT", base().header("typ", "JWT").sign()),
            ("alg none", base().unsigned().sign()),
            ("HS256", base().hs256(b"a shared secret").sign()),
            ("alg says ES384", base().header("alg", "ES384").sign()),
            ("no jwk", base().without_header("jwk").sign()),
            ("private d", base().with_private_key().sign()),
            (
                "another key's signature",
                base().signed_by(&DpopKey::generate()).sign(),
            ),
            ("crit", base().header("crit", json!(["exp"])).sign()),
            ("htm", base().claim("htm", "POST").sign()),
            ("htm lowercase", base().claim("htm", "get").sign()),
            (
                "htu host",
                base()
                    .claim("htu", "https://elsewhere.example/idp/github/user")
                    .sign(),
            ),
            (
                "htu path",
                base()
                    .claim("htu", "https://api.example/idp/github/repos")
                    .sign(),
            ),
            ("old iat", base().iat(now - MAX_AGE_SECS - 5).sign()),
            ("future iat", base().iat(now + MAX_AHEAD_SECS + 5).sign()),
            ("iat text", base().claim("iat", now.to_string()).sign()),
            ("no jti", base().without("jti").sign()),
            ("empty jti", base().claim("jti", "").sign()),
            ("wrong ath", base().ath_of("another token").sign()),
            ("no ath", base().without("ath").sign()),
            ("two parts", {
                let proof = base().sign();
                proof[..proof.rfind('.').unwrap()].to_owned()
            }),
        ];
        for (name, proof) in cases {
            assert!(
                verify(&proof, expected(Some("t"))).is_err(),
                "{name}: accepted"
            );
        }
        // The signature itself, altered.
        let proof = base().sign();
        let (input, signature) = proof.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 0xff;
        let altered = format!("{input}.{}", b64(bytes));
        assert!(verify(&altered, expected(Some("t"))).is_err());
    }

    #[test]
    fn a_jti_is_used_once() {
        let key = DpopKey::generate();
        let replay = Replay::default();
        let now = crate::now();
        let verified = verify(&key.proof("GET", URL, None), expected(None)).unwrap();
        assert!(replay.first_use(&verified, now));
        assert!(!replay.first_use(&verified, now));
        // Forgotten once its iat could no longer pass.
        assert!(replay.first_use(&verified, now + MAX_AGE_SECS + MAX_AHEAD_SECS + 1));
    }

    #[test]
    fn one_dpop_header_at_most() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(proof_header(&headers), Ok(None));
        headers.append("dpop", "a.b.c".parse().unwrap());
        assert_eq!(proof_header(&headers), Ok(Some("a.b.c")));
        headers.append("dpop", "d.e.f".parse().unwrap());
        assert!(proof_header(&headers).is_err());
    }
}
