//! Unit tests on synthetic series: one per case the algorithm must handle.

use super::score::{analyze, bowley, size_score};
use super::series::{BURST_GAP_NS, MAX_INTERVALS, MAX_SIZES};
use super::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f64 {
        self.unit() * 2.0 - 1.0
    }
}

const T0: i64 = 1_505_296_800; // 2017-09-13T10:00:00Z

fn ts(secs: f64) -> Timestamp {
    Timestamp(T0 * 1_000_000_000 + (secs * 1e9) as i64)
}

/// A beacon every `period` s for `span` s, each interval jittered by up to
/// ±`jitter` (the sleep-with-jitter model: errors accumulate).
fn beacon_times(period: f64, jitter: f64, span: f64, rng: &mut Rng) -> Vec<f64> {
    let mut t = rng.unit() * period;
    let mut out = Vec::new();
    while t < span {
        out.push(t);
        t += period * (1.0 + jitter * rng.sym());
    }
    out
}

fn feed(times: &[f64], bytes: u64) -> Beacons {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut b = Beacons::default();
    for &t in &sorted {
        b.connection(ts(t));
        b.connection_bytes(ts(t), bytes);
    }
    b
}

fn window(span: f64) -> Option<(Timestamp, Timestamp)> {
    Some((ts(0.0), ts(span)))
}

const DAY: f64 = 86_400.0;

/// Poisson arrivals (at least a burst window apart) with the given mean.
fn random_times(mean: f64, n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut t = 0.0;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(t);
        t += 5.0 - mean * (1.0 - rng.unit()).ln();
    }
    v
}

fn result(times: &[f64], span: f64) -> Option<Beacon> {
    feed(times, 4_000).result(window(span))
}

fn within(actual: f64, expected: f64, rel: f64) -> bool {
    (actual - expected).abs() <= rel * expected
}

#[test]
fn clean_five_minute_beacon() {
    let times: Vec<f64> = (0..288).map(|i| 30.0 + 300.0 * f64::from(i)).collect();
    let b = result(&times, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.001), "{b:?}");
    assert!(b.primary.jitter < 0.001, "{b:?}");
    assert!(b.primary.score > 0.99, "{b:?}");
    assert_eq!(b.primary.count, 288);
    assert_eq!(b.second, None);
    assert_eq!(b.source, Source::Connections);
}

#[test]
fn jitter_of_fifteen_percent_is_still_a_beacon() {
    let mut rng = Rng::new(15);
    let times = beacon_times(300.0, 0.15, DAY, &mut rng);
    let b = result(&times, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.03), "{b:?}");
    // Uniform ±15 % has a median absolute deviation of 7.5 %.
    assert!((0.05..0.10).contains(&b.primary.jitter), "{b:?}");
    assert!(b.primary.score > 0.9, "{b:?}");
    assert_eq!(b.primary.count, times.len() as u64);
}

#[test]
fn missed_beacons_fold_onto_the_period() {
    let mut rng = Rng::new(30);
    let all = beacon_times(300.0, 0.10, DAY, &mut rng);
    let times: Vec<f64> = all.iter().copied().filter(|_| rng.unit() >= 0.3).collect();
    assert!(times.len() < 220, "about 30 % dropped: {}", times.len());
    let b = result(&times, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.02), "{b:?}");
    assert!(b.primary.score > 0.8, "{b:?}");
    assert_eq!(b.primary.count, times.len() as u64);
    // Whole hours missing (a laptop asleep) are a pause, not noise.
    let asleep: Vec<f64> = all
        .iter()
        .copied()
        .filter(|t| !(20_000.0..40_000.0).contains(t))
        .collect();
    let b = result(&asleep, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.02), "{b:?}");
    assert!(b.primary.score > 0.9, "{b:?}");
}

#[test]
fn interleaved_five_minute_and_hourly_periods() {
    let mut rng = Rng::new(3600);
    let mut times = beacon_times(300.0, 0.10, DAY, &mut rng);
    let fast = times.len() as u64;
    let hourly = beacon_times(3600.0, 0.05, DAY, &mut rng);
    times.extend(&hourly);
    let b = result(&times, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.03), "{b:?}");
    assert!(b.primary.score > 0.9, "{b:?}");
    assert!(b.primary.count.abs_diff(fast) <= 3, "{b:?} vs {fast}");
    let second = b.second.expect("the hourly checks");
    assert!(within(second.period_s, 3600.0, 0.03), "{second:?}");
    assert!(
        second.count.abs_diff(hourly.len() as u64) <= 2,
        "{second:?}"
    );
}

