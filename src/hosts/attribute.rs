//! Attribution: turns conversations and protocol records into vendor
//! contacts.
//!
//! Order of evidence on a conversation: a name carried by the conversation
//! itself (TLS or QUIC server name, HTTP Host) is authoritative; only when
//! there is none — or the ClientHello used ECH, whose server name is only
//! the provider's public name — does passive DNS name the server address
//! (evidence `passive_dns`);
//! an address inside a vendor range is evidence (`cidr`) on its own. HTTP
//! User-Agents, paths and response media types are evidence whatever the
//! name. DNS questions and answers for vendor names are evidence `dns` for
//! the host that asked.
//!
//! With GeoIP/ASN databases ([`crate::geo`]), a server in a vendor's
//! autonomous system is evidence (`asn`) on its own, like a range; and a
//! conversation that ends with no vendor attributed, to a server in a
//! watched place, becomes a vendor-less contact (evidence `geo`).
//! the host that asked; a question sent straight to a public resolver the
//! vendor's feed lists as its fallback is also evidence `dns_fallback`. A ClientHello whose JA4 fingerprint a feed lists is
//! evidence `ja4`, whatever server it calls.

use super::event::{Event, EventKind, EventSink, Transport};
use super::pdns::{PassiveDns, PdnsLimits, Resolution};
use super::{Evidence, HostLimits, HostTable};
use crate::capture::Timestamp;
use crate::decode::LinkInfo;
use crate::feeds::{Intel, Role, RuleId, VendorId};
use crate::flow::stream::Observation;
use crate::flow::{Dir, Endpoint};
use crate::geo::GeoCache;
use crate::protocols::dns::{AnswerData, DnsMessage};
use crate::protocols::fingerprint::{Carrier, Fingerprinter};
use crate::protocols::quic::Version as QuicVersion;
use crate::protocols::tls::ClientHello;
use crate::protocols::{escape_name, escape_text, http};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// The facts about a conversation that attribution needs.
#[derive(Debug, Clone, Copy)]
pub struct FlowCtx {
    /// The initiator (the host).
    pub client: Endpoint,
    /// The responder.
    pub server: Endpoint,
    /// Transport.
    pub transport: Transport,
    /// Link facts of the client.
    pub link: LinkInfo,
}

impl FlowCtx {
    fn endpoints(&self, dir: Dir) -> (Endpoint, Endpoint) {
        match dir {
            Dir::ToServer => (self.client, self.server),
            Dir::ToClient => (self.server, self.client),
        }
    }
}

/// What attribution remembers about one conversation.
#[derive(Debug, Default)]
pub struct FlowNote {
    /// Vendors this conversation was already counted for.
    counted: Vec<VendorId>,
    /// The conversation carried a host name (SNI or Host).
    named: bool,
    /// Passive DNS's name for the server, awaiting the decision.
    pending: Option<Resolution>,
    /// Whether the passive-DNS decision was made.
    decided: bool,
    /// A DNS conversation (its server is a resolver).
    dns: bool,
    /// Not attributable (multicast or broadcast peer).
    ignored: bool,
    /// The conversation's first packet (a connection start for beacons).
    start: Option<Timestamp>,
    /// The server lies in a watched place.
    watched: bool,
    /// Feed evidence was found on the conversation itself.
    attributed: bool,
    /// A ClientHello with encrypted_client_hello was seen (its server name
    /// is the public outer name, not the real destination).
    ech: bool,
    /// The first server name (SNI or HTTP Host) of a conversation with a
    /// watched server: the name of its vendor-less contact if no feed
    /// attributes the conversation (kept for watched servers only).
    name: Option<Box<str>>,
}

impl FlowNote {
    /// The note of a message read without a conversation (see
    /// [`Analysis::dns_needs_flow`]; also when the flow table is full): what
    /// [`Analysis::flow_start`] sets from the endpoints alone.
    pub fn for_message(ctx: &FlowCtx, now: Timestamp) -> Self {
        let mut note = FlowNote {
            decided: true,
            ..FlowNote::default()
        };
        note.begin(ctx, now);
        note
    }

