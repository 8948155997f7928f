//! The engine: one packet at a time through decode → defrag → flows → TCP
//! reassembly and protocol parsing → attribution. It owns every stage's
//! state and the reusable buffers, and is the unit a worker thread runs.

use crate::capture::{Frame, Timestamp};
use crate::decode::defrag::{DefragLimits, DefragStats, Defragmenter, Reassembled};
use crate::decode::{self, Decoded, Packet, Transport as L4, ipproto, tcpflags};
use crate::feeds::Intel;
use crate::flow::quic::QuicState;
use crate::flow::stream::{Observation, Scratch};
use crate::flow::tcp::{MemBudget, Sink, TcpState};
use crate::flow::{
    Dir, Endpoint, Flow, FlowLimits, FlowStats, FlowTable, Initiator, PacketInfo, Slot,
    initiator_by_ports, stream_apps,
};
use crate::hosts::pdns::PdnsLimits;
use crate::hosts::{
    Analysis, AnalysisStats, EventSink, FlowCtx, FlowNote, HostLimits, HostTable, Transport,
};
use crate::protocols::{dns, http, quic, tls};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every cap and timeout of the engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Flow table.
    pub flows: FlowLimits,
    /// IP reassembly.
    pub defrag: DefragLimits,
    /// Passive DNS.
    pub pdns: PdnsLimits,
    /// Host table.
    pub hosts: HostLimits,
    /// Bytes all TCP streams may buffer together.
    pub stream_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            flows: FlowLimits::default(),
            defrag: DefragLimits::default(),
            pdns: PdnsLimits::default(),
            hosts: HostLimits::default(),
            stream_memory: 256 * 1024 * 1024,
        }
    }
}

/// Packet-level counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Frames processed.
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// First frame time.
    pub first: Option<Timestamp>,
    /// Last frame time.
    pub last: Option<Timestamp>,
    /// Frames with inconsistent headers.
    pub malformed: u64,
    /// Packets cut by the snap length.
    pub truncated: u64,
    /// Frames without IP.
    pub non_ip: u64,
    /// Frames of undecoded link types.
    pub unsupported_link: BTreeMap<u32, u64>,
}

/// Decodes and analyses packets.
pub struct Engine {
    defrag: Defragmenter,
    flows: FlowTable<FlowNote>,
    /// Attribution state (hosts, passive DNS).
    pub analysis: Analysis,
    scratch: Scratch,
    budget: MemBudget,
    reassembled: Vec<u8>,
    now: Timestamp,
    /// Packet counters.
    pub counters: Counters,
}

