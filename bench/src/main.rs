//! Benchmarks of auth0-idp-proxy that print figures, each beside its target (issue 7): the
//! handler's overhead on a warm call, upstream calls per warm invocation, the cold-start
//! prefetch, RS256 cost, cold init of the real binary, its memory and CPU time over many
//! invocations, and binary size. Everything runs against stand-ins on 127.0.0.1 (and moto's Secrets Manager).
//!
//! `bench/run` builds what it needs and runs this; see README's "Performance".
//!
//! # Layout
//! - [`world`]: the stand-ins, the function's configuration for them, callers.
//! - [`relay`]: TCP relays that count (and can delay) connections to an origin.
//! - [`lambda`]: a release binary run under a Runtime API, its init timed.
//! - [`latency`], [`calls`], [`verify`], [`init`], [`cold`], [`memory`], [`cpu`], [`size`],
//!   [`fleet`], [`streaming`], [`scale`]: one section each.
//! - [`stats`], [`report`]: medians and percentiles; printing with PASS/MISS.

mod calls;
mod cold;
mod cpu;
mod fleet;
mod init;
mod lambda;
mod latency;
mod memory;
mod relay;
mod report;
mod scale;
mod size;
mod stats;
mod streaming;
mod verify;
mod world;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use report::Report;
use standin::Moto;

const USAGE: &str = "usage: bench [--runs N] [--calls N] [--only SECTION,…] \
[--bootstrap PATH] [--hello PATH] [--aarch64 PATH] \
[--scale-window SECONDS] [--scale-lifetime SECONDS] [--scale-rate CALLS_A_SECOND]
sections: latency, calls, prefetch, verify, init, cold, memory, cpu, size, fleet, streaming, scale (default: all)
binaries default to this executable's directory (the release target dir) and
<target>/lambda/bootstrap/bootstrap (where cargo-lambda puts it)";

const SECTIONS: [&str; 12] = [
    "latency",
    "calls",
    "prefetch",
    "verify",
    "init",
    "cold",
    "memory",
    "cpu",
    "size",
    "fleet",
    "streaming",
    "scale",
];

/// What to run, from the command line.
struct Options {
    runs: usize,
    calls: usize,
    only: Vec<String>,
    bootstrap: PathBuf,
    hello: PathBuf,
    aarch64: PathBuf,
    scale: scale::Shape,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let here = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let target = here.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut options = Self {
            runs: 7,
            calls: 1000,
            only: SECTIONS.map(str::to_owned).to_vec(),
            bootstrap: here.join("bootstrap"),
            hello: here.join("hello"),
            aarch64: target.join("lambda/bootstrap/bootstrap"),
            scale: scale::Shape::default(),
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let number = |text: String| {
                text.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("{flag}: not a positive number"))
            };
            match flag.as_str() {
                "--runs" => options.runs = number(value()?)?,
                "--calls" => options.calls = number(value()?)?,
                "--only" => {
                    options.only = value()?.split(',').map(str::to_owned).collect();
                    if let Some(bad) = options
                        .only
                        .iter()
                        .find(|s| !SECTIONS.contains(&s.as_str()))
                    {
                        return Err(format!("unknown section {bad}"));
                    }
                }
                "--bootstrap" => options.bootstrap = value()?.into(),
                "--hello" => options.hello = value()?.into(),
                "--aarch64" => options.aarch64 = value()?.into(),
                "--scale-window" => {
                    options.scale.window = Duration::from_secs(number(value()?)? as u64);
                }
                "--scale-lifetime" => {
                    options.scale.lifetime = Duration::from_secs(number(value()?)? as u64);
                }
                "--scale-rate" => options.scale.rate = number(value()?)? as f64,
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        Ok(options)
    }

    fn wants(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }
}

/// The handler logs its lines per invocation as in production (the function's own format), into
/// a sink.
fn discard_logs() {
    tracing_subscriber::fmt()
        .json()
        .event_format(auth0_idp_proxy::telemetry::LogFormat::default())
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::sink)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(init::STEPS_FLAG) {
        return match init::time_steps(init::wants_alternative(&args)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some(init::CATALOGUE_FLAG) {
        return match init::time_catalogue() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args.into_iter()) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    discard_logs();
    let moto = match Moto::start() {
        Ok(moto) => moto,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let log =
        std::env::temp_dir().join(format!("auth0-idp-proxy-bench-{}.log", std::process::id()));
    println!(
        "auth0-idp-proxy benchmarks: {} CPUs, {} runs; binaries' logs in {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        options.runs,
        log.display()
    );

    let mut report = Report::default();
    let mut unmeasured = false;
    let binaries = cold::Binaries {
        bootstrap: &options.bootstrap,
        hello: &options.hello,
    };
    for section in SECTIONS.into_iter().filter(|s| options.wants(s)) {
        let result = match section {
            "latency" => latency::run(&mut report, &moto, options.runs, options.calls).await,
            "calls" => calls::upstream_calls(&mut report, &moto).await,
            "prefetch" => calls::prefetch_concurrency(&mut report, &moto).await,
            "verify" => verify::run(&mut report, &moto, options.runs).await,
            "init" => init::run(&mut report, &moto, options.runs).await,
            "cold" => cold::run(&mut report, &moto, &binaries, options.runs, &log).await,
            "memory" => memory::run(&mut report, &moto, &options.bootstrap, &log).await,
            "cpu" => cpu::run(&mut report, &moto, &options.bootstrap, &log).await,
            "fleet" => fleet::run(&mut report, &moto, &options.bootstrap, options.runs, &log).await,
            "streaming" => streaming::run(&mut report, &moto, &options.bootstrap, &log).await,
            "scale" => {
                scale::run(
                    &mut report,
                    &moto,
                    &options.bootstrap,
                    options.runs,
                    &log,
                    options.scale,
                )
                .await
            }
            _ => size::run(
                &mut report,
                &[
                    ("bootstrap", &options.aarch64),
                    ("bootstrap", &options.bootstrap),
                    ("hello", &options.hello),
                ],
            ),
        };
        if let Err(error) = result {
            report.failed(section, &error);
            unmeasured = true;
        }
    }
    report.summary();
    // Missed targets are figures, not failures; only a figure that could not be measured is.
    if unmeasured {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
