//! Alerts: the records a running sensor raises, as opposed to the report it
//! keeps. An [`Alert`] is raised the first time a host is seen contacting a
//! vendor ([`AlertKind::FirstContact`]) and when a beacon is confirmed
//! ([`AlertKind::Beacon`], when the beacon stage's streaming check first
//! confirms a period). Alerts go to an [`AlertSink`]; [`JsonLines`]
//! writes one JSON object per line. SIEM sinks (syslog, CEF, Redis) are
//! further implementations of the same trait.
//!
//! Alerts are built by the workers from the contact as it stands right
//! after the packet that created it (see `pipeline::worker`), so the same
//! capture gives the same alerts offline (`analyze --alerts`) and live.
//!
//! The SIEM side: [`tracker::AlertTracker`] raises alerts from report
//! snapshots (first contact, beacon confirmed, reminders; stable SHA-256
//! ids including the sensor, [`model::Alert`]) and [`delivery::Delivery`]
//! sends them to `--alerts SPEC` sinks (ECS JSON Lines, RFC 5424 and CEF
//! over UDP/TCP/TLS, Redis streams) through a disk spool:
//!
//! - [`model`]: the SIEM alert record, its id, and [`model::subjects`], the
//!   one function that reads the report model.
//! - [`tracker`]: snapshot comparison, reminders, suppression.
//! - [`format`](mod@format): ECS JSON, RFC 5424 and CEF renderings.
//! - [`sink`]: `--alerts` specs and the transports ([`sink::Sink`]); [`tls`].
//! - [`spool`], [`delivery`]: the disk spool and the delivery threads.
//! - [`metrics`]: the Prometheus exposition for `--metrics`.
//! - [`pipeline`]: tracker and delivery together ([`AlertPipeline`]).

pub mod delivery;
pub mod format;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod sink;
pub mod spool;
pub mod tls;
pub mod tracker;

pub use delivery::{Delivery, DeliveryConfig, SinkReport};
pub use pipeline::{AlertPipeline, default_sensor, now_ms, parse_duration};
pub use sink::{Sink, SinkSpec};
pub use tracker::{AlertTracker, TrackerConfig};

use crate::capture::Timestamp;
use crate::feeds::Intel;
use crate::hosts::{Contact, Host};
use crate::output::time::rfc3339;
use serde::Serialize;
use std::io::{self, Write};
use std::net::IpAddr;

/// Why an alert was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A host was seen contacting a vendor for the first time.
    FirstContact,
    /// Regular, machine-like contact with a vendor was confirmed.
    Beacon,
}

impl AlertKind {
    /// The name used in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::FirstContact => "first_contact",
            AlertKind::Beacon => "beacon",
        }
    }
}

/// The host an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertHost {
    /// Its address.
    pub ip: IpAddr,
    /// Its VLAN, when tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Its Ethernet address, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Stable identifier: the same host, vendor and kind always give the
    /// same id (across runs and machines), so a SIEM can deduplicate.
    pub id: String,
    /// Why it was raised.
    pub kind: AlertKind,
    /// Capture time of the packet that raised it (RFC 3339).
    pub ts: String,
    /// The host.
    pub host: AlertHost,
    /// Vendor id.
    pub vendor: String,
    /// Vendor display name.
    pub vendor_name: String,
    /// Purposes of the rules matched so far.
    pub purposes: Vec<&'static str>,
    /// Evidence kinds so far.
    pub evidence: Vec<&'static str>,
    /// Names seen so far.
    pub names: Vec<String>,
    /// Servers contacted so far.
    pub servers: Vec<IpAddr>,
    /// The beacon as the report shows it (beacon alerts; null otherwise).
    pub beacon: Option<serde_json::Value>,
}

