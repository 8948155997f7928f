//! Flows: who talks to whom. Groups packets into conversations keyed by a
//! symmetric 5-tuple, decides which side is the client (the initiator: the
//! sender of the SYN, of the DNS query, of the first datagram), reassembles
//! TCP streams for the application parsers (`quic.rs`: QUIC ClientHellos
//! over UDP), and expires idle conversations.
//!
//! The table is a slab of flows indexed by a seeded hash table of slot
//! numbers (attackers choose the tuples, so the hash is keyed). The index
//! holds only 4-byte slot numbers — a million flows index in ~5 MB, which
//! stays in cache — and each flow keeps its hash, so removing a flow never
//! rehashes its tuple. Expiry runs on a timing wheel (`expiry.rs`): a flow
//! is looked at when its deadline's second has passed, so no packet ever
//! pays for a scan of the table, and conversations end in an order that
//! does not depend on where they lie in it. A TCP connection's stream state
//! is made at its first byte of payload ([`tcp::TcpState`]), so a SYN flood
//! costs only slots. The table has a hard cap ([`FlowLimits`]); when it is
//! full, idle flows are evicted early, and if none can go the new flow is
//! refused and counted — stateless parsing (single-datagram DNS) goes on.

mod expiry;
pub mod quic;
pub mod stream;
pub mod tcp;

use crate::capture::Timestamp;
use crate::decode::{LinkInfo, ipproto, tcpflags};
use expiry::Wheel;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use stream::{AppStream, Pipeline};
use tcp::{Streams, TcpState};

/// Limits and timeouts of the flow table.
#[derive(Debug, Clone, Copy)]
pub struct FlowLimits {
    /// Flows tracked at once.
    pub max_flows: usize,
    /// An open TCP connection idle this long ends (Zeek: 5 min).
    pub tcp_idle_secs: i64,
    /// A closed (FIN both ways, or RST) TCP connection is forgotten after this.
    pub tcp_closed_secs: i64,
    /// A UDP conversation idle this long ends (Zeek: 1 min).
    pub udp_idle_secs: i64,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 1_000_000,
            tcp_idle_secs: 300,
            tcp_closed_secs: 10,
            udp_idle_secs: 60,
        }
    }
}

/// A direction within a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    ToServer = 0,
    /// Server to client.
    ToClient = 1,
}

/// A transport endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
}

/// An address as 128 bits (IPv4 in the low 32, IPv6 tagged in the top
/// bit), for hashing and ordering: one integer hashes faster than `IpAddr`'s
/// derived field-by-field hash.
pub(crate) fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v) ^ (1 << 127),
    }
}

/// Flows come due at once whose slots are loaded together before they are
/// looked at (their cache misses overlap instead of queueing).
const DUE_BATCH: usize = 16;

/// How many ended flows ahead of the one being finished are loaded (each
/// end reads all of a flow, far apart in the table).
const END_AHEAD: usize = 8;

/// Slots a flow table has room for before it reserves its cap (see
/// `FlowTable::grow_slots`).
const FIRST_SLOTS: usize = 4096;

/// The slot after `i` in a table of `len`, wrapping to 0 (no division: a
/// full table's eviction calls this for every new flow).
fn next_slot(i: usize, len: usize) -> usize {
    if i + 1 >= len { 0 } else { i + 1 }
}

/// The keyed hash of a conversation, the same for both directions.
fn tuple_hash(hasher: &foldhash::fast::RandomState, proto: u8, a: &Endpoint, b: &Endpoint) -> u64 {
    let (a, b) = ((addr_bits(a.addr), a.port), (addr_bits(b.addr), b.port));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = hasher.build_hasher();
    h.write_u128(lo.0);
    h.write_u128(hi.0);
    h.write_u64(u64::from(proto) << 32 | u64::from(lo.1) << 16 | u64::from(hi.1));
    h.finish()
}

/// A flag of [`Flow::closed`]: the flow has left the index and awaits its
/// end in [`FlowTable::finish_ended`].
const DETACHED: u8 = 0b1000;

/// A flag of [`Flow::closed`]: the slot holds no conversation (always set
/// with [`DETACHED`], so that whatever skips detached flows skips it too).
/// Kept in the flow's first cache line rather than as an `Option` around
/// it: the option's tag would sit in a niche the compiler picks (the
/// user data's, on the third line), and every lookup and timer check read
/// that line as well.
const VACANT: u8 = 0b1_0000;

/// One conversation. The fields a lookup compares, the timeout check reads
/// and a flow's end needs (endpoints, protocol, close flags, hash, last
/// packet time) come first and fill one cache line, and a flow starts on a
/// line: a packet's lookup and the check of a flow whose timer is due
/// touch one line of it, not the two or three they straddled when the
/// compiler chose the order.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Flow<T> {
    /// The initiator.
    pub client: Endpoint,
    /// The responder.
    pub server: Endpoint,
    /// IP protocol (TCP or UDP).
    pub proto: u8,
    /// FIN seen per direction; RST; [`DETACHED`].
    closed: u8,
    /// Its tuple's hash in the table's index.
    hash: u64,
    /// Last packet.
    pub last_ts: Timestamp,
    /// First packet.
    pub first_ts: Timestamp,
    /// VLAN and MAC seen on the client's packets.
    pub link: LinkInfo,
    /// Packets per direction ([`Dir`] as index).
    pub packets: [u64; 2],
    /// Bytes on the wire per direction.
    pub bytes: [u64; 2],
    /// Stream reassembly, for TCP flows (see [`TcpState`]).
    pub tcp: Option<TcpState>,
    /// HEAD requests awaiting responses (HTTP).
    pub pipeline: Pipeline,
    /// QUIC ClientHello reassembly, for UDP flows (empty unless a hello
    /// spans datagrams).
    pub quic: quic::QuicState,
    /// The analysis stage's data about this flow.
    pub user: T,
}

