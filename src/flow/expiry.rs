//! Expiry: when each flow's idle timeout falls due, as a timing wheel of
//! one-second buckets.
//!
//! A flow is filed under the second of its deadline when it starts (and
//! again when a FIN or RST shortens its timeout). Packets that extend a
//! flow do not touch the wheel: when its bucket comes due, the flow's true
//! deadline is checked and the flow is filed again if it has moved. A
//! bucket comes due once the input's clock reaches the end of its second,
//! so which flows expire, and when relative to the packets of their hosts,
//! depends only on the clock — not on where a flow lies in the table, nor
//! on how many packets a thread saw in between. That makes the order in
//! which conversations end the same with one engine and with one per
//! worker (see [`super::FlowTable::finish_ended`]); a sweeper walking the
//! table's slots found them in slot order, which differs.
//!
//! The wheel spans [`BUCKETS`] seconds; a later deadline is filed in the
//! last bucket and filed again when that comes due. Each slot remembers the
//! second it was last filed under, so only that entry counts: older entries
//! (a slot freed and reused, a deadline shortened) are dropped when their
//! bucket comes due. A flow thus has at most two entries at a time.

/// Seconds the wheel spans (68 minutes: the default timeouts are 10 s to
/// 5 min).
const BUCKETS: usize = 4096;

/// Nanoseconds per second.
const SEC: i64 = 1_000_000_000;

/// The second `ns` falls in.
fn second(ns: i64) -> i64 {
    ns.div_euclid(SEC)
}

/// The wheel: slot numbers by the second of their deadline.
#[derive(Debug)]
pub(crate) struct Wheel {
    buckets: Vec<Vec<u32>>,
    /// The second of the next bucket to come due (`None` before the first
    /// flow or clock): every earlier second has been handled.
    next: Option<i64>,
    /// The clock (nanoseconds) at which that bucket comes due: the one
    /// comparison every packet makes.
    due_at: i64,
    /// Per slot, the second it was last filed under (`i64::MAX`: none).
    filed: Vec<i64>,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            next: None,
            due_at: i64::MAX,
            filed: Vec::new(),
        }
    }
}

impl Wheel {
    /// The first second not yet handled, starting at `clock`'s.
    fn next(&mut self, clock: i64) -> i64 {
        match self.next {
            Some(n) => n,
            None => self.start_at(second(clock)),
        }
    }

    /// Makes `next` the next second to come due.
    fn start_at(&mut self, next: i64) -> i64 {
        self.next = Some(next);
        self.due_at = (next + 1).saturating_mul(SEC);
        next
    }

    /// Files `slot` under its `deadline` (nanoseconds), as seen at `clock`.
    #[inline]
    pub(crate) fn file(&mut self, slot: u32, deadline: i64, clock: i64) {
        let next = self.next(clock);
        // Not before the next bucket due (a deadline already past comes due
        // with it), nor beyond the wheel's span (filed again from there).
        let at = second(deadline).clamp(next, next + BUCKETS as i64 - 1);
        let i = slot as usize;
        match self.filed.get_mut(i) {
            Some(f) => *f = at,
            None => self.grow(i, at),
        }
        if let Some(b) = self.buckets.get_mut(at.rem_euclid(BUCKETS as i64) as usize) {
            b.push(slot);
        }
    }

    /// Makes room for slot `i` (a table grown by a slot), filed under `at`.
    #[cold]
    fn grow(&mut self, i: usize, at: i64) {
        self.filed.resize(i, i64::MAX);
        self.filed.push(at);
    }

    /// Files `slot` under `deadline` only if that is an earlier second than
    /// the one it is filed under (a FIN or RST shortened its timeout).
    pub(crate) fn file_earlier(&mut self, slot: u32, deadline: i64, clock: i64) {
        let filed = self.filed.get(slot as usize).copied().unwrap_or(i64::MAX);
        if second(deadline) < filed {
            self.file(slot, deadline, clock);
        }
    }

    /// Forgets `slot`'s entries (its flow ended).
    pub(crate) fn forget(&mut self, slot: u32) {
        if let Some(f) = self.filed.get_mut(slot as usize) {
            *f = i64::MAX;
        }
    }

