//! Pure scoring of a series of session start times: period estimation that
//! survives missed beats, the beat walk that separates on-beat sessions
//! from interlopers, a second interleaved period found in what the first
//! leaves over, and the score. No state, no I/O; the inputs are seconds
//! relative to any origin, sorted ascending.

/// An interval `d` fits beat `k` of period `P` when `|d − k·P| ≤ TOL·P`.
/// 0.25 admits ±15 % jitter with room to spare (and a missed beat whose
/// two jittered halves add up), yet keeps neighbouring multiples apart.
pub const TOL: f64 = 0.25;

/// Longest run of missed beats bridged: an interval longer than this many
/// periods is a pause (machine asleep, capture gap), neither scored nor
/// counted as missed beats; the walk starts again after it.
pub const K_MAX: f64 = 8.0;

/// Shortest period reported, in seconds: three burst windows, so that a
/// burst coalesced into one session cannot masquerade as a beat.
pub const MIN_PERIOD_S: f64 = 15.0;

/// Fewest on-beat sessions for a period to be reported (five intervals).
pub const MIN_BEATS: usize = 6;

/// Score from which a period is a beacon.
pub const THRESHOLD: f64 = 0.7;

/// Jitter (median absolute deviation / period) still given full credit:
/// uniform ±15 % jitter has a median absolute deviation of 7.5 %.
const JITTER_FULL: f64 = 0.08;

/// Jitter given no credit: intervals spread evenly over the whole
/// tolerance window (`TOL / 2`) carry no sign of a clock.
const JITTER_ZERO: f64 = TOL / 2.0;

/// Standard deviation of one deviation `|d − k·P| / P` under chance: a
/// session landing anywhere in the tolerance window is uniform on
/// `0..TOL`, whose standard deviation is `TOL / √12`.
const NULL_SD: f64 = 0.072_168_783_648_703_22;

/// Evidence (mean deviation below chance, in standard errors) that gives
/// no score, and full score.
const EVIDENCE_NONE: f64 = 1.5;
const EVIDENCE_FULL: f64 = 3.5;

/// Share of beats present (not missed) from which the score is not
/// reduced: with more beats missed than present, a short period can be
/// fitted to random arrivals (each interval then spans many beats, and the
/// period has room to be tuned to them).
const KEPT_FULL: f64 = 0.5;

/// Period candidates tried (interval quantiles).
const SEEDS: usize = 24;

/// Sessions tried as the first anchor of the beat walk.
const ANCHORS: usize = 3;

/// Beats after which the count alone shows the beacon is durable.
const DURABLE_BEATS: f64 = 24.0;

/// One period found in a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// The period, seconds (median of the on-beat intervals, each divided
    /// by its number of beats).
    pub period_s: f64,
    /// Median absolute deviation of the on-beat intervals from the period,
    /// as a fraction of it (uniform ±J jitter gives ≈ J/2).
    pub jitter: f64,
    /// Score in 0..=1 (see this module's `score`).
    pub score: f64,
    /// On-beat sessions.
    pub beats: usize,
    /// Beats missed inside the walk (intervals of k periods miss k−1).
    pub missed: usize,
    /// Time of the first on-beat session (same origin as the input).
    pub first: f64,
    /// Time of the last on-beat session.
    pub last: f64,
    /// Mean deviation below chance, in standard errors (see this module's `score`).
    pub evidence: f64,
}

/// What [`analyze`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// The dominant period.
    pub primary: Period,
    /// A second period interleaved with the first (in the sessions the
    /// first does not explain), when it scores as a beacon itself.
    pub second: Option<Period>,
}

/// Median of a sorted slice (0 for an empty one).
fn median_sorted(v: &[f64]) -> f64 {
    quantile_sorted(v, 0.5)
}

/// Quantile `q` of a sorted slice by linear interpolation (0 when empty).
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (
        v.get(lo).copied().unwrap_or(0.0),
        v.get(hi).copied().unwrap_or(0.0),
    );
    a + (b - a) * (pos - lo as f64)
}

