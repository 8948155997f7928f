//! The alert record handed to the SIEM sinks, its stable id, and the one
//! function that maps the report model ([`Report`]) onto alert subjects.
//!
//! Everything that depends on the shape of [`crate::output::report`] lives in
//! [`subjects`]: when the report gains server objects with geo/ASN, or
//! contacts with watched places, only that function changes.

use crate::output::report::Report;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What an alert announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A host was seen contacting a vendor (or a watched place) for the
    /// first time.
    FirstContact,
    /// The periodicity analysis confirmed a beacon on a contact.
    BeaconConfirmed,
    /// A host is still phoning home (one per `--remind-every` period).
    Reminder,
}

impl AlertKind {
    /// The snake_case name (JSON value, syslog MSGID, CEF class id).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::FirstContact => "first_contact",
            AlertKind::BeaconConfirmed => "beacon_confirmed",
            AlertKind::Reminder => "reminder",
        }
    }

    /// A short title for people (CEF Name, ECS event.reason prefix).
    pub fn title(self) -> &'static str {
        match self {
            AlertKind::FirstContact => "First contact",
            AlertKind::BeaconConfirmed => "Beacon confirmed",
            AlertKind::Reminder => "Still phoning home",
        }
    }

    /// CEF severity (0..10).
    pub fn cef_severity(self) -> u8 {
        match self {
            AlertKind::FirstContact => 6,
            AlertKind::BeaconConfirmed => 7,
            AlertKind::Reminder => 3,
        }
    }

    /// Syslog severity (RFC 5424 section 6.2.1: 4 warning, 5 notice).
    pub fn syslog_severity(self) -> u8 {
        match self {
            AlertKind::FirstContact | AlertKind::BeaconConfirmed => 4,
            AlertKind::Reminder => 5,
        }
    }
}

/// The internal host an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertHost {
    /// Its address.
    pub ip: IpAddr,
    /// VLAN, when tagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Ethernet address (`02:00:0a:14:00:05`), when seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// A server the host contacted, with what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertServer {
    /// Its address.
    pub ip: IpAddr,
    /// ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Whether the place is watched (known only with a location database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched: Option<bool>,
    /// The watch rule that matched (`RU/Moscow`, `tz:Europe/Moscow`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_rule: Option<String>,
}

/// Beacon figures of a contact (the report's `beacon`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBeacon {
    /// The dominant period, seconds.
    pub period_s: f64,
    /// Median deviation of the intervals from the period, as a fraction.
    pub jitter: f64,
    /// Periodicity score (0..1).
    pub score: f64,
    /// Sessions on the beat.
    pub count: u64,
    /// `connections` or `dns`: the series the beacon was found in.
    pub source: String,
    /// When the streaming check first confirmed it (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_ms: Option<i64>,
}

/// One host's contact with one vendor or watched place, as the tracker sees
/// it in a report snapshot. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// The host.
    pub host: AlertHost,
    /// Vendor id (`null` for a watched place).
    pub vendor: Option<String>,
    /// Vendor display name.
    pub vendor_name: Option<String>,
    /// Watched place (`null` for a vendor).
    pub place: Option<String>,
    /// Purposes of the matched rules.
    pub purposes: Vec<String>,
    /// Evidence kinds.
    pub evidence: Vec<String>,
    /// Names seen.
    pub names: Vec<String>,
    /// Servers contacted.
    pub servers: Vec<AlertServer>,
    /// Conversations.
    pub connections: u64,
    /// DNS queries for the vendor's names.
    pub dns_queries: u64,
    /// First evidence (Unix ms).
    pub first_seen_ms: i64,
    /// Last evidence (Unix ms).
    pub last_seen_ms: i64,
    /// Beacon figures, once the periodicity analysis confirmed one.
    pub beacon: Option<AlertBeacon>,
}

impl Subject {
    /// The key the subject is tracked by within its host: the vendor id,
    /// or for a watched place (one contact per server) `place:RULE@SERVER`.
    pub fn target(&self) -> String {
        if let Some(v) = &self.vendor {
            return v.clone();
        }
        let place = self.place.as_deref().unwrap_or("watched");
        match self.servers.first() {
            Some(sv) => format!("place:{place}@{}", sv.ip),
            None => format!("place:{place}"),
        }
    }
}

/// One alert: a [`Subject`] plus what happened, when, and where it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id (32 hex digits): the same alert always gets the same id, so
    /// a SIEM can drop the duplicates that at-least-once delivery allows.
    pub id: String,
    /// What happened.
    pub kind: AlertKind,
    /// When it happened on the wire (Unix ms; capture time).
    pub event_ms: i64,
    /// When phonehome raised the alert (Unix ms; wall clock).
    pub detected_ms: i64,
    /// The sensor that saw it (`--sensor`).
    pub sensor: String,
    /// For reminders: the index of the `--remind-every` period (event time
    /// divided by the period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    /// The contact.
    pub subject: Subject,
}

impl Alert {
    /// A one-line description for people (syslog/CEF `msg`, ECS `message`).
    pub fn message(&self) -> String {
        let who = match (&self.subject.vendor_name, &self.subject.place) {
            (Some(n), _) => n.clone(),
            (None, Some(p)) => format!("watched place {p}"),
            (None, None) => self.subject.target(),
        };
        let ip = self.subject.host.ip;
        match self.kind {
            AlertKind::FirstContact => format!("{ip} first seen contacting {who}"),
            AlertKind::Reminder => format!("{ip} still contacting {who}"),
            AlertKind::BeaconConfirmed => match self.subject.beacon.as_ref() {
                Some(b) => format!("{ip} beacons to {who} every {:.0} s", b.period_s),
                None => format!("{ip} beacons to {who}"),
            },
        }
    }
}

