//! When a token with a known lifetime stops being worth using: one rule for the Management API
//! token and renewed IdP tokens.

use std::time::{Duration, Instant};

/// Whether a token obtained at `obtained_at` and good for `lifetime` is still worth using at
/// `now`: not within the renewal margin of its expiry. The margin (a tenth of the lifetime,
/// between 1 s and 5 min) leaves room for clock skew and the call itself.
pub fn is_fresh(obtained_at: Instant, lifetime: Duration, now: Instant) -> bool {
    let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
    now.saturating_duration_since(obtained_at) + margin < lifetime
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_a_tenth_of_the_lifetime_between_one_second_and_five_minutes() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let day = Duration::from_secs(86_400);
        assert!(is_fresh(t0, day, at(86_400 - 301)));
        assert!(!is_fresh(t0, day, at(86_400 - 300)));
        let minute = Duration::from_secs(60);
        assert!(is_fresh(t0, minute, at(53)));
        assert!(!is_fresh(t0, minute, at(54)));
        let brief = Duration::from_secs(5);
        assert!(is_fresh(t0, brief, at(3)));
        assert!(!is_fresh(t0, brief, at(4)));
    }
}
