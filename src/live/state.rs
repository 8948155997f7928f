//! The state file (`live --state FILE`): each host's contact history, so a
//! restarted sensor remembers what it saw (and does not alert again on
//! contacts it already reported).
//!
//! JSON, versioned, written atomically (a temporary file in the same folder,
//! synced, then renamed over the old one), so a crash leaves the old or the
//! new state, never half of one. Vendors and rules are stored by their feed
//! id and value, not by index, so the history survives feed changes; a
//! vendor the feeds no longer have is skipped (and counted) on load. Loading
//! applies the same caps as capture: names, servers and rules per contact,
//! hosts per table.
//!
//! Each contact also keeps its sampled connection times and its beacon
//! state (the bounded interval and size series and when a beacon was
//! confirmed), so a restarted sensor goes on with the timing analysis — a
//! beacon confirmed before the restart stays confirmed (and is not alerted
//! again), and one half-way to confirmation keeps its evidence. Files
//! written before these fields existed load without them; values read back
//! are brought within the same bounds as live state.

use crate::capture::Timestamp;
use crate::feeds::{Intel, Purpose, RuleId};
use crate::hosts::{Bits, Contact, Evidence, Host, HostTable, MAX_NAMES, MAX_RULES, MAX_SERVERS};
use crate::output::time::rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

