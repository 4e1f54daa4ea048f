//! Where `bootstrap`'s cold init goes: the steps of `src/main.rs` before the runtime loop, each
//! timed in a fresh process (this executable re-run with [`STEPS_FLAG`]), median of several;
//! beside each, in other fresh processes, the alternative that was weighed for it or the old way.

use std::process::Stdio;
use std::time::Instant;

use auth0_idp_proxy::{App, Config, aws, telemetry, upstream};
use standin::Moto;

use crate::report::{Report, millis};
use crate::stats::median;
use crate::world::World;

/// The command-line flag that makes this executable time the init steps once and print them;
/// followed by [`ALTERNATIVE`] to time the alternatives instead.
pub const STEPS_FLAG: &str = "--init-steps";
/// See [`STEPS_FLAG`].
const ALTERNATIVE: &str = "alternative";

/// The command-line flag that makes this executable build the connection table from the
/// provider catalogue once, as `Config::from_env` does at cold init, and print how long it took.
pub const CATALOGUE_FLAG: &str = "--catalogue-once";

/// What the child prints before the catalogue's time, on stderr.
const CATALOGUE_PREFIX: &str = "catalogue:";

/// The most the catalogue may add to cold init (issue 20), in µs.
const CATALOGUE_TARGET_US: f64 = 200.0;

/// What the child prints before its timings, on stderr.
const PREFIX: &str = "init-steps:";

/// The steps, in `main`'s order: as built, and the alternative weighed (or the old way). The
/// last is not init's but the first Secrets Manager request's (the prefetch's or the first
/// invocation's): where the SDK builds its TLS configuration, and so parses its roots.
const STEPS: [(&str, &str, &str); 6] = [
    ("telemetry::init", "", ""),
    ("Config::from_env", "", ""),
    (
        "upstream::build_client",
        "compiled-in roots, trust anchors made at build time",
        "the system's roots (reqwest's platform verifier)",
    ),
    (
        "SDK configuration",
        "aws::load: Lambda's environment, compiled-in roots",
        "aws_config::load_defaults: full chain, system roots (the old way)",
    ),
    (
        "App::new (given the SDK configuration: no client made)",
        "",
        "",
    ),
    (
        "after init: first Secrets Manager client and request (moto)",
        "aws::load",
        "aws_config::load_defaults (the old way)",
    ),
];

/// How many of [`STEPS`] are init's (`main` before the runtime loop).
const INIT_STEPS: usize = 5;

/// Runs main's init steps (or their alternatives) once in this process and prints their
/// durations (µs) on stderr.
pub async fn time_steps(alternative: bool) -> Result<(), String> {
    let mut times = Vec::new();
    let mut step = Instant::now();
    let mut lap = |times: &mut Vec<f64>| {
        times.push(step.elapsed().as_secs_f64() * 1e6);
        step = Instant::now();
    };
    telemetry::init();
    lap(&mut times);
    let config = Config::from_env().map_err(|e| e.to_string())?;
    lap(&mut times);
    let http = if alternative {
        upstream::Http::build(reqwest::Client::builder).map_err(|e| e.to_string())?
    } else {
        upstream::build_client().map_err(|e| e.to_string())?
    };
    lap(&mut times);
    let sdk = if alternative {
        aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
    } else {
        aws::load().await
    };
    lap(&mut times);
    let _app = App::new(config, http, sdk.clone());
    lap(&mut times);
    // As at the function's first read: the client is made then.
    aws_sdk_secretsmanager::Client::new(&sdk)
        .list_secrets()
        .max_results(1)
        .send()
        .await
        .map_err(|e| format!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
    lap(&mut times);
    let times: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    eprintln!("{PREFIX}{}", times.join(","));
    Ok(())
}

/// Parses and validates the compiled-in catalogue into the connection table once, the first
/// time in this process (cold, as at init), and prints the time (µs) on stderr.
pub fn time_catalogue() -> Result<(), String> {
    let started = Instant::now();
    let table = auth0_idp_proxy::idp::connections::Connections::new(None)?;
    let elapsed = started.elapsed().as_secs_f64() * 1e6;
    std::hint::black_box(table);
    eprintln!("{CATALOGUE_PREFIX}{elapsed:.1}");
    Ok(())
}

/// Runs this executable `exe` with `args` and only `env`, and returns what follows `prefix` on
/// the line of its stderr that starts with it.
async fn child_line(
    exe: &std::path::Path,
    args: &[&str],
    env: Vec<(String, String)>,
    prefix: &str,
) -> Result<String, String> {
    let output = tokio::process::Command::new(exe)
        .args(args)
        .env_clear()
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&output.stderr);
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .ok_or_else(|| format!("no {prefix} line from {}: {text}", args.join(" ")))
}

/// The catalogue's cost at cold init: [`time_catalogue`] in `runs` fresh processes, median.
async fn catalogue(report: &mut Report, exe: &std::path::Path, runs: usize) -> Result<(), String> {
    let mut times = Vec::new();
    for _ in 0..runs.max(5) {
        let value = child_line(exe, &[CATALOGUE_FLAG], Vec::new(), CATALOGUE_PREFIX).await?;
        times.push(value.parse::<f64>().map_err(|e| format!("{value}: {e}"))?);
    }
    let value = median(&times);
    report.check(
        "provider catalogue: parse and validate, first in a process (part of Config::from_env)",
        crate::report::micros(value),
        "≤ 0.2 ms",
        value <= CATALOGUE_TARGET_US,
    );
    Ok(())
}

/// Re-runs this executable `runs` times per variant to time the steps, and reports medians.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "Where bootstrap's init goes",
        &format!(
            "main's steps, timed in fresh processes, {runs} runs each, median; \
             as built | alternative or old way"
        ),
    );
    let world = World::start(moto, None).await?;
    let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
    let mut built = vec![Vec::new(); STEPS.len()];
    let mut alternative = vec![Vec::new(); STEPS.len()];
    for _ in 0..runs {
        for (times, args) in [
            (&mut built, &[STEPS_FLAG][..]),
            (&mut alternative, &[STEPS_FLAG, ALTERNATIVE][..]),
        ] {
            let line = child_line(&exe, args, world.process_env("127.0.0.1:9"), PREFIX).await?;
            for (step, value) in times.iter_mut().zip(line.split(',')) {
                step.push(value.parse::<f64>().map_err(|e| format!("{line}: {e}"))?);
            }
        }
    }
    for (i, (name, as_built, instead)) in STEPS.iter().enumerate() {
        let value = millis(median(&built[i]));
        if instead.is_empty() {
            // The same step in the alternative's processes: what the old way costs it.
            let old = millis(median(&alternative[i]));
            report.info(name, format!("{value} | {old}"));
        } else {
            report.info(&format!("{name}: {as_built}"), value);
            report.info(
                &format!("  instead: {instead}"),
                millis(median(&alternative[i])),
            );
        }
    }
    // Per run, so that the median of the sums is one process's init.
    let init = |times: &[Vec<f64>]| {
        let runs = times.first().map_or(0, Vec::len);
        let sums: Vec<f64> = (0..runs)
            .map(|run| times[..INIT_STEPS].iter().map(|step| step[run]).sum())
            .collect();
        median(&sums)
    };
    report.info(
        "main before the runtime loop: as built | old way",
        format!("{} | {}", millis(init(&built)), millis(init(&alternative))),
    );
    catalogue(report, &exe, runs).await
}

/// Whether the command line asks for the alternatives.
pub fn wants_alternative(args: &[String]) -> bool {
    args.iter().any(|a| a == ALTERNATIVE)
}