    /// What a conversation's endpoints alone say, from its first packet at
    /// `now` (for a tracked conversation and a message read on its own).
    fn begin(&mut self, ctx: &FlowCtx, now: Timestamp) {
        self.start = Some(now);
        self.ignored = unattributable(ctx.server.addr) || unattributable(ctx.client.addr);
        // A DNS, mDNS or LLMNR server is a resolver, not a vendor server.
        self.dns = crate::protocols::dns::is_port(ctx.server.port);
    }

    /// Keeps `name` (an SNI or HTTP Host the conversation carried) as
    /// [`FlowNote::name`] if the server is watched and none is kept yet.
    fn keep_watched_name(&mut self, name: Option<&str>) {
        if self.watched
            && self.name.is_none()
            && let Some(n) = name
        {
            self.name = Some(n.into());
        }
    }
}

/// Counters of the analysis stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalysisStats {
    /// DNS messages read (parsed, or, when nothing in them could reach the
    /// report, walked and counted).
    pub dns_messages: u64,
    /// DNS messages with an anomaly (bad compression pointer, over-long
    /// name, reserved label type, truncated or over-cap sections).
    pub dns_anomalies: u64,
    /// DNS queries over UDP read without a tracked conversation (see
    /// [`Analysis::dns_needs_flow`]).
    pub dns_queries_without_flow: u64,
    /// TLS ClientHellos parsed.
    pub client_hellos: u64,
    /// ClientHellos read from QUIC Initial packets.
    pub quic_client_hellos: u64,
    /// HTTP requests parsed.
    pub http_requests: u64,
    /// HTTP responses parsed.
    pub http_responses: u64,
}

impl AnalysisStats {
    /// Adds another stage's counters to these.
    pub fn merge(&mut self, o: &AnalysisStats) {
        self.dns_messages += o.dns_messages;
        self.dns_anomalies += o.dns_anomalies;
        self.dns_queries_without_flow += o.dns_queries_without_flow;
        self.client_hellos += o.client_hellos;
        self.quic_client_hellos += o.quic_client_hellos;
        self.http_requests += o.http_requests;
        self.http_responses += o.http_responses;
    }
}

/// How a piece of evidence is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// The conversation is a connection to the vendor (counted once).
    Connection,
    /// A DNS query for a vendor name.
    Query,
    /// Nothing to count (e.g. a DNS answer).
    Nothing,
}

/// The attribution stage's state.
pub struct Analysis {
    intel: Arc<Intel>,
    internal: Vec<IpNet>,
    /// Passive DNS.
    pub pdns: PassiveDns,
    /// Hosts with contacts.
    pub hosts: HostTable,
    /// Counters.
    pub stats: AnalysisStats,
    /// Per-server GeoIP/ASN verdicts (used only with databases).
    pub geo: GeoCache,
    name: String,
    fp: Fingerprinter,
    ua: String,
    media: String,
}

/// The bit of a role in [`super::Contact::roles`].
fn role_bit(role: Role) -> u16 {
    Role::ALL
        .iter()
        .position(|r| *r == role)
        .map_or(0, |i| 1 << i)
}

fn unattributable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_multicast() || v.is_broadcast() || v.is_unspecified(),
        IpAddr::V6(v) => v.is_multicast() || v.is_unspecified(),
    }
}

/// The host part of a Host header: without port or IPv6 brackets.
fn host_without_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

/// Whether a server name (SNI, Host) is an IP address literal rather than
/// a name. Only text that ends in a digit (IPv4) or holds a colon (IPv6)
/// can be one, which skips the address parser for almost every name.
fn is_ip_literal(s: &str) -> bool {
    (s.ends_with(|c: char| c.is_ascii_digit()) || s.contains(':')) && s.parse::<IpAddr>().is_ok()
}

