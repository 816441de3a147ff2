//! The request latency histogram: how long forwarded requests took, from the moment the proxy
//! read them from the client to the moment their server's reply arrived, in fixed log2 buckets
//! of microseconds (16 µs, 32 µs, ... about 16.8 s, then +Inf). A worker records into plain
//! integers of its own table (no lock, no atomic); tables are summed when read, like every
//! other counter.

use std::time::Duration;

/// Finite buckets: upper bounds 2^4 µs to 2^24 µs.
const FINITE_BUCKETS: usize = 21;
/// The finite buckets and the +Inf one.
pub const BUCKETS: usize = FINITE_BUCKETS + 1;
/// log2 of the first bucket's upper bound in microseconds.
const FIRST_BOUND_LOG2: u32 = 4;

/// Request counts per latency bucket (not cumulative) and the total time they took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    buckets: [u64; BUCKETS],
    total_micros: u64,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            buckets: [0; BUCKETS],
            total_micros: 0,
        }
    }
}

impl Latency {
    /// Counts one request that took `elapsed`: a shift, a leading-zero count and two adds.
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(elapsed.subsec_micros()));
        let index = (u64::BITS - (micros >> FIRST_BOUND_LOG2).leading_zeros()) as usize;
        if let Some(bucket) = self.buckets.get_mut(index.min(FINITE_BUCKETS)) {
            *bucket += 1;
        }
        self.total_micros = self.total_micros.saturating_add(micros);
    }

    /// Adds `other`'s counts into these.
    pub fn accumulate(&mut self, other: &Latency) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.total_micros = self.total_micros.saturating_add(other.total_micros);
    }

    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The time they took in total, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.total_micros as f64 / 1e6
    }

    /// Each bucket's upper bound in seconds (`f64::MAX` for +Inf, as `prometheus-client`
    /// spells it) with its own count, not cumulative.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets.iter().enumerate().map(|(index, &count)| {
            let bound = if index < FINITE_BUCKETS {
                f64::from(1u32 << (index as u32 + FIRST_BOUND_LOG2)) / 1e6
            } else {
                f64::MAX
            };
            (bound, count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_of(micros: u64) -> f64 {
        let mut latency = Latency::default();
        latency.record(Duration::from_micros(micros));
        latency
            .buckets()
            .find(|&(_, count)| count == 1)
            .map(|(bound, _)| bound)
            .unwrap_or(0.0)
    }

    #[test]
    fn a_request_lands_in_the_first_bucket_whose_bound_is_above_it() {
        assert_eq!(bucket_of(0), 0.000_016);
        assert_eq!(bucket_of(15), 0.000_016);
        assert_eq!(bucket_of(16), 0.000_032);
        assert_eq!(bucket_of(100), 0.000_128);
        assert_eq!(bucket_of(1_000_000), 1.048_576);
        assert_eq!(bucket_of(16_777_215), 16.777_216);
        assert_eq!(bucket_of(16_777_216), f64::MAX);
        assert_eq!(bucket_of(u64::MAX / 2_000_000), f64::MAX);
    }

    #[test]
    fn tables_add_up() {
        let mut one = Latency::default();
        one.record(Duration::from_micros(20));
        one.record(Duration::from_millis(3));
        let mut other = Latency::default();
        other.record(Duration::from_micros(25));
        one.accumulate(&other);
        assert_eq!(one.count(), 3);
        assert!((one.sum_seconds() - 0.003_045).abs() < 1e-9);
        assert_eq!(
            one.buckets()
                .filter(|&(_, count)| count > 0)
                .collect::<Vec<_>>(),
            vec![(0.000_032, 2), (0.004_096, 1)]
        );
    }
}
