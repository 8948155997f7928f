//! Hosts: which internal machines contact which vendor, on what evidence,
//! since when and how often.
//!
//! [`Analysis`] receives the flow stage's conversations and the protocol
//! records seen in them, attributes them to vendors through the feeds (names
//! first, then passive DNS for bare addresses, then address ranges), and
//! keeps one [`Contact`] per (host, vendor). Conversations that no feed
//! attributes but whose server lies in a watched place (see [`crate::geo`])
//! become contacts without a vendor, one per (host, server). The host is
//! always the client of a conversation — the initiator — whatever its
//! address. Every record can also be written as an [`Event`] to an
//! [`EventSink`].
//!
//! Memory is bounded: hosts are capped ([`HostLimits`]), each host keeps at
//! most [`MAX_WATCHED_CONTACTS`] vendor-less contacts, and each contact
//! keeps at most [`MAX_NAMES`] names, [`MAX_SERVERS`] servers and
//! [`MAX_RULES`] matched rules, counting what it had to leave out. Each
//! contact also owns its bounded [`Beacons`] state (connection starts and
//! sizes, DNS query times), from which the report says whether the host
//! contacts the vendor on a clock.

mod attribute;
mod event;
pub mod pdns;
mod times;

pub use attribute::{Analysis, AnalysisStats, FlowCtx, FlowNote, resolver_in_feeds};
pub use event::{Event, EventKind, EventSink, NoEvents, Transport};
pub use times::{ConnTimes, MAX_TIMES};

use crate::beacons::Beacons;
use crate::capture::Timestamp;
use crate::feeds::{Purpose, Role, RuleId, VendorId};
use foldhash::HashMap;
use std::net::IpAddr;

/// Names kept per contact.
pub const MAX_NAMES: usize = 32;
/// Server addresses kept per contact.
pub const MAX_SERVERS: usize = 32;
/// Matched feed rules kept per contact.
pub const MAX_RULES: usize = 16;
/// Vendor-less contacts (servers in watched places) kept per host.
pub const MAX_WATCHED_CONTACTS: usize = 64;

/// Why a contact is attributed to a vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    /// A DNS query or answer for a vendor name.
    Dns,
    /// A query for a vendor name sent straight to a public resolver the
    /// vendor's software falls back to.
    DnsFallback,
    /// A TLS ClientHello server name.
    Sni,
    /// The server name of a ClientHello in QUIC Initial packets.
    QuicSni,
    /// An HTTP request Host header.
    HttpHost,
    /// An HTTP User-Agent matching a vendor pattern.
    HttpUserAgent,
    /// An HTTP request path matching a vendor pattern.
    HttpPath,
    /// An HTTP response media type used by a vendor.
    HttpContentType,
    /// A ClientHello's JA4 fingerprint is one a feed lists for the vendor's
    /// software.
    Ja4,
    /// A conversation on a port the vendor's software listens on (its
    /// management or relay traffic).
    Port,
    /// The server address lies in a vendor's range.
    Cidr,
    /// The server address was resolved from a vendor name (no name on the connection).
    PassiveDns,
    /// The server's autonomous system is a vendor's (ASN database).
    Asn,
    /// No feed attributes the conversation, but its server lies in a
    /// watched place (GeoIP database).
    Geo,
}

