//! The bounded streaming state of one series of contacts (connection starts
//! or DNS queries): starts closer than [`BURST_GAP_NS`] to the previous
//! one are one session (a browser's burst, an application's retries a
//! second apart, an A and an AAAA query); the intervals between session
//! starts are kept in a ring of [`MAX_INTERVALS`], connection sizes in a
//! ring of [`MAX_SIZES`]. Everything else is counters.

use super::score::{self, Found};
use crate::capture::Timestamp;

/// Starts within this many nanoseconds of the previous start join its
/// session (5 s: application retries, browser bursts, A+AAAA lookups and
/// DNS retransmissions all fall inside; a beacon period is at least three
/// times longer, [`score::MIN_PERIOD_S`]).
pub const BURST_GAP_NS: i64 = 5_000_000_000;

/// Intervals between sessions kept (the most recent): 2 KiB at the cap;
/// 42 hours of a 5-minute beacon.
pub const MAX_INTERVALS: usize = 512;

/// Connection sizes kept: 1 KiB at the cap.
pub const MAX_SIZES: usize = 128;

/// A bounded sample of connection sizes that does not depend on the order in
/// which connections end (they end when the flow table lets them go, which
/// differs between one and N worker threads): each size is keyed by a hash
/// of its connection's start time and the [`MAX_SIZES`] smallest keys stay
/// (a bottom-k sample, uniform over the connections).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct SizeSample {
    kept: Vec<(u64, u32)>,
}

/// SplitMix64's finaliser: a fixed, well-mixed hash of a start time.
fn mix(ts: Timestamp) -> u64 {
    let mut z = (ts.0 as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SizeSample {
    fn push(&mut self, key: u64, size: u32) {
        if self.kept.len() < MAX_SIZES {
            self.kept.push((key, size));
            return;
        }
        // Replace the largest key if this one is smaller (ties by size, so
        // the outcome is the same in any order).
        if let Some((i, max)) = self
            .kept
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(_, e)| *e)
            && (key, size) < max
            && let Some(slot) = self.kept.get_mut(i)
        {
            *slot = (key, size);
        }
    }

    fn sizes(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.kept.iter().map(|e| e.1).collect();
        v.sort_unstable();
        v
    }
}

/// A ring of at most `cap` values: grows with use, then overwrites the
/// oldest. An empty ring allocates nothing.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Ring {
    buf: Vec<u32>,
    /// Index of the oldest value once the ring is full.
    head: usize,
}

impl Ring {
    fn push(&mut self, v: u32, cap: usize) {
        if self.buf.len() < cap {
            self.buf.push(v);
        } else if let Some(slot) = self.buf.get_mut(self.head) {
            *slot = v;
            self.head = (self.head + 1) % cap.max(1);
        }
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (a, b) = self.buf.split_at(self.head.min(self.buf.len()));
        b.iter().chain(a).copied()
    }
}

/// The session being extended.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Open {
    /// First start of the first session ever.
    first: Timestamp,
    /// First start of the current session.
    start: Timestamp,
    /// Latest start in the current session.
    last: Timestamp,
}

/// One series: bounded state, O(1) per start.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Series {
    open: Option<Open>,
    /// Milliseconds between consecutive session starts (saturating).
    intervals: Ring,
    /// Bytes per connection (saturating).
    sizes: SizeSample,
    /// Starts pushed.
    pub starts: u64,
    /// Sessions (bursts count once).
    pub sessions: u64,
    /// Starts older than the current session, dropped (input out of order
    /// by more than a burst window).
    pub late: u64,
}

impl Series {
    /// The same series with its bounds restored (see
    /// [`super::Beacons::sanitized`]): at most [`MAX_INTERVALS`] intervals
    /// with the ring's head inside them, at most [`MAX_SIZES`] sizes, and a
    /// current session that does not start before the first.
    pub(super) fn sanitized(mut self) -> Self {
        self.intervals.buf.truncate(MAX_INTERVALS);
        self.intervals.buf.shrink_to_fit();
        let len = self.intervals.buf.len();
        self.intervals.head = if len < MAX_INTERVALS {
            0
        } else {
            self.intervals.head % len
        };
        self.sizes.kept.truncate(MAX_SIZES);
        self.sizes.kept.shrink_to_fit();
        if let Some(o) = self.open.as_mut() {
            o.start = o.start.max(o.first);
            o.last = o.last.max(o.start);
        }
        self.sessions = self.sessions.max(self.intervals.len() as u64);
        self.starts = self.starts.max(self.sessions);
        self
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.open.is_none()
    }

