//! The invariants the fuzz targets assert, in one place: the targets in `fuzz_targets/` call these
//! functions on libFuzzer's inputs, and `tests/fuzz_regressions.rs` (stable, `cargo test`) calls
//! them on every seed and every kept crash. Each function panics when an invariant breaks, and
//! returns quietly for an input the code under test refuses, as long as the refusal is a right one.
//!
//! Only the proxy's own crate and its dependencies are used, so that the root crate's test can
//! include this file as a module.

use std::str;
use std::sync::LazyLock;

use auth0_idp_proxy::auth::dpop::{self, DpopMode, Expected, ProofError, Scheme};
use auth0_idp_proxy::auth::{self, AuthError, MAX_TOKEN_BYTES};
use auth0_idp_proxy::idp::catalogue;
use auth0_idp_proxy::idp::connections::{AllowRule, Connection, Connections, Refresh};
use auth0_idp_proxy::idp::path::{self, IdpPath, PathError};
use auth0_idp_proxy::idp::{IdpError, IdpRequest};
use auth0_idp_proxy::routes::{self, Route};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method};
use percent_encoding::percent_decode_str;
use url::Url;

/// The checks of one target: panic on an input that breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target, by name, as `fuzz_targets/` and `fuzz/seeds/` name them.
pub const TARGETS: &[(&str, Check)] = &[
    ("token_precheck", token_precheck),
    ("route_path", route_path),
    ("connections_config", connections_config),
    ("dpop_proof", dpop_proof),
];

/// The `Authorization` header values, one per line (none for an empty input), through
/// `bearer_token`, `precheck` and `jsonwebtoken::decode_header` as `Authenticator::authenticate`
/// chains them; every line is also prechecked as a bare token.
pub fn token_precheck(data: &[u8]) {
    let mut headers = HeaderMap::new();
    if !data.is_empty() {
        for line in data.split(|b| *b == b'\n') {
            let Ok(value) = HeaderValue::from_bytes(line) else {
                return;
            };
            headers.append(AUTHORIZATION, value);
        }
    }
    let values: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
    match auth::bearer_token(&headers) {
        Ok(token) => {
            let [value] = values[..] else {
                panic!(
                    "a token was taken from {} Authorization headers",
                    values.len()
                );
            };
            let value = value
                .to_str()
                .expect("a token comes from a visible-ASCII header");
            let (scheme, rest) = value.split_once(' ').expect("a bearer header has a space");
            assert!(scheme.eq_ignore_ascii_case("bearer"), "scheme {scheme:?}");
            assert!(!token.is_empty(), "an empty token is no token");
            assert_eq!(
                token,
                rest.trim(),
                "the token is the header's rest, trimmed"
            );
            assert!(value.len() <= MAX_TOKEN_BYTES + "Bearer ".len());
            check_token(token);
        }
        Err(AuthError::Missing) => assert!(
            values.is_empty() || values.len() == 1,
            "several headers are not a missing token"
        ),
        Err(AuthError::NotBearer | AuthError::Oversized | AuthError::Malformed) => {}
        Err(other) => panic!("bearer_token refused with {other:?}"),
    }
    if let Ok(text) = str::from_utf8(data) {
        for line in text.split('\n') {
            check_token(line);
        }
    }
}

/// `precheck` accepts exactly the tokens of at most [`MAX_TOKEN_BYTES`] made of three non-empty
/// base64url segments; only those reach `decode_header`, which must not panic on them.
fn check_token(token: &str) {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let segments: Vec<&str> = token.split('.').collect();
    let well_formed = segments.len() == 3
        && segments
            .iter()
            .all(|s| !s.is_empty() && s.bytes().all(base64url));
    match auth::precheck(token) {
        Ok(()) => {
            assert!(token.len() <= MAX_TOKEN_BYTES, "oversized token accepted");
            assert!(well_formed, "malformed token {token:?} accepted");
            // Whatever the header says, decoding it is the next step and must fail cleanly.
            let _ = jsonwebtoken::decode_header(token);
        }
        Err(AuthError::Oversized) => assert!(token.len() > MAX_TOKEN_BYTES),
        Err(AuthError::Malformed) => {
            assert!(token.len() <= MAX_TOKEN_BYTES, "size is checked first");
            assert!(!well_formed, "well-formed token {token:?} refused");
        }
        Err(other) => panic!("precheck refused with {other:?}"),
    }
}

/// The request the valid `dpop_proof` seed was made for, once, by `standin::DpopKey` (the fuzz
/// crate has no stand-in, and a proof is only valid for its own `iat`, so it is a file): `GET` of
/// this URL, with RFC 9449 §7.1's example access token, at [`DPOP_NOW`].
pub const DPOP_URL: &str = "https://api.example.com/prod/idp/github/user";

/// The access token the seeds' proofs are for, unless an input names another.
pub const DPOP_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// Its `ath`, as RFC 9449 §7.1 gives it: not computed by the code under test.
const DPOP_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";

/// The function's clock for every proof: the valid seed's `iat`.
pub const DPOP_NOW: u64 = 1_796_678_795;

