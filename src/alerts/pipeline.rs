//! The SIEM alert pipeline: an [`AlertTracker`] fed with report snapshots
//! and a [`Delivery`] to the `--alerts` sinks, plus the small helpers the
//! command line needs (sensor name, durations, wall clock).

use super::delivery::{self, Delivery, DeliveryConfig, SinkReport};
use super::sink::SinkSpec;
use super::tracker::{AlertTracker, TrackerConfig};
use crate::output::report::Report;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The tracker and the delivery together: what `analyze` and `live` drive.
pub struct AlertPipeline {
    /// Decides which alerts to raise.
    pub tracker: AlertTracker,
    /// Sends them.
    pub delivery: Delivery,
}

impl AlertPipeline {
    /// Starts delivery to `sinks` (spools are opened and drained first).
    pub fn start(
        sinks: &[SinkSpec],
        tracker: TrackerConfig,
        delivery: &DeliveryConfig,
    ) -> Result<AlertPipeline, delivery::DeliveryError> {
        Ok(AlertPipeline {
            tracker: AlertTracker::new(tracker),
            delivery: Delivery::start(sinks, delivery)?,
        })
    }

    /// Raises the alerts of a report snapshot and queues them; returns how
    /// many were raised.
    pub fn observe(&mut self, report: &Report) -> usize {
        let alerts = self.tracker.observe(report, now_ms());
        for a in &alerts {
            self.delivery.submit(a);
        }
        alerts.len()
    }

    /// Remembers a report's contacts as alerted already, raising nothing
    /// (history loaded at start: see [`AlertTracker::prime`]).
    pub fn prime(&mut self, report: &Report) {
        self.tracker.prime(report);
    }

    /// Delivers for at most `timeout`, spools the rest, stops.
    pub fn close(self, timeout: Duration) -> Vec<SinkReport> {
        self.delivery.close(timeout)
    }
}

/// Wall-clock time, Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The default sensor name: the host name (Linux), else `phonehome`.
pub fn default_sensor() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "phonehome".to_string())
}

/// Parses a duration: a number of seconds, or a number with a unit
/// `s`, `m`, `h`, `d` (`90s`, `30m`, `24h`, `7d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with an optional unit s, m, h or d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h or d)")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sensor_name_is_never_empty() {
        assert!(!default_sensor().is_empty());
    }
}
