//! CPU time per warm invocation of the real `bootstrap`, the figure that sets the bill where one
//! execution environment runs many invocations at once (Lambda Managed Instances,
//! `AWS_LAMBDA_MAX_CONCURRENCY`): user + system time of the function process from
//! `/proc/<pid>/stat` over [`INVOCATIONS`] warm invocations through the Runtime API, with the
//! stand-in IdP answering after [`IDP_TIME`]; one at a time, and [`CONCURRENCY`] at once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use standin::Moto;
use tokio::task::JoinSet;

use crate::lambda::Function;
use crate::relay::Delay;
use crate::report::{Report, micros, millis};
use crate::stats::Timings;
use crate::world::{self, World};

/// Warm invocations measured at [`CONCURRENCY`].
pub const INVOCATIONS: usize = 10_000;
/// Warm invocations measured one at a time: at [`IDP_TIME`] each, about 9 minutes of the run.
const ONE_AT_A_TIME: usize = INVOCATIONS;
/// How long the stand-in IdP takes to answer (a relay in front of it): an IdP across the internet.
const IDP_TIME: Duration = Duration::from_millis(50);
/// `AWS_LAMBDA_MAX_CONCURRENCY` in the concurrent run, and distinct callers in both.
const CONCURRENCY: usize = 64;

/// What one run measured.
struct Measured {
    /// CPU time of the function process over the run.
    cpu: Duration,
    /// Wall time of the run.
    wall: Duration,
    /// Each invocation's round trip through the Runtime API.
    timings: Timings,
    invocations: usize,
}

impl Measured {
    /// CPU µs per invocation.
    fn cpu_per_invocation(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.invocations as f64
    }
}

/// Reports CPU per invocation one at a time and [`CONCURRENCY`] at once, and at that concurrency
/// the throughput, invocations per CPU-second (per core kept busy) and p50/p99 latency.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    log: &Path,
) -> Result<(), String> {
    report.section(
        "CPU per warm invocation (what Lambda Managed Instances bill)",
        &format!(
            "real release bootstrap under a Runtime API, GET /idp/github/user by {CONCURRENCY} \
             users, the stand-in IdP answering after {} ms; utime + stime of the process from \
             /proc/<pid>/stat (10 ms ticks) over the warm invocations only",
            IDP_TIME.as_millis()
        ),
    );
    let idp = Delay {
        handshake: Duration::ZERO,
        request: IDP_TIME,
    };
    let world = World::start_split(moto, Some((Delay::default(), idp))).await?;
    let events: Arc<Vec<String>> = Arc::new(
        (0..CONCURRENCY)
            .map(|n| world::event(&world.caller(n)))
            .collect(),
    );

    let sequential = measure(&world, bootstrap, &events, log, 1, ONE_AT_A_TIME).await?;
    report.info(
        &format!("one at a time, {ONE_AT_A_TIME} invocations: CPU per invocation"),
        micros(sequential.cpu_per_invocation()),
    );
    report.info(
        "one at a time: round trip median / p99",
        format!(
            "{} / {}",
            millis(sequential.timings.median()),
            millis(sequential.timings.p99())
        ),
    );

    let concurrent = measure(&world, bootstrap, &events, log, CONCURRENCY, INVOCATIONS).await?;
    let label = format!("{CONCURRENCY} at once, {INVOCATIONS} invocations");
    let per_invocation = concurrent.cpu_per_invocation();
    report.info(
        &format!("{label}: CPU per invocation"),
        micros(per_invocation),
    );
    report.info(
        &format!("{label}: invocations per second"),
        format!(
            "{:.0} (over {:.1} s)",
            concurrent.invocations as f64 / concurrent.wall.as_secs_f64(),
            concurrent.wall.as_secs_f64()
        ),
    );
    report.info(
        &format!("{label}: per core (1 / CPU per invocation)"),
        format!("{:.0} invocations/s", 1e6 / per_invocation),
    );
    report.info(
        &format!("{label}: round trip p50 / p99"),
        format!(
            "{} / {}",
            millis(concurrent.timings.median()),
            millis(concurrent.timings.p99())
        ),
    );
    Ok(())
}

/// Starts `bootstrap` with `AWS_LAMBDA_MAX_CONCURRENCY=concurrency`, warms it (two invocations
/// per caller, so that each one's IdP token is cached and the connections open), then times
/// `invocations` more, `concurrency` in flight at a time.
async fn measure(
    world: &World,
    bootstrap: &Path,
    events: &Arc<Vec<String>>,
    log: &Path,
    concurrency: usize,
    invocations: usize,
) -> Result<Measured, String> {
    let function = world
        .function(
            bootstrap,
            &[("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string())],
            log,
        )
        .await?;
    let function = Arc::new(function);
    let result = async {
        drive(&function, events, concurrency, 2 * events.len()).await?;
        let before = function.cpu_time().ok_or("no /proc/<pid>/stat")?;
        let started = Instant::now();
        let timings = drive(&function, events, concurrency, invocations).await?;
        let wall = started.elapsed();
        let after = function.cpu_time().ok_or("no /proc/<pid>/stat")?;
        Ok(Measured {
            cpu: after.saturating_sub(before),
            wall,
            timings,
            invocations,
        })
    }
    .await;
    if let Ok(function) = Arc::try_unwrap(function) {
        function.stop().await;
    }
    result
}

/// `total` invocations with `in_flight` of them at a time, the events taken round-robin; every
/// one must answer 200.
async fn drive(
    function: &Arc<Function>,
    events: &Arc<Vec<String>>,
    in_flight: usize,
    total: usize,
) -> Result<Timings, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..in_flight {
        let (function, events, next) =
            (Arc::clone(function), Arc::clone(events), Arc::clone(&next));
        workers.spawn(async move {
            let mut timings = Timings::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok(timings);
                }
                let (status, elapsed) = function.invoke(&events[i % events.len()]).await?;
                if status != 200 {
                    return Err(format!("invocation {i} answered {status}"));
                }
                timings.push(elapsed);
            }
        });
    }
    let mut all = Timings::default();
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.map_err(|e| format!("an invoking task: {e}"))??);
    }
    Ok(all)
}
