//! [`AlertTracker`]: compares successive report snapshots and decides which
//! alerts to raise. `analyze` gives it one snapshot (the final report);
//! live capture gives it one every few seconds.
//!
//! Rules, per (host, vendor or watched place) — a *key*:
//! - **FirstContact** the first time the key appears (event time: the
//!   contact's first evidence);
//! - **BeaconConfirmed** the first time the key's beacon is non-null (event
//!   time: when the beacon analysis confirmed it, else the last evidence);
//! - **Reminder** when the key's last evidence falls in a later
//!   `remind_every` period (periods are aligned on the Unix epoch, by capture
//!   time) than the one it was last alerted in, at most one per period;
//!   dropped (and retried at the next snapshot) while another alert for the
//!   key was raised less than `suppress` earlier (by event time).
//!
//! Memory is bounded: at most `max_keys` keys are tracked (new keys beyond
//! the cap are counted in [`AlertTracker::keys_refused`] and raise nothing).

use super::model::{Alert, AlertKind, Subject, alert_id, subjects};
use crate::output::report::Report;
use std::collections::HashMap;
use std::net::IpAddr;

/// Default cap on tracked keys (host, target).
pub const MAX_KEYS: usize = 1_000_000;

/// How alerts are raised.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Sensor name, part of every id.
    pub sensor: String,
    /// Reminder period in seconds (at least 1).
    pub remind_every_s: i64,
    /// Suppression window in seconds.
    pub suppress_s: i64,
    /// Cap on tracked keys.
    pub max_keys: usize,
}

/// What the tracker remembers about a key.
#[derive(Debug, Clone, Copy)]
struct KeyState {
    /// The remind period of the last alert for the key.
    last_period: i64,
    /// Event time of the last alert raised for the key (ms).
    last_alert_ms: i64,
    /// A BeaconConfirmed alert was raised.
    beaconed: bool,
}

/// Raises alerts from report snapshots (see the module doc for the rules).
#[derive(Debug)]
pub struct AlertTracker {
    cfg: TrackerConfig,
    keys: HashMap<(IpAddr, String), KeyState>,
    /// New keys not tracked because of the cap.
    pub keys_refused: u64,
    /// Reminders held back by the suppression window.
    pub suppressed: u64,
}

