//! Fleet state on DynamoDB (issue 12), with and without `TOKEN_TABLE`: a new environment's first
//! call for a user another environment already served, with 50 ms added to each Auth0 request and
//! 5 ms to each DynamoDB request (moto); the Management API reads and exchanges of 1000 calls by 10
//! users over 3 environments; the real binary's cold init with the table against without; and the
//! warm repeat call.

use std::path::Path;
use std::time::{Duration, Instant};

use auth0_idp_proxy::App;
use auth0_idp_proxy::service::Service;
use auth0_idp_proxy::telemetry;
use lambda_http::Request;
use standin::Moto;

use crate::relay::Delay;
use crate::report::{Report, millis};
use crate::stats::{Timings, median};
use crate::world::{self, World};

/// What each Auth0 request costs: the network to a tenant and its own time.
const AUTH0: Delay = Delay {
    handshake: Duration::ZERO,
    request: Duration::from_millis(50),
};
/// What each DynamoDB request costs from a Lambda in the same region.
const DYNAMODB: Delay = Delay {
    handshake: Duration::ZERO,
    request: Duration::from_millis(5),
};
/// Calls, users and environments of the budget scenario.
const CALLS: usize = 1000;
const USERS: usize = 10;
const ENVIRONMENTS: usize = 3;
/// Most the table may add to cold init.
const INIT_BUDGET_US: f64 = 1000.0;

/// A world with Auth0 (but not GitHub) 50 ms away, with the token table or without.
async fn world(moto: &Moto, table: bool) -> Result<World, String> {
    let mut world = World::start_split(moto, Some((AUTH0, Delay::default()))).await?;
    if table {
        world.add_token_table(moto, DYNAMODB).await?;
    }
    Ok(world)
}

fn request(jwt: &str) -> Result<Request, String> {
    lambda_http::request::from_str(&world::event(jwt)).map_err(|e| format!("event: {e}"))
}

/// One call through `app`, its status checked; how long it took and whether it used the table.
async fn call(app: &App, jwt: &str) -> Result<(Duration, bool), String> {
    let request = request(jwt)?;
    let started = Instant::now();
    let (response, trace) = telemetry::traced(app.handle(request)).await;
    let elapsed = started.elapsed();
    if response.status() != 200 {
        return Err(format!("a call answered {}", response.status()));
    }
    Ok((elapsed, trace.upstream(Service::TokenTable).is_some()))
}

/// Medians over `runs` of a new environment's cold start (its prefetch) and first call for a
/// user another environment already served.
async fn new_environment(moto: &Moto, table: bool, runs: usize) -> Result<(f64, f64), String> {
    let world = world(moto, table).await?;
    let (mut prefetch, mut first) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let jwt = world.caller(run);
        let served = world.in_process().await?.app;
        served.prefetch(Duration::from_secs(5)).await;
        call(&served, &jwt).await?;
        let fresh = world.in_process().await?.app;
        let started = Instant::now();
        fresh.prefetch(Duration::from_secs(5)).await;
        prefetch.push(started.elapsed().as_secs_f64() * 1e6);
        first.push(call(&fresh, &jwt).await?.0.as_secs_f64() * 1e6);
    }
    Ok((median(&prefetch), median(&first)))
}

/// Management API reads and client-credentials exchanges of [`CALLS`] calls by [`USERS`] users,
/// round-robin over [`ENVIRONMENTS`] environments.
async fn budget(moto: &Moto, table: bool) -> Result<(usize, usize), String> {
    let world = world(moto, table).await?;
    let mut envs = Vec::new();
    for _ in 0..ENVIRONMENTS {
        envs.push(world.in_process().await?.app);
    }
    let callers: Vec<String> = (0..USERS).map(|n| world.caller(n)).collect();
    for n in 0..CALLS {
        call(&envs[n % ENVIRONMENTS], &callers[n % USERS]).await?;
    }
    Ok((world.tenant.user_calls(), world.tenant.token_calls()))
}

