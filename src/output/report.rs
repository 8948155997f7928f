//! The report model: what `analyze` found, as serialisable structs. The JSON
//! output is this model as is (schema in README, "JSON report"); the table
//! is a view of it.

use super::time::rfc3339;
use crate::beacons::{Beacon, BeaconPeriod};
use crate::feeds::Intel;
use crate::geo::{CacheStats, Database, Geo};
use crate::hosts::HostTable;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A file that could not be read to its end.
#[derive(Debug, Clone, Serialize)]
pub struct InputError {
    /// The file.
    pub file: String,
    /// Byte offset where reading stopped (in the decompressed stream for gzip).
    pub offset: Option<u64>,
    /// What went wrong.
    pub error: String,
    /// Frames read from the file before the error (their results are kept).
    pub frames_read: u64,
}

/// Totals for the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Capture files given (after expanding folders).
    pub files: usize,
    /// Frames read.
    pub packets: u64,
    /// Captured bytes read.
    pub bytes: u64,
    /// First frame's time.
    pub first_packet: Option<String>,
    /// Last frame's time.
    pub last_packet: Option<String>,
    /// Seconds between them.
    pub duration_s: f64,
    /// Frames with inconsistent headers (counted, skipped).
    pub malformed_packets: u64,
    /// Frames cut by the snap length.
    pub truncated_packets: u64,
    /// Well-formed frames without IP (ARP, LLDP, ...).
    pub non_ip_frames: u64,
    /// Frames of link types phonehome does not decode, by LINKTYPE.
    pub unsupported_link_frames: BTreeMap<u32, u64>,
    /// IP fragments received.
    pub ip_fragments: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled_datagrams: u64,
    /// Incomplete datagrams dropped (timeout or memory cap).
    pub fragments_dropped: u64,
    /// Conversations tracked.
    pub flows: u64,
    /// Conversations not tracked because the flow table was full.
    pub flows_refused: u64,
    /// Flows ended early to make room in a full flow table (idle ones, then
    /// unanswered connection attempts).
    pub flows_evicted: u64,
    /// TCP directions whose reassembly was abandoned at the memory cap.
    pub streams_abandoned: u64,
    /// DNS messages read (parsed, or, when nothing in them could reach the
    /// report, walked and counted).
    pub dns_messages: u64,
    /// DNS messages with an anomaly (bad compression pointer, over-long
    /// name, reserved label type, truncated or over-cap sections): crafted
    /// or broken DNS on the link.
    pub dns_anomalies: u64,
    /// DNS queries over UDP to resolvers that are no evidence themselves
    /// (not a vendor's address, port or AS, not in a watched place): read
    /// message by message, without a tracked conversation, so not in
    /// `flows` (each is an exchange the flow table would have tracked).
    pub dns_queries_without_flow: u64,
    /// TLS ClientHellos parsed.
    pub tls_client_hellos: u64,
    /// ClientHellos read from QUIC Initial packets.
    pub quic_client_hellos: u64,
    /// HTTP requests parsed.
    pub http_requests: u64,
    /// HTTP responses parsed.
    pub http_responses: u64,
    /// Hosts with at least one vendor contact.
    pub hosts_reported: usize,
    /// Hosts per vendor id.
    pub hosts_per_vendor: BTreeMap<String, usize>,
    /// Contacts lost because the host table was full.
    pub contacts_dropped: u64,
    /// Passive DNS entries evicted at the cap.
    pub pdns_evicted: u64,
    /// Files that could not be read to the end.
    pub input_errors: Vec<InputError>,
    /// Vendors and rules loaded.
    pub feeds: FeedSummary,
    /// GeoIP/ASN databases, watch rules and lookup counters (absent without
    /// `--geoip`/`--asn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<GeoSummary>,
    /// Capture statistics (`live` only; their meaning per method is in
    /// README, "Live capture").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureSummary>,
}

/// One database in use.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSummary {
    /// The file.
    pub file: String,
    /// Its `database_type` metadata.
    pub database_type: String,
    /// Its build time.
    pub built: String,
}