impl Evidence {
    /// All kinds, in report order.
    pub const ALL: [Evidence; 14] = [
        Evidence::Dns,
        Evidence::DnsFallback,
        Evidence::Sni,
        Evidence::QuicSni,
        Evidence::HttpHost,
        Evidence::HttpUserAgent,
        Evidence::HttpPath,
        Evidence::HttpContentType,
        Evidence::Ja4,
        Evidence::Port,
        Evidence::Cidr,
        Evidence::PassiveDns,
        Evidence::Asn,
        Evidence::Geo,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Dns => "dns",
            Evidence::DnsFallback => "dns_fallback",
            Evidence::Sni => "sni",
            Evidence::QuicSni => "quic_sni",
            Evidence::HttpHost => "http_host",
            Evidence::HttpUserAgent => "http_user_agent",
            Evidence::HttpPath => "http_path",
            Evidence::HttpContentType => "http_content_type",
            Evidence::Ja4 => "ja4",
            Evidence::Port => "port",
            Evidence::Cidr => "cidr",
            Evidence::PassiveDns => "passive_dns",
            Evidence::Asn => "asn",
            Evidence::Geo => "geo",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Appends a contact to a host's list. A contact is ~430 bytes and most
/// hosts have one or two, so the list grows one at a time up to four
/// (a `Vec`'s first push would make room for four: 1.7 KB for one
/// contact, the largest cost per host in a many-host flood), then doubles.
fn push_contact(contacts: &mut Vec<Contact>, c: Contact) {
    if contacts.len() < 4 {
        contacts.reserve_exact(1);
    }
    contacts.push(c);
}

/// A small set stored as bits, for purposes and evidence kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bits(pub u16);

/// One host's dealings with one vendor — or, without a vendor, with one
/// server in a watched place.
#[derive(Debug, Clone)]
pub struct Contact {
    /// The vendor; `None` for a contact that no feed attributes, kept
    /// because its server lies in a watched place (evidence [`Evidence::Geo`];
    /// `servers` then holds exactly that server).
    pub vendor: Option<VendorId>,
    /// Purposes of the matched rules (bits in [`Purpose::ALL`] order).
    pub purposes: Bits,
    /// Evidence kinds (bits in [`Evidence::ALL`] order).
    pub evidence: Bits,
    /// Names seen (sorted, at most [`MAX_NAMES`]).
    pub names: Vec<Box<str>>,
    /// Names left out because of the cap.
    pub names_dropped: u64,
    /// Server addresses contacted (sorted, at most [`MAX_SERVERS`]).
    pub servers: Vec<IpAddr>,
    /// Servers left out because of the cap.
    pub servers_dropped: u64,
    /// Feed rules that matched (at most [`MAX_RULES`]).
    pub rules: Vec<RuleId>,
    /// Conversations (TCP connections, UDP flows) with the vendor.
    pub connections: u64,
    /// DNS queries for the vendor's names.
    pub dns_queries: u64,
    /// Of the connections, those whose ClientHello used ECH (encrypted
    /// server name: attributed by passive DNS, ranges or fingerprints).
    pub ech_connections: u64,
    /// Roles in the vendor's management traffic (bits in [`Role::ALL`]
    /// order).
    pub roles: Bits,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Last evidence (or last packet of an attributed conversation).
    pub last_seen: Timestamp,
    /// Start times of the counted conversations (an even sample of at most
    /// [`MAX_TIMES`]).
    pub times: ConnTimes,
    /// Connection starts and sizes, DNS query times: the periodicity state.
    pub beacon: Beacons,
}

impl Contact {
    /// A contact with no evidence yet, first and last seen `now` (`vendor`
    /// `None`: a vendor-less contact in a watched place).
    pub fn new(vendor: Option<VendorId>, now: Timestamp) -> Self {
        Contact {
            vendor,
            purposes: Bits::default(),
            evidence: Bits::default(),
            names: Vec::new(),
            names_dropped: 0,
            servers: Vec::new(),
            servers_dropped: 0,
            rules: Vec::new(),
            connections: 0,
            dns_queries: 0,
            ech_connections: 0,
            roles: Bits::default(),
            first_seen: now,
            last_seen: now,
            times: ConnTimes::default(),
            beacon: Beacons::default(),
        }
    }

    /// The purposes, in order.
    pub fn purposes(&self) -> impl Iterator<Item = Purpose> + '_ {
        Purpose::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.purposes.0 & (1 << i) != 0)
            .map(|(_, p)| p)
    }