/// The seed key's public P-256 point. Its private half was not kept, but for the copy the
/// `private-jwk` seed carries on purpose; whatever it signs is held to the same checks.
const DPOP_X: &str = "Z1Y3A3ZFVuljAWcsn1Sr7eDmQCiRXvqkY_13T7KfNh4";
const DPOP_Y: &str = "r5nwSx39mzgGhD2YaVhnV3I1gxoUkxklBdLi3eYrzPI";

/// Its RFC 7638 thumbprint: the `cnf.jkt` of the token the proofs come with.
pub const DPOP_JKT: &str = "FC-UE5517JdxP55SQUHOJdnI1-kp3RsATPf-yxuXA5s";

/// The proof algorithms the README allows (the challenge's `algs`), spelled out apart from
/// `dpop::ALGORITHMS`: asymmetric only.
const DPOP_ALGS: &[&str] = &["ES256", "ES384", "PS256", "RS256", "EdDSA"];

/// Members only a private or symmetric JWK has (RFC 7518 §6).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

static GET: Method = Method::GET;
static POST: Method = Method::POST;

/// What the seeds' proofs must be for: `GET` [`DPOP_URL`] with `access_token`, bound to
/// [`DPOP_JKT`].
pub fn dpop_expected(access_token: &str) -> Expected<'_> {
    Expected {
        method: &GET,
        url: Some(DPOP_URL),
        access_token,
        jkt: DPOP_JKT,
    }
}

/// `DPOP[\nAUTHORIZATION]`: the first line is a `DPoP` header value, checked by `dpop::verify`
/// as it is (any UTF-8) and as `authenticate` hands it over (a header value's text, trimmed),
/// for `GET` [`DPOP_URL`] at [`DPOP_NOW`] and a token bound to [`DPOP_JKT`]. The access token is
/// [`DPOP_ACCESS_TOKEN`], or that of the second line when it is an `Authorization` value with the
/// `DPoP` scheme (through `presented_token`); any other second line ends the input there, as no
/// proof is read then. A proof is accepted only when it is well formed, signed by the key its
/// `jwk` names (checked here with aws-lc, apart from `jsonwebtoken`), that key is [`DPOP_JKT`]'s
/// and its claims are for this request, token and time; an accepted proof is refused for any other
/// method, URL, token, key or time. A refusal is one `verify` can make (not `Missing`, `Several`
/// or `Replayed`, which only `authenticate` knows) and fits a defect the proof has: a claim or the
/// key's thumbprint only under a signature that holds, the signature only when it does not, and a
/// wrong `typ`, an `alg` outside the five or a missing or private `jwk` at the header already.
pub fn dpop_proof(data: &[u8]) {
    let (proof, authorization) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let token = match authorization {
        None => DPOP_ACCESS_TOKEN,
        Some(line) => match check_dpop_authorization(line) {
            Some(token) => token,
            None => return,
        },
    };
    let raw = str::from_utf8(proof).ok();
    if let Some(raw) = raw {
        check_proof(raw, token);
    }
    // As `authenticate` reads the `DPoP` header.
    let header = HeaderValue::from_bytes(proof).ok();
    if let Some(text) = header.as_ref().and_then(|v| v.to_str().ok())
        && Some(text.trim()) != raw
    {
        check_proof(text.trim(), token);
    }
}

/// The `DPoP` token of an `Authorization` value, `None` for any other (refused, or `Bearer`);
/// `presented_token` takes a token only from the value's rest, under the scheme it names, and the
/// `DPoP` scheme only where the mode accepts it.
fn check_dpop_authorization(line: &[u8]) -> Option<&str> {
    let value = HeaderValue::from_bytes(line).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let off = auth::presented_token(&headers, DpopMode::Off);
    match auth::presented_token(&headers, DpopMode::Allowed) {
        Ok((scheme, token)) => {
            let text = str::from_utf8(line).expect("a token comes from a visible-ASCII header");
            let (name, rest) = text.split_once(' ').expect("a scheme and a token");
            assert!(!token.is_empty() && token == rest.trim(), "{text:?}");
            assert!(text.len() <= MAX_TOKEN_BYTES + "Bearer ".len());
            let is_dpop = name.eq_ignore_ascii_case("dpop");
            assert_eq!(scheme == Scheme::Dpop, is_dpop, "{text:?}");
            assert!(is_dpop || name.eq_ignore_ascii_case("bearer"), "{text:?}");
            match off {
                Err(AuthError::NotBearer) if is_dpop => {}
                Ok((Scheme::Bearer, same)) if !is_dpop => assert_eq!(same, token),
                other => panic!("{text:?} with DPOP=off: {other:?}"),
            }
            is_dpop.then(|| rest.trim())
        }
        Err(
            AuthError::Missing | AuthError::NotBearer | AuthError::Oversized | AuthError::Malformed,
        ) => {
            assert!(off.is_err(), "DPOP=off took what DPOP=allowed refused");
            None
        }
        Err(other) => panic!("presented_token refused with {other:?}"),
    }
}

