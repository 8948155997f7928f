//! Batches: how packets travel from the dispatcher to a worker. A batch is
//! a list of items with the packets' decoded headers, and their payloads:
//! where the frame was read from a memory-mapped file, an offset into that
//! file (the batch holds a clone of the mapping); otherwise a copy in the
//! batch's byte buffer. The dispatcher decoded each frame to pick its
//! worker; the worker gets the result, so no frame is decoded twice and, from
//! a mapped file, no payload byte is copied (a copy cost the reader 5 % of
//! its time, and the worker a cache miss on bytes it mostly never reads,
//! such as bulk TCP data). Batches are recycled through a return queue, so
//! in steady state moving a packet between threads allocates nothing.
//!
//! A worker reading a mapped file's bytes lags behind the reader, which
//! drops pages from the process some way behind its position
//! ([`KEEP_BEHIND`]). A page read after that is only faulted back in (the
//! bytes are the same); the worker drops such pages again when it is done
//! with the batch ([`Batch::clear`]), so they never accumulate. To keep
//! that rare, the part of a file one batch refers to is capped
//! ([`map_span`]) such that all the batches a worker can have queued
//! normally lie within that distance.

use crate::capture::KEEP_BEHIND;
use crate::capture::{SharedMap, Timestamp};
use crate::decode::defrag::Reassembled;
use crate::decode::{LinkInfo, Packet, TcpSegment, Transport, UdpDatagram};
use std::net::IpAddr;

/// How many items ahead of the one being read are loaded.
const ITEMS_AHEAD: usize = 4;

/// Items per batch before it is sent.
pub const BATCH_ITEMS: usize = 256;
/// Packet bytes per batch before it is sent.
pub const BATCH_BYTES: usize = 256 * 1024;

/// A decoded packet's transport header (its payload is in the bytes).
#[derive(Debug, Clone, Copy)]
enum Header {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        wire_len: u32,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
}

/// What an item holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A captured frame, decoded: its headers, and its captured and wire
    /// lengths.
    Packet {
        link: LinkInfo,
        src: IpAddr,
        dst: IpAddr,
        header: Header,
        truncated: bool,
        caplen: u32,
        orig_len: u32,
    },
    /// A datagram reassembled from fragments.
    Datagram {
        link: LinkInfo,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
    },
}

/// Why a worker gets a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It belongs to one of the worker's hosts: analyse it.
    Home,
    /// A DNS answer for another worker's host: only learn its addresses for
    /// passive DNS (which falls back to any client's answer).
    DnsAnswer,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    ts: Timestamp,
    clock: Timestamp,
    role: Role,
    /// Whether `start..end` is in the batch's map rather than its bytes.
    mapped: bool,
    start: usize,
    end: usize,
    kind: Kind,
}

/// A captured frame's facts besides its decoded packet.
#[derive(Debug, Clone, Copy)]
pub struct FrameFacts {
    /// When it was captured.
    pub ts: Timestamp,
    /// Bytes captured.
    pub caplen: u32,
    /// Its length on the wire.
    pub orig_len: u32,
}

/// A packet read back from a batch, with the input's clock when it was
/// read (the latest time of any packet so far, for every worker's timeouts).
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A captured frame, decoded.
    Packet(Packet<'a>, FrameFacts, Timestamp, Role),
    /// A reassembled datagram, the time its last fragment arrived, and the
    /// clock.
    Datagram(Reassembled<'a>, Timestamp, Timestamp, Role),
}

/// Packets on their way to one worker.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
    /// The mapped file that items with `mapped` refer to.
    map: Option<SharedMap>,
    /// The lowest offset referred to in `map`.
    map_low: usize,
    /// The highest offset referred to in `map`.
    map_high: usize,
    /// How much of a mapped file it may refer to (0: it copies everything).
    span: usize,
    /// A payload lay beyond `span`: it was copied, and the batch is full.
    spanned: bool,
}