/// The file format's name, in every state file.
const FORMAT: &str = "phonehome-state";
/// The version written; loading accepts this one only.
const VERSION: u32 = 1;
/// State files larger than this are refused.
const MAX_FILE: u64 = 2 << 30;

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    saved: String,
    hosts: Vec<StateHost>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateHost {
    ip: IpAddr,
    #[serde(default)]
    vlan: Option<u16>,
    #[serde(default)]
    mac: Option<[u8; 6]>,
    contacts: Vec<StateContact>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateRule {
    kind: String,
    value: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateContact {
    /// The vendor id; null for a vendor-less contact in a watched place.
    vendor: Option<String>,
    purposes: Vec<String>,
    evidence: Vec<String>,
    names: Vec<String>,
    names_dropped: u64,
    servers: Vec<IpAddr>,
    servers_dropped: u64,
    rules: Vec<StateRule>,
    connections: u64,
    dns_queries: u64,
    /// Nanoseconds since the Unix epoch.
    first_seen: i64,
    /// Nanoseconds since the Unix epoch.
    last_seen: i64,
    /// Sampled connection start times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<crate::hosts::ConnTimes>,
    /// Beacon series and confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beacon: Option<crate::beacons::Beacons>,
}

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is not a state file of this version.
    #[error("{path}: not a phonehome state file (version {VERSION}): {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// What loading found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Contacts skipped: their vendor is not in the feeds.
    pub unknown_vendors: u64,
}

/// Serialises `hosts` as a state file.
fn to_file(hosts: &HostTable, intel: &Intel, now: Timestamp) -> StateFile {
    let feeds = &intel.feeds;
    let hosts = hosts
        .sorted()
        .into_iter()
        .map(|h| StateHost {
            ip: h.ip,
            vlan: h.vlan,
            mac: h.mac,
            contacts: h
                .contacts
                .iter()
                .filter_map(|c| {
                    let vendor = match c.vendor {
                        Some(v) => Some(feeds.vendors.get(usize::from(v))?.id.clone()),
                        None => None,
                    };
                    Some(StateContact {
                        vendor,
                        purposes: c.purposes().map(|p| p.as_str().to_string()).collect(),
                        evidence: c.evidence().map(|e| e.as_str().to_string()).collect(),
                        names: c.names.iter().map(|n| n.to_string()).collect(),
                        names_dropped: c.names_dropped,
                        servers: c.servers.clone(),
                        servers_dropped: c.servers_dropped,
                        rules: c
                            .rules
                            .iter()
                            .filter_map(|r| feeds.rule(*r))
                            .map(|r| StateRule {
                                kind: r.kind.key().to_string(),
                                value: r.value.clone(),
                            })
                            .collect(),
                        connections: c.connections,
                        dns_queries: c.dns_queries,
                        first_seen: c.first_seen.0,
                        last_seen: c.last_seen.0,
                        times: (c.times.every() > 0 && !c.times.times().is_empty())
                            .then(|| c.times.clone()),
                        beacon: (!c.beacon.connections.is_empty() || !c.beacon.dns.is_empty())
                            .then(|| c.beacon.clone()),
                    })
                })
                .collect(),
        })
        .collect();
    StateFile {
        format: FORMAT.into(),
        version: VERSION,
        saved: rfc3339(now),
        hosts,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced,
/// renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Saves `hosts` to `path` (atomically).
pub fn save(
    path: &Path,
    hosts: &HostTable,
    intel: &Intel,
    now: Timestamp,
) -> Result<(), StateError> {
    let file = to_file(hosts, intel, now);
    let io_err = |source| StateError::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| io_err(io::Error::other(e)))?;
    write_atomic(path, &bytes).map_err(io_err)
}

/// Loads a state file; a missing file is an empty history.
pub fn load(path: &Path, intel: &Intel) -> Result<Loaded, StateError> {
    let p = path.display().to_string();
    let io_err = |source| StateError::Io {
        path: p.clone(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(io_err(e)),
    };
    if meta.len() > MAX_FILE {
        return Err(StateError::Format {
            path: p,
            why: format!("{} bytes is more than the {MAX_FILE} accepted", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(io_err)?;
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| StateError::Format {
        path: p.clone(),
        why: e.to_string(),
    })?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(StateError::Format {
            path: p,
            why: format!("format {:?} version {}", file.format, file.version),
        });
    }
    Ok(from_file(file, intel))
}

fn from_file(file: StateFile, intel: &Intel) -> Loaded {
    let feeds = &intel.feeds;
    let vendors: HashMap<&str, u16> = feeds
        .vendors
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((v.id.as_str(), u16::try_from(i).ok()?)))
        .collect();
    let rules: HashMap<(&str, &str, &str), RuleId> = feeds
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let v = feeds.vendors.get(usize::from(r.vendor))?;
            Some((
                (v.id.as_str(), r.kind.key(), r.value.as_str()),
                RuleId::try_from(i).ok()?,
            ))
        })
        .collect();
    let mut out = Loaded::default();
    for h in file.hosts {
        let mut contacts: Vec<Contact> = Vec::new();
        for c in h.contacts {
            let vendor = match c.vendor.as_deref() {
                None => None,
                Some(name) => match vendors.get(name) {
                    Some(&v) => Some(v),
                    None => {
                        out.unknown_vendors += 1;
                        continue;
                    }
                },
            };
            if vendor.is_some() && contacts.iter().any(|k| k.vendor == vendor) {
                continue;
            }
            let mut k = Contact::new(vendor, Timestamp(c.first_seen));
            k.last_seen = Timestamp(c.last_seen.max(c.first_seen));
            k.purposes = Bits(
                Purpose::ALL
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| c.purposes.iter().any(|s| s == p.as_str()))
                    .fold(0, |b, (i, _)| b | (1 << i)),
            );
            k.evidence = Bits(
                Evidence::ALL
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| c.evidence.iter().any(|s| s == e.as_str()))
                    .fold(0, |b, (i, _)| b | (1 << i)),
            );
            let mut names: Vec<Box<str>> = c.names.into_iter().map(Into::into).collect();
            names.sort();
            names.dedup();
            k.names_dropped = c.names_dropped + names.len().saturating_sub(MAX_NAMES) as u64;
            names.truncate(MAX_NAMES);
            k.names = names;
            let mut servers = c.servers;
            servers.sort();
            servers.dedup();
            k.servers_dropped =
                c.servers_dropped + servers.len().saturating_sub(MAX_SERVERS) as u64;
            servers.truncate(MAX_SERVERS);
            k.servers = servers;
            k.rules = match c.vendor.as_deref() {
                Some(name) => c
                    .rules
                    .iter()
                    .filter_map(|r| rules.get(&(name, r.kind.as_str(), r.value.as_str())))
                    .copied()
                    .take(MAX_RULES)
                    .collect(),
                None => Vec::new(),
            };
            k.connections = c.connections;
            k.dns_queries = c.dns_queries;
            if let Some(t) = c.times {
                k.times = t.sanitized();
            }
            if let Some(b) = c.beacon {
                k.beacon = b.sanitized();
            }
            contacts.push(k);
        }
        if !contacts.is_empty() {
            out.hosts.push(Host {
                ip: h.ip,
                vlan: h.vlan,
                mac: h.mac,
                contacts,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::HostLimits;

    fn intel() -> Intel {
        Intel::new(crate::feeds::load(None).expect("built-in feeds"))
    }

    #[test]
    fn a_saved_history_loads_back_the_same() {
        let intel = intel();
        let kaspersky = intel
            .feeds
            .vendors
            .iter()
            .position(|v| v.id == "kaspersky")
            .expect("kaspersky feed") as u16;
        let rule = intel
            .feeds
            .rules
            .iter()
            .position(|r| r.vendor == kaspersky)
            .expect("a kaspersky rule") as RuleId;
        let mut c = Contact::new(Some(kaspersky), Timestamp(1_505_296_805_000_000_000));
        c.last_seen = Timestamp(1_505_300_000_000_000_000);
        c.purposes = Bits(0b11);
        c.evidence = Bits(0b101);
        c.names = vec!["ds.kaspersky.com".into()];
        c.servers = vec!["93.159.228.2".parse().unwrap()];
        c.rules = vec![rule];
        c.connections = 25;
        c.dns_queries = 7;
        // A beacon every 300 s, confirmed by the streaming check.
        for i in 0..25i64 {
            let start = Timestamp(c.first_seen.0 + i * 300_000_000_000);
            c.times.record(start);
            c.beacon.connection(start);
            c.beacon.connection_bytes(start, 4_000);
        }
        let before = c.beacon.result(None).expect("a beacon before saving");
        assert!(c.beacon.confirmed_at.is_some());
        let mut table = HostTable::new(HostLimits::default());
        table.insert(Host {
            ip: "10.20.0.5".parse().unwrap(),
            vlan: Some(120),
            mac: Some([2, 0, 10, 20, 0, 5]),
            contacts: vec![c],
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &table, &intel, Timestamp(0)).unwrap();
        let loaded = load(&path, &intel).unwrap();
        assert_eq!(loaded.unknown_vendors, 0);
        let mut back = HostTable::new(HostLimits::default());
        for h in loaded.hosts {
            back.insert(h);
        }
        let a = to_file(&table, &intel, Timestamp(0));
        let b = to_file(&back, &intel, Timestamp(0));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        // The timing analysis goes on where it was: same beacon, same
        // confirmation, same connection times.
        let (c0, c1) = (
            &table.sorted()[0].contacts[0],
            &back.sorted()[0].contacts[0],
        );
        assert_eq!(c1.beacon.result(None), Some(before));
        assert_eq!(c1.beacon.confirmed_at, c0.beacon.confirmed_at);
        assert_eq!(c1.times, c0.times);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A damaged or edited file cannot smuggle unbounded series in: rings,
    /// samples and times are cut to their caps, and nothing panics.
    #[test]
    fn beacon_state_read_back_is_bounded() {
        let intel = intel();
        let n = 5_000;
        let intervals: Vec<u32> = (0..n).map(|_| 300_000).collect();
        let sizes: Vec<(u64, u32)> = (0..n as u64).map(|k| (k, 4_000)).collect();
        let times: Vec<i64> = (0..n as i64).rev().map(|k| k * 300_000_000_000).collect();
        let series = serde_json::json!({
            "open": {"first": 900, "start": 100, "last": 50},
            "intervals": {"buf": intervals, "head": 123_456},
            "sizes": {"kept": sizes},
            "starts": 0, "sessions": 0, "late": 0
        });
        let file = serde_json::json!({
            "format": "phonehome-state", "version": 1, "saved": "",
            "hosts": [{"ip": "10.0.0.1", "contacts": [{
                "vendor": "kaspersky", "purposes": [], "evidence": [], "names": [],
                "names_dropped": 0, "servers": [], "servers_dropped": 0, "rules": [],
                "connections": 1, "dns_queries": 0, "first_seen": 0, "last_seen": 0,
                "times": {"times": times, "every": 3, "seen": 0},
                "beacon": {"connections": series.clone(), "dns": series,
                           "confirmed_at": null, "unchecked": [7, 9]}
            }]}]
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, file.to_string()).unwrap();
        let l = load(&path, &intel).unwrap();
        let c = &l.hosts[0].contacts[0];
        assert!(c.times.times().len() <= crate::hosts::MAX_TIMES);
        assert!(c.times.times().is_sorted());
        assert!(c.times.every().is_power_of_two());
        assert!(c.beacon.heap_bytes() <= 2 * (512 * 4 + 128 * 16));
        // And the series still works.
        let mut b = c.beacon.clone();
        b.connection(Timestamp(2_000_000_000_000_000_000));
        let _ = b.result(None);
    }

    #[test]
    fn missing_is_empty_and_garbage_is_an_error() {
        let intel = intel();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.json");
        assert!(load(&path, &intel).unwrap().hosts.is_empty());
        std::fs::write(&path, b"{\"format\":\"x\"}").unwrap();
        assert!(matches!(
            load(&path, &intel),
            Err(StateError::Format { .. })
        ));
        std::fs::write(
            &path,
            br#"{"format":"phonehome-state","version":1,"saved":"","hosts":[{"ip":"10.0.0.1","contacts":[{"vendor":"gone","purposes":[],"evidence":[],"names":[],"names_dropped":0,"servers":[],"servers_dropped":0,"rules":[],"connections":1,"dns_queries":0,"first_seen":0,"last_seen":0}]}]}"#,
        )
        .unwrap();
        let l = load(&path, &intel).unwrap();
        assert_eq!((l.hosts.len(), l.unknown_vendors), (0, 1));
    }
}
