//! Where `bootstrap`'s cold init goes: the steps of `src/main.rs` before the runtime loop, each
//! timed in a fresh process (this executable re-run with [`STEPS_FLAG`]), median of several;
//! beside each, in other fresh processes, the alternative that was weighed for it.

use std::process::Stdio;
use std::time::Instant;

use auth0_idp_proxy::{App, Config, telemetry, upstream};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use base64::Engine;
use standin::Moto;

use crate::report::{Report, millis};
use crate::stats::median;
use crate::world::World;

/// The command-line flag that makes this executable time the init steps once and print them;
/// followed by [`ALTERNATIVE`] to time the alternatives instead.
pub const STEPS_FLAG: &str = "--init-steps";
/// See [`STEPS_FLAG`].
const ALTERNATIVE: &str = "alternative";

/// What the child prints before its timings, on stderr.
const PREFIX: &str = "init-steps:";

/// The steps, in `main`'s order: as built, and the alternative weighed.
const STEPS: [(&str, &str, &str); 5] = [
    ("telemetry::init", "", ""),
    ("Config::from_env", "", ""),
    (
        "upstream::build_client",
        "compiled-in webpki roots",
        "the system's roots (reqwest's platform verifier)",
    ),
    (
        "aws_config::load_defaults",
        "the system's roots",
        "a trust store of Amazon's 5 roots only (not adopted)",
    ),
    ("Secrets Manager client + App::new", "", ""),
];

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
        reqwest::Client::builder().build()
    } else {
        upstream::build_client()
    }
    .map_err(|e| e.to_string())?;
    lap(&mut times);
    // The SDK loads its roots when it first builds a connector: here, for the credentials chain.
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if alternative {
        loader = loader.http_client(amazon_roots_only()?);
    }
    let aws = loader.load().await;
    lap(&mut times);
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let _app = App::new(config, http, secrets);
    lap(&mut times);
    let times: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    eprintln!("{PREFIX}{}", times.join(","));
    Ok(())
}

/// An SDK HTTP client that trusts only Amazon Trust Services' roots (Amazon Root CA 1–4 and
/// Starfield Services G2), which sign AWS's endpoints: what pinning would cost at init.
fn amazon_roots_only() -> Result<aws_sdk_secretsmanager::config::SharedHttpClient, String> {
    let mut store = TrustStore::empty().with_native_roots(false);
    let contains = |der: &[u8], text: &str| der.windows(text.len()).any(|w| w == text.as_bytes());
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        if contains(der, "Amazon Root CA") || contains(der, "Starfield Services Root") {
            let base64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            store = store.with_pem_certificate(format!(
                "-----BEGIN CERTIFICATE-----\n{base64}\n-----END CERTIFICATE-----\n"
            ));
        }
    }
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https())
}

/// Re-runs this executable `runs` times per variant to time the steps, and reports medians.
pub async fn run(report: &mut Report, moto: &Moto, runs: usize) -> Result<(), String> {
    report.section(
        "Where bootstrap's init goes",
        &format!(
            "main's steps, timed in fresh processes, {runs} runs each, median; \
             as built | alternative"
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
            let output = tokio::process::Command::new(&exe)
                .args(args)
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
    }
    for (i, (name, as_built, instead)) in STEPS.iter().enumerate() {
        let value = millis(median(&built[i]));
        if instead.is_empty() {
            report.info(name, value);
        } else {
            report.info(&format!("{name}: {as_built}"), value);
            report.info(
                &format!("  instead: {instead}"),
                millis(median(&alternative[i])),
            );
        }
    }
    Ok(())
}

/// Whether the command line asks for the alternatives.
pub fn wants_alternative(args: &[String]) -> bool {
    args.iter().any(|a| a == ALTERNATIVE)
}