impl<T: Default> Flow<T> {
    /// What a free slot holds.
    fn vacant() -> Self {
        let nobody = Endpoint {
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 0,
        };
        Flow {
            client: nobody,
            server: nobody,
            proto: 0,
            closed: VACANT | DETACHED,
            hash: 0,
            last_ts: Timestamp(0),
            first_ts: Timestamp(0),
            link: LinkInfo::default(),
            packets: [0, 0],
            bytes: [0, 0],
            tcp: None,
            pipeline: Pipeline::default(),
            quic: quic::QuicState::default(),
            user: T::default(),
        }
    }
}

impl<T> Flow<T> {
    /// Whether the slot holds a conversation (ended or not).
    #[inline]
    fn is_live(&self) -> bool {
        self.closed & VACANT == 0
    }

    /// Whether this is the conversation of a packet from `src` to `dst`.
    fn is(&self, proto: u8, src: &Endpoint, dst: &Endpoint) -> bool {
        self.is_live()
            && self.proto == proto
            && ((self.client == *src && self.server == *dst)
                || (self.client == *dst && self.server == *src))
    }

    /// Whether the connection has ended (FIN both ways or RST).
    pub fn is_closed(&self) -> bool {
        self.closed & 0b11 == 0b11 || self.closed & 0b100 != 0
    }

    /// A TCP connection attempt nobody answered: at most two packets (a SYN
    /// and its retransmission) from the client, none from the server, and
    /// nothing buffered for reassembly.
    fn is_unanswered(&self) -> bool {
        self.proto == ipproto::TCP
            && self.packets[Dir::ToClient as usize] == 0
            && self.packets[Dir::ToServer as usize] <= 2
            && self.buffered() == 0
    }

    /// Bytes held for reassembly by both directions.
    fn buffered(&self) -> usize {
        self.tcp.as_ref().map_or(0, TcpState::memory)
    }

    fn idle_limit(&self, limits: &FlowLimits) -> i64 {
        match (self.proto, self.is_closed()) {
            (ipproto::TCP, true) => limits.tcp_closed_secs,
            (ipproto::TCP, false) => limits.tcp_idle_secs,
            _ => limits.udp_idle_secs,
        }
    }

    /// The last instant at which the flow is still alive, in nanoseconds.
    fn deadline(&self, limits: &FlowLimits) -> i64 {
        self.last_ts
            .0
            .saturating_add(self.idle_limit(limits).saturating_mul(1_000_000_000))
    }
}

/// The endpoints and protocol of the flow in `slot`: the last key of the
/// order in which flows end (see [`FlowTable::finish_ended`]), looked at
/// only to break a tie.
fn tuple_of<T>(slots: &[Flow<T>], slot: u32) -> Option<(Endpoint, Endpoint, u8)> {
    slots
        .get(slot as usize)
        .filter(|f| f.is_live())
        .map(|f| (f.client, f.server, f.proto))
}

/// Counters of the flow table.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended by idle time or close.
    pub expired: u64,
    /// Flows evicted early because the table was full: idle ones, else
    /// unanswered connection attempts (see [`FlowTable::lookup`]).
    pub evicted_early: u64,
    /// New flows refused because the table was full of active flows.
    pub refused: u64,
}

impl FlowStats {
    /// Adds another table's counters to these.
    pub fn merge(&mut self, o: &FlowStats) {
        self.created += o.created;
        self.expired += o.expired;
        self.evicted_early += o.evicted_early;
        self.refused += o.refused;
    }
}

/// The facts of a packet that the flow table keys and judges it by.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    /// IP protocol.
    pub proto: u8,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    /// VLAN and MAC of the frame.
    pub link: LinkInfo,
}

/// Result of looking a packet up.
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    /// An existing flow; the packet travels in `dir`.
    Existing(usize, Dir),
    /// A flow created for this packet, which travels in `dir`.
    New(usize, Dir),
    /// The table is full; the packet belongs to no flow.
    Full,
}

/// The flow table.
#[derive(Debug)]
pub struct FlowTable<T> {
    limits: FlowLimits,
    /// Slot numbers, by [`tuple_hash`] (equality is checked on the slot).
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// The conversations; a free slot holds a vacant flow ([`VACANT`]).
    slots: Vec<Flow<T>>,
    /// The flows by the second of their deadline.
    wheel: Wheel,
    /// Slots whose bucket came due, being looked at (kept for its memory).
    due: Vec<u32>,
    free: Vec<u32>,
    /// Flows taken out of the index that the caller has yet to finish (see
    /// [`FlowTable::finish_ended`]): they stay in their slots, so ending a
    /// flow never moves it.
    ended: Vec<Ended>,
    /// At the end of the input, the flows still to end, in the order they
    /// started ([`FlowTable::drain_some`]), and how many have been.
    draining: Option<(Vec<u32>, usize)>,
    /// Where a full table's search for a flow to evict goes on.
    evict_at: usize,
    /// Where the search for a stream buffer to give up goes on
    /// ([`FlowTable::longest_waiting_stream`]).
    stream_evict_at: usize,
    /// Stream states of ended connections, for new ones (no allocation
    /// per connection in the steady state).
    #[allow(clippy::vec_box)] // Moved in and out of flows: a pointer, not 160 B.
    spare_tcp: Vec<Streams>,
    stats: FlowStats,
    /// The latest time seen in the whole input (not only this table's
    /// packets): idle timeouts are judged against it.
    clock: Timestamp,
}

