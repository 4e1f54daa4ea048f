//! The invocation's deadline, from which every outbound call takes its timeout.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back from Lambda's deadline so that the function still answers (with a 504) before
/// Lambda kills it: enough to build and return a response.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(250);

/// When this invocation must have its answer ready.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
        }
    }

    /// From the Lambda context's deadline (milliseconds since the Unix epoch), less the safety
    /// margin; `fallback` when the runtime gave none (a request built by hand, a local server).
    pub fn from_epoch_millis(deadline_ms: u64, fallback: Duration) -> Self {
        if deadline_ms == 0 {
            return Self::after(fallback);
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let left = Duration::from_millis(
            u64::try_from(u128::from(deadline_ms).saturating_sub(now_ms)).unwrap_or(u64::MAX),
        );
        Self::after(left.saturating_sub(SAFETY_MARGIN))
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The timeout for one outbound call: at most `cap`, never past the deadline.
    /// `None` when no time is left, so that the caller does not start the call at all.
    pub fn timeout(&self, cap: Duration) -> Option<Duration> {
        let left = self.remaining();
        (!left.is_zero()).then(|| left.min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_capped_by_time_left() {
        let deadline = Deadline::after(Duration::from_millis(200));
        let timeout = deadline.timeout(Duration::from_secs(5)).expect("time left");
        assert!(timeout <= Duration::from_millis(200));
        assert_eq!(
            deadline.timeout(Duration::from_millis(10)),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn passed_deadline_gives_no_timeout() {
        let deadline = Deadline::after(Duration::ZERO);
        assert_eq!(deadline.timeout(Duration::from_secs(1)), None);
    }

    #[test]
    fn lambda_deadline_keeps_a_safety_margin() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64;
        let deadline = Deadline::from_epoch_millis(now_ms + 3_000, Duration::from_secs(60));
        assert!(deadline.remaining() <= Duration::from_millis(3_000) - SAFETY_MARGIN);
        assert!(deadline.remaining() > Duration::from_millis(2_000));
        let past = Deadline::from_epoch_millis(now_ms - 1_000, Duration::from_secs(60));
        assert!(past.remaining().is_zero());
        let none = Deadline::from_epoch_millis(0, Duration::from_secs(7));
        assert!(none.remaining() > Duration::from_secs(6));
    }
}