fn ctx_of(f: &Flow<FlowNote>) -> FlowCtx {
    FlowCtx {
        client: f.client,
        server: f.server,
        transport: if f.proto == ipproto::TCP {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        link: f.link,
    }
}

/// The flow table's view of a packet.
fn packet_info(p: &Packet<'_>, proto: u8, sport: u16, dport: u16, tcp_flags: u8) -> PacketInfo {
    PacketInfo {
        proto,
        src: Endpoint {
            addr: p.src,
            port: sport,
        },
        dst: Endpoint {
            addr: p.dst,
            port: dport,
        },
        tcp_flags,
        link: p.link,
    }
}

/// Who started a TCP conversation, judged from its first packet seen.
fn tcp_initiator(flags: u8, payload: &[u8], sport: u16, dport: u16) -> Initiator {
    if flags & tcpflags::SYN != 0 {
        return if flags & tcpflags::ACK != 0 {
            Initiator::Receiver
        } else {
            Initiator::Sender
        };
    }
    if tls::starts_client_hello(payload) == Some(true)
        || http::starts_request(payload) == Some(true)
    {
        return Initiator::Sender;
    }
    if http::starts_response(payload) == Some(true) {
        return Initiator::Receiver;
    }
    initiator_by_ports(sport, dport)
}

/// A UDP datagram that holds a DNS message: which end is the resolver.
#[derive(Debug, Clone, Copy)]
pub struct DnsDatagram {
    /// The resolver's address and port: the receiver of a query, the
    /// sender of a response.
    pub resolver: (std::net::IpAddr, u16),
    /// Whether it is a response.
    pub response: bool,
}

/// The DNS message in a UDP datagram (on a DNS port, with a plausible
/// header), if it holds one.
#[inline]
pub fn dns_message(p: &Packet<'_>, udp: &decode::UdpDatagram<'_>) -> Option<DnsDatagram> {
    if !(dns::is_port(udp.sport) || dns::is_port(udp.dport)) || !dns::plausible(udp.payload) {
        return None;
    }
    let response = dns::is_response(udp.payload);
    Some(DnsDatagram {
        resolver: if response {
            (p.src, udp.sport)
        } else {
            (p.dst, udp.dport)
        },
        response,
    })
}

/// Whether a UDP datagram is a DNS response the engine would parse.
pub fn carries_dns_answer(sport: u16, dport: u16, payload: &[u8]) -> bool {
    (dns::is_port(sport) || dns::is_port(dport))
        && dns::plausible(payload)
        && dns::is_response(payload)
}

/// Who started a UDP conversation: the asker of a DNS query, the sender of
/// a QUIC Initial or 0-RTT packet (servers send Handshake and Retry), else
/// by ports.
fn udp_initiator(payload: &[u8], sport: u16, dport: u16) -> Initiator {
    if let [first, a, b, c, d, ..] = *payload
        && first & 0x80 != 0
    {
        let version = quic::Version(u32::from_be_bytes([a, b, c, d]));
        if version.is_known() {
            return match version.packet_type(first) {
                quic::PacketType::Initial | quic::PacketType::ZeroRtt => Initiator::Sender,
                quic::PacketType::Handshake | quic::PacketType::Retry => Initiator::Receiver,
            };
        }
    }
    let dns_port = dns::is_port(sport) || dns::is_port(dport);
    if dns_port && dns::plausible(payload) {
        return if dns::is_response(payload) {
            Initiator::Receiver
        } else {
            Initiator::Sender
        };
    }
    initiator_by_ports(sport, dport)
}

impl Engine {
    /// An engine over the given feeds.
    pub fn new(intel: Arc<Intel>, internal: Vec<IpNet>, limits: &Limits) -> Self {
        Engine {
            defrag: Defragmenter::new(limits.defrag),
            flows: FlowTable::new(limits.flows),
            analysis: Analysis::new(intel, internal, limits.pdns, limits.hosts),
            scratch: Scratch::default(),
            budget: MemBudget::new(limits.stream_memory),
            reassembled: Vec::new(),
            now: Timestamp(i64::MIN),
            counters: Counters::default(),
        }
    }

    /// Moves the engine's clock to `now`, the latest time of the whole input
    /// (a worker sees only its share of the packets; the dispatcher tells it
    /// the time of the rest, so timeouts fall as they would on one thread).
    pub fn advance_clock(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        self.flows.advance(self.now);
    }

    /// Before each packet: moves the clock to its time and ends the
    /// conversations that timed out by then, so that they end before
    /// anything the packet does to its host — in the same place among the
    /// host's records whether this engine sees every packet or only its
    /// shard's (see [`FlowTable::advance`]). After the packet, `end_flows`
    /// ends those it let go of.
    fn start_packet(&mut self, ts: Timestamp, events: &mut dyn EventSink) {
        self.advance_clock(ts);
        self.end_flows(events);
    }

    /// Processes one captured frame.
    pub fn process(&mut self, frame: &Frame<'_>, events: &mut dyn EventSink) {
        self.counters.count(frame);
        let ts = frame.ts;
        self.start_packet(ts, events);
        match decode::decode(frame.linktype, frame.data) {
            Decoded::Packet(p) => self.packet(&p, ts, frame.orig_len, &mut *events),
            Decoded::Fragment(f) => {
                if let Some(r) = self.defrag.push(ts, &f) {
                    let (link, src, dst, proto) = (r.link, r.src, r.dst, r.proto);
                    let mut buf = std::mem::take(&mut self.reassembled);
                    buf.clear();
                    buf.extend_from_slice(r.payload);
                    match decode::decode_reassembled(link, src, dst, proto, &buf) {
                        Decoded::Packet(p) => {
                            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
                            self.packet(&p, ts, len, &mut *events);
                        }
                        Decoded::Malformed(_) => self.counters.malformed += 1,
                        _ => {}
                    }
                    self.reassembled = buf;
                }
            }
            Decoded::NotIp => self.counters.non_ip += 1,
            Decoded::UnsupportedLink(lt) => {
                *self.counters.unsupported_link.entry(lt).or_default() += 1
            }
            Decoded::Malformed(_) => self.counters.malformed += 1,
        }
        self.end_flows(events);
    }

    /// [`Engine::process`] for a frame its caller has decoded already (the
    /// pipeline decodes every frame to pick its worker): captured at `ts`,
    /// `caplen` bytes captured of `orig_len` on the wire.
    #[inline]
    pub fn process_decoded(
        &mut self,
        ts: Timestamp,
        caplen: usize,
        orig_len: u32,
        p: &Packet<'_>,
        events: &mut dyn EventSink,
    ) {
        self.counters.count_parts(ts, caplen);
        self.start_packet(ts, events);
        self.packet(p, ts, orig_len, &mut *events);
        self.end_flows(events);
    }

    /// Processes a datagram that the dispatcher reassembled from fragments
    /// (whose frames it counted).
    pub fn process_datagram(
        &mut self,
        d: &Reassembled<'_>,
        ts: Timestamp,
        events: &mut dyn EventSink,
    ) {
        self.start_packet(ts, events);
        match decode::decode_reassembled(d.link, d.src, d.dst, d.proto, d.payload) {
            Decoded::Packet(p) => {
                let len = u32::try_from(d.payload.len()).unwrap_or(u32::MAX);
                self.packet(&p, ts, len, &mut *events);
            }
            Decoded::Malformed(_) => self.counters.malformed += 1,
            _ => {}
        }
        self.end_flows(events);
    }

    /// Learns the answers of a DNS response (a decoded packet seen at `ts`)
    /// that belongs to another worker's host (passive DNS only: no flow, no
    /// evidence, no counts).
    pub fn learn_dns(&mut self, p: &Packet<'_>, ts: Timestamp) {
        self.advance_clock(ts);
        self.learn_packet(p, ts);
    }

    /// [`Engine::learn_dns`] for a datagram reassembled from fragments.
    pub fn learn_dns_datagram(&mut self, d: &Reassembled<'_>, ts: Timestamp) {
        self.advance_clock(ts);
        if let Decoded::Packet(p) =
            decode::decode_reassembled(d.link, d.src, d.dst, d.proto, d.payload)
        {
            self.learn_packet(&p, ts);
        }
    }

    fn learn_packet(&mut self, p: &Packet<'_>, ts: Timestamp) {
        if let L4::Udp(u) = p.transport
            && carries_dns_answer(u.sport, u.dport, u.payload)
            // Only vendor answers are learnt: skip the parse of any other.
            && self.analysis.intel().matcher.may_name_in(u.payload)
            && self.scratch.dns.parse(u.payload)
        {
            self.analysis.learn(ts, p.dst, &self.scratch.dns);
        }
    }

    fn packet(&mut self, p: &Packet<'_>, ts: Timestamp, wire_len: u32, events: &mut dyn EventSink) {
        if p.truncated {
            self.counters.truncated += 1;
        }
        match p.transport {
            L4::Tcp(seg) => self.tcp(p, &seg, ts, wire_len, events),
            L4::Udp(udp) => self.udp(p, &udp, ts, wire_len, events),
            L4::Other(_) => {}
        }
    }

    fn tcp(
        &mut self,
        p: &Packet<'_>,
        seg: &decode::TcpSegment<'_>,
        ts: Timestamp,
        wire_len: u32,
        events: &mut dyn EventSink,
    ) {
        let info = packet_info(p, ipproto::TCP, seg.sport, seg.dport, seg.flags);
        let slot = self.flows.lookup(ts, &info, || {
            tcp_initiator(seg.flags, seg.payload, seg.sport, seg.dport)
        });
        let (i, dir) = match slot {
            Slot::New(i, dir) => {
                if let Some(f) = self.flows.get_mut(i) {
                    let ctx = ctx_of(f);
                    self.analysis.flow_start(&ctx, &mut f.user, ts);
                }
                (i, dir)
            }
            Slot::Existing(i, dir) => (i, dir),
            Slot::Full => return,
        };
        self.flows.touch(i, dir, ts, wire_len, seg.flags, p.link);
        if !seg.payload.is_empty() {
            self.make_stream_room(i, dir, seg.payload.len());
        }
        let Engine {
            flows,
            analysis,
            scratch,
            budget,
            ..
        } = self;
        let Some((flow, spare)) = flows.get_with_spare(i) else {
            return;
        };
        let ctx = ctx_of(flow);
        let Flow {
            tcp,
            pipeline,
            user,
            ..
        } = flow;
        let apps = || stream_apps(ctx.client, ctx.server);
        let Some(dirs) = tcp
            .as_mut()
            .and_then(|t| t.take_segment(dir as usize, seg, apps, spare))
        else {
            return;
        };
        let mut emit =
            |obs: Observation<'_>| analysis.observe(&ctx, user, dir, ts, &obs, &mut *events);
        let mut sink = Sink {
            pipeline,
            scratch,
            budget,
            emit: &mut emit,
        };
        dirs[dir as usize].segment(seg, &mut sink);
        if dir == Dir::ToServer
            && let Some(kind) = dirs[0].app.kind()
        {
            dirs[1].app.follow(kind);
        }
    }

    /// Stream memory cannot take `need` more bytes for direction `dir` of
    /// the flow in slot `current`: gives up the buffers of sampled flows
    /// whose message has waited longest (least recently active), until it
    /// can. A flood of messages that never complete thus pushes out its own
    /// oldest instead of locking new conversations out, as the flow table
    /// does with flows; a message in progress, whose next segment comes
    /// within a round trip, is never the oldest. Only when no other flow
    /// holds a buffer does the stream itself give up (in `segment`).
    fn make_stream_room(&mut self, current: usize, dir: Dir, need: usize) {
        // Room for the payload and for the buffer's growth by as much.
        let need = need.saturating_mul(2);
        if self.budget.used.saturating_add(need) <= self.budget.cap {
            return;
        }
        let wants = self
            .flows
            .get_mut(current)
            .and_then(|f| f.tcp.as_ref())
            .is_some_and(|t| t.wants_data(dir as usize));
        if !wants || self.flows.slots() < 2 {
            return;
        }
        while self.budget.used.saturating_add(need) > self.budget.cap {
            let Some(i) = self.flows.longest_waiting_stream(current) else {
                return;
            };
            if let Some(dirs) = self
                .flows
                .get_mut(i)
                .and_then(|f| f.tcp.as_mut())
                .and_then(TcpState::streams_mut)
            {
                for d in dirs.iter_mut() {
                    d.release(&mut self.budget);
                }
                self.budget.refusals += 1;
            }
        }
    }

    fn udp(
        &mut self,
        p: &Packet<'_>,
        udp: &decode::UdpDatagram<'_>,
        ts: Timestamp,
        wire_len: u32,
        events: &mut dyn EventSink,
    ) {
        let info = packet_info(p, ipproto::UDP, udp.sport, udp.dport, 0);
        let Engine {
            flows,
            analysis,
            scratch,
            budget,
            ..
        } = self;
        // A DNS message to or from an ordinary resolver is read on its own
        // (see `Analysis::dns_needs_flow`).
        let dns_msg = dns_message(p, udp);
        let is_dns = dns_msg.is_some();
        // A message with nothing in it to find or record (no event wanted)
        // counts without being parsed.
        let unnamed =
            is_dns && !events.wants_events() && analysis.intel().matcher.names_none_in(udp.payload);
        let slot = match dns_msg {
            Some(m) if !analysis.dns_needs_flow(m.resolver.0, m.resolver.1) => {
                if !m.response {
                    analysis.stats.dns_queries_without_flow += 1;
                }
                if unnamed {
                    analysis.dns_unnamed(ts);
                    return;
                }
                Slot::Full
            }
            _ => flows.lookup(ts, &info, || {
                udp_initiator(udp.payload, udp.sport, udp.dport)
            }),
        };
        let mut scratch_note: FlowNote;
        let mut scratch_quic = QuicState::default();
        let (ctx, note, quic_state, dir) = match slot {
            Slot::New(i, dir) | Slot::Existing(i, dir) => {
                let new = matches!(slot, Slot::New(..));
                flows.touch(i, dir, ts, wire_len, 0, p.link);
                let Some(f) = flows.get_mut(i) else {
                    return;
                };
                let ctx = ctx_of(f);
                if new {
                    analysis.flow_start(&ctx, &mut f.user, ts);
                }
                (ctx, &mut f.user, &mut f.quic, dir)
            }
            Slot::Full => {
                // A DNS message read on its own, or no room to track the
                // conversation: parse DNS and single-datagram QUIC
                // ClientHellos statelessly.
                let (src, dst) = (info.src, info.dst);
                let (client, server, dir) = match udp_initiator(udp.payload, udp.sport, udp.dport) {
                    Initiator::Sender => (src, dst, Dir::ToServer),
                    Initiator::Receiver => (dst, src, Dir::ToClient),
                };
                let ctx = FlowCtx {
                    client,
                    server,
                    transport: Transport::Udp,
                    link: p.link,
                };
                scratch_note = FlowNote::for_message(&ctx, ts);
                (ctx, &mut scratch_note, &mut scratch_quic, dir)
            }
        };
        if unnamed {
            analysis.dns_unnamed(ts);
        } else if is_dns && scratch.dns.parse(udp.payload) {
            analysis.dns(&ctx, note, dir, ts, &scratch.dns, events);
        } else if dir == Dir::ToServer && quic::may_be_initial(udp.payload) {
            let mut emit =
                |obs: Observation<'_>| analysis.observe(&ctx, note, dir, ts, &obs, &mut *events);
            quic_state.datagram(udp.payload, &mut scratch.quic, budget, &mut emit);
            if matches!(slot, Slot::Full) {
                quic_state.release(budget);
            }
        }
    }

    /// Finishes conversations the flow table let go of.
    #[inline]
    fn end_flows(&mut self, events: &mut dyn EventSink) {
        if self.flows.has_ended() {
            self.finish_ended(events);
        }
    }

    /// [`Engine::end_flows`] when there are some (out of line: the check
    /// runs twice per packet, the work once per conversation).
    #[inline(never)]
    fn finish_ended(&mut self, events: &mut dyn EventSink) {
        let Engine {
            flows,
            analysis,
            scratch,
            budget,
            ..
        } = self;
        // In the order they ended, then started (see
        // `FlowTable::finish_ended`): the same order with one engine and
        // with one per worker, so contacts recorded at a flow's end
        // (watched places, passive DNS decided at the end) see their
        // connections in the same order.
        flows.finish_ended(|f| {
            let ctx = ctx_of(f);
            let Flow {
                tcp,
                pipeline,
                user,
                quic,
                first_ts,
                last_ts,
                bytes,
                ..
            } = f;
            if let Some(dirs) = tcp.as_mut().and_then(TcpState::streams_mut) {
                for (d, dir) in dirs.iter_mut().zip([Dir::ToServer, Dir::ToClient]) {
                    let mut emit = |obs: Observation<'_>| {
                        analysis.observe(&ctx, user, dir, *last_ts, &obs, &mut *events)
                    };
                    let mut sink = Sink {
                        pipeline,
                        scratch,
                        budget,
                        emit: &mut emit,
                    };
                    d.flush(&mut sink);
                    d.release(budget);
                }
            }
            quic.release(budget);
            let total = bytes[0].saturating_add(bytes[1]);
            analysis.flow_end(&ctx, user, *first_ts, *last_ts, total);
        });
    }

    /// Live capture: moves the clock to `now` (wall time, so conversations
    /// end on a quiet link too) and finishes the conversations that timed
    /// out by then.
    pub fn tick(&mut self, now: Timestamp, events: &mut dyn EventSink) {
        self.advance_clock(now);
        self.end_flows(events);
    }

    /// Switches to new feeds keeping every state (SIGHUP in live capture).
    pub fn reload(&mut self, intel: Arc<Intel>) {
        let remap = self.analysis.reload(intel);
        self.flows
            .for_each_mut(|f| Analysis::remap_note(&mut f.user, &remap));
    }

    /// Ends every conversation (end of input).
    pub fn finish(&mut self, events: &mut dyn EventSink) {
        // In batches, so that ending every flow does not hold a second copy
        // of the flow table (see `FlowTable::drain_some`).
        while self.flows.drain_some(1024) {
            self.end_flows(events);
        }
        self.end_flows(events);
    }

    /// Every counter of every stage so far.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            counters: self.counters.clone(),
            flows: self.flows.stats(),
            defrag: self.defrag.stats(),
            streams_abandoned: self.budget.refusals,
            quic: self.scratch.quic.stats,
            analysis: self.analysis.stats,
            pdns_evicted: self.analysis.pdns.evicted,
            geo: self.analysis.geo.stats,
        }
    }

    /// The counters and the host table, once the input is finished.
    pub fn into_results(self) -> (EngineStats, HostTable) {
        let stats = self.stats();
        (stats, self.analysis.hosts)
    }
}

