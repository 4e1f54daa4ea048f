//! What authenticating one caller's RS256 access token costs, keys cached: the function's whole
//! check (header, key lookup, signature, claims) on the first sight of a token and on its second
//! (the verified-token cache: no signature check), and the bare `jsonwebtoken::decode` inside the
//! first.

use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::Authenticator;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::deadline::Deadline;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use standin::{Moto, TestKey, TokenBuilder};

use crate::report::{Report, micros};
use crate::stats::median;
use crate::world::{self, World};

/// Distinct tokens per run: under the verified-token cache's 1024, so that every second sight
/// finds its token.
const TOKENS: usize = 500;

/// Reports the cost per token, median of `runs` runs; each run starts with an empty cache.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "RS256 verification cost per token",
        &format!(
            "in-process, 2048-bit key, keys cached, {runs} runs x {TOKENS} distinct tokens, each \
             run a fresh Authenticator: every token seen once (first sight), then again (second \
             sight); median"
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

    let (mut first, mut second, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let target = auth0_idp_proxy::auth::Target {
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
    Ok(())
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