/// `verify` on `proof` for `GET` [`DPOP_URL`], `token` and [`DPOP_JKT`] at [`DPOP_NOW`].
fn check_proof(proof: &str, token: &str) {
    let verdict = dpop::verify(proof, &dpop_expected(token), DPOP_NOW);
    let segments: Vec<&str> = proof.split('.').collect();
    if proof.len() > dpop::MAX_PROOF_BYTES || segments.len() != 3 {
        assert_eq!(verdict, Err(ProofError::Malformed), "{proof:?}");
        return;
    }
    let header = decode_segment(segments[0]);
    let signed = header.as_ref().and_then(|h| signature_holds(h, proof));
    match &verdict {
        Ok(checked) => {
            let header = header
                .as_ref()
                .expect("an accepted proof's header is a JSON object");
            check_accepted_proof(header, proof, token, checked, signed);
        }
        Err(ProofError::Missing | ProofError::Several | ProofError::Replayed) => {
            panic!("verify refused {proof:?} with {verdict:?}, which it cannot know")
        }
        // A claim is judged only once the signature has held.
        Err(
            ProofError::Method
            | ProofError::Url
            | ProofError::IssuedAt
            | ProofError::AccessTokenHash
            | ProofError::Thumbprint
            | ProofError::Id,
        ) => assert_ne!(
            signed,
            Some(false),
            "{proof:?}: {verdict:?} on a bad signature"
        ),
        Err(ProofError::Signature) => {
            assert_ne!(signed, Some(true), "{proof:?}: a good signature refused")
        }
        Err(ProofError::Malformed | ProofError::Type | ProofError::Algorithm | ProofError::Key) => {
        }
    }
    let Some(header) = header else {
        assert_eq!(verdict, Err(ProofError::Malformed), "{proof:?}: no header");
        return;
    };
    // The header's defects end the check before the signature is looked at.
    let typ = header.get("typ").and_then(serde_json::Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        assert_eq!(verdict, Err(ProofError::Type), "{proof:?}");
    }
    let alg = header.get("alg").and_then(serde_json::Value::as_str);
    if !alg.is_some_and(|a| DPOP_ALGS.contains(&a)) {
        assert!(
            matches!(verdict, Err(ProofError::Type | ProofError::Algorithm)),
            "{proof:?}: alg {alg:?} gave {verdict:?}"
        );
    }
    let public_jwk = match header.get("jwk") {
        Some(serde_json::Value::Object(jwk)) => {
            !PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m))
        }
        _ => false,
    };
    if !public_jwk {
        assert!(
            matches!(
                verdict,
                Err(ProofError::Type | ProofError::Algorithm | ProofError::Key)
            ),
            "{proof:?}: no public jwk, {verdict:?}"
        );
    }
}

/// An accepted proof is one the seed key signed, for this request and token, at about this time;
/// and for nothing else.
fn check_accepted_proof(
    header: &serde_json::Map<String, serde_json::Value>,
    proof: &str,
    token: &str,
    checked: &dpop::Checked,
    signed: Option<bool>,
) {
    let base64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    assert!(proof.split('.').all(base64url), "{proof:?}");
    let text = |map: &serde_json::Map<String, serde_json::Value>, name: &str| {
        map.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    assert!(text(header, "typ").is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")));
    assert_eq!(
        text(header, "alg").as_deref(),
        Some("ES256"),
        "the seed key is P-256"
    );
    let jwk = header["jwk"].as_object().expect("a jwk object");
    assert_eq!(text(jwk, "kty").as_deref(), Some("EC"));
    assert_eq!(text(jwk, "crv").as_deref(), Some("P-256"));
    assert_eq!(text(jwk, "x").as_deref(), Some(DPOP_X));
    assert_eq!(text(jwk, "y").as_deref(), Some(DPOP_Y));
    assert!(!PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)));
    assert_eq!(
        signed,
        Some(true),
        "{proof:?} accepted without the key's signature"
    );
    let claims = decode_segment(proof.split('.').nth(1).expect("three segments"))
        .expect("an accepted proof's claims are a JSON object");
    assert_eq!(text(&claims, "htm").as_deref(), Some("GET"));
    let htu = text(&claims, "htu").expect("an htu");
    let mut htu = Url::parse(&htu).expect("an htu that is a URL");
    htu.set_query(None);
    htu.set_fragment(None);
    assert_eq!(htu.as_str(), DPOP_URL);
    let iat = claims.get("iat").and_then(serde_json::Value::as_u64);
    assert_eq!(iat, Some(checked.iat));
    assert!(checked.iat.abs_diff(DPOP_NOW) <= 60, "iat {}", checked.iat);
    let ath = text(&claims, "ath").expect("an ath");
    if token == DPOP_ACCESS_TOKEN {
        assert_eq!(ath, DPOP_ATH);
    }
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    assert_eq!(ath, URL_SAFE_NO_PAD.encode(hash), "ath for {token:?}");
    assert_eq!(text(&claims, "jti").as_deref(), Some(checked.jti.as_str()));
    assert!(!checked.jti.is_empty() && checked.jti.len() <= 256);

    // The same proof for anything else is refused, for what differs.
    let other_url = "https://api.example.com/prod/idp/github/user/repos";
    let rfc_7638_example = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    let base = dpop_expected(token);
    let cases = [
        (
            Expected {
                method: &POST,
                ..dpop_expected(token)
            },
            DPOP_NOW,
            ProofError::Method,
        ),
        (
            Expected {
                url: Some(other_url),
                ..dpop_expected(token)
            },
            DPOP_NOW,
            ProofError::Url,
        ),
        (
            Expected {
                url: None,
                ..dpop_expected(token)
            },
            DPOP_NOW,
            ProofError::Url,
        ),
        (
            dpop_expected("another.access.token"),
            DPOP_NOW,
            ProofError::AccessTokenHash,
        ),
        (
            Expected {
                jkt: rfc_7638_example,
                ..dpop_expected(token)
            },
            DPOP_NOW,
            ProofError::Thumbprint,
        ),
        (dpop_expected(token), checked.iat + 61, ProofError::IssuedAt),
        (
            dpop_expected(token),
            checked.iat.saturating_sub(61),
            ProofError::IssuedAt,
        ),
    ];
    for (expected, now, refusal) in cases {
        assert_eq!(
            dpop::verify(proof, &expected, now),
            Err(refusal),
            "{proof:?} at {now}"
        );
    }
    // Sixty seconds either way is still in time.
    for now in [checked.iat + 60, checked.iat.saturating_sub(60)] {
        assert_eq!(dpop::verify(proof, &base, now).as_ref(), Ok(checked));
    }
}