fn sort(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

/// Bowley (quartile) skewness of a sorted sample, in −1..=1: 0 when the
/// middle half is symmetric. As in RITA, forced to 0 when the quartile
/// range is below `min_iqr` or the median sits on a quartile (a tight
/// cluster is not skewed, only quantised).
pub fn bowley(sorted: &[f64], min_iqr: f64) -> f64 {
    let q1 = quantile_sorted(sorted, 0.25);
    let q2 = quantile_sorted(sorted, 0.5);
    let q3 = quantile_sorted(sorted, 0.75);
    let iqr = q3 - q1;
    if iqr.is_nan() || iqr < min_iqr || q2 == q1 || q2 == q3 {
        return 0.0;
    }
    ((q1 + q3 - 2.0 * q2) / iqr).clamp(-1.0, 1.0)
}

/// Data-size regularity in RITA's manner, 0..=1: the mean of `1 − |Bowley
/// skew|` and `(median − MAD) / median` of the sizes. `None` with fewer
/// than three sizes.
pub fn size_score(sizes: &[u32]) -> Option<f64> {
    if sizes.len() < 3 {
        return None;
    }
    let mut v: Vec<f64> = sizes.iter().map(|&s| f64::from(s)).collect();
    sort(&mut v);
    let skew = bowley(&v, 32.0);
    let med = median_sorted(&v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    sort(&mut dev);
    let mad = median_sorted(&dev);
    let mad_score = if med > 0.0 {
        ((med - mad) / med).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Some((1.0 - skew.abs() + mad_score) / 2.0)
}

/// The beat `k` an interval `d` fits for period `p`, with its deviation.
fn fit(d: f64, p: f64) -> Option<(f64, f64)> {
    if p.is_nan() || p <= 0.0 || !d.is_finite() {
        return None;
    }
    let x = d / p;
    if !(0.5..K_MAX + 0.5).contains(&x) {
        return None;
    }
    // Round half up by truncation (x is positive and bounded): no libm call.
    let k = (x + 0.5) as u32 as f64;
    let dev = d - k * p;
    (dev.abs() <= TOL * p).then_some((k, dev))
}

/// How well `p` explains the intervals: each fitting interval counts
/// `1/k`, so the base period beats its multiples (which miss the single
/// intervals) and its fractions (which need k ≥ 2 for everything).
fn support(sorted: &[f64], p: f64) -> f64 {
    fitting_range(sorted, p)
        .iter()
        .filter_map(|&d| fit(d, p))
        .map(|(k, _)| 1.0 / k)
        .sum()
}

/// The part of sorted intervals that can fit `p` at all.
fn fitting_range(sorted: &[f64], p: f64) -> &[f64] {
    let lo = sorted.partition_point(|d| *d < (1.0 - TOL) * p);
    let hi = sorted.partition_point(|d| *d <= (K_MAX + TOL) * p);
    sorted.get(lo..hi.max(lo)).unwrap_or(&[])
}

/// Moves `p` to the median of `d/k` over the (sorted) intervals it fits.
fn refine(sorted: &[f64], p: f64, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend(
        fitting_range(sorted, p)
            .iter()
            .filter_map(|&d| fit(d, p).map(|(k, _)| d / k)),
    );
    median_unsorted(buf).unwrap_or(p)
}

/// Median by selection (O(n), reorders `v`); `None` when empty.
fn median_unsorted(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (lower, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        return Some(mid);
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((below + mid) / 2.0)
}

/// The base period of a set of intervals (seconds), robust to missed
/// beats (intervals that are multiples) and to interlopers (fragments):
/// candidates are interval quantiles, each refined twice to the median of
/// the intervals it fits, and the one with the most support wins.
pub fn estimate_period(intervals: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = intervals
        .iter()
        .copied()
        .filter(|d| d.is_finite() && *d >= MIN_PERIOD_S)
        .collect();
    if sorted.len() < 2 {
        return None;
    }
    sort(&mut sorted);
    let mut buf = Vec::with_capacity(sorted.len());
    let mut best: Option<(f64, f64)> = None;
    let mut last_seed: Option<f64> = None;
    let n = sorted.len();
    let seeds = SEEDS.min(n);
    for s in 0..seeds {
        let rank = if seeds > 1 {
            s * (n - 1) / (seeds - 1)
        } else {
            0
        };
        let Some(&seed) = sorted.get(rank) else {
            continue;
        };
        // A seed this close to the last one tried refines to the same place.
        if last_seed.is_some_and(|l| seed <= l * (1.0 + TOL / 2.0)) {
            continue;
        }
        last_seed = Some(seed);
        let p = refine(&sorted, refine(&sorted, seed, &mut buf), &mut buf);
        if p < MIN_PERIOD_S {
            continue;
        }
        let sup = support(&sorted, p);
        if best.is_none_or(|(bs, _)| sup > bs + 1e-9) {
            best = Some((sup, p));
        }
    }
    best.map(|(_, p)| p)
}

/// The sessions a period explains.
#[derive(Debug, Default)]
struct Walk {
    /// Per session: on the beat.
    on_beat: Vec<bool>,
    /// (interval, beats) between consecutive on-beat sessions.
    fitted: Vec<(f64, f64)>,
    beats: usize,
}

/// Walks the sessions from `start`: each next session is placed on the
/// beat it falls on relative to the last on-beat session; of several
/// sessions on the same beat the closest to it is on the beat and the
/// others are interlopers; an interval beyond [`K_MAX`] beats is a pause
/// and the walk starts again there.
fn walk_from(times: &[f64], p: f64, start: usize) -> Walk {
    let n = times.len();
    let mut w = Walk {
        on_beat: vec![false; n],
        ..Walk::default()
    };
    let Some(&t0) = times.get(start) else {
        return w;
    };
    let mut anchor = t0;
    if let Some(b) = w.on_beat.get_mut(start) {
        *b = true;
    }
    w.beats = 1;
    let mut j = start + 1;
    while let Some(&t) = times.get(j) {
        let d = t - anchor;
        if d / p > K_MAX + 0.5 {
            anchor = t;
            if let Some(b) = w.on_beat.get_mut(j) {
                *b = true;
            }
            w.beats += 1;
            j += 1;
            continue;
        }
        let Some((k, dev)) = fit(d, p) else {
            j += 1;
            continue;
        };
        // Several sessions on beat k: keep the closest to it.
        let (mut best, mut best_dev) = (j, dev);
        let mut m = j + 1;
        while let Some(&tm) = times.get(m) {
            let dm = tm - anchor;
            if (dm / p + 0.5) as u32 as f64 != k {
                break;
            }
            if let Some((_, devm)) = fit(dm, p)
                && devm.abs() < best_dev.abs()
            {
                (best, best_dev) = (m, devm);
            }
            m += 1;
        }
        let Some(&tb) = times.get(best) else {
            break;
        };
        w.fitted.push((tb - anchor, k));
        anchor = tb;
        if let Some(b) = w.on_beat.get_mut(best) {
            *b = true;
        }
        w.beats += 1;
        j = m;
    }
    w
}

/// The walk from the best of the first few sessions (the first session may
/// be an interloper, e.g. an installer's one-off before the agent starts).
fn walk(times: &[f64], p: f64) -> Walk {
    let mut best: Option<Walk> = None;
    for start in 0..ANCHORS.min(times.len()) {
        let w = walk_from(times, p, start);
        if best
            .as_ref()
            .is_none_or(|b| w.fitted.len() > b.fitted.len())
        {
            best = Some(w);
        }
    }
    best.unwrap_or_default()
}

/// The features a score is made of.
#[derive(Debug, Clone, Copy)]
struct Features {
    jitter: f64,
    /// How far the mean deviation lies below chance, in standard errors.
    evidence: f64,
    skew: f64,
    /// Share of the sessions on a beat (of this or the interleaved period).
    explained: f64,
    /// On-beat intervals / beats they span (1 − share of missed beats).
    kept: f64,
    size: Option<f64>,
    /// max(coverage of the observation window, beats / DURABLE_BEATS).
    durable: f64,
}

/// The score, 0..=1: a weighted mean of
/// - 0.35 timing regularity: 1 up to [`JITTER_FULL`] median deviation,
///   falling linearly to 0 at `TOL/2` (deviations spread evenly over the
///   tolerance window: no clock);
/// - 0.25 the share of sessions on a beat (bursts, visits and noise lower it);
/// - 0.15 the share of beats not missed;
/// - 0.05 symmetry of the deviations (`1 − |Bowley skew|`, RITA's idea);
/// - 0.10 data-size regularity (RITA's; left out when sizes are unknown);
/// - 0.10 durability: coverage of the observation window, or enough beats.
fn score(f: &Features) -> f64 {
    let timing = ((JITTER_ZERO - f.jitter) / (JITTER_ZERO - JITTER_FULL)).clamp(0.0, 1.0);
    let mut parts = vec![
        (0.35, timing),
        (0.25, f.explained),
        (0.15, f.kept),
        (0.05, 1.0 - f.skew.abs()),
        (0.10, f.durable),
    ];
    if let Some(s) = f.size {
        parts.push((0.10, s));
    }
    let w: f64 = parts.iter().map(|(w, _)| w).sum();
    let s: f64 = parts.iter().map(|(w, v)| w * v.clamp(0.0, 1.0)).sum();
    let quality = if w > 0.0 { s / w } else { 0.0 };
    let gate = ((f.evidence - EVIDENCE_NONE) / (EVIDENCE_FULL - EVIDENCE_NONE)).clamp(0.0, 1.0);
    let sparse = (f.kept / KEPT_FULL).min(1.0);
    (quality * gate * sparse).clamp(0.0, 1.0)
}

/// The period, jitter and features of a walk.
fn describe(
    times: &[f64],
    w: &Walk,
    explained: usize,
    sizes: Option<f64>,
    window_s: Option<f64>,
) -> Option<Period> {
    if w.beats < MIN_BEATS || w.fitted.len() + 1 < MIN_BEATS {
        return None;
    }
    let mut per_beat: Vec<f64> = w.fitted.iter().map(|(d, k)| d / k).collect();
    sort(&mut per_beat);
    let period = median_sorted(&per_beat);
    if period.is_nan() || period < MIN_PERIOD_S {
        return None;
    }
    // Deviation from the expected beat, over the period (not over k
    // periods: noise that lands anywhere in a tolerance window is as
    // shapeless at the 5th beat as at the 1st).
    let mut rel: Vec<f64> = w
        .fitted
        .iter()
        .map(|(d, k)| (d - k * period) / period)
        .collect();
    sort(&mut rel);
    let skew = bowley(&rel, 0.01);
    let mut abs: Vec<f64> = rel.iter().map(|r| r.abs()).collect();
    sort(&mut abs);
    let jitter = median_sorted(&abs);
    let m = abs.len() as f64;
    let mean_abs = abs.iter().sum::<f64>() / m.max(1.0);
    let evidence = (TOL / 2.0 - mean_abs) * m.sqrt() / NULL_SD;
    let spanned: f64 = w.fitted.iter().map(|(_, k)| k).sum();
    let missed = (spanned - w.fitted.len() as f64).max(0.0);
    let on: Vec<f64> = times
        .iter()
        .zip(&w.on_beat)
        .filter(|(_, b)| **b)
        .map(|(t, _)| *t)
        .collect();
    let first = on.first().copied().unwrap_or(0.0);
    let last = on.last().copied().unwrap_or(0.0);
    let coverage = match window_s {
        Some(win) if win > 0.0 => ((last - first) / win).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let f = Features {
        jitter,
        evidence,
        skew,
        explained: explained as f64 / times.len().max(1) as f64,
        kept: if spanned > 0.0 {
            w.fitted.len() as f64 / spanned
        } else {
            0.0
        },
        size: sizes,
        durable: coverage.max(w.beats as f64 / DURABLE_BEATS).min(1.0),
    };
    Some(Period {
        period_s: period,
        jitter,
        score: score(&f),
        beats: w.beats,
        missed: missed as usize,
        first,
        last,
        evidence,
    })
}

/// Intervals between consecutive times.
fn intervals(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Finds up to two interleaved periods in sorted session start `times`
/// (seconds), with connection `sizes` (bytes; may be empty) and the length
/// of the observation window (seconds; `None` when unknown, e.g. live).
/// `None` when no period has [`MIN_BEATS`] on-beat sessions.
pub fn analyze(times: &[f64], sizes: &[u32], window_s: Option<f64>) -> Option<Found> {
    if times.len() < MIN_BEATS
        || times
            .windows(2)
            .any(|w| w[0].is_nan() || w[1].is_nan() || w[1] < w[0])
    {
        return None;
    }
    let p1 = estimate_period(&intervals(times))?;
    let w1 = walk(times, p1);
    // The second period lives in what the first does not explain.
    let rest: Vec<f64> = times
        .iter()
        .zip(&w1.on_beat)
        .filter(|(_, b)| !**b)
        .map(|(t, _)| *t)
        .collect();
    let second = if rest.len() >= MIN_BEATS {
        estimate_period(&intervals(&rest)).and_then(|p2| {
            let w2 = walk(&rest, p2);
            let beats = w2.beats;
            describe(&rest, &w2, beats, None, window_s)
                .filter(|s| s.score >= THRESHOLD && (s.period_s - p1).abs() > TOL * p1)
        })
    } else {
        None
    };
    let explained = w1.beats + second.map_or(0, |s| s.beats);
    let primary = describe(times, &w1, explained, size_score(sizes), window_s)?;
    Some(Found { primary, second })
}