    /// The roles, in order.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        Role::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.roles.0 & (1 << i) != 0)
            .map(|(_, r)| r)
    }

    /// The evidence kinds, in order.
    pub fn evidence(&self) -> impl Iterator<Item = Evidence> + '_ {
        Evidence::ALL
            .into_iter()
            .filter(|e| self.evidence.0 & e.bit() != 0)
    }

    fn see(&mut self, now: Timestamp) {
        self.first_seen = self.first_seen.min(now);
        self.last_seen = self.last_seen.max(now);
    }

    fn add_name(&mut self, name: &str) {
        match self.names.binary_search_by(|n| (**n).cmp(name)) {
            Ok(_) => {}
            Err(_) if self.names.len() >= MAX_NAMES => self.names_dropped += 1,
            Err(i) => self.names.insert(i, name.into()),
        }
    }

    fn add_server(&mut self, addr: IpAddr) {
        match self.servers.binary_search(&addr) {
            Ok(_) => {}
            Err(_) if self.servers.len() >= MAX_SERVERS => self.servers_dropped += 1,
            Err(i) => self.servers.insert(i, addr),
        }
    }

    fn add_rule(&mut self, rule: RuleId, purpose: Purpose) {
        if let Some(i) = Purpose::ALL.iter().position(|p| *p == purpose) {
            self.purposes.0 |= 1 << i;
        }
        if !self.rules.contains(&rule) && self.rules.len() < MAX_RULES {
            self.rules.push(rule);
        }
    }
}

impl Contact {
    /// Whether `o` is the same contact: the same vendor, or — without a
    /// vendor — the same watched server.
    fn same_key(&self, o: &Contact) -> bool {
        self.vendor == o.vendor
            && (self.vendor.is_some() || self.servers.first() == o.servers.first())
    }

    /// Folds in what another shard recorded for the same host and vendor
    /// (only when sharding put one host's conversations on two workers).
    fn merge(&mut self, o: Contact) {
        self.purposes.0 |= o.purposes.0;
        self.evidence.0 |= o.evidence.0;
        for n in &o.names {
            self.add_name(n);
        }
        self.names_dropped += o.names_dropped;
        for s in o.servers {
            self.add_server(s);
        }
        self.servers_dropped += o.servers_dropped;
        for r in o.rules {
            if !self.rules.contains(&r) && self.rules.len() < MAX_RULES {
                self.rules.push(r);
            }
        }
        self.connections += o.connections;
        self.ech_connections += o.ech_connections;
        self.roles.0 |= o.roles.0;
        self.dns_queries += o.dns_queries;
        self.first_seen = self.first_seen.min(o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        self.times.merge(&o.times);
        self.beacon.merge(o.beacon);
    }
}

/// A host that contacted at least one vendor.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its address.
    pub ip: IpAddr,
    /// The VLAN its packets carried (last seen).
    pub vlan: Option<u16>,
    /// Its Ethernet address (last seen).
    pub mac: Option<[u8; 6]>,
    /// One contact per vendor.
    pub contacts: Vec<Contact>,
}

/// Limits of the host table.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    /// Hosts kept at most; contacts of further hosts are counted, not kept.
    pub max_hosts: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_hosts: 1_000_000,
        }
    }
}

/// All hosts with contacts.
#[derive(Debug, Default, Clone)]
pub struct HostTable {
    limits: HostLimits,
    hosts: HashMap<IpAddr, Host>,
    /// Contacts not recorded because the table was full.
    pub dropped: u64,
    /// Earliest and latest time the analysis saw (the observation window
    /// that beacon coverage is measured against).
    pub window: Option<(Timestamp, Timestamp)>,
    /// Whether contacts created are listed in `fresh` (for alerts).
    watch: bool,
    /// Contacts created since the last [`HostTable::take_new`] (with `watch`).
    fresh: Vec<(IpAddr, VendorId)>,
    /// Contacts whose beacon was confirmed since the last
    /// [`HostTable::take_beacons`] (with `watch`).
    fresh_beacons: Vec<(IpAddr, VendorId)>,
}

impl HostTable {
    /// An empty table.
    pub fn new(limits: HostLimits) -> Self {
        HostTable {
            limits,
            ..Default::default()
        }
    }

    /// Hosts, sorted by address.
    pub fn sorted(&self) -> Vec<&Host> {
        let mut v: Vec<&Host> = self.hosts.values().collect();
        v.sort_by_key(|h| h.ip);
        v
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Widens the observation window to `now`.
    pub fn observe(&mut self, now: Timestamp) {
        self.window = Some(match self.window {
            Some((a, b)) => (a.min(now), b.max(now)),
            None => (now, now),
        });
    }

    /// The host with address `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<&Host> {
        self.hosts.get(&ip)
    }

