//! Cold init of the real release `bootstrap`, with and without the prefetch, its AWS SDK
//! configured as built and the old way (`SDK_CONFIG=load-defaults`), beside a minimal
//! `lambda_runtime` function built with the same profile; and what the prefetch saves the first
//! invocation, on bare loopback and with handshakes as costly as a remote origin's.

use std::path::Path;
use std::time::Duration;

use auth0_idp_proxy::aws;
use standin::Moto;

use crate::lambda::Function;
use crate::relay::Delay;
use crate::report::{Report, millis};
use crate::stats::median;
use crate::world::{self, World};

/// Largest acceptable ratio of `bootstrap`'s init to the minimal function's.
const TARGET_RATIO: f64 = 1.5;

/// What each new connection to the Auth0 origin or GitHub costs in the second scenario: about a
/// TCP and TLS handshake from a Lambda to a remote origin.
const HANDSHAKE: Duration = Duration::from_millis(20);

/// The binaries under test.
pub struct Binaries<'a> {
    /// The release `bootstrap`.
    pub bootstrap: &'a Path,
    /// The minimal `hello` function.
    pub hello: &'a Path,
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// `bootstrap`, with or without the prefetch, its SDK configured as built or the old way.
    Bootstrap {
        prefetch: bool,
        sdk: Sdk,
    },
    Hello,
}

/// How `bootstrap` configures the AWS SDK.
#[derive(Clone, Copy, PartialEq)]
enum Sdk {
    /// `aws::load`: Lambda's environment, compiled-in roots.
    AsBuilt,
    /// `SDK_CONFIG=load-defaults`: `aws_config::load_defaults`, the full chain and system roots.
    OldWay,
}

const PREFETCH: Variant = Variant::Bootstrap {
    prefetch: true,
    sdk: Sdk::AsBuilt,
};
const NO_PREFETCH: Variant = Variant::Bootstrap {
    prefetch: false,
    sdk: Sdk::AsBuilt,
};
const PREFETCH_OLD: Variant = Variant::Bootstrap {
    prefetch: true,
    sdk: Sdk::OldWay,
};
const NO_PREFETCH_OLD: Variant = Variant::Bootstrap {
    prefetch: false,
    sdk: Sdk::OldWay,
};

/// Medians, in µs, of one variant's runs.
#[derive(Clone, Copy, Default)]
struct Cold {
    /// Exec to the first request for an invocation.
    init: f64,
    /// The first invocation's round trip.
    first: f64,
    /// Minor page faults by the end of init.
    faults: f64,
}

/// Starts each variant `runs` times, interleaved, after one discarded warm-up round.
async fn measure(
    world: &World,
    binaries: &Binaries<'_>,
    variants: &[Variant],
    runs: usize,
    log: &Path,
) -> Result<Vec<Cold>, String> {
    let event = world::event(&world.caller(0));
    let mut samples = vec![(Vec::new(), Vec::new(), Vec::new()); variants.len()];
    for round in 0..=runs {
        for (variant, (init, first, faults)) in variants.iter().zip(&mut samples) {
            let (binary, event) = match variant {
                Variant::Hello => (binaries.hello, "{}"),
                _ => (binaries.bootstrap, event.as_str()),
            };
            let function = Function::start(
                binary,
                |runtime| match *variant {
                    Variant::Hello => world::lambda_env(runtime),
                    Variant::Bootstrap { prefetch, sdk } => {
                        let mut env = world.process_env(runtime);
                        if !prefetch {
                            env.push(("COLD_START_PREFETCH".into(), "off".into()));
                        }
                        if sdk == Sdk::OldWay {
                            env.push((aws::KNOB.into(), "load-defaults".into()));
                        }
                        env
                    }
                },
                log,
            )
            .await?;
            let init_time = function.init;
            let init_faults = function.minor_faults().ok_or("no /proc/<pid>/stat")?;
            let (status, elapsed) = function.invoke(event).await?;
            function.stop().await;
            if status != 200 {
                return Err(format!("{} answered {status}", binary.display()));
            }
            if round > 0 {
                init.push(init_time.as_secs_f64() * 1e6);
                first.push(elapsed.as_secs_f64() * 1e6);
                faults.push(init_faults as f64);
            }
        }
    }
    Ok(samples
        .iter()
        .map(|(init, first, faults)| Cold {
            init: median(init),
            first: median(first),
            faults: median(faults),
        })
        .collect())
}