/// A compact JWS segment as base64url without padding of a JSON object.
fn decode_segment(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Whether the proof's signature verifies with the key its header's `jwk` names under its
/// `alg`, by aws-lc directly (not through `jsonwebtoken`); `None` when the header names no key
/// this reads for that `alg`.
fn signature_holds(
    header: &serde_json::Map<String, serde_json::Value>,
    proof: &str,
) -> Option<bool> {
    use aws_lc_rs::signature::{self, UnparsedPublicKey};
    let (input, signature) = proof.rsplit_once('.')?;
    let jwk = header.get("jwk")?.as_object()?;
    let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok();
    let alg = header.get("alg")?.as_str()?;
    let kty = jwk.get("kty")?.as_str()?;
    // A signature that is not base64url verifies under no key.
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    let input = input.as_bytes();
    let ec = |algorithm: &'static signature::EcdsaVerificationAlgorithm| {
        let point = [&[4u8][..], &member("x")?, &member("y")?].concat();
        Some(
            UnparsedPublicKey::new(algorithm, point)
                .verify(input, &signature)
                .is_ok(),
        )
    };
    let rsa = |algorithm: &'static signature::RsaParameters| {
        let key = signature::RsaPublicKeyComponents {
            n: member("n")?,
            e: member("e")?,
        };
        Some(key.verify(algorithm, input, &signature).is_ok())
    };
    match (alg, kty) {
        ("ES256", "EC") => ec(&signature::ECDSA_P256_SHA256_FIXED),
        ("ES384", "EC") => ec(&signature::ECDSA_P384_SHA384_FIXED),
        ("RS256", "RSA") => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        ("PS256", "RSA") => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        ("EdDSA", "OKP") => {
            let key = UnparsedPublicKey::new(&signature::ED25519, member("x")?);
            Some(key.verify(input, &signature).is_ok())
        }
        _ => None,
    }
}

/// The connection table the `route_path` target calls into: the built-ins, one with narrow rules,
/// and two with a base path (one of them a loopback stand-in with a trailing slash).
const ROUTE_TABLE: &str = r#"{
  "github": {"allow": ["GET /user", "GET /user/**", "POST /user/repos", "GET /repos/*/*/issues/**",
                       "PUT /repos/**/comments/**/reactions/*"]},
  "graph": {"api_base": "https://graph.example.com/v1.0", "allow": ["* /me/**", "GET /users/*/photo/$value"]},
  "standin": {"api_base": "http://127.0.0.1:9999/api/", "allow": ["* /**"]},
  "matrix": {"api_base": "https://matrix.example.com", "path_characters": ";\u2024\u2025@",
             "allow": ["GET /user/**", "GET /user/emails needs pii:read", "* /files/**",
                       "GET /files/secret needs files:secret"]}
}"#;

static TABLE: LazyLock<Connections> =
    LazyLock::new(|| Connections::from_json(ROUTE_TABLE).expect("the route table is valid"));

static ROUTE_RULES: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(ROUTE_TABLE).expect("the route table is JSON"));

/// The provider catalogue's entries, for the allow rules of the built-in connections.
static CATALOGUE: LazyLock<
    std::collections::BTreeMap<String, auth0_idp_proxy::idp::catalogue::Entry>,
> = LazyLock::new(|| auth0_idp_proxy::idp::catalogue::entries().expect("the catalogue parses"));

/// The allow rules of `connection` in [`ROUTE_TABLE`], else its catalogue entry's.
fn route_rules(connection: &str) -> Vec<&'static str> {
    match ROUTE_RULES[connection]["allow"].as_array() {
        Some(rules) => rules.iter().filter_map(serde_json::Value::as_str).collect(),
        None => CATALOGUE
            .get(connection)
            .map(|entry| entry.allow.iter().map(String::as_str).collect())
            .unwrap_or_default(),
    }
}

