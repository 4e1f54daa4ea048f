//! Cold init of the real release `bootstrap`, with and without the prefetch, beside a minimal
//! `lambda_runtime` function built with the same profile; and what the prefetch saves the first
//! invocation.

use std::path::Path;

use standin::Moto;

use crate::lambda::Function;
use crate::report::{Report, millis};
use crate::stats::median;
use crate::world::{self, World};

/// Largest acceptable ratio of `bootstrap`'s init to the minimal function's.
const TARGET_RATIO: f64 = 1.5;

/// The binaries under test.
pub struct Binaries<'a> {
    /// The release `bootstrap`.
    pub bootstrap: &'a Path,
    /// The minimal `hello` function.
    pub hello: &'a Path,
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Prefetch,
    NoPrefetch,
    Hello,
}

/// Starts each variant `runs` times, interleaved, after one discarded warm-up round.
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
    let event = world::event(&world.caller(0));
    let variants = [Variant::Prefetch, Variant::NoPrefetch, Variant::Hello];
    let mut init = [vec![], vec![], vec![]];
    let mut first = [vec![], vec![], vec![]];
    let mut faults = [vec![], vec![], vec![]];
    for round in 0..=runs {
        for (i, variant) in variants.iter().enumerate() {
            let (binary, event) = match variant {
                Variant::Hello => (binaries.hello, "{}"),
                _ => (binaries.bootstrap, event.as_str()),
            };
            let function = Function::start(
                binary,
                |runtime| match variant {
                    Variant::Hello => world::lambda_env(runtime),
                    Variant::Prefetch => world.process_env(runtime),
                    Variant::NoPrefetch => {
                        let mut env = world.process_env(runtime);
                        env.push(("COLD_START_PREFETCH".into(), "off".into()));
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
                init[i].push(init_time.as_secs_f64() * 1e6);
                first[i].push(elapsed.as_secs_f64() * 1e6);
                faults[i].push(init_faults as f64);
            }
        }
    }

    let [prefetch, no_prefetch, hello] = init.map(|runs| median(&runs));
    let [first_prefetch, first_no_prefetch, _] = first.map(|runs| median(&runs));
    let [faults_prefetch, faults_no_prefetch, faults_hello] = faults.map(|runs| median(&runs));
    let with_faults = |init: f64, faults: f64| format!("{}, {faults:.0} page faults", millis(init));
    report.info(
        "minimal lambda_runtime function (hello)",
        with_faults(hello, faults_hello),
    );
    report.info(
        "bootstrap without prefetch",
        with_faults(no_prefetch, faults_no_prefetch),
    );
    report.info(
        "bootstrap with prefetch",
        with_faults(prefetch, faults_prefetch),
    );
    let target = format!("<= {TARGET_RATIO}");
    let ratio = no_prefetch / hello;
    report.check(
        "cold init ratio, bootstrap without prefetch / hello",
        format!("{ratio:.2}"),
        &target,
        ratio <= TARGET_RATIO,
    );
    let ratio = prefetch / hello;
    report.check(
        "cold init ratio, bootstrap with prefetch / hello",
        format!("{ratio:.2}"),
        &target,
        ratio <= TARGET_RATIO,
    );
    report.info(
        "first invocation after init: with / without prefetch",
        format!("{} / {}", millis(first_prefetch), millis(first_no_prefetch)),
    );
    report.info(
        "init + first invocation: with / without prefetch",
        format!(
            "{} / {}",
            millis(prefetch + first_prefetch),
            millis(no_prefetch + first_no_prefetch)
        ),
    );
    Ok(())
}