/// Reports cold init against the minimal function, and init + first invocation with and without
/// the prefetch, on bare loopback and with [`HANDSHAKE`] per new connection.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    binaries: &Binaries<'_>,
    runs: usize,
    log: &Path,
) -> Result<(), String> {
    report.section(
        "Cold init: exec to first GET /runtime/invocation/next",
        &format!(
            "real release binaries under a Runtime API on 127.0.0.1, moto and stand-ins; \
             {runs} interleaved runs each after a warm-up, median"
        ),
    );
    let world = World::start(moto, None).await?;
    let variants = [
        PREFETCH,
        NO_PREFETCH,
        PREFETCH_OLD,
        NO_PREFETCH_OLD,
        Variant::Hello,
    ];
    let [prefetch, no_prefetch, prefetch_old, no_prefetch_old, hello] =
        measure(&world, binaries, &variants, runs, log).await?[..]
    else {
        unreachable!("one result per variant")
    };
    let with_faults = |cold: Cold| format!("{}, {:.0} page faults", millis(cold.init), cold.faults);
    let beside = |new: Cold, old: Cold| format!("{} | {}", with_faults(new), with_faults(old));
    report.info(
        "minimal lambda_runtime function (hello)",
        with_faults(hello),
    );
    report.info(
        "bootstrap without prefetch: as built | old SDK way",
        beside(no_prefetch, no_prefetch_old),
    );
    report.info(
        "bootstrap with prefetch: as built | old SDK way",
        beside(prefetch, prefetch_old),
    );
    let target = format!("<= {TARGET_RATIO}");
    for (label, cold, old) in [
        ("without", no_prefetch, no_prefetch_old),
        ("with", prefetch, prefetch_old),
    ] {
        let ratio = cold.init / hello.init;
        report.check(
            &format!("cold init ratio, bootstrap {label} prefetch / hello"),
            format!("{ratio:.2} (old SDK way {:.2})", old.init / hello.init),
            &target,
            ratio <= TARGET_RATIO,
        );
    }
    let both = |a: f64, b: f64| format!("{} / {}", millis(a), millis(b));
    report.info(
        "first invocation after init: with / without prefetch",
        format!(
            "{} (old SDK way {})",
            both(prefetch.first, no_prefetch.first),
            both(prefetch_old.first, no_prefetch_old.first)
        ),
    );
    report.info(
        "init + first invocation: with / without prefetch",
        format!(
            "{} (old SDK way {})",
            both(
                prefetch.init + prefetch.first,
                no_prefetch.init + no_prefetch.first,
            ),
            both(
                prefetch_old.init + prefetch_old.first,
                no_prefetch_old.init + no_prefetch_old.first,
            )
        ),
    );
    // The SDK's saving must shorten exec → first answer, not move into the first invocation
    // (where the SDK now parses its roots, at its first connection).
    for (label, cold, old) in [
        ("without", no_prefetch, no_prefetch_old),
        ("with", prefetch, prefetch_old),
    ] {
        let init_saving = old.init - cold.init;
        let answer_saving = (old.init + old.first) - (cold.init + cold.first);
        report.check(
            &format!("exec → first answer {label} prefetch, saved vs old"),
            format!(
                "{} (init alone {})",
                millis(answer_saving),
                millis(init_saving)
            ),
            ">= init's",
            answer_saving >= init_saving,
        );
    }

    let remote = World::start(
        moto,
        Some(Delay {
            handshake: HANDSHAKE,
            request: Duration::ZERO,
        }),
    )
    .await?;
    let variants = [PREFETCH, NO_PREFETCH];
    let [prefetch, no_prefetch] = measure(&remote, binaries, &variants, runs, log).await?[..]
    else {
        unreachable!("one result per variant")
    };
    let label = format!("{} ms per new connection", HANDSHAKE.as_millis());
    report.info(
        &format!("{label}: init, with / without prefetch"),
        both(prefetch.init, no_prefetch.init),
    );
    report.info(
        &format!("{label}: first invocation, with / without"),
        both(prefetch.first, no_prefetch.first),
    );
    report.info(
        &format!("{label}: init + first, with / without"),
        both(
            prefetch.init + prefetch.first,
            no_prefetch.init + no_prefetch.first,
        ),
    );
    Ok(())
}