/// A flow taken out of the index, awaiting its end.
#[derive(Debug, Clone, Copy)]
struct Ended {
    /// When it ended, as far as ordering goes: its deadline if it timed out,
    /// the clock if a packet ended it, `i64::MAX` at the end of the input.
    at: i64,
    first_ts: Timestamp,
    slot: u32,
}

/// The application parsers of a TCP connection's two directions (client,
/// server), chosen by its ports.
pub fn stream_apps(client: Endpoint, server: Endpoint) -> [AppStream; 2] {
    if server.port == 53 || client.port == 53 {
        [AppStream::dns(), AppStream::dns()]
    } else {
        [AppStream::client(), AppStream::server()]
    }
}

/// Flow slots sampled for the stream buffer to give up when stream memory
/// is full ([`FlowTable::longest_waiting_stream`]).
const EVICT_SAMPLE: usize = 64;

/// TCP stream states of ended connections kept for new ones at most
/// (~700 KiB): the connections that end between two that start, not a
/// flood's worth.
const SPARE_TCP: usize = 4096;

/// How the sender of a flow's first packet relates to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// The sender started the conversation.
    Sender,
    /// The receiver did (the first packet seen is a reply).
    Receiver,
}

/// Guesses the initiator when the packet itself does not say (a conversation
/// picked up mid-way): the side with the lower port is taken for the server,
/// as services listen on low, fixed ports and clients use ephemeral ones.
pub fn initiator_by_ports(sport: u16, dport: u16) -> Initiator {
    if sport < dport {
        Initiator::Receiver
    } else {
        Initiator::Sender
    }
}