impl Analysis {
    /// A fresh stage. `internal`: when not empty, only clients inside these
    /// networks are hosts.
    pub fn new(
        intel: Arc<Intel>,
        internal: Vec<IpNet>,
        pdns: PdnsLimits,
        hosts: HostLimits,
    ) -> Self {
        Analysis {
            intel,
            internal,
            pdns: PassiveDns::new(pdns),
            hosts: HostTable::new(hosts),
            stats: AnalysisStats::default(),
            geo: GeoCache::default(),
            name: String::new(),
            fp: Fingerprinter::default(),
            ua: String::new(),
            media: String::new(),
        }
    }

    /// The feeds in use.
    pub fn intel(&self) -> &Arc<Intel> {
        &self.intel
    }

    /// Switches to new feeds (SIGHUP), keeping hosts and passive DNS: their
    /// ids are translated. Returns the translation, for the notes of open
    /// conversations ([`Analysis::remap_note`]).
    pub fn reload(&mut self, intel: Arc<Intel>) -> crate::feeds::Remap {
        let remap = crate::feeds::Remap::between(&self.intel.feeds, &intel.feeds);
        self.hosts.remap(&remap);
        self.pdns.remap(&remap);
        self.intel = intel;
        remap
    }

    /// Translates an open conversation's note to new feeds.
    pub fn remap_note(note: &mut FlowNote, remap: &crate::feeds::Remap) {
        note.counted = note
            .counted
            .iter()
            .filter_map(|v| remap.vendor(*v))
            .collect();
        if let Some(p) = note.pending.as_mut() {
            p.rule = p.rule.and_then(|r| remap.rule(r));
        }
    }

    fn is_host(&self, ip: IpAddr) -> bool {
        !unattributable(ip)
            && (self.internal.is_empty() || self.internal.iter().any(|n| n.contains(&ip)))
    }