/// `[HOST\n]METHOD /path?query` (`GET` when there is no space): routed, normalised and, for a
/// configured connection, turned into the upstream URL as the handler does. For a per-user host
/// connection (`salesforce`, `shopify`, ...), HOST is the value the user's profile holds (a
/// default org host without a first line): whatever passes the check is inside the connection's
/// pattern, and the upstream URL's host is exactly it, over https.
pub fn route_path(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    let (host_value, text) = match text.split_once('\n') {
        Some((host, rest)) => (Some(host), rest),
        None => (None, text),
    };
    let (method, target) = text.split_once(' ').unwrap_or(("GET", text));
    let Ok(sent) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    // The event's method as the function reads it: upper case, whatever the spelling.
    let method = routes::canonical_method(&sent);
    assert!(
        !method.as_str().bytes().any(|b| b.is_ascii_lowercase()),
        "{method} is not canonical"
    );
    assert!(
        method.as_str().eq_ignore_ascii_case(sent.as_str()),
        "{sent} became {method}"
    );
    let (raw_path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    // The whole path as an IdP path too: the fuzzer need not find `/idp/{name}` to test it.
    let _ = check_normalise(raw_path);
    let Some(Route::Idp { connection, path }) = check_route(raw_path) else {
        return;
    };
    let normalised = check_normalise(path);
    let Some(table_entry) = TABLE.get(connection) else {
        return;
    };
    let per_user;
    let table_entry = match check_host(table_entry, host_value) {
        HostCheck::Fixed => table_entry,
        HostCheck::Refused => return,
        HostCheck::Serves(connection) => {
            per_user = connection;
            &*per_user
        }
    };
    if let Ok(path) = &normalised {
        let matching = reference_matching(connection, &method, &path.segments);
        assert_eq!(
            table_entry.allows(&method, &path.segments),
            matching.is_some(),
            "{method} {:?} at {connection}",
            path.segments
        );
        // A caller holding nothing is let through only where no matching rule, under either
        // reading of the path, needs anything.
        let guarded = path::check_guarded(&path.segments, &table_entry.path_characters).is_ok();
        if let (Some(needs), true) = (&matching, guarded) {
            let headers = HeaderMap::new();
            let holding_nothing = IdpRequest::new(
                table_entry,
                method.clone(),
                &path.encoded,
                None,
                &headers,
                b"",
                &|_| false,
            );
            match holding_nothing {
                Ok(_) => assert!(
                    needs.is_empty(),
                    "{method} {:?} passed without {needs:?}",
                    path.segments
                ),
                Err(IdpError::InsufficientScope(missing)) => {
                    assert!(!needs.is_empty());
                    for need in needs {
                        assert!(missing.iter().any(|m| m == need), "{need} not named");
                    }
                }
                Err(other) => panic!("{method} {:?}: {other:?}", path.segments),
            }
        }
    }
    check_request(table_entry, &method, path, query);
}

/// What a connection's per-user host check made of a profile's value.
enum HostCheck {
    /// A fixed `api_base`: no host is read.
    Fixed,
    /// The value was refused.
    Refused,
    /// The connection as it serves that user.
    Serves(Box<Connection>),
}

/// The connection's host check on `value` (as `urls.custom_domain`, `myshopify_domain`) against
/// a naive reading of the README's rule: lowercase letters, digits and inner `-` in one label
/// (at most 63) for the pattern's `*`, the rest equal to the pattern; a bare host or
/// `https://HOST[/path]`.
fn check_host(connection: &Connection, value: Option<&str>) -> HostCheck {
    let Some(rule) = &connection.api_host else {
        return HostCheck::Fixed;
    };
    let value = value.unwrap_or("acme.my.salesforce.com");
    let profile = serde_json::json!({
        "user": {"urls": {"custom_domain": value, "rest": value}, "myshopify_domain": value},
        "identity": {"profileData": {"urls": {"custom_domain": value, "rest": value}, "myshopify_domain": value}},
    });
    let host = match value.strip_prefix("https://") {
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None => value,
    };
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let pattern = rule.pattern();
    let expected = !value.contains("://") || value.starts_with("https://");
    let expected = expected
        && match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(label_ok),
            None => host == pattern,
        };
    match connection.for_host(&profile) {
        Ok(serving) => {
            assert!(expected, "{value:?} passed for {pattern}");
            let base = &serving.api_base;
            assert_eq!(base.scheme(), "https", "{base}");
            assert_eq!(base.host_str(), Some(host), "{base} for {value:?}");
            assert_eq!(base.port(), None, "{base}");
            assert!(base.username().is_empty() && base.password().is_none());
            HostCheck::Serves(Box::new(serving))
        }
        Err(_) => {
            assert!(!expected, "{value:?} refused for {pattern}");
            HostCheck::Refused
        }
    }
}

/// The `needs` of every rule of `connection` that matches `method` on `segments` as written or as
/// the upstream serves them (README: rules match the path the upstream serves); `None` when no
/// rule matches, or the path cannot be served as a resource.
fn reference_matching(
    connection: &str,
    method: &Method,
    segments: &[String],
) -> Option<Vec<&'static str>> {
    let served = match reference_served(segments) {
        Ok(served) => served,
        Err(()) => return None,
    };
    let rules = route_rules(connection);
    let matching: Vec<&str> = rules
        .iter()
        .filter(|rule| {
            reference_allows(rule, method, segments)
                || served
                    .as_ref()
                    .is_some_and(|served| reference_allows(rule, method, served))
        })
        .copied()
        .collect();
    if matching.is_empty() {
        return None;
    }
    Some(
        matching
            .iter()
            .filter_map(|rule| rule_parts(rule))
            .flat_map(|(_, _, needs, _)| needs)
            .collect(),
    )
}

