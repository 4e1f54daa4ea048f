//! Peak resident memory of the real `bootstrap` over many warm invocations, read from
//! `/proc/<pid>/status` along the way to show whether it grows; and the CPU time they took, one
//! at a time on bare loopback (the `cpu` section has it with a slower IdP and many at once).

use std::path::Path;

use standin::Moto;

use crate::report::{Report, micros};
use crate::stats::Timings;
use crate::world::{self, World};

/// Warm invocations made.
pub const INVOCATIONS: usize = 10_000;
/// Distinct callers making them, round-robin.
const USERS: usize = 10;
/// When to read the figures.
const CHECKPOINTS: [usize; 5] = [100, 1_000, 2_000, 5_000, INVOCATIONS];
/// Largest acceptable peak RSS, in bytes (Lambda's "Max Memory Used").
pub const TARGET_PEAK: u64 = 24_000_000;
/// Most the resident set may grow from the 1 000th to the last invocation and count as flat.
const FLAT: u64 = 1_000_000;

/// `VmHWM` (peak) and `VmRSS` (current) of process `pid`, in bytes.
pub fn resident(pid: u32) -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Runs [`INVOCATIONS`] invocations through one `bootstrap` process.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    log: &Path,
) -> Result<(), String> {
    report.section(
        &format!("Memory over {INVOCATIONS} warm invocations"),
        &format!(
            "real release bootstrap under a Runtime API, GET /idp/github/user by {USERS} users \
             round-robin; VmHWM / VmRSS from /proc/<pid>/status, utime + stime from \
             /proc/<pid>/stat"
        ),
    );
    let world = World::start(moto, None).await?;
    let events: Vec<String> = (0..USERS).map(|n| world::event(&world.caller(n))).collect();
    let function = world.function(bootstrap, &[], log).await?;
    let pid = function.pid().ok_or("no pid")?;
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
    let (peak, rss) = resident(pid)?;
    report.info(
        "after init: peak / current",
        format!("{} / {}", mb(peak), mb(rss)),
    );

    let mut timings = Timings::default();
    let mut at_thousand = None;
    let mut cpu_at_thousand = None;
    let mut last = (peak, rss);
    for (i, event) in events.iter().cycle().take(INVOCATIONS).enumerate() {
        let (status, elapsed) = function.invoke(event).await?;
        if status != 200 {
            function.stop().await;
            return Err(format!("invocation {i} answered {status}"));
        }
        timings.push(elapsed);
        let done = i + 1;
        if CHECKPOINTS.contains(&done) {
            last = resident(pid)?;
            if done == 1_000 {
                at_thousand = Some(last.1);
                cpu_at_thousand = function.cpu_time();
            }
            report.info(
                &format!("after {done} invocations: peak / current"),
                format!("{} / {}", mb(last.0), mb(last.1)),
            );
        }
    }
    let cpu = function
        .cpu_time()
        .zip(cpu_at_thousand)
        .map(|(end, start)| end.saturating_sub(start))
        .ok_or("no /proc/<pid>/stat")?;
    function.stop().await;
    report.info(
        "invocation round trip through the Runtime API: median / p99",
        format!("{} / {}", micros(timings.median()), micros(timings.p99())),
    );
    let warm = INVOCATIONS - 1_000;
    report.info(
        &format!("CPU per invocation (user + system, the last {warm})"),
        micros(cpu.as_secs_f64() * 1e6 / warm as f64),
    );
    let (peak, rss) = last;
    report.check(
        &format!("peak RSS over {INVOCATIONS} invocations"),
        mb(peak),
        &format!("<= {}", mb(TARGET_PEAK)),
        peak <= TARGET_PEAK,
    );
    let growth = rss.saturating_sub(at_thousand.ok_or("no checkpoint at 1000")?);
    report.check(
        "RSS growth, invocation 1 000 to 10 000",
        mb(growth),
        &format!("<= {} (flat)", mb(FLAT)),
        growth <= FLAT,
    );
    Ok(())
}