impl AlertTracker {
    /// A tracker with nothing seen yet.
    pub fn new(mut cfg: TrackerConfig) -> Self {
        cfg.remind_every_s = cfg.remind_every_s.max(1);
        cfg.suppress_s = cfg.suppress_s.max(0);
        AlertTracker {
            cfg,
            keys: HashMap::new(),
            keys_refused: 0,
            suppressed: 0,
        }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Takes over the keys of `other` (exact when the two hold disjoint
    /// hosts, as the per-host shards of the parallel engine do).
    pub fn merge(&mut self, other: AlertTracker) {
        for (k, v) in other.keys {
            self.keys.entry(k).or_insert(v);
        }
        self.keys_refused += other.keys_refused;
        self.suppressed += other.suppressed;
    }

    /// Remembers the keys of a report as already alerted, raising nothing:
    /// for history loaded at start (`live --state`), whose contacts and
    /// beacons were alerted before the restart. Each key counts as alerted
    /// in the remind period of its last evidence, so later evidence in a
    /// later period raises a reminder as it would have without the restart.
    pub fn prime(&mut self, report: &Report) {
        self.prime_subjects(&subjects(report));
    }

    /// As [`prime`](Self::prime), on subjects already mapped.
    pub fn prime_subjects(&mut self, subjects: &[Subject]) {
        let period_ms = self.cfg.remind_every_s.saturating_mul(1000);
        for s in subjects {
            if self.keys.len() >= self.cfg.max_keys {
                self.keys_refused += 1;
                continue;
            }
            let key = (s.host.ip, s.target());
            self.keys.entry(key).or_insert(KeyState {
                last_period: s.last_seen_ms.div_euclid(period_ms),
                last_alert_ms: s.last_seen_ms,
                beaconed: s.beacon.is_some(),
            });
        }
    }

    /// The alerts a report snapshot raises; `now_ms` is the wall-clock
    /// detection time written into them.
    pub fn observe(&mut self, report: &Report, now_ms: i64) -> Vec<Alert> {
        self.observe_subjects(&subjects(report), now_ms)
    }

    /// As [`observe`](Self::observe), on subjects already mapped.
    pub fn observe_subjects(&mut self, subjects: &[Subject], now_ms: i64) -> Vec<Alert> {
        let period_ms = self.cfg.remind_every_s.saturating_mul(1000);
        let suppress_ms = self.cfg.suppress_s.saturating_mul(1000);
        let mut out = Vec::new();
        for s in subjects {
            let target = s.target();
            let key = (s.host.ip, target);
            let period_of = |ms: i64| ms.div_euclid(period_ms);
            let mut raise = |kind: AlertKind, event_ms: i64, period: Option<i64>| {
                out.push(Alert {
                    id: alert_id(&self.cfg.sensor, s.host.ip, &key.1, kind, period),
                    kind,
                    event_ms,
                    detected_ms: now_ms,
                    sensor: self.cfg.sensor.clone(),
                    period,
                    subject: s.clone(),
                });
            };
            let state = match self.keys.get_mut(&key) {
                Some(st) => st,
                None => {
                    if self.keys.len() >= self.cfg.max_keys {
                        self.keys_refused += 1;
                        continue;
                    }
                    raise(AlertKind::FirstContact, s.first_seen_ms, None);
                    self.keys.entry(key.clone()).or_insert(KeyState {
                        last_period: period_of(s.first_seen_ms),
                        last_alert_ms: s.first_seen_ms,
                        beaconed: false,
                    })
                }
            };
            if s.beacon.is_some() && !state.beaconed {
                state.beaconed = true;
                let at = s
                    .beacon
                    .as_ref()
                    .and_then(|b| b.confirmed_ms)
                    .unwrap_or(s.last_seen_ms);
                raise(AlertKind::BeaconConfirmed, at, None);
                state.last_alert_ms = state.last_alert_ms.max(at);
            }
            let p = period_of(s.last_seen_ms);
            if p > state.last_period {
                if s.last_seen_ms.saturating_sub(state.last_alert_ms) < suppress_ms {
                    self.suppressed += 1;
                } else {
                    raise(AlertKind::Reminder, s.last_seen_ms, Some(p));
                    state.last_period = p;
                    state.last_alert_ms = s.last_seen_ms;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::{AlertBeacon, AlertHost};

    const H: i64 = 3_600_000;

    fn subject(ip: &str, vendor: &str, first: i64, last: i64) -> Subject {
        Subject {
            host: AlertHost {
                ip: ip.parse().unwrap(),
                vlan: None,
                mac: None,
            },
            vendor: Some(vendor.into()),
            vendor_name: Some(vendor.into()),
            place: None,
            purposes: vec!["update".into()],
            evidence: vec!["dns".into()],
            names: vec![],
            servers: vec![],
            connections: 1,
            dns_queries: 0,
            first_seen_ms: first,
            last_seen_ms: last,
            beacon: None,
        }
    }

    fn beacon(period_s: f64) -> AlertBeacon {
        AlertBeacon {
            period_s,
            jitter: 0.01,
            score: 0.95,
            count: 12,
            source: "connections".into(),
            confirmed_ms: None,
        }
    }

    /// A restarted sensor primed with its history raises nothing for what
    /// it knew, a reminder when known contacts show up in a later period,
    /// and first-contact alerts for new hosts only.
    #[test]
    fn primed_history_raises_nothing_again() {
        let cfg = TrackerConfig {
            sensor: "s".into(),
            remind_every_s: 24 * 3600,
            suppress_s: 3600,
            max_keys: 100,
        };
        let mut known = subject("10.0.0.1", "kaspersky", 0, 2 * H);
        known.beacon = Some(beacon(300.0));
        let mut t = AlertTracker::new(cfg);
        t.prime_subjects(std::slice::from_ref(&known));
        assert!(
            t.observe_subjects(std::slice::from_ref(&known), 3 * H)
                .is_empty()
        );
        let new = subject("10.0.0.2", "kaspersky", 3 * H, 3 * H);
        let got = t.observe_subjects(&[known.clone(), new], 4 * H);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].kind, got[0].subject.host.ip.to_string().as_str()),
            (AlertKind::FirstContact, "10.0.0.2")
        );
        // The next day's evidence for the known contact: a reminder.
        known.last_seen_ms = 26 * H;
        let got = t.observe_subjects(&[known], 27 * H);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, AlertKind::Reminder);
    }

    fn tracker(remind_h: i64, suppress_h: i64) -> AlertTracker {
        AlertTracker::new(TrackerConfig {
            sensor: "s".into(),
            remind_every_s: remind_h * 3600,
            suppress_s: suppress_h * 3600,
            max_keys: 3,
        })
    }

    fn kinds(a: &[Alert]) -> Vec<(String, AlertKind, Option<i64>)> {
        a.iter()
            .map(|a| (a.subject.target(), a.kind, a.period))
            .collect()
    }

    #[test]
    fn first_contact_once_per_host_and_vendor() {
        let mut t = tracker(24, 1);
        let s1 = vec![subject("10.0.0.1", "kaspersky", 0, H / 2)];
        let a = t.observe_subjects(&s1, 1);
        assert_eq!(
            kinds(&a),
            [("kaspersky".into(), AlertKind::FirstContact, None)]
        );
        assert_eq!(a[0].event_ms, 0);
        // The same snapshot again raises nothing; a second vendor does.
        assert!(t.observe_subjects(&s1, 2).is_empty());
        let mut s2 = s1.clone();
        s2.push(subject("10.0.0.1", "eset", H, H));
        let a = t.observe_subjects(&s2, 3);
        assert_eq!(kinds(&a), [("eset".into(), AlertKind::FirstContact, None)]);
    }

    #[test]
    fn beacon_confirmed_when_the_beacon_appears() {
        let mut t = tracker(24, 1);
        let mut s = subject("10.0.0.1", "kaspersky", 0, H);
        assert_eq!(t.observe_subjects(std::slice::from_ref(&s), 0).len(), 1);
        s.beacon = Some(beacon(300.0));
        s.last_seen_ms = 2 * H;
        let a = t.observe_subjects(std::slice::from_ref(&s), 0);
        assert_eq!(
            kinds(&a),
            [("kaspersky".into(), AlertKind::BeaconConfirmed, None)]
        );
        assert_eq!(a[0].event_ms, 2 * H);
        assert!(a[0].message().contains("every 300 s"), "{}", a[0].message());
        assert!(t.observe_subjects(std::slice::from_ref(&s), 0).is_empty());
    }

    #[test]
    fn reminders_once_per_period_and_suppressed_after_other_alerts() {
        let mut t = tracker(24, 2);
        let mut s = subject("10.0.0.1", "kaspersky", 20 * H, 21 * H);
        t.observe_subjects(std::slice::from_ref(&s), 0);
        // Next day, 1 h after midnight but 5 h after the first alert: reminder.
        s.last_seen_ms = 25 * H;
        let a = t.observe_subjects(std::slice::from_ref(&s), 0);
        assert_eq!(
            kinds(&a),
            [("kaspersky".into(), AlertKind::Reminder, Some(1))]
        );
        // Same period: nothing more.
        s.last_seen_ms = 30 * H;
        assert!(t.observe_subjects(std::slice::from_ref(&s), 0).is_empty());
        // Day 2 at 00:30, but a beacon alert at 23:50 of day 1 suppresses it
        // (inside the 2 h window); at 02:00 it goes out.
        s.last_seen_ms = 47 * H + H / 2;
        s.beacon = Some(beacon(60.0));
        let a = t.observe_subjects(std::slice::from_ref(&s), 0);
        assert_eq!(
            kinds(&a),
            [("kaspersky".into(), AlertKind::BeaconConfirmed, None)]
        );
        s.last_seen_ms = 48 * H + H / 2;
        assert!(t.observe_subjects(std::slice::from_ref(&s), 0).is_empty());
        assert_eq!(t.suppressed, 1);
        s.last_seen_ms = 50 * H;
        let a = t.observe_subjects(std::slice::from_ref(&s), 0);
        assert_eq!(
            kinds(&a),
            [("kaspersky".into(), AlertKind::Reminder, Some(2))]
        );
        // Re-raising the same reminder from a fresh tracker gives the same id.
        // (Without the beacon, which would suppress it as a fresh alert.)
        let mut fresh = tracker(24, 2);
        s.beacon = None;
        let again = fresh.observe_subjects(std::slice::from_ref(&s), 9);
        assert_eq!(again.len(), 2, "{:?}", kinds(&again));
        assert!(again.iter().any(|x| x.id == a[0].id));
    }

    #[test]
    fn keys_are_capped_and_merge_is_a_union() {
        let mut t = tracker(24, 1);
        let s: Vec<_> = (1..=5)
            .map(|i| subject(&format!("10.0.0.{i}"), "kaspersky", 0, 0))
            .collect();
        assert_eq!(t.observe_subjects(&s, 0).len(), 3);
        assert_eq!(t.keys_refused, 2);
        let mut u = tracker(24, 1);
        u.observe_subjects(&[subject("10.0.0.9", "eset", 0, 0)], 0);
        t.merge(u);
        assert_eq!(t.len(), 4);
    }
}
