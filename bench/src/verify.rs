//! What authenticating one caller's RS256 access token costs, keys cached: the function's whole
//! check (header, key lookup, signature, claims) on the first sight of a token and on its second
//! (the verified-token cache: no signature check), and the bare `jsonwebtoken::decode` inside the
//! first. Then the same for a DPoP-bound token (`cnf.jkt`), each request with a fresh ES256 proof:
//! on the first sight the token's signature and the proof, on the second the proof only (it is
//! checked on every request, its `jti` remembered), and the bare `dpop::verify`.

use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::dpop::{self, Expected};
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::auth::{Authenticator, Target};
use auth0_idp_proxy::deadline::Deadline;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use standin::{DpopKey, Moto, TestKey, TokenBuilder};

use crate::report::{Report, micros};
use crate::stats::median;
use crate::world::{self, World};

/// Distinct tokens per run: under the verified-token cache's 1024, so that every second sight
/// finds its token.
const TOKENS: usize = 500;

/// The URL the DPoP requests are sent to: their proofs' `htu`, the `Target`'s URL.
const DPOP_URL: &str = "https://api.example.com/prod/idp/github/user";

/// Reports the cost per token, median of `runs` runs; each run starts with an empty cache.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "RS256 verification cost per token, bearer and DPoP-bound",
        &format!(
            "in-process, 2048-bit key, keys cached, {runs} runs x {TOKENS} distinct tokens, each \
             run a fresh Authenticator: every token seen once (first sight), then again (second \
             sight); then as many DPoP-bound tokens, each request with a new ES256 proof (made \
             before the timing); median"
        ),
    );
    let world = World::start(moto, None).await?;
    let config = world.config()?;
    let tokens: Vec<String> = (0..TOKENS)
        .map(|n| {
            TokenBuilder::new(&config.issuer, &config.audience, "github|1000")
                .claim("jti", format!("bench-{n}"))
                .sign()
        })
        .collect();
    let headers = tokens
        .iter()
        .map(|jwt| bearer(jwt))
        .collect::<Result<Vec<_>, _>>()?;
    let jwk = serde_json::from_value(TestKey::Primary.jwk()).map_err(|e| format!("JWK: {e}"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("JWK: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[config.audience.as_str()]);
    validation.set_issuer(&[config.issuer.as_str()]);
    let deadline = Deadline::after(Duration::from_secs(60));
    // One browser key for every DPoP token: each proof is checked the same way whatever its key.
    let browser = DpopKey::generate();
    let jkt = browser.jkt();
    let bound: Vec<String> = (0..TOKENS)
        .map(|n| {
            TokenBuilder::new(&config.issuer, &config.audience, "github|1000")
                .claim("jti", format!("bench-dpop-{n}"))
                .bound_to(&jkt)
                .sign()
        })
        .collect();
    let dpop_target = Target {
        method: &http::Method::GET,
        url: Some(DPOP_URL.to_owned()),
    };

    let (mut first, mut second, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dpop_first, mut dpop_second, mut dpop_bare) = (Vec::new(), Vec::new(), Vec::new());
    let target = Target {
        method: &http::Method::GET,
        url: None,
    };
    for _ in 0..runs {
        let auth = Authenticator::new(&config, world::http_client()?, KeyPolicy::default());
        auth.keys()
            .prefetch(&deadline)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        for sight in [&mut first, &mut second] {
            let started = Instant::now();
            for headers in &headers {
                auth.authenticate(headers, &target, &deadline)
                    .await
                    .map_err(|e| format!("authenticate: {e}"))?;
            }
            sight.push(per_token(started.elapsed()));
        }
        let started = Instant::now();
        for jwt in &tokens {
            jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation)
                .map_err(|e| format!("decode: {e}"))?;
        }
        bare.push(per_token(started.elapsed()));

        // DPoP: a fresh Authenticator, and a new proof for every request, made here (its `iat`
        // now, within the 60 s window): ES256 signing is the browser's cost, not the function's.
        let auth = Authenticator::new(&config, world::http_client()?, KeyPolicy::default());
        auth.keys()
            .prefetch(&deadline)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let requests = [proofs(&browser, &bound)?, proofs(&browser, &bound)?];
        for (sight, requests) in [&mut dpop_first, &mut dpop_second]
            .into_iter()
            .zip(&requests)
        {
            let started = Instant::now();
            for headers in requests {
                auth.authenticate(headers, &dpop_target, &deadline)
                    .await
                    .map_err(|e| format!("authenticate with DPoP: {e}"))?;
            }
            sight.push(per_token(started.elapsed()));
        }
        // The proof check alone, on proofs already used: `verify` leaves the replay check out.
        let proofs: Vec<(&str, &str)> = requests[0]
            .iter()
            .zip(&bound)
            .map(|(headers, token)| {
                let proof = headers["dpop"].to_str().map_err(|_| "proof header")?;
                Ok((proof, token.as_str()))
            })
            .collect::<Result<_, String>>()?;
        let now = u64::try_from(standin::now()).map_err(|_| "the clock is before 1970")?;
        let started = Instant::now();
        for (proof, token) in proofs {
            let expected = Expected {
                method: &http::Method::GET,
                url: Some(DPOP_URL),
                access_token: token,
                jkt: &jkt,
            };
            dpop::verify(proof, &expected, now).map_err(|e| format!("dpop::verify: {e}"))?;
        }
        dpop_bare.push(per_token(started.elapsed()));
    }
    report.info(
        "first sight: the function's whole check",
        micros(median(&first)),
    );
    report.info(
        "first sight: jsonwebtoken::decode alone",
        micros(median(&bare)),
    );
    report.info(
        "second sight: the whole check, signature cached",
        micros(median(&second)),
    );
    report.info(
        "DPoP first sight: the whole check, token + proof",
        micros(median(&dpop_first)),
    );
    report.info(
        "DPoP first sight: dpop::verify alone (ES256 proof)",
        micros(median(&dpop_bare)),
    );
    report.info(
        "DPoP second sight: signature cached, proof checked",
        micros(median(&dpop_second)),
    );
    Ok(())
}

/// A request per bound token: `Authorization: DPoP <token>` and a new proof for `GET`
/// [`DPOP_URL`] with it.
fn proofs(browser: &DpopKey, tokens: &[String]) -> Result<Vec<HeaderMap>, String> {
    tokens
        .iter()
        .map(|jwt| {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                format!("DPoP {jwt}").parse().map_err(|_| "header value")?,
            );
            headers.insert(
                "dpop",
                browser
                    .proof("GET", DPOP_URL, Some(jwt))
                    .parse()
                    .map_err(|_| "proof header value")?,
            );
            Ok(headers)
        })
        .collect()
}

fn bearer(jwt: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {jwt}")
            .parse()
            .map_err(|_| "header value")?,
    );
    Ok(headers)
}

/// µs per token of a pass over [`TOKENS`].
fn per_token(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / TOKENS as f64
}