    /// Whether a bucket is due at `clock`.
    #[inline]
    pub(crate) fn is_due(&self, clock: i64) -> bool {
        clock >= self.due_at
    }

    /// Takes the entries of every bucket due at `clock` (a bucket is due
    /// once its whole second has passed) into `out`, oldest second first,
    /// and moves on: the slots whose flows may have expired, each to be
    /// checked (and filed again if its flow was extended). Entries that no
    /// longer count are left out.
    pub(crate) fn take_due(&mut self, clock: i64, out: &mut Vec<u32>) {
        let Some(mut next) = self.next else {
            return;
        };
        let now = second(clock);
        // A jump past the whole wheel (a gap in the capture): every bucket
        // is due, in order, once.
        let last = now.min(next + BUCKETS as i64);
        while next < last {
            let i = next.rem_euclid(BUCKETS as i64) as usize;
            if let Some(b) = self.buckets.get_mut(i) {
                let filed = &self.filed;
                // Each entry's check reads a random place in `filed`: start
                // loading them all before the first (they overlap).
                for &s in b.iter() {
                    crate::prefetch::element(filed, s as usize);
                }
                out.extend(
                    b.drain(..)
                        .filter(|&s| filed.get(s as usize).copied() == Some(next)),
                );
            }
            next += 1;
        }
        // Entries filed beyond the wheel (clamped into its last bucket)
        // were taken above; those come back when refiled.
        self.start_at(next.max(now));
    }

    /// Forgets everything (the table is empty again).
    pub(crate) fn clear(&mut self) {
        for b in &mut self.buckets {
            *b = Vec::new();
        }
        self.filed = Vec::new();
        self.next = None;
        self.due_at = i64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(w: &mut Wheel, clock_s: i64) -> Vec<u32> {
        let mut out = Vec::new();
        w.take_due(clock_s * SEC, &mut out);
        out
    }

    #[test]
    fn buckets_come_due_once_their_second_has_passed() {
        let mut w = Wheel::default();
        w.file(1, 10 * SEC + 300, 0);
        w.file(2, 12 * SEC, 0);
        w.file(3, 10 * SEC + 999_999_999, 0);
        assert!(due(&mut w, 10).is_empty());
        assert!(!w.is_due(11 * SEC - 1));
        assert!(w.is_due(11 * SEC));
        assert_eq!(due(&mut w, 11), vec![1, 3]);
        assert!(due(&mut w, 12).is_empty());
        assert_eq!(due(&mut w, 20), vec![2]);
    }

    #[test]
    fn only_the_latest_filing_of_a_slot_counts() {
        let mut w = Wheel::default();
        w.file(7, 100 * SEC, 0);
        // Shortened (a FIN): filed earlier; a later deadline is no shortening.
        w.file_earlier(7, 20 * SEC, 0);
        w.file_earlier(7, 50 * SEC, 0);
        assert_eq!(due(&mut w, 60), vec![7]);
        // The first filing (second 100) no longer counts.
        assert!(due(&mut w, 200).is_empty());
        // A slot forgotten (its flow ended) comes back with its next flow only.
        w.file(8, 300 * SEC, 200 * SEC);
        w.forget(8);
        assert!(due(&mut w, 400).is_empty());
    }

    #[test]
    fn deadlines_beyond_the_span_and_jumps_past_it_are_handled() {
        let mut w = Wheel::default();
        let far = (BUCKETS as i64 + 500) * SEC;
        w.file(1, far, 0);
        w.file(2, 5 * SEC, 0);
        // The far one sits in the last bucket, due at the wheel's end.
        assert_eq!(due(&mut w, 6), vec![2]);
        assert_eq!(due(&mut w, BUCKETS as i64), vec![1]);
        // A jump of days: everything filed comes due once, and the wheel
        // goes on from the new time.
        w.file(3, (BUCKETS as i64 + 10) * SEC, BUCKETS as i64 * SEC);
        assert_eq!(due(&mut w, 10 * BUCKETS as i64), vec![3]);
        w.file(
            4,
            (10 * BUCKETS as i64 + 2) * SEC,
            10 * BUCKETS as i64 * SEC,
        );
        assert_eq!(due(&mut w, 10 * BUCKETS as i64 + 3), vec![4]);
    }
}