    /// Records one piece of evidence for `host`.
    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &mut self,
        host: IpAddr,
        server: Option<IpAddr>,
        link: LinkInfo,
        note: &mut FlowNote,
        rule: RuleId,
        evidence: Evidence,
        name: Option<&str>,
        count: Count,
        now: Timestamp,
    ) {
        if note.ignored || !self.is_host(host) {
            return;
        }
        let Some(r) = self.intel.feeds.rule(rule) else {
            return;
        };
        let (vendor, purpose, role) = (r.vendor, r.purpose, r.role);
        let Some(c) = self.hosts.contact(host, vendor, now) else {
            return;
        };
        c.evidence.0 |= evidence.bit();
        c.add_rule(rule, purpose);
        if let Some(n) = name {
            c.add_name(n);
        }
        if let Some(s) = server {
            c.add_server(s);
        }
        // The initiator of management traffic plays the listener's peer role.
        if let (Count::Connection, Some(role)) = (count, role) {
            c.roles.0 |= role_bit(role.peer());
        }
        let unconfirmed = c.beacon.confirmed_at.is_none();
        match count {
            Count::Connection if !note.counted.contains(&vendor) => {
                c.connections += 1;
                c.times.record(now);
                c.beacon.connection(note.start.unwrap_or(now));
                if note.ech {
                    c.ech_connections += 1;
                }
                note.counted.push(vendor);
            }
            Count::Query => {
                c.dns_queries += 1;
                c.beacon.dns_query(now);
            }
            _ => {}
        }
        let confirmed = unconfirmed && c.beacon.confirmed_at.is_some();
        self.hosts.set_link(host, link);
        if confirmed {
            self.hosts.beacon_confirmed(host, vendor);
        }
    }

    /// Records evidence found on a conversation, for its client and server.
    #[allow(clippy::too_many_arguments)]
    fn attribute_flow(
        &mut self,
        ctx: &FlowCtx,
        note: &mut FlowNote,
        rule: RuleId,
        evidence: Evidence,
        name: Option<&str>,
        count: Count,
        now: Timestamp,
    ) {
        let (host, server) = (ctx.client.addr, Some(ctx.server.addr));
        note.attributed = true;
        self.attribute(
            host, server, ctx.link, note, rule, evidence, name, count, now,
        );
    }

    /// A conversation on a port a vendor's software listens on: evidence
    /// `port` for the initiator and, when it is a host too, for the
    /// listener, each with its role in the management traffic.
    fn port_rule(&mut self, ctx: &FlowCtx, note: &mut FlowNote, now: Timestamp) {
        let proto = match ctx.transport {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        };
        let Some(rule) = self.intel.matcher.port(proto, ctx.server.port) else {
            return;
        };
        self.attribute_flow(
            ctx,
            note,
            rule,
            Evidence::Port,
            None,
            Count::Connection,
            now,
        );
        let Some(r) = self.intel.feeds.rule(rule) else {
            return;
        };
        let (vendor, purpose, role) = (r.vendor, r.purpose, r.role);
        let listener = ctx.server.addr;
        if !self.is_host(listener) {
            return;
        }
        if let Some(c) = self.hosts.contact(listener, vendor, now) {
            c.evidence.0 |= Evidence::Port.bit();
            c.add_rule(rule, purpose);
            c.connections += 1;
            c.times.record(now);
            if let Some(role) = role {
                c.roles.0 |= role_bit(role);
            }
        }
    }

    /// A conversation starts: address-range evidence and passive DNS lookup.
    pub fn flow_start(&mut self, ctx: &FlowCtx, note: &mut FlowNote, now: Timestamp) {
        note.begin(ctx, now);
        self.hosts.observe(now);
        if !note.ignored {
            self.port_rule(ctx, note, now);
        }
        if note.ignored || !self.is_host(ctx.client.addr) {
            note.decided = true;
            return;
        }
        let count = if note.dns {
            Count::Nothing
        } else {
            Count::Connection
        };
        if let Some(rule) = self.intel.matcher.addr(ctx.server.addr) {
            self.attribute_flow(ctx, note, rule, Evidence::Cidr, None, count, now);
        }
        if self.intel.geo.is_enabled() {
            let v = self.geo.verdict(&self.intel.geo, ctx.server.addr);
            note.watched = v.watched;
            if let Some(rule) = v.asn.and_then(|a| self.intel.matcher.asn(a)) {
                self.attribute_flow(ctx, note, rule, Evidence::Asn, None, count, now);
            }
        }
        if note.dns {
            note.decided = true;
        } else {
            note.pending = self
                .pdns
                .lookup(now, ctx.client.addr, ctx.server.addr)
                .filter(|r| r.rule.is_some())
                .cloned();
            note.decided = note.pending.is_none();
        }
    }

    /// Whether a DNS exchange over UDP with the resolver `server` (address,
    /// port) is tracked as a conversation. Only when the resolver itself is
    /// evidence — in a vendor's address range, on a vendor's port, in a
    /// vendor's AS or in a watched place — does its conversation record
    /// anything ([`Analysis::flow_start`], [`Analysis::flow_end`]); every
    /// other exchange (most DNS: a host and its resolver) is read message
    /// by message with [`FlowNote::for_message`], and costs no flow
    /// (creating, timing out and ending one per query was 13 % of a
    /// thread's time on the bulk benchmark, where DNS is 59 % of the
    /// conversations). A function of the resolver alone, so every message
    /// of an exchange gets the same answer.
    pub fn dns_needs_flow(&mut self, server: IpAddr, port: u16) -> bool {
        let m = &self.intel.matcher;
        if resolver_in_feeds(m, server, port) {
            return true;
        }
        if self.intel.geo.is_enabled() {
            let v = self.geo.verdict(&self.intel.geo, server);
            return v.watched || v.asn.and_then(|a| m.asn(a)).is_some();
        }
        false
    }

    /// Makes the passive DNS decision: attribute by the resolved name unless
    /// the conversation named its server itself.
    fn decide(&mut self, ctx: &FlowCtx, note: &mut FlowNote, now: Timestamp) {
        if note.decided {
            return;
        }
        note.decided = true;
        if note.named {
            return;
        }
        if let Some(res) = note.pending.take()
            && let Some(rule) = res.rule
        {
            self.attribute_flow(
                ctx,
                note,
                rule,
                Evidence::PassiveDns,
                Some(&res.name),
                Count::Connection,
                now,
            );
        }
    }

    /// A conversation ended (closed, idle, or end of input) having carried
    /// `bytes` (both directions, on the wire).
    pub fn flow_end(
        &mut self,
        ctx: &FlowCtx,
        note: &mut FlowNote,
        first: Timestamp,
        last: Timestamp,
        bytes: u64,
    ) {
        self.decide(ctx, note, first);
        self.hosts.observe(last);
        if note.counted.is_empty() {
            if note.watched && !note.attributed && !note.ignored {
                let start = note.start.unwrap_or(first);
                let name = note.name.take();
                self.watched_conversation(ctx, start, last, bytes, name.as_deref());
            }
            return;
        }
        for vendor in std::mem::take(&mut note.counted) {
            if let Some(c) = self.hosts.contact(ctx.client.addr, vendor, first) {
                c.last_seen = c.last_seen.max(last);
                c.beacon
                    .connection_bytes(note.start.unwrap_or(first), bytes);
            }
        }
    }

    /// A conversation that no feed attributed, to a server in a watched
    /// place: a vendor-less contact of its client with that server.
    /// A conversation to a watched place that no feed attributed ended.
    /// (Recorded when it ends, as only then is it known to be unattributed;
    /// its start time feeds the beacon series and the timeline.)
    fn watched_conversation(
        &mut self,
        ctx: &FlowCtx,
        first: Timestamp,
        last: Timestamp,
        bytes: u64,
        name: Option<&str>,
    ) {
        let (host, server) = (ctx.client.addr, ctx.server.addr);
        if !self.is_host(host) {
            return;
        }
        let Some(c) = self.hosts.watched_contact(host, server, first) else {
            return;
        };
        c.evidence.0 |= Evidence::Geo.bit();
        c.connections += 1;
        c.times.record(first);
        c.beacon.connection(first);
        c.beacon.connection_bytes(first, bytes);
        c.last_seen = c.last_seen.max(last);
        if let Some(n) = name {
            c.add_name(n);
        }
        self.hosts.set_link(host, ctx.link);
    }

    fn event(
        &self,
        ctx: &FlowCtx,
        dir: Dir,
        now: Timestamp,
        kind: EventKind<'_>,
        rule: Option<RuleId>,
        sink: &mut dyn EventSink,
    ) {
        let (src, dst) = ctx.endpoints(dir);
        let feeds = &self.intel.feeds;
        let matched = rule.and_then(|r| Some((feeds.vendor_of(r)?, feeds.rule(r)?)));
        sink.event(&Event {
            ts: now,
            src: src.addr,
            dst: dst.addr,
            sport: src.port,
            dport: dst.port,
            transport: ctx.transport,
            vlan: ctx.link.vlan(),
            kind,
            matched,
        });
    }

    /// A protocol record was seen in a conversation.
    pub fn observe(
        &mut self,
        ctx: &FlowCtx,
        note: &mut FlowNote,
        dir: Dir,
        now: Timestamp,
        obs: &Observation<'_>,
        sink: &mut dyn EventSink,
    ) {
        match obs {
            Observation::ClientHello(hello) => {
                self.client_hello(ctx, note, dir, now, hello, None, sink)
            }
            Observation::QuicClientHello { hello, version } => {
                self.client_hello(ctx, note, dir, now, hello, Some(*version), sink)
            }
            Observation::HttpRequest(req) => {
                self.stats.http_requests += 1;
                let mut name = std::mem::take(&mut self.name);
                let mut ua = std::mem::take(&mut self.ua);
                let host = req.host.map(|h| {
                    escape_name(h, &mut name);
                    name.as_str()
                });
                let user_agent = req.user_agent.map(|u| {
                    escape_text(u, &mut ua);
                    ua.as_str()
                });
                let bare = host
                    .map(host_without_port)
                    .filter(|h| !h.is_empty() && !is_ip_literal(h));
                let m = &self.intel.matcher;
                let host_rule = bare.and_then(|h| m.name(h)).map(|x| x.rule);
                let ua_rule = user_agent.and_then(|u| m.user_agent(u));
                let path_rule = m.path(req.path);
                self.event(
                    ctx,
                    dir,
                    now,
                    EventKind::HttpRequest {
                        host,
                        method: req.method,
                        path: req.path,
                        user_agent,
                    },
                    host_rule.or(ua_rule).or(path_rule),
                    sink,
                );
                note.named |= bare.is_some();
                note.keep_watched_name(bare);
                if let Some(rule) = host_rule {
                    self.attribute_flow(
                        ctx,
                        note,
                        rule,
                        Evidence::HttpHost,
                        bare,
                        Count::Connection,
                        now,
                    );
                }
                if let Some(rule) = ua_rule {
                    self.attribute_flow(
                        ctx,
                        note,
                        rule,
                        Evidence::HttpUserAgent,
                        bare,
                        Count::Connection,
                        now,
                    );
                }
                if let Some(rule) = path_rule {
                    self.attribute_flow(
                        ctx,
                        note,
                        rule,
                        Evidence::HttpPath,
                        bare,
                        Count::Connection,
                        now,
                    );
                }
                self.name = name;
                self.ua = ua;
                self.decide(ctx, note, now);
            }
            Observation::HttpResponse(resp) => {
                self.stats.http_responses += 1;
                let mut media = std::mem::take(&mut self.media);
                let content_type = resp.content_type.map(|v| {
                    http::media_type(v, &mut media);
                    media.as_str()
                });
                let rule = content_type.and_then(|t| self.intel.matcher.content_type(t));
                self.event(
                    ctx,
                    dir,
                    now,
                    EventKind::HttpResponse {
                        status: resp.status,
                        content_type,
                    },
                    rule,
                    sink,
                );
                if let Some(rule) = rule {
                    self.attribute_flow(
                        ctx,
                        note,
                        rule,
                        Evidence::HttpContentType,
                        None,
                        Count::Connection,
                        now,
                    );
                }
                self.media = media;
            }
            Observation::Dns(msg) => self.dns(ctx, note, dir, now, msg, sink),
        }
    }

    /// A ClientHello, over TCP or (with its version) in QUIC Initials: its
    /// server name names the conversation.
    #[allow(clippy::too_many_arguments)]
    fn client_hello(
        &mut self,
        ctx: &FlowCtx,
        note: &mut FlowNote,
        dir: Dir,
        now: Timestamp,
        hello: &ClientHello<'_>,
        quic: Option<QuicVersion>,
        sink: &mut dyn EventSink,
    ) {
        match quic {
            Some(_) => self.stats.quic_client_hellos += 1,
            None => self.stats.client_hellos += 1,
        }
        let mut name = std::mem::take(&mut self.name);
        let sni = hello.sni.map(|raw| {
            escape_name(raw, &mut name);
            name.as_str()
        });
        let is_name = sni.is_some_and(|s| !is_ip_literal(s));
        let rule = sni
            .filter(|_| is_name)
            .and_then(|s| self.intel.matcher.name(s))
            .map(|m| m.rule);
        let mut fp = std::mem::take(&mut self.fp);
        // Fingerprints cost more than the rest of the hello (hashing and
        // formatting): only when a feed or the event log wants them.
        if sink.wants_events() || self.intel.matcher.has_ja4() {
            fp.compute(
                hello,
                if quic.is_some() {
                    Carrier::Quic
                } else {
                    Carrier::Tcp
                },
            );
        } else {
            fp.clear();
        }
        let ja4_rule = self.intel.matcher.ja4(&fp.ja4);
        if hello.ech && !note.ech {
            note.ech = true;
            // Vendors this conversation was already counted for (by address
            // range) learn that it used ECH.
            for &v in &note.counted {
                if let Some(c) = self.hosts.contact(ctx.client.addr, v, now) {
                    c.ech_connections += 1;
                }
            }
        }
        let (ja3, ja4) = (fp.ja3.as_str(), fp.ja4.as_str());
        let (kind, evidence) = match quic {
            Some(version) => (
                EventKind::QuicClientHello {
                    sni,
                    hello,
                    version,
                    ja3,
                    ja4,
                },
                Evidence::QuicSni,
            ),
            None => (
                EventKind::TlsClientHello {
                    sni,
                    hello,
                    ja3,
                    ja4,
                },
                Evidence::Sni,
            ),
        };
        self.event(ctx, dir, now, kind, rule.or(ja4_rule), sink);
        // An ECH outer name is the provider's public name: it still counts
        // when a feed lists it, but it does not hide the real destination
        // from passive DNS.
        note.named |= is_name && !hello.ech;
        note.keep_watched_name(sni.filter(|_| is_name));
        if let (Some(rule), Some(s)) = (rule, sni) {
            self.attribute_flow(ctx, note, rule, evidence, Some(s), Count::Connection, now);
        }
        if let Some(r) = ja4_rule {
            let s = sni.filter(|_| is_name);
            self.attribute_flow(ctx, note, r, Evidence::Ja4, s, Count::Connection, now);
        }
        self.fp = fp;
        self.name = name;
        self.decide(ctx, note, now);
    }

    /// A DNS message: questions are evidence for the sender, answers for the
    /// receiver, and answers feed passive DNS.
    pub fn dns(
        &mut self,
        ctx: &FlowCtx,
        note: &mut FlowNote,
        dir: Dir,
        now: Timestamp,
        msg: &DnsMessage,
        sink: &mut dyn EventSink,
    ) {
        self.stats.dns_messages += 1;
        if msg.anomalies.any() {
            self.stats.dns_anomalies += 1;
        }
        self.hosts.observe(now);
        let (src, dst) = ctx.endpoints(dir);
        let link = if dir == Dir::ToServer {
            ctx.link
        } else {
            LinkInfo::default()
        };
        if !msg.response {
            for q in &msg.questions {
                let name = msg.text(&q.name);
                let rule = self.intel.matcher.name(name).map(|m| m.rule);
                self.event(
                    ctx,
                    dir,
                    now,
                    EventKind::DnsQuery {
                        name,
                        qtype: q.qtype,
                    },
                    rule,
                    sink,
                );
                if let Some(rule) = rule {
                    self.attribute(
                        src.addr,
                        None,
                        link,
                        note,
                        rule,
                        Evidence::Dns,
                        Some(name),
                        Count::Query,
                        now,
                    );
                    // Sent straight to a resolver the vendor falls back to?
                    let vendor = self.intel.feeds.rule(rule).map(|r| r.vendor);
                    if let Some(fallback) =
                        vendor.and_then(|v| self.intel.matcher.dns_fallback(v, dst.addr))
                    {
                        self.attribute(
                            src.addr,
                            None,
                            link,
                            note,
                            fallback,
                            Evidence::DnsFallback,
                            Some(name),
                            Count::Nothing,
                            now,
                        );
                    }
                }
            }
            return;
        }
        let matched = self.answer_match(msg);
        self.event(
            ctx,
            dir,
            now,
            EventKind::DnsAnswer { msg },
            matched.map(|(_, r)| r),
            sink,
        );
        if let Some((name, rule)) = matched {
            self.attribute(
                dst.addr,
                None,
                LinkInfo::default(),
                note,
                rule,
                Evidence::Dns,
                Some(name),
                Count::Nothing,
                now,
            );
        }
        let shared = ctx.transport == Transport::Udp;
        self.remember(now, dst.addr, msg, matched, shared);
    }

    /// A DNS message that [`Analysis::dns`] would read to no effect but its
    /// count — it names no rule and parses cleanly
    /// ([`crate::feeds::Matcher::names_none_in`]) and no event is wanted:
    /// counted without being parsed.
    pub fn dns_unnamed(&mut self, now: Timestamp) {
        self.stats.dns_messages += 1;
        self.hosts.observe(now);
    }

    /// Learns the addresses in a DNS answer that another worker's host
    /// received: passive DNS only (no evidence, no events, no counts), so
    /// that every worker can fall back to any client's answer as one
    /// thread would.
    pub fn learn(&mut self, now: Timestamp, client: IpAddr, msg: &DnsMessage) {
        if !msg.response {
            return;
        }
        let matched = self.answer_match(msg);
        self.remember(now, client, msg, matched, true);
    }

    /// The first vendor name in an answer's question and CNAME chain.
    fn answer_match<'m>(&self, msg: &'m DnsMessage) -> Option<(&'m str, RuleId)> {
        let qname = msg.qname().unwrap_or("");
        let cnames = msg.answers.iter().filter_map(|a| match &a.data {
            AnswerData::Cname(t) => Some(msg.text(t)),
            _ => None,
        });
        std::iter::once(qname)
            .chain(cnames)
            .find_map(|n| self.intel.matcher.name(n).map(|m| (n, m.rule)))
    }

    /// Puts an answer's addresses in passive DNS for `client` (and, when
    /// `shared`, as a fallback for other clients).
    fn remember(
        &mut self,
        now: Timestamp,
        client: IpAddr,
        msg: &DnsMessage,
        matched: Option<(&str, RuleId)>,
        shared: bool,
    ) {
        // Only vendor names are worth remembering: passive DNS serves
        // attribution alone. This keeps the table small on a busy resolver
        // link, and a flood of random names cannot evict a vendor's answer.
        let Some((name, rule)) = matched else {
            return;
        };
        if unattributable(client) {
            return;
        }
        let resolved: Arc<str> = name.into();
        for a in &msg.answers {
            if let AnswerData::Addr(addr) = a.data {
                let resolution = Resolution {
                    name: Arc::clone(&resolved),
                    rule: Some(rule),
                    shared,
                };
                self.pdns.insert(now, client, addr, a.ttl, resolution);
            }
        }
    }
}