/// The stable id of an alert: SHA-256 over the length-prefixed fields
/// (sensor, host address, target, kind, reminder period), first 16 bytes in
/// hex. Independent of process, platform and hash seeds.
pub fn alert_id(
    sensor: &str,
    host: IpAddr,
    target: &str,
    kind: AlertKind,
    period: Option<i64>,
) -> String {
    let host = host.to_string();
    let period = period.map(|p| p.to_string()).unwrap_or_default();
    let mut framed = Vec::with_capacity(128);
    for part in [sensor, &host, target, kind.as_str(), &period] {
        framed.extend_from_slice(&(part.len() as u64).to_be_bytes());
        framed.extend_from_slice(part.as_bytes());
    }
    digest(&SHA256, &framed)
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the report's `YYYY-MM-DDTHH:MM:SS[.fff]Z` into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut ms = 0;
    let rest = s.get(19..)?;
    let rest = if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        let mut padded = digits.clone();
        padded.push_str("000");
        ms = padded.get(0..3)?.parse().ok()?;
        frac.get(digits.len()..)?
    } else {
        rest
    };
    if rest != "Z" {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

/// Maps a report onto alert subjects, one per (host, contact). This is the
/// only place that reads the report model.
pub fn subjects(report: &Report) -> Vec<Subject> {
    let mut out = Vec::new();
    for h in &report.hosts {
        let host = AlertHost {
            ip: h.ip,
            vlan: h.vlan,
            mac: h.mac.clone(),
        };
        for c in &h.contacts {
            let beacon = c.beacon.as_ref().map(|b| AlertBeacon {
                period_s: b.period_s,
                jitter: b.jitter,
                score: b.score,
                count: b.count,
                source: b.source.to_string(),
                confirmed_ms: b.confirmed_at.as_deref().and_then(parse_rfc3339_ms),
            });
            out.push(Subject {
                host: host.clone(),
                vendor: c.vendor.clone(),
                vendor_name: c.vendor_name.clone(),
                // A vendor-less contact is one with a server in a watched
                // place: the place is the rule that matched it.
                place: match &c.vendor {
                    Some(_) => None,
                    None => Some(
                        c.servers
                            .iter()
                            .find_map(|sv| sv.watch_rule.clone())
                            .unwrap_or_else(|| "watched".to_string()),
                    ),
                },
                purposes: c.purposes.iter().map(|p| p.to_string()).collect(),
                evidence: c.evidence.iter().map(|e| e.to_string()).collect(),
                names: c.names.clone(),
                servers: c
                    .servers
                    .iter()
                    .map(|sv| AlertServer {
                        ip: sv.ip,
                        country: sv.country.clone(),
                        city: sv.city.clone(),
                        asn: sv.asn,
                        org: sv.org.clone(),
                        watched: sv.watched,
                        watch_rule: sv.watch_rule.clone(),
                    })
                    .collect(),
                connections: c.connections,
                dns_queries: c.dns_queries,
                first_seen_ms: parse_rfc3339_ms(&c.first_seen).unwrap_or(0),
                last_seen_ms: parse_rfc3339_ms(&c.last_seen).unwrap_or(0),
                beacon,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_every_field() {
        let ip: IpAddr = "10.20.0.5".parse().unwrap();
        let a = alert_id("s1", ip, "kaspersky", AlertKind::FirstContact, None);
        // Pinned (computed with Python's hashlib over the same framing): the
        // id must never change between versions or platforms.
        assert_eq!(a, "345e5e014299bcdfa37368fa2d178f48");
        assert_eq!(a.len(), 32);
        let others = [
            alert_id("s2", ip, "kaspersky", AlertKind::FirstContact, None),
            alert_id(
                "s1",
                "10.20.0.6".parse().unwrap(),
                "kaspersky",
                AlertKind::FirstContact,
                None,
            ),
            alert_id("s1", ip, "eset", AlertKind::FirstContact, None),
            alert_id("s1", ip, "kaspersky", AlertKind::BeaconConfirmed, None),
            alert_id("s1", ip, "kaspersky", AlertKind::Reminder, Some(1)),
            alert_id("s1", ip, "kaspersky", AlertKind::Reminder, Some(2)),
            // Length prefixes: moving a character between fields changes the id.
            alert_id("s1k", ip, "aspersky", AlertKind::FirstContact, None),
        ];
        for o in &others {
            assert_ne!(&a, o);
        }
    }

    #[test]
    fn reminder_ids_match_an_independent_sha256() {
        // Python: hashlib.sha256(b"".join(struct.pack(">Q", len(p)) + p for p
        // in [b"s", b"1.2.3.4", b"v", b"reminder", b"7"])).hexdigest()[:32]
        let got = alert_id(
            "s",
            "1.2.3.4".parse().unwrap(),
            "v",
            AlertKind::Reminder,
            Some(7),
        );
        assert_eq!(got, "a6020331aa43fef1f0c3b3e4477a60ee");
    }

    #[test]
    fn rfc3339_round_trip() {
        use crate::capture::Timestamp;
        use crate::output::time::{rfc3339, rfc3339_micros};
        for secs in [0i64, 951_782_400, 1_505_296_805, 4_107_542_400, -1] {
            let ts = Timestamp::from_parts(secs, 250_000_000);
            assert_eq!(parse_rfc3339_ms(&rfc3339(ts)), Some(secs * 1000));
            assert_eq!(
                parse_rfc3339_ms(&rfc3339_micros(ts)),
                Some(secs * 1000 + 250)
            );
        }
        assert_eq!(parse_rfc3339_ms("2017-09-13T10:00:05+02:00"), None);
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }
}