    /// Lists every contact created from now on, for [`HostTable::take_new`]
    /// (live alerts). The list is emptied by each call to `take_new`.
    pub fn watch_new(&mut self, on: bool) {
        self.watch = on;
        self.fresh.clear();
        self.fresh_beacons.clear();
    }

    /// Whether contacts were created or beacons confirmed since the last
    /// [`HostTable::take_new`] / [`HostTable::take_beacons`].
    pub fn has_new(&self) -> bool {
        !self.fresh.is_empty() || !self.fresh_beacons.is_empty()
    }

    /// The streaming beacon check confirmed a beacon for `(ip, vendor)`.
    pub fn beacon_confirmed(&mut self, ip: IpAddr, vendor: VendorId) {
        if self.watch {
            self.fresh_beacons.push((ip, vendor));
        }
    }

    /// Moves the (host, vendor) pairs whose beacon was confirmed since the
    /// last call into `out`.
    pub fn take_beacons(&mut self, out: &mut Vec<(IpAddr, VendorId)>) {
        out.append(&mut self.fresh_beacons);
    }

    /// Moves the (host, vendor) pairs of the contacts created since the last
    /// call into `out`.
    pub fn take_new(&mut self, out: &mut Vec<(IpAddr, VendorId)>) {
        out.append(&mut self.fresh);
    }

    /// Forgets contacts whose last evidence is older than `before`, and hosts
    /// left without contacts (long-running capture). Returns the contacts
    /// forgotten.
    pub fn expire(&mut self, before: Timestamp) -> u64 {
        let mut gone = 0u64;
        self.hosts.retain(|_, h| {
            let n = h.contacts.len();
            h.contacts.retain(|c| c.last_seen >= before);
            gone += (n - h.contacts.len()) as u64;
            !h.contacts.is_empty()
        });
        gone
    }

    /// Translates vendor and rule ids to new feeds (SIGHUP); contacts of
    /// vendors the new feeds no longer have are forgotten.
    pub fn remap(&mut self, remap: &crate::feeds::Remap) {
        self.hosts.retain(|_, h| {
            h.contacts.retain_mut(|c| match c.vendor {
                // A watched-place contact names no vendor.
                None => true,
                Some(old) => match remap.vendor(old) {
                    Some(v) => {
                        c.vendor = Some(v);
                        c.rules = c.rules.iter().filter_map(|r| remap.rule(*r)).collect();
                        true
                    }
                    None => false,
                },
            });
            !h.contacts.is_empty()
        });
        self.fresh.clear();
        self.fresh_beacons.clear();
    }

    /// Adds a host as is (a host history loaded from a state file); a host
    /// already present is merged contact by contact.
    pub fn insert(&mut self, host: Host) {
        let mut one = HostTable::new(self.limits);
        one.hosts.insert(host.ip, host);
        self.merge(one);
    }

    /// The contact of `ip` with `vendor`, created if needed (`None` when the
    /// host table is full).
    fn contact(&mut self, ip: IpAddr, vendor: VendorId, now: Timestamp) -> Option<&mut Contact> {
        let host = self.host(ip)?;
        let (i, created) = match host.contacts.iter().position(|c| c.vendor == Some(vendor)) {
            Some(i) => (i, false),
            None => {
                push_contact(&mut host.contacts, Contact::new(Some(vendor), now));
                (host.contacts.len() - 1, true)
            }
        };
        if created && self.watch {
            self.fresh.push((ip, vendor));
        }
        let c = self.hosts.get_mut(&ip)?.contacts.get_mut(i)?;
        c.see(now);
        Some(c)
    }

