//! When a token with a known lifetime stops being worth using: one rule for the Management API
//! token, IdP tokens in memory and IdP tokens the fleet table hands to another environment.

use std::time::{Duration, Instant};

/// How a token is replaced once it is no longer worth using, which decides how much of its life
/// is kept back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Its holder renews it (a grant): a tenth of its lifetime, between 1 s and 5 min, is kept
    /// back for clock skew and the call itself, so that a renewal starts before calls fail.
    Early,
    /// Its issuer renews it only once it has expired (Auth0 Token Vault: an exchange before then
    /// answers the same token), so asking earlier buys nothing: it is used until
    /// [`LAST_SECOND`] before its expiry.
    AtExpiry,
}

/// What a token renewed only at its expiry keeps back: the call itself.
pub const LAST_SECOND: Duration = Duration::from_secs(1);

impl Renewal {
    /// The part of a token good for `lifetime` that is kept back.
    pub fn margin(self, lifetime: Duration) -> Duration {
        match self {
            Self::Early => (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(300)),
            Self::AtExpiry => LAST_SECOND,
        }
    }
}

/// Whether a token obtained at `obtained_at` and good for `lifetime` is still worth using at
/// `now`: not within the renewal margin of its expiry ([`Renewal::Early`]).
pub fn is_fresh(obtained_at: Instant, lifetime: Duration, now: Instant) -> bool {
    is_fresh_for(Renewal::Early, obtained_at, lifetime, now)
}

/// Whether a token obtained at `obtained_at` and good for `lifetime`, replaced as `renewal`
/// says, is still worth using at `now`.
pub fn is_fresh_for(
    renewal: Renewal,
    obtained_at: Instant,
    lifetime: Duration,
    now: Instant,
) -> bool {
    now.saturating_duration_since(obtained_at) + renewal.margin(lifetime) < lifetime
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

    #[test]
    fn a_token_renewed_only_at_expiry_is_used_to_its_last_second() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(is_fresh_for(Renewal::AtExpiry, t0, hour, at(3_598_999)));
        assert!(!is_fresh_for(Renewal::AtExpiry, t0, hour, at(3_599_000)));
        assert!(!is_fresh_for(Renewal::Early, t0, hour, at(3_300_000)));
        assert_eq!(Renewal::Early.margin(hour), Duration::from_secs(300));
    }
}
