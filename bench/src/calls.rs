//! What warm invocations cost upstream, by kind of call; whether the cold-start prefetch leaves
//! warm connections to the Auth0 origin; and whether its two chains run side by side.

use std::time::{Duration, Instant};

use auth0_idp_proxy::auth::Authenticator;
use auth0_idp_proxy::auth::jwks::KeyPolicy;
use auth0_idp_proxy::credentials::CredentialStore;
use auth0_idp_proxy::deadline::Deadline;
use auth0_idp_proxy::management::Management;
use standin::Moto;

use crate::relay::Delay;
use crate::report::{Report, millis};
use crate::world::{self, World};

/// Warm invocations counted.
const INVOCATIONS: usize = 1000;
/// Distinct callers making them, round-robin.
const USERS: usize = 10;
/// What each new connection to a relayed origin costs in the prefetch check: a stand-in for the
/// TCP and TLS handshakes to a remote origin.
const HANDSHAKE: Duration = Duration::from_millis(50);

/// Upstream calls of every kind, read from the stand-ins' counters.
#[derive(Debug, Clone, Copy)]
struct Counts {
    idp: usize,
    management: usize,
    secret: usize,
    token: usize,
    jwks: usize,
    auth0_connections: usize,
    idp_connections: usize,
}

impl Counts {
    fn since(self, before: Counts) -> Counts {
        Counts {
            idp: self.idp - before.idp,
            management: self.management - before.management,
            secret: self.secret - before.secret,
            token: self.token - before.token,
            jwks: self.jwks - before.jwks,
            auth0_connections: self.auth0_connections - before.auth0_connections,
            idp_connections: self.idp_connections - before.idp_connections,
        }
    }
}

/// Upstream calls per [`INVOCATIONS`] warm invocations by [`USERS`] users, and the connections
/// they open.
pub async fn upstream_calls(report: &mut Report, moto: &Moto) -> Result<(), String> {
    report.section(
        &format!("Upstream calls per {INVOCATIONS} warm invocations by {USERS} users"),
        "in-process, GET /idp/github/user round-robin over the users, after the cold-start \
         prefetch; counted by the stand-ins, Secrets Manager by an SDK interceptor, connections \
         by TCP relays",
    );
    let world = World::start(moto, Some(Delay::default())).await?;
    let relays = world.relays.as_ref().ok_or("no relays")?;
    let function = world.in_process().await?;
    let counts = || Counts {
        idp: world.github.calls(),
        management: world.tenant.user_calls(),
        secret: function.secret_reads(),
        token: world.tenant.token_calls(),
        jwks: world.tenant.jwks_calls(),
        auth0_connections: relays.auth0.connections(),
        idp_connections: relays.github.connections(),
    };
    let events: Vec<String> = (0..USERS).map(|n| world::event(&world.caller(n))).collect();

    function.app.prefetch(Duration::from_secs(10)).await;
    let prefetched = counts();
    let mut first = None;
    for (i, event) in events.iter().cycle().take(INVOCATIONS).enumerate() {
        let request = lambda_http::request::from_str(event).map_err(|e| format!("event: {e}"))?;
        let status = function.app.handle(request).await.status();
        if status != http::StatusCode::OK {
            return Err(format!("invocation {i} answered {status}"));
        }
        if i == 0 {
            first = Some(counts().since(prefetched));
        }
    }
    let warm = counts().since(prefetched);
    let first = first.ok_or("no invocation")?;

    let n = INVOCATIONS;
    report.check("IdP calls", warm.idp, &format!("{n}"), warm.idp == n);
    report.check(
        "Management API calls",
        warm.management,
        &format!("<= {USERS}"),
        warm.management <= USERS,
    );
    for (kind, count) in [
        ("Secrets Manager reads", warm.secret),
        ("token exchanges", warm.token),
        ("JWKS fetches", warm.jwks),
    ] {
        report.check(kind, count, "0", count == 0);
    }
    report.info(
        "connections the prefetch opened to the Auth0 origin",
        prefetched.auth0_connections,
    );
    report.check(
        "new Auth0 connections by the first invocation",
        first.auth0_connections,
        "0",
        first.auth0_connections == 0,
    );
    report.check(
        &format!("new Auth0 connections over {n} invocations"),
        warm.auth0_connections,
        "0",
        warm.auth0_connections == 0,
    );
    // A connection goes back to the pool once hyper has seen the end of its response, and a
    // request sent back to back can miss it: reuse means a handful, not one per call.
    let reused = n / 100;
    report.check(
        &format!("IdP connections over {n} invocations"),
        warm.idp_connections,
        &format!("<= {reused}"),
        warm.idp_connections <= reused,
    );
    Ok(())
}

/// Times the prefetch against its two chains alone, each new connection to the Auth0 origin
/// costing [`HANDSHAKE`]: side by side, the prefetch takes about the longer chain, not the sum.
pub async fn prefetch_concurrency(report: &mut Report, moto: &Moto) -> Result<(), String> {
    report.section(
        "Cold-start prefetch: JWKS fetch beside secret read -> token exchange",
        &format!(
            "in-process, fresh state each, {} ms added to each new connection to the Auth0 origin",
            HANDSHAKE.as_millis()
        ),
    );
    let world = World::start(
        moto,
        Some(Delay {
            handshake: HANDSHAKE,
            request: Duration::ZERO,
        }),
    )
    .await?;
    let config = world.config()?;
    let budget = Duration::from_secs(10);
    // The first Secrets Manager client pays one-off SDK set-up; keep it out of the figures.
    let _ = world
        .secrets(None)
        .await
        .list_secrets()
        .max_results(1)
        .send()
        .await;

    let auth = Authenticator::new(&config, world::http_client()?, KeyPolicy::default());
    let started = Instant::now();
    auth.keys()
        .prefetch(&Deadline::after(budget))
        .await
        .map_err(|e| format!("JWKS: {e}"))?;
    let jwks = started.elapsed();

    let management = Management::new(
        world::http_client()?,
        config.auth0_origin.clone(),
        std::sync::Arc::new(CredentialStore::new(
            world.secrets(None).await,
            config.credentials_secret_id.clone(),
        )),
        None,
    );
    let started = Instant::now();
    management
        .token(&Deadline::after(budget))
        .await
        .map_err(|e| format!("secret -> token: {e}"))?;
    let token = started.elapsed();

    let function = world.in_process().await?;
    let started = Instant::now();
    function.app.prefetch(budget).await;
    let both = started.elapsed();
    if (world.tenant.jwks_calls(), world.tenant.token_calls()) != (2, 2) {
        return Err("the prefetch did not fetch the JWKS and a token".into());
    }

    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    report.info("JWKS fetch alone", millis(micros(jwks)));
    report.info("secret read -> token exchange alone", millis(micros(token)));
    let sum = jwks + token;
    report.check(
        "prefetch, both (side by side < sum - 1/2 handshake)",
        millis(micros(both)),
        &format!("< {}", millis(micros(sum - HANDSHAKE / 2))),
        both < sum - HANDSHAKE / 2,
    );
    Ok(())
}
