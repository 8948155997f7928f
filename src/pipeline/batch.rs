//! Batches: how packets travel from the dispatcher to a worker. A batch is
//! one byte buffer holding the packets' payloads back to back plus a list
//! of items with their decoded headers. The dispatcher decoded each frame
//! to pick its worker; the worker gets the result, so no frame is decoded
//! twice and only payload bytes are copied (none for a bare ACK). Batches
//! are recycled through a return queue, so in steady state moving a packet
//! between threads costs one copy and no allocation.

use crate::capture::Timestamp;
use crate::decode::defrag::Reassembled;
use crate::decode::{LinkInfo, Packet, TcpSegment, Transport, UdpDatagram};
use std::net::IpAddr;

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
#[derive(Debug)]
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
}

impl Batch {
    /// An empty batch with room for a full load.
    pub fn new() -> Self {
        Batch {
            bytes: Vec::with_capacity(BATCH_BYTES),
            items: Vec::with_capacity(BATCH_ITEMS),
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

    /// Whether it should be sent now.
    pub fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.bytes.len() >= BATCH_BYTES
    }

    /// Empties it for reuse. A batch that grew for an outsize frame gives the
    /// extra memory back.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
        if self.bytes.capacity() > 2 * BATCH_BYTES {
            self.bytes.shrink_to(BATCH_BYTES);
        }
    }

    fn push(&mut self, ts: Timestamp, clock: Timestamp, role: Role, data: &[u8], kind: Kind) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.items.push(Item {
            ts,
            clock,
            role,
            start,
            end: self.bytes.len(),
            kind,
        });
    }

    /// Appends a decoded frame (a copy of its payload) read when the input's
    /// clock was `clock`. Packets of other protocols than TCP and UDP are
    /// not taken (nothing downstream looks at them).
    pub fn push_packet(&mut self, p: &Packet<'_>, facts: FrameFacts, clock: Timestamp, role: Role) {
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
        self.push(facts.ts, clock, role, payload, kind);
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
        self.push(ts, clock, role, d.payload, kind);
    }

    /// The packets, in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.items.iter().map(|it| {
            let data = self.bytes.get(it.start..it.end).unwrap_or_default();
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
        })
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
        b.push_packet(&udp(b"abc"), facts(5, 45, 60), Timestamp(5), Role::Home);
        let d = Reassembled {
            link: LinkInfo::default(),
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            proto: 17,
            payload: b"defgh",
        };
        b.push_datagram(&d, Timestamp(7), Timestamp(9), Role::DnsAnswer);
        let got: Vec<_> = b.entries().collect();
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

    #[test]
    fn an_outsize_frame_fits_and_its_memory_is_given_back() {
        let mut b = Batch::new();
        let big = vec![0u8; 4 * BATCH_BYTES];
        b.push_packet(&udp(&big), facts(0, 0, 0), Timestamp(0), Role::Home);
        assert!(b.is_full());
        b.clear();
        assert!(b.bytes.capacity() <= 2 * BATCH_BYTES);
    }
}