    /// The vendor-less contact of `ip` with `server` (in a watched place),
    /// created if needed (`None` when the host table or the host's
    /// [`MAX_WATCHED_CONTACTS`] are full; counted in `dropped`).
    fn watched_contact(
        &mut self,
        ip: IpAddr,
        server: IpAddr,
        now: Timestamp,
    ) -> Option<&mut Contact> {
        let mine = |c: &Contact| c.vendor.is_none() && c.servers.first() == Some(&server);
        let host = self.host(ip)?;
        let full = !host.contacts.iter().any(mine)
            && host.contacts.iter().filter(|c| c.vendor.is_none()).count() >= MAX_WATCHED_CONTACTS;
        if full {
            self.dropped += 1;
            return None;
        }
        let host = self.hosts.get_mut(&ip)?;
        let i = match host.contacts.iter().position(mine) {
            Some(i) => i,
            None => {
                let mut c = Contact::new(None, now);
                c.add_server(server);
                push_contact(&mut host.contacts, c);
                host.contacts.len() - 1
            }
        };
        let c = host.contacts.get_mut(i)?;
        c.see(now);
        Some(c)
    }

    /// The host `ip`, created if needed (`None`, counted, when the table is
    /// full).
    fn host(&mut self, ip: IpAddr) -> Option<&mut Host> {
        if !self.hosts.contains_key(&ip) {
            if self.hosts.len() >= self.limits.max_hosts {
                self.dropped += 1;
                return None;
            }
            self.hosts.insert(
                ip,
                Host {
                    ip,
                    vlan: None,
                    mac: None,
                    contacts: Vec::new(),
                },
            );
        }
        self.hosts.get_mut(&ip)
    }

    /// Folds in another table (a worker's shard). Exact when the two hold
    /// disjoint hosts, which sharding by host ensures; a host present in
    /// both has its contacts merged vendor by vendor.
    pub fn merge(&mut self, other: HostTable) {
        self.dropped += other.dropped;
        if let Some((a, b)) = other.window {
            self.observe(a);
            self.observe(b);
        }
        for (ip, host) in other.hosts {
            let full = self.hosts.len() >= self.limits.max_hosts;
            match self.hosts.get_mut(&ip) {
                None if full => {
                    self.dropped += host.contacts.len() as u64;
                }
                None => {
                    self.hosts.insert(ip, host);
                }
                Some(mine) => {
                    mine.vlan = mine.vlan.or(host.vlan);
                    mine.mac = mine.mac.or(host.mac);
                    for c in host.contacts {
                        match mine.contacts.iter_mut().find(|m| m.same_key(&c)) {
                            Some(m) => m.merge(c),
                            None => push_contact(&mut mine.contacts, c),
                        }
                    }
                }
            }
        }
    }

    fn set_link(&mut self, ip: IpAddr, link: crate::decode::LinkInfo) {
        if let Some(h) = self.hosts.get_mut(&ip) {
            if link.vlan().is_some() {
                h.vlan = link.vlan();
            }
            if link.src_mac().is_some() {
                h.mac = link.src_mac();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(ip: &str, period_s: i64) -> HostTable {
        let mut t = HostTable::new(HostLimits::default());
        let ip: IpAddr = ip.parse().unwrap();
        for i in 0..30 {
            let now = Timestamp::from_parts(1_700_000_000 + i * period_s, 0);
            t.observe(now);
            let c = t.contact(ip, 0, now).unwrap();
            c.connections += 1;
            c.beacon.connection(now);
        }
        t
    }

    #[test]
    fn merging_tables_of_disjoint_hosts_keeps_everything() {
        let mut a = table_with("10.0.0.1", 300);
        let b = table_with("10.0.0.2", 600);
        let (wa, wb) = (a.window.unwrap(), b.window.unwrap());
        a.merge(b);
        assert_eq!(a.len(), 2);
        assert_eq!(a.window, Some((wa.0.min(wb.0), wa.1.max(wb.1))));
        let periods: Vec<f64> = a
            .sorted()
            .iter()
            .map(|h| {
                h.contacts[0]
                    .beacon
                    .result(a.window)
                    .unwrap()
                    .primary
                    .period_s
            })
            .collect();
        assert_eq!(periods, [300.0, 600.0]);
        assert!(a.sorted().iter().all(|h| h.contacts[0].connections == 30));
    }
}