/// The segments as a server that normalises Unicode (NFKC) and reads matrix parameters serves
/// them: each in its compatibility form, the ideographic full stops as dots, cut at its first
/// `;`. `None` when that is the path as written; `Err` for a segment that would read as nothing
/// or as a dot segment.
fn reference_served(segments: &[String]) -> Result<Option<Vec<String>>, ()> {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
    let mut served = Vec::new();
    for segment in segments {
        let normal = nfkc
            .normalize(segment)
            .replace(['\u{3002}', '\u{ff61}'], ".");
        let read = normal.split(';').next().unwrap_or_default().to_owned();
        if read.is_empty() || read == "." || read == ".." {
            return Err(());
        }
        served.push(read);
    }
    Ok((served != segments).then_some(served))
}

/// The allow-rule semantics of the README, naively: the method or `*`, then `*` for one segment,
/// `**` for any number, anything else for itself. For texts `AllowRule::parse` accepts.
fn reference_allows(rule: &str, method: &Method, segments: &[String]) -> bool {
    let Some((rule_method, path, _, _)) = rule_parts(rule) else {
        return false;
    };
    let path = path.trim_start_matches('/');
    let pattern: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // `HEAD` wherever `GET` is allowed (README).
    let method_matches = rule_method == "*"
        || rule_method == method.as_str()
        || (*method == Method::HEAD && rule_method == "GET");
    method_matches && reference_glob(&pattern, segments)
}

/// A rule's method, path and what it `needs` (the words after the path), split as the README
/// says.
/// A rule's parts as the oracle reads them: method, path, `needs` scopes, `idp-scopes` lists.
type RuleParts<'a> = (&'a str, &'a str, Vec<&'a str>, Vec<Vec<&'a str>>);

fn rule_parts(rule: &str) -> Option<RuleParts<'_>> {
    let (method, rest) = rule.trim().split_once(' ')?;
    let mut words = rest.split_whitespace();
    let path = words.next().unwrap_or_default();
    let (mut needs, mut idp) = (Vec::new(), Vec::new());
    let (mut clause, mut seen) = ("", Vec::new());
    for word in words {
        // A clause's word starts it once; after that it is a scope like any other.
        if matches!(word, "needs" | "idp-scopes") && !seen.contains(&word) {
            seen.push(word);
            clause = word;
        } else if clause == "needs" {
            needs.push(word);
        } else {
            idp.push(word.split('|').collect());
        }
    }
    Some((method, path, needs, idp))
}

/// Backtracking, so exponential in the number of `**`: only for short inputs.
fn reference_glob(pattern: &[&str], segments: &[String]) -> bool {
    match pattern.split_first() {
        None => segments.is_empty(),
        Some((&"**", rest)) => {
            (0..=segments.len()).any(|skip| reference_glob(rest, &segments[skip..]))
        }
        Some((head, rest)) => segments.split_first().is_some_and(|(segment, tail)| {
            (*head == "*" || head == segment) && reference_glob(rest, tail)
        }),
    }
}

/// `route` yields only well-formed connection names and splits the path without losing a byte.
fn check_route(raw: &str) -> Option<Route<'_>> {
    let route = routes::route(raw);
    match &route {
        Some(Route::Identities) => assert!(raw == "/identities" || raw == "/identities/"),
        Some(Route::Idp { connection, path }) => {
            assert!(
                is_connection_name(connection),
                "routed to connection {connection:?}"
            );
            assert!(path.is_empty() || path.starts_with('/'), "rest {path:?}");
            assert_eq!(format!("/idp/{connection}{path}"), raw);
        }
        None => {
            let name = raw
                .strip_prefix("/idp/")
                .map(|rest| rest.split('/').next().unwrap_or(rest));
            assert!(
                !name.is_some_and(is_connection_name),
                "{raw:?} names a connection but was not routed"
            );
        }
    }
    route
}

/// Auth0's connection names: `[A-Za-z0-9_-]{1,128}`.
fn is_connection_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A normalised path has no dot or empty segment, nothing a later hop could decode into a
/// separator, and a canonical encoding that a URL parser keeps as it is.
fn check_normalise(raw: &str) -> Result<IdpPath, PathError> {
    let result = path::normalise(raw);
    let path = match &result {
        Ok(path) => path,
        Err(PathError::DotSegment | PathError::EmptySegment | PathError::ForbiddenCharacter) => {
            return result;
        }
        Err(other) => panic!("normalise refused {raw:?} with {other:?}"),
    };
    let encoded = &path.encoded;
    let inner = encoded
        .strip_prefix('/')
        .expect("an encoded path starts with /");
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let encoded_segments: Vec<&str> = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    };
    assert_eq!(encoded_segments.len(), path.segments.len(), "{raw:?}");
    for (encoded_segment, segment) in encoded_segments.iter().zip(&path.segments) {
        assert!(is_canonical_segment(encoded_segment), "{encoded:?}");
        assert!(!matches!(segment.as_str(), "" | "." | ".."), "{raw:?}");
        assert!(
            !segment
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '%') || c.is_control()),
            "segment {segment:?} of {raw:?}"
        );
        assert_eq!(
            percent_decode_str(encoded_segment).decode_utf8().as_deref(),
            Ok(segment.as_str()),
            "the encoding names the segment the rules see"
        );
    }
    let lower = encoded.to_ascii_lowercase();
    for escape in ["%2f", "%5c", "%25", "%2e", "%40"] {
        assert!(!lower.contains(escape), "{encoded:?} has {escape}");
    }
    assert_eq!(
        path::normalise(encoded).as_ref(),
        Ok(path),
        "normalising is idempotent"
    );
    let url = Url::parse(&format!("https://fuzz.invalid{encoded}")).expect("a valid URL path");
    assert_eq!(url.path(), encoded, "a URL parser keeps the canonical path");
    result
}