impl Counters {
    /// Counts one frame.
    pub fn count(&mut self, frame: &Frame<'_>) {
        self.count_parts(frame.ts, frame.data.len());
    }

    /// Counts a frame of `caplen` captured bytes seen at `ts`.
    pub fn count_parts(&mut self, ts: Timestamp, caplen: usize) {
        self.packets += 1;
        self.bytes += caplen as u64;
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }

    /// Adds another stage's counters to these.
    pub fn merge(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.malformed += o.malformed;
        self.truncated += o.truncated;
        self.non_ip += o.non_ip;
        for (lt, n) in &o.unsupported_link {
            *self.unsupported_link.entry(*lt).or_default() += n;
        }
    }
}

/// The counters of an engine (or of several, merged).
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// Packet counters.
    pub counters: Counters,
    /// Flow table.
    pub flows: FlowStats,
    /// IP reassembly.
    pub defrag: DefragStats,
    /// TCP directions given up at the memory cap.
    pub streams_abandoned: u64,
    /// QUIC Initial processing.
    pub quic: crate::flow::quic::QuicStats,
    /// Protocol records parsed.
    pub analysis: AnalysisStats,
    /// Passive DNS entries evicted at the cap.
    pub pdns_evicted: u64,
    /// GeoIP/ASN verdict lookups.
    pub geo: crate::geo::CacheStats,
}

impl EngineStats {
    /// Adds another engine's counters to these.
    pub fn merge(&mut self, o: &EngineStats) {
        self.counters.merge(&o.counters);
        self.flows.merge(&o.flows);
        self.defrag.merge(&o.defrag);
        self.streams_abandoned += o.streams_abandoned;
        self.quic.merge(&o.quic);
        self.analysis.merge(&o.analysis);
        self.pdns_evicted += o.pdns_evicted;
        self.geo.merge(&o.geo);
    }
}