/// Whether a DNS resolver (address, UDP port) is evidence by the feeds
/// alone — in a vendor's address range or on a vendor's port — the part of
/// [`Analysis::dns_needs_flow`] that needs no geo database.
pub fn resolver_in_feeds(m: &crate::feeds::Matcher, server: IpAddr, port: u16) -> bool {
    m.addr(server).is_some() || m.port(crate::decode::ipproto::UDP, port).is_some()
}

#[cfg(test)]
mod tests {
    use super::{host_without_port, is_ip_literal};

    #[test]
    fn ip_literals_are_told_from_names() {
        for ip in [
            "10.0.0.1",
            "2001:db8::1",
            "::1",
            "::ffff:1.2.3.4",
            "0.0.0.0",
        ] {
            assert!(is_ip_literal(ip), "{ip}");
        }
        for name in [
            "kaspersky.com",
            "ds.kaspersky.com",
            "host1",
            "1.2.3.4.",
            "1.2.3.4a",
            "256.1.1.1",
            "a:b",
            "",
            "1.2.3",
        ] {
            assert!(!is_ip_literal(name), "{name}");
        }
    }

    #[test]
    fn host_header_ports_and_brackets_are_removed() {
        assert_eq!(
            host_without_port("update.drweb.com:8080"),
            "update.drweb.com"
        );
        assert_eq!(host_without_port("[2001:db8::1]:80"), "2001:db8::1");
        assert_eq!(host_without_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(host_without_port("a.b"), "a.b");
    }
}
