//! A release binary run as Lambda runs it: under a Runtime API on 127.0.0.1, its init phase timed
//! from exec to its first `GET /2018-06-01/runtime/invocation/next`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use standin::{Outcome, RuntimeApi};
use tokio::process::{Child, Command};

/// Clock ticks per second of `/proc`'s CPU times: Linux fixes `USER_HZ` at 100 for userspace on
/// x86-64 and arm64 alike.
const USER_HZ: u64 = 100;

/// Longest an init phase may take before the run is abandoned (Lambda allows 10 s).
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// A function process and its Runtime API.
pub struct Function {
    runtime: RuntimeApi,
    child: Child,
    /// Exec to the first request for an invocation.
    pub init: Duration,
}

impl Function {
    /// Starts `binary` with only the environment `env(runtime API address)`, its logs appended
    /// to `log`, and waits for the end of its init phase.
    pub async fn start(
        binary: &Path,
        env: impl FnOnce(&str) -> Vec<(String, String)>,
        log: &Path,
    ) -> Result<Self, String> {
        let runtime = RuntimeApi::start()
            .await
            .map_err(|e| format!("Runtime API: {e}"))?;
        let logs = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let errors = logs.try_clone().map_err(|e| format!("log: {e}"))?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(env(&runtime.address()))
            .stdin(Stdio::null())
            .stdout(logs)
            .stderr(errors)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        loop {
            if let Some(at) = runtime.first_next() {
                return Ok(Self {
                    runtime,
                    child,
                    init: at.saturating_duration_since(started),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{} exited during init ({status}); see {}",
                    binary.display(),
                    log.display()
                ));
            }
            if started.elapsed() > INIT_LIMIT {
                return Err(format!("{} did not finish init", binary.display()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The process id, to read its memory figures.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Minor page faults the process has taken so far (`/proc/<pid>/stat`, field 10): the
    /// pages of its binary and heap it touched.
    pub fn minor_faults(&self) -> Option<u64> {
        self.stat_field(10)
    }

    /// The CPU time the process has used so far, all its threads, user and system
    /// (`/proc/<pid>/stat`, fields 14 and 15), to the kernel's 10 ms tick.
    pub fn cpu_time(&self) -> Option<Duration> {
        let ticks = self.stat_field(14)? + self.stat_field(15)?;
        Some(Duration::from_millis(ticks * 1000 / USER_HZ))
    }

    /// Field `n` (1-based, as proc(5) numbers them) of `/proc/<pid>/stat`, a number.
    fn stat_field(&self, n: usize) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the parenthesised command name start at field 3.
        let after_name = stat.rsplit_once(')')?.1;
        after_name.split_whitespace().nth(n - 3)?.parse().ok()
    }

    /// Invokes the function with `event`; returns the response's `statusCode` (or 200 for a
    /// plain JSON answer without one) and how long the round trip took.
    pub async fn invoke(&self, event: &str) -> Result<(u16, Duration), String> {
        let started = Instant::now();
        let outcome = self
            .runtime
            .invoke(event, Duration::from_secs(10), Duration::from_secs(30))
            .await;
        let elapsed = started.elapsed();
        match outcome {
            Some(Outcome::Response(response)) => {
                let status = response
                    .get("statusCode")
                    .map_or(Some(200), serde_json::Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(|| format!("a response without a status: {response}"))?;
                Ok((status, elapsed))
            }
            other => Err(format!("the invocation failed: {other:?}")),
        }
    }

    /// Invokes a streaming function with `event`; returns the streamed response as soon as its
    /// prelude arrived, and when the invocation was queued.
    pub async fn stream(&self, event: &str) -> Result<(standin::Streamed, Instant), String> {
        let started = Instant::now();
        let outcome = self
            .runtime
            .invoke(event, Duration::from_secs(120), Duration::from_secs(30))
            .await;
        match outcome {
            Some(Outcome::Streamed(streamed)) => Ok((streamed, started)),
            other => Err(format!("no streamed response: {other:?}")),
        }
    }

    /// Ends the process.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