impl DatabaseSummary {
    fn new(db: &Database) -> Self {
        let secs = i64::try_from(db.build_epoch()).unwrap_or(i64::MAX);
        DatabaseSummary {
            file: db.path().display().to_string(),
            database_type: db.database_type().to_string(),
            built: rfc3339(crate::capture::Timestamp::from_parts(secs, 0)),
        }
    }
}

/// GeoIP/ASN figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeoSummary {
    /// The location databases (`--geoip`).
    pub geoip: Vec<DatabaseSummary>,
    /// The ASN databases (`--asn`).
    pub asn: Vec<DatabaseSummary>,
    /// Watched places (`--watch-geo`; `tz:` rules are the default Moscow
    /// watch's time-zone fallback).
    pub watch: Vec<String>,
    /// Server verdicts asked for (one per conversation, and one per DNS
    /// message deciding whether its exchange is one).
    pub lookups: u64,
    /// Verdicts answered from the cache.
    pub cache_hits: u64,
    /// Database records that could not be decoded (treated as unknown).
    pub lookup_errors: u64,
    /// Vendor-less contacts to servers in watched places.
    pub watched_contacts: usize,
}

impl GeoSummary {
    /// The summary of `geo` with the engines' lookup counters.
    pub fn new(geo: &Geo, stats: &CacheStats) -> Self {
        GeoSummary {
            geoip: geo
                .location_dbs()
                .iter()
                .map(DatabaseSummary::new)
                .collect(),
            asn: geo.asn_dbs().iter().map(DatabaseSummary::new).collect(),
            watch: geo.watch().rules().iter().map(|r| r.to_string()).collect(),
            lookups: stats.lookups,
            cache_hits: stats.hits,
            lookup_errors: stats.errors,
            watched_contacts: 0,
        }
    }
}

/// Live capture statistics, totals since the sensor started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureSummary {
    /// `afpacket` or `pcap`.
    pub method: String,
    /// Interfaces captured.
    pub interfaces: Vec<String>,
    /// When the capture started (RFC 3339).
    pub started: String,
    /// Seconds since then.
    pub running_s: f64,
    /// Packets that passed the filter and reached the capture sockets,
    /// including those the kernel then dropped.
    pub received: u64,
    /// Packets the kernel dropped because a capture ring/buffer was full.
    pub kernel_drops: u64,
    /// Packets the interfaces dropped before capture (driver/stack
    /// `rx_dropped`, all traffic, since the start).
    pub interface_drops: u64,
    /// Packets lost because a worker's queue was full, per worker.
    pub queue_drops: Vec<u64>,
}

/// The feeds in use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedSummary {
    /// Vendors loaded.
    pub vendors: usize,
    /// Rules loaded.
    pub rules: usize,
}

/// A matched feed rule, as evidence detail.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRef {
    /// Match kind (suffix, exact, cidr, ...).
    pub kind: &'static str,
    /// The feed value.
    pub value: String,
    /// Its purpose.
    pub purpose: &'static str,
    /// vendor or community.
    pub confidence: &'static str,
    /// Where the feed entry comes from.
    pub source: String,
}

/// A server a contact talked to, with what the databases say about it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Its address.
    pub ip: IpAddr,
    /// Country (ISO 3166-1 alpha-2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City (English name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Autonomous system number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Whether the place is watched (present only with `--geoip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched: Option<bool>,
    /// The watch rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_rule: Option<String>,
}

impl ServerReport {
    /// What `geo` says about `ip`.
    pub fn new(ip: IpAddr, geo: &Geo) -> Self {
        let g = geo.describe(ip);
        let place = g.place.unwrap_or_default();
        ServerReport {
            ip,
            country: place.country.map(Into::into),
            city: place.city.map(Into::into),
            asn: g.asn,
            org: g.org.map(Into::into),
            watched: (!geo.location_dbs().is_empty()).then_some(g.watch.is_some()),
            watch_rule: g.watch,
        }
    }
}