#[test]
fn a_browser_burst_is_not_a_beacon() {
    // 30 connections in 2 s: one session.
    let burst: Vec<f64> = (0..30).map(|i| 1000.0 + f64::from(i) * 0.068).collect();
    let b = feed(&burst, 1500);
    assert_eq!(b.connections.sessions, 1);
    assert_eq!(b.connections.starts, 30);
    assert_eq!(b.result(window(DAY)), None);
    // Bursts at random times of day: still nothing.
    let mut rng = Rng::new(2);
    let mut times = Vec::new();
    for _ in 0..40 {
        let at = rng.unit() * DAY;
        times.extend((0..30).map(|i| at + f64::from(i) * 0.068));
    }
    assert_eq!(result(&times, DAY), None);
    // A burst in the middle of a beacon neither breaks nor inflates it.
    let mut times: Vec<f64> = (0..288).map(|i| 300.0 * f64::from(i)).collect();
    times.extend(burst);
    let b = result(&times, DAY).expect("a beacon");
    assert!(within(b.primary.period_s, 300.0, 0.001), "{b:?}");
    assert!(b.primary.count >= 287, "{b:?}");
}

#[test]
fn a_one_off_visit_is_null() {
    let visit = [3600.0, 3600.4, 3601.0, 3601.2];
    assert_eq!(result(&visit, DAY), None);
    assert_eq!(result(&[42.0], DAY), None);
    assert_eq!(Beacons::default().result(window(DAY)), None);
}

#[test]
fn retries_a_second_apart_are_one_session() {
    // Each beacon is tried three times, a second apart (RITA issue 117).
    let times: Vec<f64> = (0..288)
        .flat_map(|i| {
            let t = 300.0 * f64::from(i);
            [t, t + 1.0, t + 2.0]
        })
        .collect();
    let b = feed(&times, 120);
    assert_eq!(b.connections.sessions, 288);
    let r = b.result(window(DAY)).expect("a beacon");
    assert!(within(r.primary.period_s, 300.0, 0.001), "{r:?}");
    assert_eq!(r.primary.count, 288);
    // Failed retries alone, a second apart, all day: one long session.
    let strobe: Vec<f64> = (0..3600).map(f64::from).collect();
    assert_eq!(result(&strobe, DAY), None);
}

#[test]
fn too_few_sessions_are_null() {
    for n in 1..MIN_BEATS {
        let times: Vec<f64> = (0..n).map(|i| 300.0 * i as f64).collect();
        assert_eq!(result(&times, 2000.0), None, "{n} sessions");
    }
    let times: Vec<f64> = (0..MIN_BEATS).map(|i| 300.0 * i as f64).collect();
    let b = result(&times, 1500.0).expect("six exact beats suffice");
    assert_eq!(b.primary.count, MIN_BEATS as u64);
}

#[test]
fn hostile_timestamps_do_not_panic() {
    let extremes = [
        Timestamp(0),
        Timestamp(i64::MAX),
        Timestamp(i64::MIN),
        Timestamp(1),
        Timestamp(i64::MAX - 1),
        Timestamp(-1),
    ];
    let mut b = Beacons::default();
    for ts in extremes.iter().cycle().take(600) {
        b.connection(*ts);
        b.connection_bytes(*ts, u64::MAX);
        b.dns_query(*ts);
    }
    let _ = b.result(Some((Timestamp(i64::MIN), Timestamp(i64::MAX))));
    let _ = b.result(Some((Timestamp(i64::MAX), Timestamp(i64::MIN))));
    // Equal timestamps: one session.
    let mut b = Beacons::default();
    for _ in 0..1000 {
        b.connection(ts(5.0));
    }
    assert_eq!(b.connections.sessions, 1);
    assert_eq!(b.result(window(DAY)), None);
    // Reversed order: each start is late, none is kept as a session.
    let mut b = Beacons::default();
    for i in (0..100).rev() {
        b.connection(ts(300.0 * f64::from(i)));
    }
    assert_eq!(b.connections.sessions, 1);
    assert_eq!(b.connections.late, 99);
    assert_eq!(b.result(window(DAY)), None);
    // 1970 then 2262: the interval saturates and is a pause.
    let mut b = Beacons::default();
    for i in 0..10 {
        b.connection(Timestamp(i * 300_000_000_000));
    }
    for i in 0..10 {
        b.connection(Timestamp(i64::MAX - (10 - i) * 300_000_000_000));
    }
    let r = b.result(None).expect("two runs of ten beats");
    assert!(within(r.primary.period_s, 300.0, 0.001), "{r:?}");
    // NaN and infinities never reach the scorer from a series, but the
    // scorer refuses them anyway.
    assert_eq!(
        analyze(&[0.0, f64::NAN, 1.0, 2.0, 3.0, 4.0], &[], None),
        None
    );
    assert_eq!(analyze(&[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], &[], None), None);
    let inf = [0.0, 300.0, 600.0, 900.0, 1200.0, f64::INFINITY];
    let _ = analyze(&inf, &[], Some(f64::INFINITY));
}

