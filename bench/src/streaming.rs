//! Large answers, buffered and streamed (`RESPONSE_MODE`): the real release binary under a
//! Runtime API that speaks Lambda's streaming protocol, the stand-in IdP generating the body as it
//! sends it. For each: time to the first body byte, time to the last, and the process's peak
//! resident memory (a fresh process per row, so that each peak is that answer's).

use std::path::Path;
use std::time::{Duration, Instant};

use standin::{Moto, StreamEnd};

use crate::memory::{TARGET_PEAK, resident};
use crate::report::{Report, megabytes};
use crate::world::{self, World};

/// Largest share of a 50 MB body's transfer time its first byte may take.
const TTFB_SHARE: f64 = 0.1;

/// One measured answer.
struct Row {
    first_byte: Duration,
    whole: Duration,
    peak: u64,
}

/// `GET /idp/github/bytes/{kind}?size={size}` as the first caller.
fn event(world: &World, kind: &str, size: u64) -> String {
    let mut event: serde_json::Value =
        serde_json::from_str(&world::event(&world.caller(0))).unwrap_or_default();
    let path = format!("/idp/github/bytes/{kind}");
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["rawQueryString"] = format!("size={size}").into();
    event.to_string()
}

/// A fresh function in `mode`, warmed by one small call, then asked for `size` bytes.
async fn measure(
    world: &World,
    bootstrap: &Path,
    log: &Path,
    mode: &str,
    kind: &str,
    size: u64,
) -> Result<Row, String> {
    let function = world
        .function(bootstrap, &[("RESPONSE_MODE", mode.to_owned())], log)
        .await?;
    let warm = event(world, kind, 16);
    let row = if mode == "streaming" {
        let (streamed, _) = function.stream(&warm).await?;
        streamed.end().await;
        let (mut streamed, started) = function.stream(&event(world, kind, size)).await?;
        let mut first_byte = None;
        let mut bytes = 0;
        while let Some(chunk) = streamed.chunk().await {
            first_byte.get_or_insert_with(|| started.elapsed());
            bytes += chunk.len() as u64;
        }
        let whole = started.elapsed();
        match streamed.end().await {
            StreamEnd::Complete { .. } if bytes == size => {}
            end => return Err(format!("{size} bytes streamed as {end:?} ({bytes} bytes)")),
        }
        Row {
            first_byte: first_byte.unwrap_or(whole),
            whole,
            peak: 0,
        }
    } else {
        function.invoke(&warm).await?;
        let started = Instant::now();
        let (status, _) = function.invoke(&event(world, kind, size)).await?;
        if status != 200 {
            function.stop().await;
            return Err(format!("buffered {size} bytes answered {status}"));
        }
        // A buffered answer reaches the caller whole: its first byte with its last.
        let whole = started.elapsed();
        Row {
            first_byte: whole,
            whole,
            peak: 0,
        }
    };
    let peak = resident(function.pid().ok_or("no pid")?)?.0;
    function.stop().await;
    Ok(Row { peak, ..row })
}

/// The buffered and streamed rows, and the targets.
pub async fn run(
    report: &mut Report,
    moto: &Moto,
    bootstrap: &Path,
    log: &Path,
) -> Result<(), String> {
    report.section(
        "Large answers: buffered and streamed",
        "real release bootstrap under a Runtime API speaking Lambda's streaming protocol; the \
         stand-in IdP generates the body as it sends it; a fresh process per row, warmed by one \
         small call; first byte = first body chunk at the Runtime API; peak = VmHWM",
    );
    let world = World::start(moto, None).await?;
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    let line = |label: &str, row: &Row| {
        report.info(
            label,
            format!(
                "first byte {}, whole {}, peak RSS {}",
                ms(row.first_byte),
                ms(row.whole),
                megabytes(row.peak)
            ),
        );
    };
    let buffered = measure(&world, bootstrap, log, "buffered", "text", 5_000_000).await?;
    line("buffered, 5 MB text", &buffered);
    let small = measure(&world, bootstrap, log, "streaming", "text", 5_000_000).await?;
    line("streaming, 5 MB text", &small);
    let fifty = measure(&world, bootstrap, log, "streaming", "binary", 50_000_000).await?;
    line("streaming, 50 MB binary", &fifty);
    let hundred = measure(&world, bootstrap, log, "streaming", "binary", 100_000_000).await?;
    line("streaming, 100 MB binary", &hundred);
    let share = fifty.first_byte.as_secs_f64() / fifty.whole.as_secs_f64();
    report.check(
        "streaming 50 MB: first byte / whole transfer",
        format!("{:.1} %", share * 100.0),
        &format!("<= {:.0} %", TTFB_SHARE * 100.0),
        share <= TTFB_SHARE,
    );
    report.check(
        "streaming 100 MB: peak RSS",
        megabytes(hundred.peak),
        &format!("<= {}", megabytes(TARGET_PEAK)),
        hundred.peak <= TARGET_PEAK,
    );
    Ok(())
}