    /// A contact began at `ts`. Returns true when it opened a new session.
    pub fn push_start(&mut self, ts: Timestamp) -> bool {
        self.starts += 1;
        let Some(o) = self.open.as_mut() else {
            self.open = Some(Open {
                first: ts,
                start: ts,
                last: ts,
            });
            self.sessions = 1;
            return true;
        };
        if ts.0 >= o.last.0 {
            if ts.0.saturating_sub(o.last.0) <= BURST_GAP_NS {
                o.last = ts;
                return false;
            }
            let ms = ts.0.saturating_sub(o.start.0) / 1_000_000;
            let ms = u32::try_from(ms).unwrap_or(u32::MAX);
            self.intervals.push(ms, MAX_INTERVALS);
            o.start = ts;
            o.last = ts;
            self.sessions += 1;
            return true;
        }
        if ts.0 < o.start.0.saturating_sub(BURST_GAP_NS) {
            self.late += 1;
        }
        false
    }

    /// The connection that began at `start` carried `bytes` (both
    /// directions, on the wire).
    pub fn push_size(&mut self, start: Timestamp, bytes: u64) {
        self.sizes
            .push(mix(start), u32::try_from(bytes).unwrap_or(u32::MAX));
    }

    /// A contact that began at `start` and carried `bytes`.
    pub fn push(&mut self, start: Timestamp, bytes: u64) {
        self.push_start(start);
        self.push_size(start, bytes);
    }

    /// Sessions still in the ring (the current one included).
    pub fn kept(&self) -> usize {
        if self.open.is_some() {
            self.intervals.len() + 1
        } else {
            0
        }
    }

    /// First start ever.
    pub fn first(&self) -> Option<Timestamp> {
        self.open.map(|o| o.first)
    }

    /// Start of the latest session.
    pub fn latest(&self) -> Option<Timestamp> {
        self.open.map(|o| o.start)
    }

    /// The kept session starts in seconds after the oldest kept one, and
    /// that oldest start (absolute).
    pub fn times(&self) -> (Vec<f64>, Timestamp) {
        let Some(o) = self.open else {
            return (Vec::new(), Timestamp::default());
        };
        let mut out = Vec::with_capacity(self.kept());
        let mut t = 0.0;
        out.push(0.0);
        let mut total_ns: i64 = 0;
        for ms in self.intervals.iter() {
            t += f64::from(ms) / 1e3;
            total_ns = total_ns.saturating_add(i64::from(ms) * 1_000_000);
            out.push(t);
        }
        (out, Timestamp(o.start.0.saturating_sub(total_ns)))
    }

    /// The analysis of the kept sessions; `window` is the observation
    /// window (for coverage), when known. Without `with_sizes` the sizes
    /// are left out (the streaming check: sizes arrive when connections
    /// end, at times that depend on the flow table, not on the input).
    pub fn analyze(
        &self,
        window: Option<(Timestamp, Timestamp)>,
        with_sizes: bool,
    ) -> Option<(Found, Timestamp)> {
        let (times, origin) = self.times();
        let sizes = if with_sizes {
            self.sizes.sizes()
        } else {
            Vec::new()
        };
        let window_s = window.map(|(a, b)| b.secs_since(a));
        score::analyze(&times, &sizes, window_s).map(|f| (f, origin))
    }

    /// Absolute starts of the kept sessions.
    fn session_starts(&self) -> Vec<Timestamp> {
        let (times, origin) = self.times();
        let mut acc = origin;
        let mut prev = 0.0;
        times
            .iter()
            .map(|t| {
                acc = Timestamp(acc.0.saturating_add(((t - prev) * 1e9) as i64));
                prev = *t;
                acc
            })
            .collect()
    }

    /// Adds `other` (the same destination seen by another worker). Exact
    /// when one side is empty (disjoint hosts); otherwise the kept
    /// sessions of both are replayed in time order (a session of one side
    /// within a burst window of the other's joins it) and the counters add.
    pub fn merge(&mut self, other: Series) {
        if other.is_empty() {
            self.late += other.late;
            return;
        }
        if self.is_empty() {
            let late = self.late;
            *self = other;
            self.late += late;
            return;
        }
        let mut starts = self.session_starts();
        starts.extend(other.session_starts());
        starts.sort_unstable();
        let first = self.first().into_iter().chain(other.first()).min();
        let mut merged = Series::default();
        for ts in starts {
            merged.push_start(ts);
        }
        for (key, size) in self.sizes.kept.iter().chain(other.sizes.kept.iter()) {
            merged.sizes.push(*key, *size);
        }
        if let (Some(o), Some(f)) = (merged.open.as_mut(), first) {
            o.first = f;
        }
        merged.starts = self.starts + other.starts;
        merged.sessions = merged.sessions.max(self.sessions + other.sessions);
        merged.late = self.late + other.late;
        *self = merged;
    }

    /// Bytes this series holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.intervals.buf.capacity() * 4 + self.sizes.kept.capacity() * 16
    }
}