/// 64-bit FNV-1a: tiny, stable across versions and platforms (unlike the
/// seeded hashers used for tables), which is what an alert id needs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(b"\x1f") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The stable id of an alert about `ip` and `vendor` (a vendor id string).
pub fn alert_id(ip: IpAddr, vendor: &str, kind: AlertKind) -> String {
    let ip = ip.to_string();
    format!(
        "{:016x}",
        fnv1a(&[ip.as_bytes(), vendor.as_bytes(), kind.as_str().as_bytes()])
    )
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Alert {
    /// An alert of `kind` about `host`'s `contact`, raised at `ts`. `None`
    /// for a vendor-less (watched-place) contact, or a vendor not in `intel`.
    pub fn new(
        kind: AlertKind,
        ts: Timestamp,
        host: &Host,
        contact: &Contact,
        intel: &Intel,
    ) -> Option<Alert> {
        let vendor = intel.feeds.vendors.get(usize::from(contact.vendor?))?;
        Some(Alert {
            id: alert_id(host.ip, &vendor.id, kind),
            kind,
            ts: rfc3339(ts),
            host: AlertHost {
                ip: host.ip,
                vlan: host.vlan,
                mac: host.mac.map(mac_string),
            },
            vendor: vendor.id.clone(),
            vendor_name: vendor.name.clone(),
            purposes: contact.purposes().map(|p| p.as_str()).collect(),
            evidence: contact.evidence().map(|e| e.as_str()).collect(),
            names: contact.names.iter().map(|n| n.to_string()).collect(),
            servers: contact.servers.clone(),
            beacon: None,
        })
    }

    /// The first-contact alert for the contact `(ip, vendor)` of `hosts`.
    pub fn first_contact(
        hosts: &crate::hosts::HostTable,
        ip: IpAddr,
        vendor: crate::feeds::VendorId,
        intel: &Intel,
    ) -> Option<Alert> {
        let (host, c) = contact_of(hosts, ip, vendor)?;
        Alert::new(AlertKind::FirstContact, c.first_seen, host, c, intel)
    }
}

/// The host `ip` of `hosts` and its contact with `vendor`.
fn contact_of(
    hosts: &crate::hosts::HostTable,
    ip: IpAddr,
    vendor: crate::feeds::VendorId,
) -> Option<(&crate::hosts::Host, &crate::hosts::Contact)> {
    let host = hosts.get(ip)?;
    let c = host.contacts.iter().find(|c| c.vendor == Some(vendor))?;
    Some((host, c))
}

impl Alert {
    /// The beacon alert for the contact `(ip, vendor)` of `hosts`, whose
    /// streaming beacon check just confirmed a beacon: raised at the
    /// confirmation, with the beacon as the report shows it.
    pub fn beacon(
        hosts: &crate::hosts::HostTable,
        ip: IpAddr,
        vendor: crate::feeds::VendorId,
        intel: &Intel,
    ) -> Option<Alert> {
        let (host, c) = contact_of(hosts, ip, vendor)?;
        let ts = c.beacon.confirmed_at.unwrap_or(c.last_seen);
        let mut a = Alert::new(AlertKind::Beacon, ts, host, c, intel)?;
        a.beacon = c
            .beacon
            .result(hosts.window)
            .map(|b| crate::output::report::BeaconReport::from(&b))
            .and_then(|b| serde_json::to_value(b).ok());
        Some(a)
    }
}

/// Where alerts go. Implementations must not block for long: they run on the
/// alert writer thread, and workers queue alerts for it.
pub trait AlertSink: Send {
    /// Delivers one alert.
    fn alert(&mut self, a: &Alert) -> io::Result<()>;
    /// Pushes out what is buffered (called after each group of alerts and
    /// at the end).
    fn flush(&mut self) -> io::Result<()>;
}

/// Writes alerts as JSON Lines.
pub struct JsonLines<W: Write + Send> {
    out: W,
    /// Alerts written.
    pub written: u64,
}

impl<W: Write + Send> JsonLines<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLines { out, written: 0 }
    }
}

impl<W: Write + Send> AlertSink for JsonLines<W> {
    fn alert(&mut self, a: &Alert) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, a).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Drains the contacts created and the beacons confirmed since the last
/// call from `hosts`, and appends their alerts to `out`. `pairs` is a
/// reusable buffer.
pub fn collect_new(
    hosts: &mut crate::hosts::HostTable,
    intel: &Intel,
    pairs: &mut Vec<(IpAddr, crate::feeds::VendorId)>,
    out: &mut Vec<Alert>,
) {
    pairs.clear();
    hosts.take_new(pairs);
    for (ip, vendor) in pairs.drain(..) {
        if let Some(a) = Alert::first_contact(hosts, ip, vendor, intel) {
            out.push(a);
        }
    }
    hosts.take_beacons(pairs);
    for (ip, vendor) in pairs.drain(..) {
        if let Some(a) = Alert::beacon(hosts, ip, vendor, intel) {
            out.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_host_vendor_and_kind() {
        let ip: IpAddr = "10.20.0.5".parse().unwrap();
        let a = alert_id(ip, "kaspersky", AlertKind::FirstContact);
        // The value itself is part of the contract (SIEM deduplication).
        assert_eq!(a, alert_id(ip, "kaspersky", AlertKind::FirstContact));
        assert_eq!(a.len(), 16);
        assert_ne!(a, alert_id(ip, "kaspersky", AlertKind::Beacon));
        assert_ne!(a, alert_id(ip, "drweb", AlertKind::FirstContact));
        let other: IpAddr = "10.20.0.6".parse().unwrap();
        assert_ne!(a, alert_id(other, "kaspersky", AlertKind::FirstContact));
        // Field boundaries count: "ab"+"c" is not "a"+"bc".
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn json_lines_writes_one_object_per_line() {
        let mut sink = JsonLines::new(Vec::new());
        let a = Alert {
            id: "x".into(),
            kind: AlertKind::FirstContact,
            ts: "2017-09-13T10:00:05.000000Z".into(),
            host: AlertHost {
                ip: "10.0.0.1".parse().unwrap(),
                vlan: Some(7),
                mac: None,
            },
            vendor: "kaspersky".into(),
            vendor_name: "Kaspersky".into(),
            purposes: vec!["update"],
            evidence: vec!["dns"],
            names: vec!["ds.kaspersky.com".into()],
            servers: vec![],
            beacon: None,
        };
        sink.alert(&a).unwrap();
        sink.alert(&a).unwrap();
        let text = String::from_utf8(sink.out.clone()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["kind"], "first_contact");
        assert_eq!(v["host"]["vlan"], 7);
        assert!(v["host"].get("mac").is_none());
        assert_eq!(sink.written, 2);
    }
}
