//! A bounded, evenly thinned sample of a contact's connection start times,
//! for timelines (one mark per sampled connection).
//!
//! The sample keeps every connection until it holds [`MAX_TIMES`]; then it
//! drops every other kept time and from there on keeps one connection in
//! `every` (1, 2, 4, ...), so it always spans the whole history at an even
//! density, in at most `MAX_TIMES` × 8 bytes, deterministically.

use crate::capture::Timestamp;

/// Connection times kept per contact (1 KiB at most).
pub const MAX_TIMES: usize = 128;

/// Sampled connection start times of one contact (kept in the live state
/// file: [`ConnTimes::sanitized`] restores the invariants of one read back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnTimes {
    /// Kept times, sorted.
    times: Vec<Timestamp>,
    /// One connection in `every` is kept (a power of two).
    every: u64,
    /// Connections offered so far.
    seen: u64,
}

impl Default for ConnTimes {
    fn default() -> Self {
        ConnTimes {
            times: Vec::new(),
            every: 1,
            seen: 0,
        }
    }
}

impl ConnTimes {
    /// Offers the start time of one more connection.
    pub fn record(&mut self, t: Timestamp) {
        let keep = self.seen.is_multiple_of(self.every);
        self.seen += 1;
        if !keep {
            return;
        }
        let i = self.times.partition_point(|x| *x <= t);
        self.times.insert(i, t);
        self.thin();
    }

    /// Halves the sample (keeping every other time) until it fits.
    fn thin(&mut self) {
        while self.times.len() > MAX_TIMES {
            let mut i = 0usize;
            self.times.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.every = self.every.saturating_mul(2);
        }
    }

    /// The same sample with its invariants restored, for one read from a
    /// file that may have been damaged or edited: times sorted and at most
    /// the cap, `every` a power of two, `seen` at least the times kept.
    pub fn sanitized(mut self) -> Self {
        self.times.sort_unstable();
        self.every = self
            .every
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(1 << 63);
        self.thin();
        self.times.shrink_to_fit();
        self.seen = self.seen.max(self.times.len() as u64);
        self
    }

    /// The kept times, sorted.
    pub fn times(&self) -> &[Timestamp] {
        &self.times
    }

    /// One connection in `every()` is kept.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// Adds `other`'s sample (the same contact seen by another worker).
    /// Exact when one side is empty; otherwise both samples are combined at
    /// the coarser density and thinned to fit.
    pub fn merge(&mut self, other: &ConnTimes) {
        if other.seen == 0 {
            return;
        }
        if self.seen == 0 {
            *self = other.clone();
            return;
        }
        self.seen = self.seen.saturating_add(other.seen);
        self.every = self.every.max(other.every);
        self.times.extend_from_slice(&other.times);
        self.times.sort_unstable();
        self.thin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp(s * 1_000_000_000)
    }

    #[test]
    fn keeps_every_time_below_the_cap_sorted() {
        let mut c = ConnTimes::default();
        for s in [30, 10, 20] {
            c.record(ts(s));
        }
        assert_eq!(c.times(), [ts(10), ts(20), ts(30)]);
        assert_eq!(c.every(), 1);
    }

    #[test]
    fn thins_evenly_over_the_whole_history() {
        let mut c = ConnTimes::default();
        for s in 0..1000 {
            c.record(ts(s * 300));
        }
        assert!(c.times().len() <= MAX_TIMES && c.times().len() > MAX_TIMES / 2);
        assert_eq!(c.every(), 8);
        // Evenly spaced from the first connection to near the last.
        assert_eq!(c.times()[0], ts(0));
        for w in c.times().windows(2) {
            assert_eq!(w[1].0 - w[0].0, ts(8 * 300).0);
        }
        assert!(c.times().last().unwrap().0 >= ts(992 * 300).0);
    }

    #[test]
    fn merge_of_disjoint_sides_is_exact_and_combined_fits() {
        let mut a = ConnTimes::default();
        let mut b = ConnTimes::default();
        for s in 0..10 {
            b.record(ts(s));
        }
        a.merge(&b);
        assert_eq!(a, b);
        for s in 0..500 {
            a.record(ts(1000 + s));
        }
        let mut big = ConnTimes::default();
        for s in 0..500 {
            big.record(ts(5000 + s));
        }
        a.merge(&big);
        assert!(a.times().len() <= MAX_TIMES);
        assert!(a.times().windows(2).all(|w| w[0] <= w[1]));
        assert!(a.every() >= 4);
    }
}