/// One host's contact with one vendor, or (vendor `null`) with one server
/// in a watched place that no feed attributes.
#[derive(Debug, Clone, Serialize)]
pub struct ContactReport {
    /// Vendor id (`null` for a watched-place contact).
    pub vendor: Option<String>,
    /// Vendor display name.
    pub vendor_name: Option<String>,
    /// Purposes of the matched rules.
    pub purposes: Vec<&'static str>,
    /// Evidence kinds.
    pub evidence: Vec<&'static str>,
    /// Names seen.
    pub names: Vec<String>,
    /// Servers contacted.
    pub servers: Vec<ServerReport>,
    /// Conversations with the vendor.
    pub connections: u64,
    /// DNS queries for vendor names.
    pub dns_queries: u64,
    /// Connections whose ClientHello used ECH (omitted when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub ech_connections: u64,
    /// Roles in the vendor's management traffic: `management_server`,
    /// `managed_client` (omitted when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<&'static str>,
    /// First evidence.
    pub first_seen: String,
    /// Last evidence.
    pub last_seen: String,
    /// Periodicity: `null` unless the host contacts the vendor on a clock.
    pub beacon: Option<BeaconReport>,
    /// Start times of counted connections, in seconds after `first_seen`
    /// (sorted; an even sample of at most 128: one connection in
    /// `connection_times_every`).
    pub connection_times: Vec<i64>,
    /// The sampling step of `connection_times` (1 = every connection).
    pub connection_times_every: u64,
    /// The feed rules that matched.
    pub rules: Vec<RuleRef>,
    /// Names and servers left out of the lists above because of their caps.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted: u64,
}

/// Whole seconds from `first` (as printed: whole seconds) to each of `times`.
fn offsets(first: crate::capture::Timestamp, times: &[crate::capture::Timestamp]) -> Vec<i64> {
    let base = first.0.div_euclid(1_000_000_000);
    times
        .iter()
        .map(|t| (t.0.div_euclid(1_000_000_000) - base).max(0))
        .collect()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One period of a beacon.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PeriodReport {
    /// Period, seconds (0.1 s resolution).
    pub period_s: f64,
    /// Median absolute deviation of the intervals from the period, as a
    /// fraction of it (uniform ±15 % jitter gives about 0.075).
    pub jitter: f64,
    /// Score, 0..=1; a beacon from 0.7.
    pub score: f64,
    /// Sessions on the beat.
    pub count: u64,
}

impl From<&BeaconPeriod> for PeriodReport {
    fn from(p: &BeaconPeriod) -> Self {
        let round = |x: f64, f: f64| (x * f).round() / f;
        PeriodReport {
            period_s: round(p.period_s, 10.0),
            jitter: round(p.jitter, 1000.0),
            score: round(p.score, 1000.0),
            count: p.count,
        }
    }
}

/// A host's periodic contact with a vendor (schema in README).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BeaconReport {
    /// The dominant period, seconds.
    pub period_s: f64,
    /// Its jitter (see [`PeriodReport::jitter`]).
    pub jitter: f64,
    /// Its score.
    pub score: f64,
    /// Its on-beat sessions.
    pub count: u64,
    /// `connections` or `dns`: the series the beacon was found in.
    pub source: &'static str,
    /// When the streaming check first confirmed it.
    pub confirmed_at: Option<String>,
    /// Both periods, dominant first, when a second one is interleaved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<PeriodReport>,
}

impl From<&Beacon> for BeaconReport {
    fn from(b: &Beacon) -> Self {
        let p = PeriodReport::from(&b.primary);
        BeaconReport {
            period_s: p.period_s,
            jitter: p.jitter,
            score: p.score,
            count: p.count,
            source: b.source.as_str(),
            confirmed_at: b.confirmed_at.map(rfc3339),
            periods: match &b.second {
                Some(s) => vec![p, PeriodReport::from(s)],
                None => Vec::new(),
            },
        }
    }
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// Its address.
    pub ip: IpAddr,
    /// VLAN, when tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Ethernet address, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Its vendor contacts.
    pub contacts: Vec<ContactReport>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Totals.
    pub summary: Summary,
    /// Hosts with contacts, sorted by address.
    pub hosts: Vec<HostReport>,
}

