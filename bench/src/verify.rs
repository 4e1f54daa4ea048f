//! What verifying one caller's RS256 access token costs, keys cached: the function's whole check
//! (header, key lookup, signature, claims) and the bare `jsonwebtoken::decode` inside it.

use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::Authenticator;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::deadline::Deadline;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use standin::{Moto, TestKey};

use crate::report::{Report, micros};
use crate::stats::median;
use crate::world::{self, World};

/// Tokens verified per run.
const TOKENS: u32 = 2000;

/// Reports the cost per token, median of `runs` runs.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "RS256 verification cost per token",
        &format!("in-process, 2048-bit key, keys cached, {runs} runs x {TOKENS} tokens, median"),
    );
    let world = World::start(moto, None).await?;
    let config = world.config()?;
    let auth = Authenticator::new(&config, world::http_client()?, KeyPolicy::default());
    let deadline = Deadline::after(Duration::from_secs(60));
    auth.keys()
        .prefetch(&deadline)
        .await
        .map_err(|e| format!("JWKS: {e}"))?;
    let jwt = world.caller(0);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {jwt}")
            .parse()
            .map_err(|_| "header value")?,
    );
    let jwk = serde_json::from_value(TestKey::Primary.jwk()).map_err(|e| format!("JWK: {e}"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("JWK: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[config.audience.as_str()]);
    validation.set_issuer(&[config.issuer.as_str()]);

    let (mut whole, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..TOKENS {
            auth.authenticate(&headers, &deadline)
                .await
                .map_err(|e| format!("authenticate: {e}"))?;
        }
        whole.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(TOKENS));
        let started = Instant::now();
        for _ in 0..TOKENS {
            jsonwebtoken::decode::<Map<String, Value>>(&jwt, &key, &validation)
                .map_err(|e| format!("decode: {e}"))?;
        }
        bare.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(TOKENS));
    }
    report.info(
        "the function's check (Authenticator::authenticate)",
        micros(median(&whole)),
    );
    report.info("jsonwebtoken::decode alone", micros(median(&bare)));
    Ok(())
}