/// Unreserved characters, sub-delimiters, `:` and `@` (RFC 3986's `pchar`; `@` reaches a URL
/// only where the connection allows it) as they are; anything else as `%XX`, uppercase.
fn is_canonical_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
            if !(i + 2 < bytes.len() && hex(bytes[i + 1]) && hex(bytes[i + 2])) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    !segment.is_empty()
}

/// An accepted request is allowed by the connection's rules, and its URL is the connection's
/// origin and base path followed by exactly the normalised path the rules saw.
fn check_request(connection: &Connection, method: &Method, raw: &str, query: Option<&str>) {
    let headers = HeaderMap::new();
    // A caller holding no permission: rules that need some refuse with what is missing.
    let result = IdpRequest::new(
        connection,
        method.clone(),
        raw,
        query,
        &headers,
        b"",
        &|_| false,
    );
    let normalised = path::normalise(raw);
    match result {
        Ok(request) => {
            let path = normalised.expect("an accepted path normalises");
            assert!(
                connection.allows(method, &path.segments),
                "{method} {raw:?}"
            );
            let (url, base) = (&request.url, &connection.api_base);
            assert_eq!(url.origin(), base.origin(), "{url} left {base}");
            assert_eq!(url.scheme(), base.scheme());
            assert_eq!(url.host(), base.host());
            assert_eq!(url.port_or_known_default(), base.port_or_known_default());
            assert!(
                url.username().is_empty() && url.password().is_none(),
                "{url}"
            );
            assert!(url.fragment().is_none(), "{url}");
            let base_path = base.path().trim_end_matches('/');
            let rest = url.path().strip_prefix(base_path);
            assert_eq!(rest, Some(path.encoded.as_str()), "{url} under {base}");
            assert_eq!(
                url.query().is_some(),
                query.is_some_and(|q| !q.is_empty()),
                "{url} for query {query:?}"
            );
        }
        Err(IdpError::InsufficientScope(missing)) => {
            let path = normalised.expect("only a normalised path is checked against the rules");
            assert!(!missing.is_empty(), "{method} {raw:?}");
            assert!(
                connection.allows(method, &path.segments),
                "{method} {raw:?}"
            );
        }
        Err(IdpError::ForbiddenPath(PathError::NotAllowed)) => {
            let path = normalised.expect("only a normalised path is checked against the rules");
            assert!(!connection.allows(method, &path.segments));
        }
        Err(IdpError::ForbiddenPath(PathError::LeavesOrigin)) => {
            assert!(normalised.is_ok());
            assert!(
                query.is_some_and(|q| q.contains('#')),
                "{raw:?}?{query:?} refused as leaving {}",
                connection.api_base
            );
        }
        Err(IdpError::ForbiddenPath(PathError::GuardedCharacter)) => {
            // `;`, `@` and look-alike dots are refused per connection, after normalisation.
            let path = normalised.expect("guarded characters are checked on a normalised path");
            assert_eq!(
                path::check_guarded(&path.segments, &connection.path_characters),
                Err(PathError::GuardedCharacter),
                "{raw:?}"
            );
        }
        // A path that normalised but would be served as another resource (a segment that
        // reads as nothing or as a dot segment once cut at `;` or read with its dots).
        Err(IdpError::ForbiddenPath(PathError::DotSegment | PathError::EmptySegment))
            if normalised.is_ok() =>
        {
            let path = normalised.expect("checked");
            assert_eq!(reference_served(&path.segments), Err(()), "{raw:?}");
        }
        Err(IdpError::ForbiddenPath(error)) => assert_eq!(normalised, Err(error)),
        Err(other) => panic!("IdpRequest::new refused {raw:?} with {other:?}"),
    }
}

/// Requests tried on every connection of an accepted table.
const PROBES: &[(Method, &str, Option<&str>)] = &[
    (Method::GET, "", None),
    (Method::GET, "/user/repos", Some("per_page=5")),
    (Method::POST, "/me/messages/", None),
    (Method::DELETE, "/a%20b/caf%C3%A9", None),
];

/// A long path a caller may send, so that an allow rule whose matching grows with the path's
/// length shows up as a slow input (libFuzzer's `-timeout`).
static LONG_PATH: LazyLock<String> = LazyLock::new(|| format!("{}/end", "/a".repeat(100)));