impl<T: Default> FlowTable<T> {
    /// A table with the given limits.
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            limits,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            wheel: Wheel::default(),
            due: Vec::new(),
            free: Vec::new(),
            ended: Vec::new(),
            draining: None,
            evict_at: 0,
            stream_evict_at: 0,
            spare_tcp: Vec::new(),
            stats: FlowStats::default(),
            clock: Timestamp(i64::MIN),
        }
    }

    /// Moves the clock to `now` if that is later, and ends the flows whose
    /// timeout has passed by a whole second of their deadline's (to be
    /// finished by [`FlowTable::finish_ended`]). Timeouts are judged
    /// against the latest time of the whole input, never against a late
    /// packet's own time; and which flows end at a given clock, in which
    /// order, depends only on that clock: the same with one table or with
    /// one per worker (a worker's clock reaches each time at the first of
    /// its own packets after it, with no packet of its hosts in between).
    #[inline]
    pub fn advance(&mut self, now: Timestamp) {
        self.clock = self.clock.max(now);
        if self.wheel.is_due(self.clock.0) {
            self.expire_due();
        }
    }

    /// Looks at the flows whose bucket came due: ends those past their
    /// deadline and files the others (extended since) under their new one.
    /// (Once a second of capture time: kept out of line, so that the check
    /// every packet makes stays a comparison.)
    #[inline(never)]
    fn expire_due(&mut self) {
        let now = self.clock;
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.wheel.take_due(now.0, &mut due);
        for chunk in due.chunks(DUE_BATCH) {
            // Start loading every slot before looking at the first.
            for &i in chunk {
                // Its first line, and the second for an end's start time.
                crate::prefetch::lines(&self.slots, i as usize, 2);
            }
            for &i in chunk {
                let deadline = match self.slots.get(i as usize) {
                    Some(f) if f.closed & DETACHED == 0 => f.deadline(&self.limits),
                    _ => continue,
                };
                if now.0 > deadline {
                    if self.detach(i as usize, deadline) {
                        self.stats.expired += 1;
                    }
                } else {
                    self.wheel.file(i, deadline, now.0);
                }
            }
        }
        self.due = due;
    }

    /// Visits every flow tracked (e.g. to translate ids after a feed reload).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut Flow<T>)) {
        for flow in self.slots.iter_mut().filter(|f| f.is_live()) {
            f(flow);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Slots in the table (some empty): valid slot numbers are below this.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The flow in a slot.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Flow<T>> {
        self.slots.get_mut(slot).filter(|f| f.is_live())
    }

    /// The flow in a slot, and the stream states kept for reuse (for
    /// [`TcpState::take_segment`]).
    pub fn get_with_spare(&mut self, slot: usize) -> Option<(&mut Flow<T>, &mut Vec<Streams>)> {
        let flow = self.slots.get_mut(slot).filter(|f| f.is_live())?;
        Some((flow, &mut self.spare_tcp))
    }

    /// Finds the flow of a packet from `src` to `dst`, or creates it.
    /// `initiator` is asked only for a new flow. A TCP SYN on a closed
    /// connection's tuple, or any packet on a flow idle past its timeout,
    /// starts a new conversation; the old flow is ended (see
    /// [`FlowTable::finish_ended`]).
    pub fn lookup(
        &mut self,
        now: Timestamp,
        pkt: &PacketInfo,
        initiator: impl FnOnce() -> Initiator,
    ) -> Slot {
        // By reference: a copy of the endpoints here read the packet's
        // just-written addresses at other offsets than they were written
        // (a stalled store forward on every packet).
        let PacketInfo {
            proto,
            ref src,
            ref dst,
            tcp_flags,
            link,
        } = *pkt;
        self.advance(now);
        let clock = self.clock;
        let hash = tuple_hash(&self.hasher, proto, src, dst);
        let slots = &self.slots;
        let found = self.index.find(hash, |&i| {
            slots.get(i as usize).is_some_and(|f| f.is(proto, src, dst))
        });
        if let Some(&i) = found {
            let i = i as usize;
            let limits = self.limits;
            let (closed, deadline) = self
                .slots
                .get(i)
                .filter(|f| f.is_live())
                .map_or((false, i64::MAX), |f| (f.is_closed(), f.deadline(&limits)));
            let idle = clock.0 > deadline;
            // A SYN on a closed connection's tuple starts a new one; so does
            // any packet once the flow is idle past its timeout, whether or
            // not its bucket in the wheel has come due yet: flow boundaries
            // must not depend on when expiry looks, which differs between
            // one and N workers.
            let syn = tcp_flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN;
            let reopen = (proto == ipproto::TCP && syn && closed) || idle;
            if !reopen {
                let Some(flow) = self.get_mut(i) else {
                    return Slot::Full;
                };
                let dir = if flow.client == *src {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                return Slot::Existing(i, dir);
            }
            // Timed out: it ended at its deadline (as the wheel would have
            // ended it); a SYN on a closed connection: now.
            let at = if idle { deadline } else { clock.0 };
            if self.detach(i, at) {
                self.stats.expired += 1;
            }
        }
        if self.index.len() >= self.limits.max_flows {
            self.make_room(clock);
            if self.index.len() >= self.limits.max_flows {
                self.stats.refused += 1;
                return Slot::Full;
            }
        }
        let (client, server, dir) = match initiator() {
            Initiator::Sender => (*src, *dst, Dir::ToServer),
            Initiator::Receiver => (*dst, *src, Dir::ToClient),
        };
        let tcp = (proto == ipproto::TCP).then(TcpState::opening);
        let flow = Flow {
            client,
            server,
            proto,
            link: if dir == Dir::ToServer {
                link
            } else {
                LinkInfo::default()
            },
            first_ts: now,
            last_ts: now,
            packets: [0, 0],
            bytes: [0, 0],
            tcp,
            pipeline: Pipeline::default(),
            quic: quic::QuicState::default(),
            closed: 0,
            hash,
            user: T::default(),
        };
        let deadline = flow.deadline(&self.limits);
        // Slots freed before a partial drain may lie past the end: skip them.
        let mut reuse = None;
        while let Some(i) = self.free.pop() {
            if (i as usize) < self.slots.len() {
                reuse = Some(i);
                break;
            }
        }
        let i = match reuse {
            Some(i) => {
                self.slots[i as usize] = flow;
                i as usize
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    self.grow_slots();
                }
                self.slots.push(flow);
                self.slots.len() - 1
            }
        };
        self.wheel.file(i as u32, deadline, clock.0);
        let slots = &self.slots;
        self.index.insert_unique(hash, i as u32, |&j| {
            slots.get(j as usize).map_or(0, |f| f.hash)
        });
        self.stats.created += 1;
        // The next new flow goes to the top free slot: start loading it now
        // (writing it drops the vacant flow there, which reads it).
        if let Some(&next) = self.free.last() {
            crate::prefetch::element(&self.slots, next as usize);
        }
        Slot::New(i, dir)
    }

    /// Records a packet's size, time and TCP flags on its flow.
    pub fn touch(
        &mut self,
        slot: usize,
        dir: Dir,
        now: Timestamp,
        wire_len: u32,
        tcp_flags: u8,
        link: LinkInfo,
    ) {
        let limits = self.limits;
        if let Some(f) = self.slots.get_mut(slot).filter(|f| f.is_live()) {
            f.last_ts = f.last_ts.max(now);
            f.packets[dir as usize] += 1;
            f.bytes[dir as usize] += u64::from(wire_len);
            if dir == Dir::ToServer && f.link == LinkInfo::default() {
                f.link = link;
            }
            if tcp_flags & tcpflags::FIN != 0 {
                f.closed |= 1 << (dir as u8);
            }
            if tcp_flags & tcpflags::RST != 0 {
                f.closed |= 0b100;
            }
            if tcp_flags & (tcpflags::FIN | tcpflags::RST) != 0 {
                let d = f.deadline(&limits);
                self.wheel.file_earlier(slot as u32, d, self.clock.0);
            }
        }
    }

    /// Removes slot `slot`'s entry from the index.
    fn unindex(&mut self, hash: u64, slot: usize) {
        if let Ok(e) = self.index.find_entry(hash, |&i| i as usize == slot) {
            e.remove();
        }
    }

    /// Takes the flow in `slot` out of the index and queues it to be ended
    /// (as having ended `at`, see [`Ended`]); false if there is none, or it
    /// is queued already.
    fn detach(&mut self, slot: usize, at: i64) -> bool {
        let Some(flow) = self.slots.get_mut(slot) else {
            return false;
        };
        if flow.closed & DETACHED != 0 {
            return false;
        }
        flow.closed |= DETACHED;
        let (hash, first_ts) = (flow.hash, flow.first_ts);
        self.wheel.forget(slot as u32);
        self.unindex(hash, slot);
        self.ended.push(Ended {
            at,
            first_ts,
            slot: slot as u32,
        });
        true
    }

    /// Whether flows await their end.
    #[inline]
    pub fn has_ended(&self) -> bool {
        !self.ended.is_empty()
    }

    /// Ends the flows the table let go of (idle, closed and reopened,
    /// evicted, drained): hands each to `end`, then frees its slot. The
    /// order is by when each ended (its deadline if it timed out), then by
    /// when it started, then by its endpoints — an order that does not
    /// depend on the table's layout or on how its ends were batched, so a
    /// host's conversations end in the same order with one table and with
    /// one per worker (what the host's records see: a beacon series takes
    /// starts in order). The flows are looked at where they lie, never moved.
    pub fn finish_ended(&mut self, mut end: impl FnMut(&mut Flow<T>)) {
        let slots = &self.slots;
        self.ended.sort_unstable_by(|a, b| {
            (a.at, a.first_ts)
                .cmp(&(b.at, b.first_ts))
                .then_with(|| tuple_of(slots, a.slot).cmp(&tuple_of(slots, b.slot)))
        });
        for (k, &Ended { slot, .. }) in self.ended.iter().enumerate() {
            // Ending a flow reads all of it: start loading one a few ahead.
            if let Some(ahead) = self.ended.get(k + END_AHEAD) {
                crate::prefetch::element(&self.slots, ahead.slot as usize);
            }
            let Some(flow) = self.slots.get_mut(slot as usize).filter(|f| f.is_live()) else {
                continue;
            };
            end(flow);
            // Its stream state's memory goes to the next connection.
            if let Some(TcpState::Streams(streams)) = flow.tcp.take()
                && self.spare_tcp.len() < SPARE_TCP
            {
                self.spare_tcp.push(streams);
            }
            *flow = Flow::vacant();
            self.free.push(slot);
        }
        self.ended.clear();
    }

    /// Makes room for more slots. Slots are cache-line aligned, and the
    /// allocator cannot grow such a block in place: each doubling would
    /// copy the whole table with both copies resident (measured: +65 MB
    /// of peak with a million live flows). So a table starts with room for
    /// [`FIRST_SLOTS`] and then reserves its cap at once (address space
    /// only: pages become resident as slots are used); if that cannot be
    /// had, it grows as a vector does.
    #[cold]
    #[inline(never)]
    fn grow_slots(&mut self) {
        let want = if self.slots.capacity() < FIRST_SLOTS {
            FIRST_SLOTS
        } else {
            self.limits.max_flows
        };
        let extra = want.saturating_sub(self.slots.len()).max(1);
        if self.slots.try_reserve_exact(extra).is_err() {
            self.slots.reserve(1);
        }
    }

    /// The table is full: evicts one flow, looking at up to 4096 slots from
    /// where the last search stopped, in this order of preference:
    /// 1. a flow idle for a tenth of its timeout;
    /// 2. an unanswered connection attempt (a TCP flow with at most two
    ///    packets from the client, none from the server and nothing buffered:
    ///    a SYN flood's or a scan's half-open connections);
    /// 3. a flow with nothing buffered for reassembly (whatever it carried has
    ///    been parsed and attributed already; its end is reported as usual);
    /// 4. last, the flow in the middle of a message (a ClientHello or HTTP
    ///    head waiting for its next segment) that has waited longest among
    ///    those looked at.
    ///
    /// A flood therefore pushes out its own older flows instead of locking
    /// new conversations out, and a message in progress — whose segments
    /// normally arrive within a round trip — is the last thing to go.
    fn make_room(&mut self, now: Timestamp) {
        let len = self.slots.len();
        let mut best: Option<(u8, Timestamp, usize)> = None;
        // Up to 4096 slots while only flows mid-message are found; after a
        // better candidate, a few more in search of a better one still (this
        // runs for every new flow while the table is full: it must be cheap).
        let mut left = 4096.min(len);
        while left > 0 {
            left -= 1;
            self.evict_at = next_slot(self.evict_at, len);
            let i = self.evict_at;
            let Some(f) = self.slots.get(i).filter(|f| f.closed & DETACHED == 0) else {
                continue;
            };
            let rank = if now.secs_since(f.last_ts) > (f.idle_limit(&self.limits) / 10) as f64 {
                0
            } else if f.is_unanswered() {
                1
            } else if f.buffered() == 0 {
                2
            } else {
                3
            };
            if best.is_none_or(|(r, ts, _)| (rank, f.last_ts) < (r, ts)) {
                best = Some((rank, f.last_ts, i));
            }
            if rank <= 1 {
                break;
            }
            if rank == 2 {
                left = left.min(32);
            }
        }
        if let Some((_, _, i)) = best
            && self.detach(i, now.0)
        {
            self.stats.evicted_early += 1;
        }
    }

    /// Of `EVICT_SAMPLE` slots from where the last search stopped, the TCP
    /// connection other than `except` whose buffered message has waited
    /// longest (least recently active): a sample, like an approximate LRU,
    /// so that the search costs a few microseconds however large the
    /// table. `None` if none of them holds a buffer.
    pub fn longest_waiting_stream(&mut self, except: usize) -> Option<usize> {
        let len = self.slots.len();
        let mut oldest: Option<(Timestamp, usize)> = None;
        for _ in 0..EVICT_SAMPLE.min(len) {
            self.stream_evict_at = next_slot(self.stream_evict_at, len);
            let i = self.stream_evict_at;
            let Some(f) = self.slots.get(i).filter(|f| f.is_live()) else {
                continue;
            };
            if i != except && f.buffered() > 0 && oldest.is_none_or(|(t, _)| f.last_ts < t) {
                oldest = Some((f.last_ts, i));
            }
        }
        oldest.map(|(_, i)| i)
    }

    /// Ends every flow (end of input); the caller then finishes them.
    pub fn drain(&mut self) {
        self.drain_some(usize::MAX);
    }

    /// Ends up to `max` flows (end of input), in the order they started
    /// (then by endpoints: the same order with one table and with one per
    /// worker), and says whether any are left; the caller finishes them
    /// ([`FlowTable::finish_ended`]) before asking for more. Ending a
    /// million flows in batches never holds them all in the queue of ended
    /// flows, and the table's memory is given back once it is empty.
    pub fn drain_some(&mut self, max: usize) -> bool {
        if self
            .draining
            .as_ref()
            .is_some_and(|(o, done)| *done >= o.len())
        {
            // Drained; flows made since (if any) go next.
            self.draining = None;
        }
        if self.draining.is_none() {
            let order = self.live_in_start_order();
            if order.is_empty() {
                if self.has_ended() {
                    return true;
                }
                self.slots = Vec::new();
                self.spare_tcp = Vec::new();
                self.wheel.clear();
                self.due = Vec::new();
                self.free = Vec::new();
                self.index = HashTable::new();
                return false;
            }
            self.draining = Some((order, 0));
        }
        let Some((order, done)) = self.draining.as_mut() else {
            return false;
        };
        let take: Vec<u32> = order
            .get(*done..)
            .unwrap_or_default()
            .iter()
            .take(max)
            .copied()
            .collect();
        *done += take.len();
        for i in take {
            self.detach(i as usize, i64::MAX);
        }
        true
    }

    /// The slots of the flows not yet ended, by start time, then endpoints.
    fn live_in_start_order(&self) -> Vec<u32> {
        let mut live: Vec<(Timestamp, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, f)| f.closed & DETACHED == 0)
            .map(|(i, f)| (f.first_ts, i as u32))
            .collect();
        // Sorted by the start kept alongside: a flow is looked at again only
        // to break a tie (a million flows sort without a million misses).
        let slots = &self.slots;
        live.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| tuple_of(slots, a.1).cmp(&tuple_of(slots, b.1)))
        });
        live.into_iter().map(|(_, i)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn udp(src: Endpoint, dst: Endpoint) -> PacketInfo {
        PacketInfo {
            proto: 17,
            src,
            dst,
            tcp_flags: 0,
            link: LinkInfo::default(),
        }
    }

    /// Finishes the flows the table let go of: their (protocol, client port).
    fn ended(t: &mut FlowTable<()>) -> Vec<(u8, u16)> {
        let mut out = Vec::new();
        t.finish_ended(|f| out.push((f.proto, f.client.port)));
        out
    }

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        }
    }

    #[test]
    fn a_flows_hot_fields_share_its_first_cache_line() {
        use std::mem::{align_of, offset_of, size_of};
        type F = Flow<crate::hosts::FlowNote>;
        assert_eq!(align_of::<F>(), 64);
        assert!(size_of::<F>() <= 256, "{} B", size_of::<F>());
        let ends = [
            offset_of!(F, client) + size_of::<Endpoint>(),
            offset_of!(F, server) + size_of::<Endpoint>(),
            offset_of!(F, proto) + 1,
            offset_of!(F, closed) + 1,
            offset_of!(F, hash) + 8,
            offset_of!(F, last_ts) + size_of::<Timestamp>(),
        ];
        assert!(ends.iter().all(|&e| e <= 64), "{ends:?}");
    }

    #[test]
    fn both_directions_find_the_same_flow_and_idle_flows_expire() {
        let mut t: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let now = Timestamp(0);
        let first = t.lookup(now, &udp(ep(1, 5000), ep(2, 53)), || Initiator::Sender);
        let Slot::New(i, Dir::ToServer) = first else {
            panic!("{first:?}")
        };
        let reply = t.lookup(now, &udp(ep(2, 53), ep(1, 5000)), || Initiator::Sender);
        let Slot::Existing(j, Dir::ToClient) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(i, j);
        t.advance(now.plus_secs(30));
        assert!(ended(&mut t).is_empty());
        t.advance(now.plus_secs(61));
        assert!(t.is_empty(), "out of the index at once");
        assert_eq!(ended(&mut t), [(17, 5000)]);
        // Its slot is free again.
        let again = t.lookup(now.plus_secs(62), &udp(ep(1, 5001), ep(2, 53)), || {
            Initiator::Sender
        });
        assert!(matches!(again, Slot::New(0, _)), "{again:?}");
    }

    #[test]
    fn a_freed_slot_is_invisible_until_reused() {
        let mut t: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let now = Timestamp(0);
        let Slot::New(i, _) = t.lookup(now, &udp(ep(1, 5000), ep(2, 53)), || Initiator::Sender)
        else {
            panic!("no new flow")
        };
        t.advance(now.plus_secs(61));
        assert_eq!(ended(&mut t), [(17, 5000)]);
        // The vacant flow there is no flow to any accessor.
        assert!(t.get_mut(i).is_none());
        assert!(t.get_with_spare(i).is_none());
        let mut seen = 0;
        t.for_each_mut(|_| seen += 1);
        assert_eq!(seen, 0);
        assert!(!t.detach(i, 0), "a free slot is not queued to end");
        assert_eq!(t.longest_waiting_stream(usize::MAX), None);
        // Not even a packet that looks like it (protocol 0, all zeros)
        // finds it: it gets a slot of its own, the same one, anew.
        let nobody = Endpoint {
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 0,
        };
        let zero = PacketInfo {
            proto: 0,
            ..udp(nobody, nobody)
        };
        let again = t.lookup(now.plus_secs(62), &zero, || Initiator::Sender);
        assert!(matches!(again, Slot::New(j, _) if j == i), "{again:?}");
        assert!(t.get_mut(i).is_some());
    }

    fn tcp_syn(src: Endpoint, dst: Endpoint) -> PacketInfo {
        PacketInfo {
            proto: ipproto::TCP,
            tcp_flags: tcpflags::SYN,
            ..udp(src, dst)
        }
    }

    #[test]
    fn a_full_table_evicts_idle_then_half_open_then_unbuffered_flows() {
        let limits = FlowLimits {
            max_flows: 4,
            ..FlowLimits::default()
        };
        let mut t: FlowTable<()> = FlowTable::new(limits);
        let t0 = Timestamp(0);
        let add = |t: &mut FlowTable<()>, now, pkt: &PacketInfo| {
            let slot = t.lookup(now, pkt, || Initiator::Sender);
            if let Slot::New(i, d) | Slot::Existing(i, d) = slot {
                t.touch(i, d, now, 60, pkt.tcp_flags, LinkInfo::default());
            }
            slot
        };
        // Two answered UDP conversations, two unanswered SYNs.
        for p in 0..2 {
            add(&mut t, t0, &udp(ep(1, 1000 + p), ep(2, 53)));
            add(&mut t, t0, &udp(ep(2, 53), ep(1, 1000 + p)));
            add(&mut t, t0, &tcp_syn(ep(3, 3000 + p), ep(4, 443)));
        }
        // Full, nothing idle: a half-open connection goes, not a conversation.
        let r = add(&mut t, t0, &udp(ep(1, 2000), ep(2, 53)));
        assert!(matches!(r, Slot::New(..)), "{r:?}");
        let r = add(&mut t, t0, &udp(ep(1, 2001), ep(2, 53)));
        assert!(matches!(r, Slot::New(..)), "{r:?}");
        assert_eq!(t.stats().evicted_early, 2);
        assert_eq!(t.stats().refused, 0);
        assert_eq!(t.len(), 4);
        assert_eq!(
            ended(&mut t),
            [(ipproto::TCP, 3000), (ipproto::TCP, 3001)],
            "SYNs went first"
        );

        // No half-open flow left: an active flow with nothing buffered goes.
        let r = t.lookup(t0, &udp(ep(1, 2002), ep(2, 53)), || Initiator::Sender);
        assert!(matches!(r, Slot::New(..)), "{r:?}");
        assert_eq!(ended(&mut t).len(), 1);
        assert_eq!(t.stats().evicted_early, 3);
    }

    #[test]
    fn draining_in_batches_ends_every_flow_once_and_keeps_the_table_usable() {
        let mut t: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let udp_from = |p| udp(ep(1, p), ep(2, 53));
        for p in 0..10 {
            t.lookup(Timestamp(0), &udp_from(p), || Initiator::Sender);
        }
        // Free two slots: a low one and one near the end.
        for i in [8, 1] {
            assert!(t.detach(i, 0));
            assert!(!t.detach(i, 0), "ended once");
        }
        assert_eq!(ended(&mut t), [(17, 1), (17, 8)]);
        // Part of the table, in start (then endpoint) order, skipping the
        // free slots.
        assert!(t.drain_some(3));
        assert_eq!(ended(&mut t), [(17, 0), (17, 2), (17, 3)]);
        assert_eq!(t.len(), 5);
        // Freed slots are reused by new flows, which are drained after.
        for p in 100..103 {
            let r = t.lookup(Timestamp(0), &udp_from(p), || Initiator::Sender);
            assert!(matches!(r, Slot::New(..)), "{r:?}");
        }
        assert_eq!(t.len(), 8);
        let mut all = Vec::new();
        while t.drain_some(2) {
            all.extend(ended(&mut t));
        }
        let expected: Vec<(u8, u16)> = [4, 5, 6, 7, 9, 100, 101, 102]
            .into_iter()
            .map(|p| (17, p))
            .collect();
        assert_eq!(all, expected, "every flow ended once, in order");
        assert!(t.is_empty());
        let r = t.lookup(Timestamp(0), &udp_from(1), || Initiator::Sender);
        assert!(matches!(r, Slot::New(0, _)), "{r:?}");
    }

    #[test]
    fn ended_flows_are_finished_in_the_order_they_started() {
        let mut t: FlowTable<()> = FlowTable::new(FlowLimits::default());
        // Slot order is the reverse of start order.
        for (p, at) in [(1, 30), (2, 20), (3, 10)] {
            t.lookup(Timestamp(at), &udp(ep(1, p), ep(2, 53)), || {
                Initiator::Sender
            });
        }
        t.advance(Timestamp(0).plus_secs(100));
        assert_eq!(ended(&mut t), [(17, 3), (17, 2), (17, 1)]);
    }

    /// Conversations end in the order of their deadlines, whatever slots
    /// they lie in and however the clock reaches their deadlines — in one
    /// step or second by second, as a worker that sees only its shard's
    /// packets and one that sees them all do. (Finished in start order per
    /// batch of ends, the second table ended 4 before 3.)
    #[test]
    fn conversations_end_in_the_same_order_whatever_the_layout_and_the_clock_steps() {
        // (client port, first packet s, last packet s): UDP, so each ends
        // 60 s after its last packet: 5, 2, 3, 4, then 1.
        let flows = [
            (1, 0, 200),
            (2, 60, 61),
            (3, 120, 121),
            (4, 100, 135),
            (5, 10, 10),
        ];
        let mut packets: Vec<(i64, u16)> = flows
            .iter()
            .flat_map(|&(p, first, last)| [(first, p), (last, p)])
            .collect();
        // Flow 1 lives on: a packet every 50 s.
        packets.extend([(50, 1), (100, 1), (150, 1)]);
        packets.sort_unstable();
        let feed = |t: &mut FlowTable<()>, secs: i64, port: u16| {
            let at = Timestamp(0).plus_secs(secs);
            t.advance(at);
            if let Slot::New(i, d) | Slot::Existing(i, d) =
                t.lookup(at, &udp(ep(1, port), ep(2, 53)), || Initiator::Sender)
            {
                t.touch(i, d, at, 100, 0, LinkInfo::default());
            }
        };
        // Every second, all flows from slot 0.
        let mut a: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let mut a_ends = Vec::new();
        for s in 0..400 {
            for &(_, p) in packets.iter().filter(|&&(t, _)| t == s) {
                feed(&mut a, s, p);
            }
            a.advance(Timestamp(0).plus_secs(s));
            a_ends.extend(ended(&mut a).into_iter().map(|e| e.1));
        }
        // Only at the packets' times, behind other flows (other slots).
        let mut b: FlowTable<()> = FlowTable::new(FlowLimits::default());
        for p in 50..60 {
            feed(&mut b, 0, p);
        }
        let mut b_ends = Vec::new();
        for &(s, p) in &packets {
            feed(&mut b, s, p);
            b_ends.extend(ended(&mut b).into_iter().map(|e| e.1).filter(|&p| p < 50));
        }
        b.advance(Timestamp(0).plus_secs(400));
        b_ends.extend(ended(&mut b).into_iter().map(|e| e.1).filter(|&p| p < 50));
        assert_eq!(a_ends, [5, 2, 3, 4, 1]);
        assert_eq!(b_ends, a_ends);
    }

    #[test]
    fn a_full_table_of_flows_mid_message_gives_up_the_longest_waiting() {
        use crate::decode::TcpSegment;
        use crate::flow::stream::{Observation, Scratch};
        use crate::flow::tcp::{MemBudget, Sink};
        let limits = FlowLimits {
            max_flows: 2,
            ..FlowLimits::default()
        };
        let mut t: FlowTable<()> = FlowTable::new(limits);
        let (mut budget, mut scratch) = (MemBudget::new(1 << 20), Scratch::default());
        // The start of a ClientHello that promises 512 bytes.
        let partial = [0x16, 3, 1, 2, 4, 1, 0, 2, 0, 3, 3, 0, 0, 0, 0];
        for p in 0..2 {
            let pkt = tcp_syn(ep(1, 4000 + p), ep(2, 443));
            let at = Timestamp(i64::from(p));
            let Slot::New(i, d) = t.lookup(at, &pkt, || Initiator::Sender) else {
                panic!("room for two")
            };
            t.touch(i, d, at, 60, tcpflags::SYN, LinkInfo::default());
            let (flow, spare) = t.get_with_spare(i).unwrap();
            let (client, server) = (flow.client, flow.server);
            let Flow { tcp, pipeline, .. } = flow;
            let tcp = tcp.as_mut().unwrap();
            let seg = |seq, flags, payload| TcpSegment {
                sport: 4000 + p,
                dport: 443,
                seq,
                ack: 0,
                flags,
                payload,
                wire_len: payload.len() as u32,
            };
            let mut emit = |_: Observation<'_>| {};
            let mut sink = Sink {
                pipeline,
                scratch: &mut scratch,
                budget: &mut budget,
                emit: &mut emit,
            };
            let apps = || stream_apps(client, server);
            let syn = seg(100, tcpflags::SYN, &[]);
            assert!(
                tcp.take_segment(0, &syn, apps, spare).is_none(),
                "no streams yet"
            );
            let data = seg(101, tcpflags::ACK, &partial);
            let dirs = tcp.take_segment(0, &data, apps, spare).unwrap();
            dirs[0].segment(&data, &mut sink);
            assert!(dirs[0].memory() > 0, "the partial hello is buffered");
        }
        let r = t.lookup(Timestamp(2), &udp(ep(5, 1), ep(6, 53)), || {
            Initiator::Sender
        });
        assert!(matches!(r, Slot::New(..)), "{r:?}");
        assert_eq!(t.stats().refused, 0);
        assert_eq!(
            ended(&mut t),
            [(ipproto::TCP, 4000)],
            "the one waiting longest goes"
        );
    }

    /// A connection keeps no stream state until it carries payload; its
    /// bytes then start where its SYN said (a request whose second half
    /// arrives first is held until the first half, at ISN + 1, comes and
    /// is parsed whole); an ended connection's stream state is reused by
    /// the next.
    #[test]
    fn stream_state_is_made_at_the_first_payload_and_reused() {
        use crate::decode::TcpSegment;
        use crate::flow::stream::{Observation, Scratch};
        use crate::flow::tcp::{MemBudget, Sink};
        let mut t: FlowTable<()> = FlowTable::new(FlowLimits::default());
        let (mut scratch, mut budget) = (Scratch::default(), MemBudget::new(1 << 20));
        let (first, second): (&[u8], &[u8]) = (b"GET / HTTP/1.1\r\nHo", b"st: example.com\r\n\r\n");
        let mut requests = 0;
        for round in 0..2u16 {
            let pkt = tcp_syn(ep(1, 5000 + round), ep(2, 80));
            let Slot::New(i, _) = t.lookup(Timestamp(0), &pkt, || Initiator::Sender) else {
                panic!("new")
            };
            let (flow, spare) = t.get_with_spare(i).unwrap();
            assert_eq!(
                spare.len(),
                usize::from(round),
                "the first connection's state is kept"
            );
            let (client, server) = (flow.client, flow.server);
            let Flow { tcp, pipeline, .. } = flow;
            let tcp = tcp.as_mut().unwrap();
            let seg = |seq, flags, payload: &'static [u8]| TcpSegment {
                sport: 5000 + round,
                dport: 80,
                seq,
                ack: 0,
                flags,
                payload,
                wire_len: payload.len() as u32,
            };
            let apps = || stream_apps(client, server);
            for bare in [seg(7000, tcpflags::SYN, b""), seg(7001, tcpflags::ACK, b"")] {
                assert!(tcp.take_segment(0, &bare, apps, spare).is_none());
            }
            assert!(tcp.streams().is_none() && tcp.memory() == 0);
            let late = seg(
                7001 + first.len() as u32,
                tcpflags::ACK | tcpflags::PSH,
                second,
            );
            let early = seg(7001, tcpflags::ACK, first);
            let mut emit = |o: Observation<'_>| {
                if matches!(o, Observation::HttpRequest(_)) {
                    requests += 1;
                }
            };
            let mut sink = Sink {
                pipeline,
                scratch: &mut scratch,
                budget: &mut budget,
                emit: &mut emit,
            };
            for data in [late, early] {
                let dirs = tcp.take_segment(0, &data, apps, spare).unwrap();
                dirs[0].segment(&data, &mut sink);
            }
            assert_eq!(spare.len(), 0, "taken from the spare ones");
            t.drain();
            t.finish_ended(|_| {});
        }
        assert_eq!(requests, 2, "each request read in order");
    }
}
