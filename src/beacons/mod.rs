//! Beacons: is a host contacting a destination on a clock?
//!
//! Every destination a host has (a vendor contact, a watched place, a
//! server address) can own a [`Beacons`]: two bounded [`Series`], one of
//! connection starts (TCP SYN or first packet, UDP/QUIC flow start) with
//! the bytes of each connection, one of DNS queries for the destination's
//! names. Feeding them is O(1) and allocation-free once their rings are
//! full; [`Beacons::result`] says whether either series beats.
//!
//! # The algorithm
//!
//! 1. **Sessions.** A start within 5 s ([`series::BURST_GAP_NS`]) of the
//!    previous one joins its session: a browser opening 30 connections in
//!    2 s, an application retrying a second apart, an A and an AAAA query
//!    are one event, not 30 one-second "beacons" (RITA's issue 117). Only
//!    intervals between session starts are kept: a ring of the latest 512.
//! 2. **Period.** Candidates are 24 quantiles of the intervals, each moved
//!    twice to the median of `d/k` over the intervals it fits — `d` fits
//!    `k` beats when `|d − k·P| ≤ 0.25·P`, `1 ≤ k ≤ 8` — and the candidate
//!    whose fitting intervals weigh most (each `1/k`) wins. Missed beacons
//!    (intervals of 2P, 3P) fold onto P instead of ruining the median, and
//!    P's fractions and multiples lose to P itself.
//! 3. **Beat walk.** From the last on-beat session, each next session falls
//!    on some beat; of several sessions on one beat the closest is on the
//!    beat and the rest are interlopers; a gap beyond 8 beats is a pause
//!    (laptop asleep) and the walk restarts. The walk starts from the best
//!    of the first three sessions.
//! 4. **Interleaving.** The interlopers are analysed the same way: hourly
//!    update checks among 5-minute reputation lookups come out as a second
//!    period, and the sessions it explains no longer count against the
//!    first.
//! 5. **Score** (0..=1, a beacon from 0.7 with at least 6 on-beat
//!    sessions): 0.35 timing — full up to a median deviation of 8 % of the
//!    period (uniform ±15 % jitter has 7.5 %), none at 12.5 %, where the
//!    deviations spread evenly over the tolerance window; 0.25 share of
//!    sessions on a beat; 0.15 share of beats not missed; 0.05 symmetry of
//!    the deviations (Bowley skew); 0.10 data-size regularity (RITA's
//!    Bowley + MAD of the connection sizes); 0.10 durability (coverage of
//!    the observation window, or 24 beats). `jitter` is the median absolute
//!    deviation of the on-beat intervals from the period, over the period.
//!
//! # Why it beats RITA
//!
//! RITA (v5, `analysis/beacons.go`) scores the raw inter-arrival
//! distribution: its median absolute deviation and Bowley skew. A single
//! missed beacon, one hourly check among 5-minute lookups or a burst of
//! browser connections puts a far-off value in that distribution, and a
//! series whose intervals are 300 s and 600 s in equal parts has a MAD of
//! 150 s — RITA's timestamp score falls while the clock is intact. Here
//! intervals are judged against the period, multiples fold, interlopers
//! are set aside (and may form a second period), bursts are one session,
//! and jitter within ±15 % keeps full timing credit. RITA also needs its
//! whole dataset; this is streaming: [`Beacons::connection`] re-checks
//! after every eighth of the kept sessions and records when the evidence
//! first sufficed ([`Beacons::confirmed_at`]), which is what live capture
//! reports.
//!
//! # Connections or DNS
//!
//! Both series are kept because each fails differently. Connections are
//! what the agent does, but may be invisible (a proxy, traffic outside the
//! tap while its DNS goes through a watched resolver). DNS queries are
//! cached — by the OS stub, by the agent, by a local resolver — so their
//! period follows TTLs, not the beacon, and mixing them into the connection
//! series would add half-period interlopers. The report takes the
//! connection series when it beats and the DNS series only otherwise, and
//! says which (`source`).
//!
//! # Memory
//!
//! Per destination at most 2 × 2 KiB of intervals + 2 KiB of sizes + about
//! 150 B of fixed state; a destination with a handful of contacts holds a
//! few dozen bytes. Rings grow only as sessions arrive.

pub mod score;
pub mod series;

#[cfg(test)]
mod tests;

pub use score::{Found, MIN_BEATS, Period, THRESHOLD};
pub use series::Series;

use crate::capture::Timestamp;

/// Which series a beacon was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Connection starts.
    Connections,
    /// DNS queries for the destination's names.
    Dns,
}

impl Source {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Connections => "connections",
            Source::Dns => "dns",
        }
    }
}