#[test]
fn random_arrivals_are_not_beacons() {
    let mut worst: f64 = 0.0;
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        for (mean, n) in [
            (300.0, 288),
            (60.0, 400),
            (3600.0, 24),
            (600.0, 12),
            (120.0, 30),
        ] {
            let times = random_times(mean, n, &mut rng);
            let span = times.last().copied().unwrap_or(0.0);
            let found = analyze(&times, &[], Some(span));
            let score = found.map_or(0.0, |f| f.primary.score);
            worst = worst.max(score);
            assert!(
                score < THRESHOLD,
                "seed {seed}, mean {mean}, n {n}: {found:?}"
            );
        }
    }
    assert!(worst > 0.0, "the scorer looked at something");
}

#[test]
fn streaming_confirms_as_soon_as_the_evidence_suffices() {
    // A clean beacon is confirmed within its first few beats...
    let mut b = Beacons::default();
    for i in 0..288 {
        b.connection(ts(300.0 * f64::from(i)));
        if b.confirmed_at.is_some() {
            break;
        }
    }
    let at = b.confirmed_at.expect("confirmed");
    let beats = at.secs_since(ts(0.0)) / 300.0 + 1.0;
    assert!(beats <= 10.0, "confirmed at beat {beats}");
    // ... a ±15 % one needs more beats, and still gets there...
    let mut rng = Rng::new(9);
    let mut b = Beacons::default();
    for t in beacon_times(300.0, 0.15, DAY, &mut rng) {
        b.connection(ts(t));
    }
    let at = b.confirmed_at.expect("confirmed").secs_since(ts(0.0));
    assert!(
        at > 10.0 * 300.0 && at < 8.0 * 3600.0,
        "confirmed after {at} s"
    );
    assert_eq!(
        b.result(window(DAY)).and_then(|r| r.confirmed_at),
        b.confirmed_at
    );
    // ... and random arrivals never are.
    let mut rng = Rng::new(10);
    let mut b = Beacons::default();
    for t in random_times(300.0, 288, &mut rng) {
        b.connection(ts(t));
    }
    assert_eq!(b.confirmed_at, None);
}

#[test]
fn memory_is_bounded() {
    let mut b = Beacons::default();
    for i in 0..100_000u32 {
        b.connection(ts(60.0 * f64::from(i)));
        b.connection_bytes(ts(60.0 * f64::from(i)), 1000 + u64::from(i % 7));
        b.dns_query(ts(60.0 * f64::from(i)));
    }
    assert!(
        b.heap_bytes() <= 2 * MAX_INTERVALS * 4 + MAX_SIZES * 16,
        "{}",
        b.heap_bytes()
    );
    assert_eq!(b.connections.kept(), MAX_INTERVALS + 1);
    assert_eq!(b.connections.sessions, 100_000);
    let r = b.result(window(6_000_000.0)).expect("a beacon");
    assert!(within(r.primary.period_s, 60.0, 0.001), "{r:?}");
    assert_eq!(r.primary.count, 100_000, "scaled from the kept share");
}

#[test]
fn dns_queries_speak_when_connections_do_not() {
    let mut b = Beacons::default();
    for i in 0..48 {
        let t = ts(600.0 * f64::from(i));
        b.dns_query(t);
        // The AAAA query and a retransmission are the same lookup.
        b.dns_query(Timestamp(t.0 + 3_000_000));
        b.dns_query(Timestamp(t.0 + BURST_GAP_NS / 2));
    }
    let r = b.result(window(DAY)).expect("a DNS beacon");
    assert_eq!(r.source, Source::Dns);
    assert!(within(r.primary.period_s, 600.0, 0.001), "{r:?}");
    assert_eq!(r.primary.count, 48);
    // When the connections beat too, they are preferred.
    for i in 0..48 {
        b.connection(ts(600.0 * f64::from(i) + 0.05));
    }
    assert_eq!(
        b.result(window(DAY)).map(|r| r.source),
        Some(Source::Connections)
    );
}