/// The text as one allow rule, then as `IDP_CONNECTIONS`: an accepted table keeps only safe API
/// bases and token URLs, no header the function sets itself, and builds only URLs under its bases.
pub fn connections_config(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    check_allow_rule(text);
    let Ok(table) = Connections::from_json(text) else {
        return;
    };
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).expect("an accepted table is a JSON object");
    let entries = catalogue::entries().expect("the catalogue parses");
    // The catalogue's entries that need no configuration are built in under their strategy.
    let mut names: Vec<&str> = entries
        .keys()
        .map(String::as_str)
        .filter(|strategy| table.get(strategy).is_some())
        .collect();
    names.extend(overrides.keys().map(String::as_str));
    // A connection served by its strategy's entry is held to the same rules as a named one.
    let by_strategy: Vec<_> = entries
        .keys()
        .filter_map(|strategy| table.for_strategy("fuzz-connection", strategy).ok())
        .collect();
    for connection in names
        .iter()
        .map(|name| {
            table
                .get(name)
                .expect("every named connection is in the table")
        })
        .chain(&by_strategy)
    {
        let name = connection.name.as_str();
        assert!(names.contains(&name) || name == "fuzz-connection");
        if connection.refresh == Refresh::None {
            assert!(
                !connection.renews(),
                "{name} renews without a refresh grant"
            );
        }
        check_api_url(&connection.api_base);
        if let Some(token_url) = &connection.token_url {
            check_api_url(token_url);
        }
        for (header, _) in &connection.headers {
            assert!(
                !matches!(header.as_str(), "authorization" | "cookie" | "host"),
                "{name} sets {header}"
            );
        }
        let rules = overrides
            .get(name)
            .and_then(|entry| entry.get("allow"))
            .and_then(serde_json::Value::as_array);
        for rule in rules.into_iter().flatten() {
            let rule = rule.as_str().expect("an accepted rule is a string");
            assert!(AllowRule::parse(rule).is_ok(), "{rule:?} was accepted");
            check_allow_rule(rule);
        }
        for (method, raw, query) in PROBES {
            check_request(connection, method, raw, *query);
        }
        check_request(connection, &Method::GET, &LONG_PATH, None);
    }
}

/// https, or plain http to a loopback stand-in; no credentials, query or fragment; no trailing
/// slash beyond the root's.
fn check_api_url(url: &Url) {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    };
    assert!(url.host().is_some(), "{url} has no host");
    assert!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "{url} is neither https nor loopback http"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{url}"
    );
    assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
    assert!(
        url.path() == "/" || !url.path().ends_with('/'),
        "{url} keeps a trailing slash"
    );
}

/// An accepted rule is `METHOD /segments` with an uppercase method or `*`, no empty or dot
/// segment and `*` only as a whole segment; it matches the path it names and nothing longer
/// unless it ends in `**`, and only for its method.
fn check_allow_rule(text: &str) {
    let Ok(rule) = AllowRule::parse(text) else {
        return;
    };
    let (method, path, needs, idp) = rule_parts(text).expect("an accepted rule is METHOD PATH");
    assert_eq!(rule.needs(), needs, "{text:?}");
    let alternatives: Vec<&[String]> = rule.idp_scopes().iter().map(|n| n.alternatives()).collect();
    assert_eq!(alternatives, idp, "{text:?}");
    assert!(
        method == "*" || (!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase())),
        "method {method:?}"
    );
    let rest = path
        .trim()
        .strip_prefix('/')
        .expect("an accepted rule's path starts with /");
    let pattern: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    for segment in &pattern {
        assert!(!matches!(*segment, "" | "." | ".."), "{text:?}");
        assert!(
            !segment.contains('*') || matches!(*segment, "*" | "**"),
            "{text:?}"
        );
    }
    let named: Vec<String> = pattern
        .iter()
        .filter(|s| **s != "**")
        .map(|s| if *s == "*" { "x" } else { s }.to_owned())
        .collect();
    let own = match method {
        "*" => Method::PATCH,
        m => Method::from_bytes(m.as_bytes()).expect("an accepted method"),
    };
    assert!(rule.matches(&own, &named), "{text:?} misses {named:?}");
    if method != "*" {
        let other = if own == Method::GET {
            Method::POST
        } else {
            Method::GET
        };
        assert!(!rule.matches(&other, &named), "{text:?} allows {other}");
    }
    if !pattern.contains(&"**") {
        let mut longer = named.clone();
        longer.push("more".to_owned());
        assert!(!rule.matches(&own, &longer), "{text:?} allows {longer:?}");
    }
    // Paths near the one the rule names, against the naive matcher while that stays cheap.
    if pattern.iter().filter(|s| **s == "**").count() > 4 || named.len() > 12 {
        return;
    }
    let literals: Vec<String> = pattern
        .iter()
        .filter(|s| !s.contains('*'))
        .map(|s| (*s).to_owned())
        .collect();
    let mut near = vec![literals.clone(), [literals, named.clone()].concat()];
    for i in 0..=named.len() {
        let mut with = named.clone();
        with.insert(i, "x".to_owned());
        near.push(with);
        near.push([&named[..i], &named[i.saturating_add(1).min(named.len())..]].concat());
    }
    for segments in near {
        assert_eq!(
            rule.matches(&own, &segments),
            reference_allows(text, &own, &segments),
            "{text:?} on {segments:?}"
        );
    }
}
