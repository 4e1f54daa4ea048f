//! Where `bootstrap`'s cold init goes: the steps of `src/main.rs` before the runtime loop, each
//! timed in a fresh process (this executable re-run with [`STEPS_FLAG`]), median of several.

use std::process::Stdio;
use std::time::Instant;

use auth0_idp_proxy::{App, Config, telemetry, upstream};
use standin::Moto;

use crate::report::{Report, millis};
use crate::stats::median;
use crate::world::World;

/// The command-line flag that makes this executable time the init steps once and print them.
pub const STEPS_FLAG: &str = "--init-steps";

/// What the child prints before its timings, on stderr.
const PREFIX: &str = "init-steps:";

/// The steps, in `main`'s order, then the alternatives they replaced.
const STEPS: [&str; 7] = [
    "telemetry::init",
    "Config::from_env",
    "upstream::build_client (compiled-in roots)",
    "aws_config::load_defaults",
    "Secrets Manager client (loads the system's roots)",
    "App::new",
    "instead: reqwest client with the system's roots",
];

/// Runs main's init steps once in this process and prints their durations (µs) on stderr.
pub async fn time_steps() -> Result<(), String> {
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
    let http = upstream::build_client().map_err(|e| e.to_string())?;
    lap(&mut times);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    lap(&mut times);
    // The SDK builds its connector, and loads the system's root certificates, when a client is
    // built (`validate_base_client_config`), not at the first request.
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    lap(&mut times);
    let _app = App::new(config, http, secrets);
    lap(&mut times);
    // reqwest's `rustls` feature verifies with the platform verifier, which loads the system's
    // roots when the client is built.
    reqwest::Client::builder()
        .build()
        .map_err(|e| e.to_string())?;
    lap(&mut times);
    let times: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    eprintln!("{PREFIX}{}", times.join(","));
    Ok(())
}

/// Re-runs this executable `runs` times to time the steps, and reports their medians.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "Where bootstrap's init goes",
        &format!("main's steps, each timed in a fresh process, {runs} runs, median"),
    );
    let world = World::start(moto, None).await?;
    let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
    let mut times = vec![Vec::new(); STEPS.len()];
    for _ in 0..runs {
        let output = tokio::process::Command::new(&exe)
            .arg(STEPS_FLAG)
            .env_clear()
            .envs(world.process_env("127.0.0.1:9"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let text = String::from_utf8_lossy(&output.stderr);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(PREFIX))
            .ok_or_else(|| format!("no timings from {STEPS_FLAG}: {text}"))?;
        for (step, value) in times.iter_mut().zip(line.split(',')) {
            step.push(value.parse::<f64>().map_err(|e| format!("{line}: {e}"))?);
        }
    }
    for (name, values) in STEPS.iter().zip(&times) {
        report.info(name, millis(median(values)));
    }
    Ok(())
}