#[test]
fn merge_is_exact_for_disjoint_sides_and_close_otherwise() {
    let times: Vec<f64> = (0..200).map(|i| 300.0 * f64::from(i)).collect();
    let whole = feed(&times, 900);
    let mut a = Beacons::default();
    a.merge(whole.clone());
    assert_eq!(a.result(window(DAY)), whole.result(window(DAY)));
    let mut b = whole.clone();
    b.merge(Beacons::default());
    assert_eq!(b.result(window(DAY)), whole.result(window(DAY)));
    // Two halves of one series (not a case sharding by host produces).
    let (first, second) = times.split_at(100);
    let mut x = feed(second, 900);
    x.merge(feed(first, 900));
    let (rx, rw) = (x.result(window(DAY)), whole.result(window(DAY)));
    assert_eq!(rx.map(|r| r.primary.count), rw.map(|r| r.primary.count));
    assert_eq!(x.connections.first(), whole.connections.first());
}

#[test]
fn sizes_and_skew_in_ritas_manner() {
    assert_eq!(size_score(&[1, 2]), None);
    assert_eq!(size_score(&[500; 20]), Some(1.0));
    let wild = [10, 90_000, 300, 7, 65_000, 1_200, 4, 30_000, 800, 2];
    assert!(
        size_score(&wild).is_some_and(|s| s < 0.5),
        "{:?}",
        size_score(&wild)
    );
    assert_eq!(bowley(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0), 0.0);
    assert!(bowley(&[1.0, 1.1, 1.2, 5.0, 9.0], 0.0) > 0.5);
    assert_eq!(bowley(&[1.0, 1.0, 1.0, 1.0], 0.0), 0.0);
}

/// RITA v5's timestamp score (analysis/beacons.go; ../shared/peers.md):
/// mean of `1 − |Bowley skew|` and `(median − MAD) / median` of the sorted
/// inter-arrival times; with the median interval, the period it implies.
fn rita_ts_score(times: &[f64]) -> (f64, f64) {
    let mut d: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    if d.len() < 3 {
        return (0.0, 0.0);
    }
    d.sort_by(f64::total_cmp);
    let skew = 1.0 - bowley(&d, 10.0).abs();
    let med = d[d.len() / 2];
    let mut dev: Vec<f64> = d.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = dev[dev.len() / 2];
    let mad_score = if med < 1.0 {
        1.0
    } else {
        ((med - mad) / med).max(0.0)
    };
    ((skew + mad_score) / 2.0, med)
}

#[test]
fn better_than_rita_where_rita_stumbles() {
    let mut rng = Rng::new(117);
    let day = beacon_times(300.0, 0.10, DAY, &mut rng);
    let missed: Vec<f64> = day.iter().copied().filter(|_| rng.unit() >= 0.4).collect();
    let mut interleaved = day.clone();
    interleaved.extend(beacon_times(3600.0, 0.05, DAY, &mut rng));
    interleaved.sort_by(f64::total_cmp);
    let retries: Vec<f64> = day.iter().flat_map(|t| [*t, t + 1.0, t + 2.0]).collect();
    let mut bursty = day.clone();
    for _ in 0..24 {
        let at = rng.unit() * DAY;
        bursty.extend((0..30).map(|i| at + f64::from(i) * 0.07));
    }
    bursty.sort_by(f64::total_cmp);
    // Interleaving: RITA's median-based score survives one interloper in
    // thirteen, but it has no way to say there are two clocks.
    let two = result(&interleaved, DAY).expect("a beacon");
    assert!(
        two.second.is_some_and(|s| within(s.period_s, 3600.0, 0.03)),
        "{two:?}"
    );
    for (name, times) in [
        ("missed 40 %", &missed),
        ("retries 1 s apart", &retries),
        ("browser bursts", &bursty),
    ] {
        let ours = result(times, DAY).expect("a beacon");
        let (rita, rita_period) = rita_ts_score(times);
        eprintln!(
            "{name}: ours {:.3} at {:.1} s; RITA timestamp score {rita:.3}, median interval {rita_period:.1} s",
            ours.primary.score, ours.primary.period_s
        );
        assert!(ours.primary.score >= 0.85, "{name}: {ours:?}");
        assert!(
            within(ours.primary.period_s, 300.0, 0.03),
            "{name}: {ours:?}"
        );
        let stumbles = rita < ours.primary.score - 0.1 || !within(rita_period, 300.0, 0.25);
        assert!(stumbles, "{name}: RITA {rita} at {rita_period} s");
    }
}