impl Report {
    /// Builds the host part of the report from the analysis, and completes
    /// the summary's host and feed figures.
    pub fn new(mut summary: Summary, hosts: &HostTable, intel: &Intel) -> Self {
        let feeds = &intel.feeds;
        let mut out = Vec::new();
        // Servers recur across hosts: describe each once.
        let mut servers: HashMap<IpAddr, ServerReport> = HashMap::new();
        let mut server = |ip: IpAddr| {
            servers
                .entry(ip)
                .or_insert_with(|| ServerReport::new(ip, &intel.geo))
                .clone()
        };
        let mut watched_contacts = 0;
        for h in hosts.sorted() {
            let mut contacts: Vec<ContactReport> = h
                .contacts
                .iter()
                .filter_map(|c| {
                    let vendor = match c.vendor {
                        Some(v) => Some(feeds.vendors.get(usize::from(v))?),
                        None => None,
                    };
                    Some(ContactReport {
                        vendor: vendor.map(|v| v.id.clone()),
                        vendor_name: vendor.map(|v| v.name.clone()),
                        purposes: c.purposes().map(|p| p.as_str()).collect(),
                        evidence: c.evidence().map(|e| e.as_str()).collect(),
                        names: c.names.iter().map(|n| n.to_string()).collect(),
                        servers: c.servers.iter().map(|s| server(*s)).collect(),
                        connections: c.connections,
                        dns_queries: c.dns_queries,
                        ech_connections: c.ech_connections,
                        roles: c.roles().map(|r| r.as_str()).collect(),
                        first_seen: rfc3339(c.first_seen),
                        last_seen: rfc3339(c.last_seen),
                        beacon: c
                            .beacon
                            .result(hosts.window)
                            .as_ref()
                            .map(BeaconReport::from),
                        connection_times: offsets(c.first_seen, c.times.times()),
                        connection_times_every: c.times.every(),
                        rules: c
                            .rules
                            .iter()
                            .filter_map(|r| feeds.rule(*r))
                            .map(|r| RuleRef {
                                kind: r.kind.key(),
                                value: r.value.clone(),
                                purpose: r.purpose.as_str(),
                                confidence: match r.confidence {
                                    crate::feeds::Confidence::Vendor => "vendor",
                                    crate::feeds::Confidence::Community => "community",
                                },
                                source: r.source.clone(),
                            })
                            .collect(),
                        omitted: c.names_dropped + c.servers_dropped,
                    })
                })
                .collect();
            // Vendors by id, then the vendor-less contacts by server.
            contacts.sort_by(|a, b| {
                (
                    a.vendor.is_none(),
                    &a.vendor,
                    a.servers.first().map(|s| s.ip),
                )
                    .cmp(&(
                        b.vendor.is_none(),
                        &b.vendor,
                        b.servers.first().map(|s| s.ip),
                    ))
            });
            for c in &contacts {
                match &c.vendor {
                    Some(v) => *summary.hosts_per_vendor.entry(v.clone()).or_default() += 1,
                    None => watched_contacts += 1,
                }
            }
            out.push(HostReport {
                ip: h.ip,
                vlan: h.vlan,
                mac: h.mac.map(|m| {
                    m.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                }),
                contacts,
            });
        }
        summary.hosts_reported = out.len();
        summary.contacts_dropped = hosts.dropped;
        summary.feeds = FeedSummary {
            vendors: feeds.vendors.len(),
            rules: feeds.rules.len(),
        };
        if let Some(g) = summary.geo.as_mut() {
            g.watched_contacts = watched_contacts;
        }
        Report {
            summary,
            hosts: out,
        }
    }
}
