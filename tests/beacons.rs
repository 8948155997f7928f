//! Beacon analysis end to end: a simulated day (`synth/src/day.rs`) is
//! written to a temporary pcapng, `phonehome analyze --format json` reads
//! it, and the beacon figures must match what the generator did.

use crate::util::{analyze_json, contact};
use phonehome_synth::day::{self, DayTruth};
use serde_json::Value;

fn day_report() -> (Value, DayTruth) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.pcapng");
    let (cb, truth) = day::build();
    cb.write_pcapng(&path).unwrap();
    let (code, report) = analyze_json(&[&path], &[]);
    assert_eq!(code, 0);
    (report, truth)
}

/// Median of the generated intervals between consecutive beats (those
/// shorter than 1.5 periods: a missed beat's double interval left out).
fn median_gap(times: &[u64], period: f64) -> f64 {
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e9)
        .filter(|g| *g < 1.5 * period)
        .collect();
    gaps.sort_by(f64::total_cmp);
    gaps[gaps.len() / 2]
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_simulated_day() {
    let (r, truth) = day_report();

    // The agent: 5-minute lookups (missed ones, a nap, retries a second
    // apart) interleaved with hourly update checks to the same vendor.
    let agent = contact(&r, "10.30.0.5", "kaspersky").expect("the agent");
    let b = &agent["beacon"];
    assert_eq!(b["source"], "connections", "{b}");
    let period = f(&b["period_s"]);
    assert!((period - 300.0).abs() <= 9.0, "{b}");
    let median = median_gap(&truth.lookups, 300.0);
    assert!((period - median).abs() <= 3.0, "{b} vs {median}");
    let count = b["count"].as_u64().unwrap();
    let lookups = truth.lookups.len() as u64;
    assert!(count.abs_diff(lookups) <= 4, "{b}: {lookups} lookups");
    assert!(f(&b["score"]) >= 0.85, "{b}");
    let jitter = f(&b["jitter"]);
    assert!((0.02..0.08).contains(&jitter), "±12 % uniform: {b}");
    let periods = b["periods"].as_array().expect("two periods");
    assert_eq!(periods.len(), 2, "{b}");
    let hourly = &periods[1];
    assert!((f(&hourly["period_s"]) - 3600.0).abs() <= 72.0, "{b}");
    // An update check that lands where a lookup was missed, or within a
    // burst window of one, is indistinguishable from it: a few go to the
    // 5-minute beat.
    let updates = truth.updates.len() as u64;
    assert!(
        hourly["count"].as_u64().unwrap().abs_diff(updates) <= 3,
        "{b}: {updates} updates"
    );
    // Every attempt is a connection; a retry a second later is the same
    // session.
    let conns = agent["connections"].as_u64().unwrap();
    assert_eq!(conns, lookups + truth.retried as u64 + updates);
    assert!(
        b["confirmed_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-06-20T0")),
        "{b}"
    );

    // A one-off visit and browser bursts are not beacons.
    let visit = contact(&r, "10.30.0.6", "kaspersky").expect("the visit");
    assert_eq!(visit["connections"], 4);
    assert!(visit["beacon"].is_null(), "{}", visit["beacon"]);
    let browser = contact(&r, "10.30.0.7", "kaspersky").expect("the browser");
    assert_eq!(browser["connections"], truth.burst_connections as u64);
    assert!(browser["beacon"].is_null(), "{}", browser["beacon"]);

    // DNS queries alone, when the connections are out of sight.
    let quiet = contact(&r, "10.30.0.8", "kaspersky").expect("the DNS-only host");
    assert_eq!(quiet["connections"], 0);
    let b = &quiet["beacon"];
    assert_eq!(b["source"], "dns", "{b}");
    let median = median_gap(&truth.dns_only, 600.0);
    assert!((f(&b["period_s"]) - median).abs() <= 3.0, "{b} vs {median}");
    assert!(
        b["count"]
            .as_u64()
            .unwrap()
            .abs_diff(truth.dns_only.len() as u64)
            <= 1,
        "{b}"
    );
}

#[test]
fn the_table_shows_the_periods() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.pcapng");
    day::build().0.write_pcapng(&path).unwrap();
    let out = crate::util::run(&["analyze", "-q", &path.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |ip: &str| -> Vec<String> {
        let mut lines = text.lines().skip_while(|l| !l.starts_with(ip));
        let first = lines.next().unwrap_or_default().to_string();
        let second = lines.next().unwrap_or_default().to_string();
        vec![first, second]
    };
    assert!(text.contains("BEACON"), "{text}");
    let agent = row("10.30.0.5");
    assert!(
        agent[0].contains(" 29") && agent[0].contains(" s "),
        "{agent:?}"
    );
    assert!(
        agent[1].contains(" 3"),
        "second period on the next line: {agent:?}"
    );
    let browser = row("10.30.0.7");
    assert!(browser[0].contains(" - "), "{browser:?}");
}
