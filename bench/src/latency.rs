//! A warm repeat call through the handler against a direct call to the same stand-in IdP: what
//! the function adds to the IdP's own latency.

use std::time::{Duration, Instant};

use auth0_idp_proxy::App;
use standin::Moto;

use crate::relay::Delay;
use crate::report::{Report, micros};
use crate::stats::{Timings, median};
use crate::world::{self, World};

/// Largest acceptable ratio of the handler's median to the direct call's.
const TARGET_RATIO: f64 = 1.05;

/// Most the handler may add of its own to the direct call's median on bare loopback, in µs
/// (issue 24).
const TARGET_ADDED: f64 = 50.0;

/// What the relays in front of the stand-in IdP (and tenant) add to each request in the second
/// scenario: at least this (tokio's timer rounds up to its next millisecond tick), about a fast
/// API in the function's own region; real IdPs over the internet take tens of milliseconds.
const SERVICE_TIME: Duration = Duration::from_millis(1);

/// Runs `runs` rounds of `calls` interleaved pairs (handler, direct) against the bare stand-ins,
/// then with [`SERVICE_TIME`] added to each request, and reports medians over the rounds.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    runs: usize,
    calls: usize,
) -> Result<(), String> {
    report.section(
        "Warm repeat call: handler vs direct call to the same stand-in IdP",
        &format!(
            "in-process, same user, {runs} runs x {calls} interleaved pairs; median of the runs' \
             median and p99; the handler writes its log lines, in its own format, to a sink"
        ),
    );
    let slow = Delay {
        handshake: Duration::ZERO,
        request: SERVICE_TIME,
    };
    let scenarios = [
        ("bare loopback stand-ins", None),
        ("stand-ins delayed 1 ms a request (relays)", Some(slow)),
    ];
    for (label, relays) in scenarios {
        let world = World::start(moto, relays).await?;
        let function = world.in_process().await?;
        let event = world::event(&world.caller(0));
        let direct = Direct {
            http: world::http_client()?,
            url: format!("{}/user", world.github_origin()),
            token: world::github_token(0),
        };
        function.app.prefetch(Duration::from_secs(10)).await;
        for _ in 0..100 {
            through_handler(&function.app, &event).await?;
            direct.call().await?;
        }
        let (handler, plain) = measure(&function.app, &event, &direct, runs, calls).await?;
        report.info(
            &format!("{label}: handler median / p99"),
            format!("{} / {}", micros(handler.0), micros(handler.1)),
        );
        report.info(
            &format!("{label}: direct median / p99"),
            format!("{} / {}", micros(plain.0), micros(plain.1)),
        );
        let added = handler.0 - plain.0;
        if relays.is_none() {
            report.check(
                &format!("{label}: added by the handler (median)"),
                micros(added),
                &format!("<= {}", micros(TARGET_ADDED)),
                added <= TARGET_ADDED,
            );
        } else {
            report.info(
                &format!("{label}: added by the handler (median)"),
                micros(added),
            );
        }
        report.info(
            &format!("{label}: ratio of p99s"),
            format!("{:.2}", handler.1 / plain.1),
        );
        let ratio = handler.0 / plain.0;
        report.check(
            &format!("{label}: ratio of medians"),
            format!("{ratio:.2}"),
            &format!("<= {TARGET_RATIO}"),
            ratio <= TARGET_RATIO,
        );
    }
    Ok(())
}

/// `runs` rounds of `calls` interleaved pairs; the medians over the rounds of each side's median
/// and p99, in µs.
async fn measure(
    app: &App,
    event: &str,
    direct: &Direct,
    runs: usize,
    calls: usize,
) -> Result<((f64, f64), (f64, f64)), String> {
    let (mut handler_median, mut handler_p99) = (Vec::new(), Vec::new());
    let (mut direct_median, mut direct_p99) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (mut handler, mut plain) = (Timings::default(), Timings::default());
        for i in 0..calls {
            // Alternate the order, so that neither side always follows the other.
            if i % 2 == 0 {
                handler.push(through_handler(app, event).await?);
                plain.push(direct.call().await?);
            } else {
                plain.push(direct.call().await?);
                handler.push(through_handler(app, event).await?);
            }
        }
        handler_median.push(handler.median());
        handler_p99.push(handler.p99());
        direct_median.push(plain.median());
        direct_p99.push(plain.p99());
    }
    Ok((
        (median(&handler_median), median(&handler_p99)),
        (median(&direct_median), median(&direct_p99)),
    ))
}

/// One invocation of the handler with the sample event; the event is parsed before the clock
/// starts, as the runtime parses it before calling the handler.
async fn through_handler(app: &App, event: &str) -> Result<Duration, String> {
    let request = lambda_http::request::from_str(event).map_err(|e| format!("event: {e}"))?;
    let started = Instant::now();
    let response = app.handle(request).await;
    let elapsed = started.elapsed();
    if response.status() != http::StatusCode::OK {
        return Err(format!("the handler answered {}", response.status()));
    }
    Ok(elapsed)
}

/// The same IdP call made directly, with a client built the same way.
struct Direct {
    http: auth0_idp_proxy::upstream::Http,
    url: String,
    token: String,
}

impl Direct {
    async fn call(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let response = self
            .http
            .get(&self.url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("direct call: {e}"))?;
        let status = response.status();
        response
            .bytes()
            .await
            .map_err(|e| format!("direct call body: {e}"))?;
        let elapsed = started.elapsed();
        if status != reqwest::StatusCode::OK {
            return Err(format!("the stand-in IdP answered {status}"));
        }
        Ok(elapsed)
    }
}
