//! Medians and percentiles of timings, in microseconds.

use std::time::Duration;

/// Timings of one kind of operation.
#[derive(Debug, Default, Clone)]
pub struct Timings(Vec<f64>);

impl Timings {
    /// Records one timing.
    pub fn push(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_secs_f64() * 1e6);
    }

    /// Adds every timing of `other`.
    pub fn extend(&mut self, other: Timings) {
        self.0.extend(other.0);
    }

    /// The median, in µs.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// The p99, in µs.
    pub fn p99(&self) -> f64 {
        self.percentile(99.0)
    }

    /// The `p`-th percentile (nearest rank), in µs; 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// The median of `values` (the figure reported over several runs); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut timings = Timings::default();
    timings.0.extend_from_slice(values);
    timings.median()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut timings = Timings::default();
        for micros in (1..=100).rev() {
            timings.push(Duration::from_micros(micros));
        }
        assert_eq!(timings.median(), 50.0);
        assert_eq!(timings.p99(), 99.0);
        assert_eq!(timings.percentile(100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