/// Median warm repeat call of one user, and how many of them touched the table.
async fn warm(moto: &Moto, table: bool, calls: usize) -> Result<(Timings, usize), String> {
    let world = world(moto, table).await?;
    let app = world.in_process().await?.app;
    let jwt = world.caller(0);
    call(&app, &jwt).await?;
    let mut timings = Timings::default();
    let mut table_calls = 0;
    for _ in 0..calls {
        let (elapsed, used_table) = call(&app, &jwt).await?;
        timings.push(elapsed);
        table_calls += usize::from(used_table);
    }
    Ok((timings, table_calls))
}

/// Median cold init (exec to the first request for an invocation) of the real binary, with the
/// table configured or not, prefetch off so that init is the process's own work.
async fn cold_init(
    moto: &Moto,
    bootstrap: &Path,
    runs: usize,
    log: &Path,
) -> Result<(f64, f64), String> {
    let plain = World::start(moto, None).await?;
    let mut with_table = World::start(moto, None).await?;
    with_table.add_token_table(moto, Delay::default()).await?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    // One discarded round, then the two variants interleaved.
    for round in 0..=runs {
        for (world, samples) in [(&plain, &mut without), (&with_table, &mut with)] {
            let function = world
                .function(bootstrap, &[("COLD_START_PREFETCH", "off".to_owned())], log)
                .await?;
            let init = function.init;
            function.stop().await;
            if round > 0 {
                samples.push(init.as_secs_f64() * 1e6);
            }
        }
    }
    Ok((median(&without), median(&with)))
}

/// Reports every fleet figure, with the table and without.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    runs: usize,
    log: &Path,
) -> Result<(), String> {
    report.section(
        "Fleet state: a new environment's first call for a known user",
        "in-process App; 50 ms added to each Auth0 request, 5 ms to each DynamoDB request; \
         medians of the runs",
    );
    let (prefetch_without, first_without) = new_environment(moto, false, runs).await?;
    let (prefetch_with, first_with) = new_environment(moto, true, runs).await?;
    report.info(
        "cold-start prefetch, without / with the table",
        format!("{} / {}", millis(prefetch_without), millis(prefetch_with)),
    );
    report.check(
        "first call, without / with the table",
        format!("{} / {}", millis(first_without), millis(first_with)),
        "with < without",
        first_with < first_without,
    );

    report.section(
        "Fleet state: Management API budget",
        "1000 calls by 10 users, round-robin over 3 environments (in-process Apps); the \
         stand-in tenant's counters",
    );
    let (reads_without, exchanges_without) = budget(moto, false).await?;
    let (reads_with, exchanges_with) = budget(moto, true).await?;
    report.info(
        "Management reads / exchanges without the table",
        format!("{reads_without} / {exchanges_without}"),
    );
    report.check(
        "Management reads / exchanges with the table",
        format!("{reads_with} / {exchanges_with}"),
        "10 / 1",
        reads_with == USERS && exchanges_with == 1,
    );

    report.section(
        "Fleet state: warm repeat call",
        "one user's repeat calls through the in-process handler; median and p99",
    );
    let calls = 300;
    let (without, _) = warm(moto, false, calls).await?;
    let (with, table_calls) = warm(moto, true, calls).await?;
    report.info(
        "warm call without the table, median / p99",
        format!("{} / {}", millis(without.median()), millis(without.p99())),
    );
    report.info(
        "warm call with the table, median / p99",
        format!("{} / {}", millis(with.median()), millis(with.p99())),
    );
    report.check(
        "warm calls that touched the table",
        format!("{table_calls} of {calls}"),
        "0",
        table_calls == 0,
    );

    report.section(
        "Fleet state: cold init of the real binary",
        "release bootstrap under a Runtime API, COLD_START_PREFETCH=off; exec to the first \
         request for an invocation; medians, interleaved",
    );
    let (init_without, init_with) = cold_init(moto, bootstrap, runs, log).await?;
    report.info("cold init without the table", millis(init_without));
    report.check(
        "cold init with the table, added",
        millis(init_with - init_without),
        "<= 1 ms",
        init_with - init_without <= INIT_BUDGET_US,
    );
    Ok(())
}