/// One period of a beacon, ready to report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeaconPeriod {
    /// Period, seconds.
    pub period_s: f64,
    /// Median absolute deviation from the period, as a fraction of it.
    pub jitter: f64,
    /// Score, 0..=1.
    pub score: f64,
    /// On-beat sessions (estimated from the kept share once more than
    /// [`series::MAX_INTERVALS`] sessions were seen).
    pub count: u64,
}

/// A beacon found for a destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Beacon {
    /// The dominant period.
    pub primary: BeaconPeriod,
    /// A second, interleaved period.
    pub second: Option<BeaconPeriod>,
    /// The series it was found in.
    pub source: Source,
    /// When the streaming check first found it (the start of the session
    /// that made the evidence suffice).
    pub confirmed_at: Option<Timestamp>,
}

/// Beacon state of one destination: connection and DNS series, and the
/// streaming confirmation. Kept in the live state file, so a restarted
/// sensor goes on with the series instead of starting them again
/// ([`Beacons::sanitized`] restores the invariants of one read back).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Beacons {
    /// Connection starts and sizes.
    pub connections: Series,
    /// DNS queries for the destination's names.
    pub dns: Series,
    /// When the streaming check first confirmed a beacon.
    pub confirmed_at: Option<Timestamp>,
    /// Sessions since the last streaming check, per series.
    unchecked: [u32; 2],
}

fn period(p: &Period, total_sessions: u64, kept: usize) -> BeaconPeriod {
    let count = if kept > 0 && total_sessions > kept as u64 {
        (p.beats as f64 * total_sessions as f64 / kept as f64).round() as u64
    } else {
        p.beats as u64
    };
    BeaconPeriod {
        period_s: p.period_s,
        jitter: p.jitter,
        score: p.score,
        count,
    }
}

fn beacon(
    series: &Series,
    window: Option<(Timestamp, Timestamp)>,
    source: Source,
    with_sizes: bool,
) -> Option<Beacon> {
    let (found, _) = series.analyze(window, with_sizes)?;
    if found.primary.score < THRESHOLD {
        return None;
    }
    let kept = series.kept();
    Some(Beacon {
        primary: period(&found.primary, series.sessions, kept),
        second: found.second.map(|s| period(&s, series.sessions, kept)),
        source,
        confirmed_at: None,
    })
}

impl Beacons {
    /// A connection to the destination began at `start`.
    pub fn connection(&mut self, start: Timestamp) {
        if self.connections.push_start(start) {
            self.streaming_check(Source::Connections);
        }
    }

    /// The connection to the destination that began at `start` ended
    /// having carried `bytes`.
    pub fn connection_bytes(&mut self, start: Timestamp, bytes: u64) {
        self.connections.push_size(start, bytes);
    }

    /// A DNS query for one of the destination's names, at `ts`.
    pub fn dns_query(&mut self, ts: Timestamp) {
        if self.dns.push_start(ts) {
            self.streaming_check(Source::Dns);
        }
    }

    /// Re-scores a series after every eighth of its kept sessions (O(1)
    /// amortised per session) until a beacon is confirmed.
    fn streaming_check(&mut self, source: Source) {
        if self.confirmed_at.is_some() {
            return;
        }
        let (series, unchecked) = match source {
            Source::Connections => (&self.connections, &mut self.unchecked[0]),
            Source::Dns => (&self.dns, &mut self.unchecked[1]),
        };
        *unchecked = unchecked.saturating_add(1);
        let kept = series.kept();
        if kept < MIN_BEATS || (*unchecked as usize) < (kept / 8).max(1) {
            return;
        }
        *unchecked = 0;
        if beacon(series, None, source, false).is_some() {
            self.confirmed_at = series.latest();
        }
    }

    /// The beacon, if either series beats: the connection series first.
    /// `window` is the observation window, for coverage.
    pub fn result(&self, window: Option<(Timestamp, Timestamp)>) -> Option<Beacon> {
        beacon(&self.connections, window, Source::Connections, true)
            .or_else(|| beacon(&self.dns, window, Source::Dns, true))
            .map(|mut b| {
                b.confirmed_at = self.confirmed_at;
                b
            })
    }

    /// Adds another worker's state for the same destination (exact for
    /// disjoint hosts, where one side is empty; see [`Series::merge`]).
    pub fn merge(&mut self, other: Beacons) {
        self.connections.merge(other.connections);
        self.dns.merge(other.dns);
        self.confirmed_at = match (self.confirmed_at, other.confirmed_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.connections.heap_bytes() + self.dns.heap_bytes()
    }

    /// The same state with every bound restored, for one read from a file
    /// that may have been damaged or edited.
    pub fn sanitized(mut self) -> Self {
        self.connections = self.connections.sanitized();
        self.dns = self.dns.sanitized();
        self
    }
}