/// The most of a mapped file one batch may refer to when up to `queued`
/// batches can wait for (or be read by) the same worker: all of them then
/// lie within [`KEEP_BEHIND`] of the reader's position, whose pages it keeps.
pub fn map_span(queued: usize) -> usize {
    KEEP_BEHIND / queued.saturating_add(2).max(1)
}

impl Batch {
    /// An empty batch with room for a full load, which copies every payload.
    pub fn new() -> Self {
        Self::referring(0)
    }

    /// An empty batch that refers to at most `span` bytes of a mapped file
    /// (see `map_span`) and copies the rest.
    pub fn referring(span: usize) -> Self {
        Batch {
            bytes: Vec::with_capacity(BATCH_BYTES),
            items: Vec::with_capacity(BATCH_ITEMS),
            map: None,
            map_low: 0,
            map_high: 0,
            span,
            spanned: false,
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Captured frames in it that are analysed where they go (not DNS
    /// copies, nor datagrams reassembled from fragments, whose fragments
    /// were counted when they arrived).
    pub fn home_len(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.role == Role::Home && matches!(i.kind, Kind::Packet { .. }))
            .count()
    }

    /// Whether it should be sent now: it holds [`BATCH_ITEMS`] packets or
    /// [`BATCH_BYTES`] of copied bytes, or a payload lay beyond the part of
    /// a mapped file it may refer to.
    pub fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.bytes.len() >= BATCH_BYTES || self.spanned
    }

    /// Empties it for reuse, letting go of the mapped file (and of its
    /// pages the reader had released meanwhile). A batch that grew for an
    /// outsize frame gives the extra memory back.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
        if let Some(map) = self.map.take() {
            map.release_behind(self.map_low..self.map_high);
        }
        self.spanned = false;
        if self.bytes.capacity() > 2 * BATCH_BYTES {
            self.bytes.shrink_to(BATCH_BYTES);
        }
    }

    /// Where `data` is referred to in `mapped`: in one map per batch, in
    /// file order, within `span` bytes.
    fn refer(&mut self, data: &[u8], mapped: Option<&SharedMap>) -> Option<(usize, usize)> {
        let m = mapped.filter(|_| !data.is_empty() && self.span > 0)?;
        let at = m.locate(data)?;
        match &self.map {
            None if at.len() <= self.span => {
                self.map = Some(m.clone());
                self.map_low = at.start;
                self.map_high = at.start;
            }
            Some(own) if own.same(m) && at.start >= self.map_low => {
                if at.end - self.map_low > self.span {
                    self.spanned = true;
                    return None;
                }
            }
            _ => return None,
        }
        self.map_high = self.map_high.max(at.end);
        Some((at.start, at.end))
    }

    fn push(
        &mut self,
        ts: Timestamp,
        clock: Timestamp,
        role: Role,
        (data, mapped): (&[u8], Option<&SharedMap>),
        kind: Kind,
    ) {
        let (mapped, start, end) = match self.refer(data, mapped) {
            Some((start, end)) => (true, start, end),
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(data);
                (false, start, self.bytes.len())
            }
        };
        self.items.push(Item {
            ts,
            clock,
            role,
            mapped,
            start,
            end,
            kind,
        });
    }

    /// Appends a decoded frame read when the input's clock was `clock`: a
    /// reference to its payload if the frame lies in `mapped`, else a copy.
    /// Packets of other protocols than TCP and UDP are not taken (nothing
    /// downstream looks at them).
    pub fn push_packet(
        &mut self,
        p: &Packet<'_>,
        facts: FrameFacts,
        clock: Timestamp,
        role: Role,
        mapped: Option<&SharedMap>,
    ) {
        let (header, payload) = match p.transport {
            Transport::Tcp(t) => (
                Header::Tcp {
                    sport: t.sport,
                    dport: t.dport,
                    seq: t.seq,
                    ack: t.ack,
                    flags: t.flags,
                    wire_len: t.wire_len,
                },
                t.payload,
            ),
            Transport::Udp(u) => (
                Header::Udp {
                    sport: u.sport,
                    dport: u.dport,
                },
                u.payload,
            ),
            Transport::Other(_) => return,
        };
        let kind = Kind::Packet {
            link: p.link,
            src: p.src,
            dst: p.dst,
            header,
            truncated: p.truncated,
            caplen: facts.caplen,
            orig_len: facts.orig_len,
        };
        self.push(facts.ts, clock, role, (payload, mapped), kind);
    }

    /// Appends a copy of a reassembled datagram completed at `ts`.
    pub fn push_datagram(
        &mut self,
        d: &Reassembled<'_>,
        ts: Timestamp,
        clock: Timestamp,
        role: Role,
    ) {
        let kind = Kind::Datagram {
            link: d.link,
            src: d.src,
            dst: d.dst,
            proto: d.proto,
        };
        self.push(ts, clock, role, (d.payload, None), kind);
    }

    /// Hands each packet to `f`, in the order they were added: built once
    /// in place and lent. (An iterator moved each entry out and into the
    /// caller's variables, copies whose odd-sized pieces, the addresses,
    /// reloaded right after their stores and stalled on them.)
    #[inline]
    pub fn for_each_entry<'a>(&'a self, mut f: impl FnMut(&Entry<'a>)) {
        for (k, it) in self.items.iter().enumerate() {
            // The reader wrote the items on the other core: start moving a
            // few ahead over before they are read.
            crate::prefetch::element(&self.items, k + ITEMS_AHEAD);
            // And the start of the packet after next's bytes (its headers
            // and the payload the protocol parsers look at first).
            if let Some(next) = self.items.get(k + 2) {
                let bytes = if next.mapped {
                    self.map.as_ref().and_then(|m| m.get(next.start..next.end))
                } else {
                    self.bytes.get(next.start..next.end)
                };
                if let Some(b) = bytes {
                    crate::prefetch::bytes(b.get(..64).unwrap_or(b));
                }
            }
            f(&self.entry(it));
        }
    }

    #[inline(always)]
    fn entry(&self, it: &Item) -> Entry<'_> {
        let data = if it.mapped {
            self.map.as_ref().and_then(|m| m.get(it.start..it.end))
        } else {
            self.bytes.get(it.start..it.end)
        }
        .unwrap_or_default();
        match it.kind {
            Kind::Packet {
                link,
                src,
                dst,
                header,
                truncated,
                caplen,
                orig_len,
            } => {
                let transport = match header {
                    Header::Tcp {
                        sport,
                        dport,
                        seq,
                        ack,
                        flags,
                        wire_len,
                    } => Transport::Tcp(TcpSegment {
                        sport,
                        dport,
                        seq,
                        ack,
                        flags,
                        payload: data,
                        wire_len,
                    }),
                    Header::Udp { sport, dport } => Transport::Udp(UdpDatagram {
                        sport,
                        dport,
                        payload: data,
                    }),
                };
                let packet = Packet {
                    link,
                    src,
                    dst,
                    transport,
                    truncated,
                };
                let facts = FrameFacts {
                    ts: it.ts,
                    caplen,
                    orig_len,
                };
                Entry::Packet(packet, facts, it.clock, it.role)
            }
            Kind::Datagram {
                link,
                src,
                dst,
                proto,
            } => Entry::Datagram(
                Reassembled {
                    link,
                    src,
                    dst,
                    proto,
                    payload: data,
                },
                it.ts,
                it.clock,
                it.role,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn udp(payload: &[u8]) -> Packet<'_> {
        Packet {
            link: LinkInfo::default(),
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            transport: Transport::Udp(UdpDatagram {
                sport: 5353,
                dport: 53,
                payload,
            }),
            truncated: false,
        }
    }

    fn facts(ts: i64, caplen: u32, orig_len: u32) -> FrameFacts {
        FrameFacts {
            ts: Timestamp(ts),
            caplen,
            orig_len,
        }
    }

    #[test]
    fn entries_come_back_in_order_with_their_bytes() {
        let mut b = Batch::new();
        b.push_packet(
            &udp(b"abc"),
            facts(5, 45, 60),
            Timestamp(5),
            Role::Home,
            None,
        );
        let d = Reassembled {
            link: LinkInfo::default(),
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            proto: 17,
            payload: b"defgh",
        };
        b.push_datagram(&d, Timestamp(7), Timestamp(9), Role::DnsAnswer);
        let mut got = Vec::new();
        b.for_each_entry(|e| got.push(*e));
        assert!(matches!(&got[0], Entry::Packet(p, f, _, Role::Home)
            if matches!(p.transport, Transport::Udp(u) if u.payload == b"abc" && u.dport == 53)
                && f.orig_len == 60 && f.caplen == 45));
        assert!(
            matches!(&got[1], Entry::Datagram(r, ts, clock, Role::DnsAnswer)
            if r.payload == b"defgh" && *ts == Timestamp(7) && *clock == Timestamp(9))
        );
        b.clear();
        assert!(b.is_empty());
    }

    fn payloads(b: &Batch) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        b.for_each_entry(|e| {
            out.push(match e {
                Entry::Packet(p, ..) => match p.transport {
                    Transport::Udp(u) => u.payload.to_vec(),
                    _ => panic!("udp"),
                },
                Entry::Datagram(r, ..) => r.payload.to_vec(),
            })
        });
        out
    }

    #[test]
    fn payloads_in_a_mapped_file_are_referred_to_not_copied() {
        let file: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
        let (map, other) = (SharedMap::for_test(&file), SharedMap::for_test(&file));
        fn at(m: &SharedMap, r: std::ops::Range<usize>) -> &[u8] {
            m.get(r).unwrap()
        }
        let mut b = Batch::referring(1000);
        let f = facts(1, 60, 60);
        let t = Timestamp(1);
        b.push_packet(&udp(at(&map, 100..150)), f, t, Role::Home, Some(&map));
        b.push_packet(&udp(b"copied"), f, t, Role::Home, Some(&map));
        b.push_packet(&udp(at(&map, 300..310)), f, t, Role::Home, Some(&map));
        // Another file's frames, and frames before the batch's first, are copied.
        b.push_packet(&udp(at(&other, 0..8)), f, t, Role::Home, Some(&other));
        b.push_packet(&udp(at(&map, 50..60)), f, t, Role::Home, Some(&map));
        assert!(b.bytes.len() == 6 + 8 + 10, "only those were copied");
        assert!(!b.is_full());
        // Beyond the span: copied, and the batch is sent.
        b.push_packet(&udp(at(&map, 1090..1110)), f, t, Role::Home, Some(&map));
        assert!(b.is_full());
        assert_eq!(
            payloads(&b),
            [
                &file[100..150],
                b"copied".as_slice(),
                &file[300..310],
                &file[0..8],
                &file[50..60],
                &file[1090..1110]
            ]
        );
        b.clear();
        assert!(b.map.is_none() && !b.is_full(), "lets go of the file");
        // A batch that may not refer copies everything.
        let mut c = Batch::new();
        c.push_packet(&udp(at(&map, 0..10)), f, t, Role::Home, Some(&map));
        assert_eq!(
            (c.bytes.len(), payloads(&c)),
            (10, vec![file[0..10].to_vec()])
        );
    }

    #[test]
    fn an_outsize_frame_fits_and_its_memory_is_given_back() {
        let mut b = Batch::new();
        let big = vec![0u8; 4 * BATCH_BYTES];
        b.push_packet(&udp(&big), facts(0, 0, 0), Timestamp(0), Role::Home, None);
        assert!(b.is_full());
        b.clear();
        assert!(b.bytes.capacity() <= 2 * BATCH_BYTES);
    }
}
