//! Conversation-level helpers: a [`CaptureBuilder`] that wraps IP packets in
//! a chosen link layer and writes pcap/pcapng, a [`TcpConn`] that keeps
//! sequence/ack numbers consistent (handshake, segmented and out-of-order
//! sends, close), and UDP/DNS exchanges.
//!
//! Timestamps are nanoseconds since the Unix epoch. Records may be pushed in
//! any order; they are written sorted by timestamp (stable for ties).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::Path;

use crate::dns::{Answer, DnsMessage, TYPE_A, TYPE_AAAA};
use crate::packet::{
    self, AF_INET, AF_INET6_BSD, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP, Mac,
    TcpFlags,
};
use crate::pcapfile::{self, Endian, PcapNgWriter, PcapWriter, TsPrecision};

/// One millisecond in nanoseconds.
pub const MILLI: u64 = 1_000_000;
/// One second in nanoseconds.
pub const SECOND: u64 = 1_000_000_000;
/// Snap length written into file headers.
pub const SNAPLEN: u32 = 262_144;

/// Link layer used to wrap IP packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II; `vlans` tags every frame (see [`packet::ethernet`]).
    Ethernet {
        /// Default VLAN tags (outermost first).
        vlans: Vec<u16>,
    },
    /// Linux cooked capture v1.
    Sll,
    /// Linux cooked capture v2.
    Sll2,
    /// Raw IP (LINKTYPE_RAW).
    Raw,
    /// BSD loopback, little-endian family (2, or 24 for IPv6).
    Null,
}

impl Link {
    /// The LINKTYPE_* value for this link layer.
    pub fn linktype(&self) -> u32 {
        match self {
            Link::Ethernet { .. } => pcapfile::LINKTYPE_ETHERNET,
            Link::Sll => pcapfile::LINKTYPE_LINUX_SLL,
            Link::Sll2 => pcapfile::LINKTYPE_LINUX_SLL2,
            Link::Raw => pcapfile::LINKTYPE_RAW,
            Link::Null => pcapfile::LINKTYPE_NULL,
        }
    }
}

/// Accumulates timestamped frames for one link layer and writes them out.
#[derive(Debug, Clone)]
pub struct CaptureBuilder {
    link: Link,
    records: Vec<(u64, Vec<u8>)>,
    host_vlans: Vec<(IpAddr, Vec<u16>)>,
    ident: u16,
}

impl CaptureBuilder {
    /// An empty capture using `link`.
    pub fn new(link: Link) -> Self {
        Self {
            link,
            records: Vec::new(),
            host_vlans: Vec::new(),
            ident: 0x1000,
        }
    }

    /// The link layer in use.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// On Ethernet, tag every frame to or from `host` with `vlans` instead of
    /// the default tags (e.g. a host living on VLAN 120).
    pub fn set_host_vlans(&mut self, host: IpAddr, vlans: &[u16]) {
        self.host_vlans.retain(|(h, _)| *h != host);
        self.host_vlans.push((host, vlans.to_vec()));
    }

    /// Records an already link-framed packet as is.
    pub fn push_frame(&mut self, ts_nanos: u64, frame: Vec<u8>) {
        self.records.push((ts_nanos, frame));
    }

    /// Wraps an IPv4/IPv6 packet in the link header and records it. On
    /// Ethernet the MACs are [`Mac::from_ip`] of the packet's addresses.
    pub fn push_ip(&mut self, ts_nanos: u64, ip_packet: Vec<u8>) {
        let (v6, src, dst) = ip_addrs(&ip_packet);
        let ethertype = if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
        let frame = match &self.link {
            Link::Ethernet { vlans } => {
                let tags = self.vlans_for(src, dst).unwrap_or(vlans);
                packet::ethernet(
                    Mac::from_ip(src),
                    Mac::from_ip(dst),
                    tags,
                    ethertype,
                    &ip_packet,
                )
            }
            Link::Sll => packet::sll(&ip_packet, ethertype),
            Link::Sll2 => packet::sll2(&ip_packet, ethertype),
            Link::Raw => ip_packet,
            Link::Null => {
                let af = if v6 { AF_INET6_BSD } else { AF_INET };
                packet::null_loopback(&ip_packet, af, Endian::Little)
            }
        };
        self.records.push((ts_nanos, frame));
    }

    fn vlans_for(&self, src: IpAddr, dst: IpAddr) -> Option<&Vec<u16>> {
        self.host_vlans
            .iter()
            .find(|(h, _)| *h == src || *h == dst)
            .map(|(_, v)| v)
    }

    /// A fresh IPv4 identification value (a simple counter).
    pub fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Builds an IP packet (IPv4 when both ends are IPv4, using
    /// [`Self::next_ident`]) without recording it.
    pub fn ip_packet(&mut self, src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => packet::ipv4(s, d, proto, self.next_ident(), l4),
            _ => packet::ip_packet(src, dst, proto, l4),
        }
    }

    /// Records in insertion order.
    pub fn records(&self) -> &[(u64, Vec<u8>)] {
        &self.records
    }

    /// Number of recorded frames.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn sorted(&self) -> Vec<&(u64, Vec<u8>)> {
        let mut v: Vec<_> = self.records.iter().collect();
        v.sort_by_key(|r| r.0);
        v
    }

    /// Serialises to a classic pcap file. Fails only if a timestamp does not
    /// fit 32-bit seconds.
    pub fn to_pcap_bytes(&self, precision: TsPrecision, endian: Endian) -> io::Result<Vec<u8>> {
        let mut w = PcapWriter::new(Vec::new(), self.link.linktype(), SNAPLEN, precision, endian)?;
        for (ts, frame) in self.sorted() {
            w.write_packet(*ts, frame)?;
        }
        Ok(w.into_inner())
    }

    /// Serialises to a little-endian pcapng file with one interface
    /// (microsecond resolution).
    pub fn to_pcapng_bytes(&self) -> Vec<u8> {
        let linktype = self.link.linktype() as u16;
        let mut w = PcapNgWriter::new(Vec::new(), Endian::Little).expect("Vec write");
        w.add_interface(linktype, SNAPLEN, None).expect("Vec write");
        for (ts, frame) in self.sorted() {
            w.write_packet(0, *ts, frame)
                .expect("Vec write with a known interface");
        }
        w.into_inner()
    }

    /// Writes a classic pcap file to `path`.
    pub fn write_pcap(
        &self,
        path: impl AsRef<Path>,
        precision: TsPrecision,
        endian: Endian,
    ) -> io::Result<()> {
        fs::write(path, self.to_pcap_bytes(precision, endian)?)
    }

    /// Writes a pcapng file to `path`.
    pub fn write_pcapng(&self, path: impl AsRef<Path>) -> io::Result<()> {
        fs::write(path, self.to_pcapng_bytes())
    }
}

/// (is IPv6, src, dst) of an IP packet; short or unknown input yields IPv4
/// unspecified addresses.
fn ip_addrs(p: &[u8]) -> (bool, IpAddr, IpAddr) {
    let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match (p.first().map(|b| b >> 4), p.len()) {
        (Some(6), 40..) => {
            let a = |r: Range<usize>| IpAddr::from(<[u8; 16]>::try_from(&p[r]).unwrap_or([0; 16]));
            (true, a(8..24), a(24..40))
        }
        (Some(6), _) => (true, unspecified, unspecified),
        (_, 20..) => {
            let a = |r: Range<usize>| IpAddr::from(<[u8; 4]>::try_from(&p[r]).unwrap_or([0; 4]));
            (false, a(12..16), a(16..20))
        }
        _ => (false, unspecified, unspecified),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

/// A TCP connection whose sequence and acknowledgment numbers stay
/// consistent across calls. Every method returns the timestamp of the last
/// frame it emitted.
#[derive(Debug, Clone)]
pub struct TcpConn {
    client: SocketAddr,
    server: SocketAddr,
    client_next: u32,
    server_next: u32,
    rtt: u64,
}

impl TcpConn {
    /// Default round-trip time between client and server: 20 ms.
    pub const DEFAULT_RTT_NANOS: u64 = 20 * MILLI;
    /// Segment size used by [`Self::server_send`].
    pub const MSS: usize = 1460;

    /// A connection from `client` to `server` with the given initial
    /// sequence numbers (the SYNs use them; data starts one later).
    pub fn new(client: SocketAddr, server: SocketAddr, isn_c: u32, isn_s: u32) -> Self {
        Self {
            client,
            server,
            client_next: isn_c,
            server_next: isn_s,
            rtt: Self::DEFAULT_RTT_NANOS,
        }
    }

    /// Sets the round-trip time used between a segment and its answer.
    pub fn with_rtt(mut self, rtt_nanos: u64) -> Self {
        self.rtt = rtt_nanos;
        self
    }

    /// The client endpoint.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// The server endpoint.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    fn emit(
        &self,
        cb: &mut CaptureBuilder,
        ts: u64,
        dir: Dir,
        seq_ack: (u32, u32),
        flags: TcpFlags,
        data: &[u8],
    ) {
        let (src, dst) = match dir {
            Dir::ToServer => (self.client, self.server),
            Dir::ToClient => (self.server, self.client),
        };
        let (seq, ack) = seq_ack;
        let seg = packet::tcp_segment(
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port(),
            seq,
            ack,
            flags,
            data,
        );
        let pkt = cb.ip_packet(src.ip(), dst.ip(), IPPROTO_TCP, &seg);
        cb.push_ip(ts, pkt);
    }

    /// SYN at `ts`, SYN/ACK one RTT later, then the client's ACK 100 µs after.
    pub fn handshake(&mut self, cb: &mut CaptureBuilder, ts: u64) -> u64 {
        let (c, s) = (self.client_next, self.server_next);
        self.emit(cb, ts, Dir::ToServer, (c, 0), TcpFlags::SYN, &[]);
        self.emit(
            cb,
            ts + self.rtt,
            Dir::ToClient,
            (s, c.wrapping_add(1)),
            TcpFlags::SYN | TcpFlags::ACK,
            &[],
        );
        self.client_next = c.wrapping_add(1);
        self.server_next = s.wrapping_add(1);
        let last = ts + self.rtt + MILLI / 10;
        self.emit(
            cb,
            last,
            Dir::ToServer,
            (self.client_next, self.server_next),
            TcpFlags::ACK,
            &[],
        );
        last
    }

    /// Sends `bytes` from the client in one segment; the server ACKs it.
    pub fn client_send(&mut self, cb: &mut CaptureBuilder, ts: u64, bytes: &[u8]) -> u64 {
        self.send(cb, ts, Dir::ToServer, bytes, &[bytes.len()], &[])
    }

    /// Splits `bytes` into segments of `sizes` (a remainder becomes one last
    /// segment; zero sizes are skipped) and emits them in `order` (indices
    /// into the segments; out-of-range ones are ignored, repeats are
    /// retransmissions, unlisted segments follow in natural order), 1 ms
    /// apart. The server then ACKs everything.
    pub fn client_send_segments(
        &mut self,
        cb: &mut CaptureBuilder,
        ts: u64,
        bytes: &[u8],
        sizes: &[usize],
        order: &[usize],
    ) -> u64 {
        self.send(cb, ts, Dir::ToServer, bytes, sizes, order)
    }

    /// Sends `bytes` from the server in [`Self::MSS`]-sized segments, 1 ms
    /// apart; the client ACKs them.
    pub fn server_send(&mut self, cb: &mut CaptureBuilder, ts: u64, bytes: &[u8]) -> u64 {
        self.send(cb, ts, Dir::ToClient, bytes, &[Self::MSS; 64], &[])
    }

    fn send(
        &mut self,
        cb: &mut CaptureBuilder,
        ts: u64,
        dir: Dir,
        bytes: &[u8],
        sizes: &[usize],
        order: &[usize],
    ) -> u64 {
        if bytes.is_empty() {
            return ts;
        }
        let (base, ack) = match dir {
            Dir::ToServer => (self.client_next, self.server_next),
            Dir::ToClient => (self.server_next, self.client_next),
        };
        let ranges = split(bytes.len(), sizes);
        let mut last = ts;
        for (k, i) in emission_order(ranges.len(), order).into_iter().enumerate() {
            let r = ranges[i].clone();
            let flags = if r.end == bytes.len() {
                TcpFlags::ACK | TcpFlags::PSH
            } else {
                TcpFlags::ACK
            };
            last = ts + k as u64 * MILLI;
            self.emit(
                cb,
                last,
                dir,
                (base.wrapping_add(r.start as u32), ack),
                flags,
                &bytes[r],
            );
        }
        let end = base.wrapping_add(bytes.len() as u32);
        match dir {
            Dir::ToServer => self.client_next = end,
            Dir::ToClient => self.server_next = end,
        }
        let peer = if dir == Dir::ToServer {
            Dir::ToClient
        } else {
            Dir::ToServer
        };
        let ack_ts = last + self.rtt / 2;
        self.emit(cb, ack_ts, peer, (ack, end), TcpFlags::ACK, &[]);
        ack_ts
    }

    /// Client FIN/ACK at `ts`, server FIN/ACK one RTT later, final ACK.
    pub fn close(&mut self, cb: &mut CaptureBuilder, ts: u64) -> u64 {
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        let (c, s) = (self.client_next, self.server_next);
        self.emit(cb, ts, Dir::ToServer, (c, s), fin, &[]);
        self.client_next = c.wrapping_add(1);
        self.emit(
            cb,
            ts + self.rtt,
            Dir::ToClient,
            (s, self.client_next),
            fin,
            &[],
        );
        self.server_next = s.wrapping_add(1);
        let last = ts + self.rtt + MILLI / 10;
        self.emit(
            cb,
            last,
            Dir::ToServer,
            (self.client_next, self.server_next),
            TcpFlags::ACK,
            &[],
        );
        last
    }
}

/// Byte ranges of `len` bytes cut by `sizes`, plus any remainder.
fn split(len: usize, sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &size in sizes.iter().filter(|&&s| s > 0) {
        if start >= len {
            break;
        }
        let end = start.saturating_add(size).min(len);
        out.push(start..end);
        start = end;
    }
    if start < len {
        out.push(start..len);
    }
    out
}

/// `order` without out-of-range indices, then the unlisted indices.
fn emission_order(n: usize, order: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = order.iter().copied().filter(|&i| i < n).collect();
    let missing: Vec<usize> = (0..n).filter(|i| !out.contains(i)).collect();
    out.extend(missing);
    out
}

/// A UDP request at `ts` and, if given, the response 2 ms later. Returns the
/// timestamp of the last datagram.
pub fn udp_exchange(
    cb: &mut CaptureBuilder,
    ts: u64,
    client: SocketAddr,
    server: SocketAddr,
    request: &[u8],
    response: Option<&[u8]>,
) -> u64 {
    push_udp(cb, ts, client, server, request);
    match response {
        Some(resp) => {
            push_udp(cb, ts + 2 * MILLI, server, client, resp);
            ts + 2 * MILLI
        }
        None => ts,
    }
}

fn push_udp(cb: &mut CaptureBuilder, ts: u64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
    let udp = packet::udp_datagram(src.ip(), dst.ip(), src.port(), dst.port(), payload);
    let pkt = cb.ip_packet(src.ip(), dst.ip(), IPPROTO_UDP, &udp);
    cb.push_ip(ts, pkt);
}

/// A DNS query for `name` over UDP and its response 2 ms later. The query
/// type is AAAA when any answer is AAAA, else A. With no answers the
/// response is NXDOMAIN. Returns the response timestamp.
pub fn dns_lookup(
    cb: &mut CaptureBuilder,
    ts: u64,
    client: SocketAddr,
    resolver: SocketAddr,
    id: u16,
    name: &str,
    answers: &[Answer],
) -> u64 {
    let qtype = if answers.iter().any(|a| matches!(a, Answer::Aaaa { .. })) {
        TYPE_AAAA
    } else {
        TYPE_A
    };
    let query = DnsMessage::query(id, name, qtype);
    let response = if answers.is_empty() {
        DnsMessage::nxdomain(id, name, qtype)
    } else {
        DnsMessage::response(id, name, qtype, answers)
    };
    udp_exchange(cb, ts, client, resolver, &query, Some(&response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// (seq, ack, flags, payload len) of each TCP frame on a Raw link.
    fn tcp_fields(cb: &CaptureBuilder) -> Vec<(u32, u32, u8, usize)> {
        cb.records()
            .iter()
            .map(|(_, p)| {
                let t = &p[20..];
                let be = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
                (be(4), be(8), t[13], t.len() - usize::from(t[12] >> 4) * 4)
            })
            .collect()
    }

    #[test]
    fn tcp_sequence_numbers() {
        let mut cb = CaptureBuilder::new(Link::Raw);
        let mut c = TcpConn::new(sa("10.0.0.1:40000"), sa("10.0.0.2:443"), 100, 5000);
        let t = c.handshake(&mut cb, 0);
        let t = c.client_send_segments(&mut cb, t + MILLI, &[0; 10], &[4, 0, 3], &[2, 9, 0]);
        let t = c.server_send(&mut cb, t + MILLI, &[1; 3000]);
        c.close(&mut cb, t + MILLI);
        let f = tcp_fields(&cb);
        assert_eq!(
            &f[..3],
            &[
                (100, 0, 0x02, 0),
                (5000, 101, 0x12, 0),
                (101, 5001, 0x10, 0)
            ]
        );
        // segments [0..4), [4..7), [7..10) emitted in order 2, 0, 1.
        assert_eq!(
            &f[3..7],
            &[
                (108, 5001, 0x18, 3),
                (101, 5001, 0x10, 4),
                (105, 5001, 0x10, 3),
                (5001, 111, 0x10, 0)
            ]
        );
        assert_eq!(
            &f[7..11],
            &[
                (5001, 111, 0x10, 1460),
                (6461, 111, 0x10, 1460),
                (7921, 111, 0x18, 80),
                (111, 8001, 0x10, 0)
            ]
        );
        assert_eq!(
            &f[11..],
            &[
                (111, 8001, 0x11, 0),
                (8001, 112, 0x11, 0),
                (112, 8002, 0x10, 0)
            ]
        );
        let ts: Vec<u64> = cb.records().iter().map(|r| r.0).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    }

    #[test]
    fn split_and_order_edge_cases() {
        assert_eq!(split(5, &[]), vec![(0..5)]);
        assert_eq!(split(5, &[10, 2]), vec![(0..5)]);
        assert_eq!(split(0, &[1]), Vec::<Range<usize>>::new());
        assert_eq!(emission_order(3, &[1, 1, 7]), [1, 1, 0, 2]);
    }

    #[test]
    fn link_wrapping_and_vlans() {
        let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
        cb.set_host_vlans("10.20.0.8".parse().unwrap(), &[120]);
        udp_exchange(
            &mut cb,
            0,
            sa("10.20.0.8:5000"),
            sa("10.20.0.2:53"),
            b"q",
            Some(b"r"),
        );
        udp_exchange(
            &mut cb,
            5,
            sa("10.20.0.9:5000"),
            sa("10.20.0.2:53"),
            b"q",
            None,
        );
        let r = cb.records();
        assert_eq!(&r[0].1[12..18], &[0x81, 0, 0, 120, 8, 0]);
        assert_eq!(&r[1].1[0..6], &[2, 0, 10, 20, 0, 8]);
        assert_eq!(&r[2].1[12..14], &[8, 0]);
        let mut cb = CaptureBuilder::new(Link::Null);
        dns_lookup(
            &mut cb,
            0,
            sa("[2001:db8::1]:5000"),
            sa("[2001:db8::2]:53"),
            1,
            "x",
            &[],
        );
        assert_eq!(&cb.records()[0].1[..5], &[24, 0, 0, 0, 0x60]);
        assert_eq!(cb.len(), 2);
        cb.push_ip(0, vec![]);
        assert_eq!(cb.records()[2].1, [2, 0, 0, 0]);
    }

    #[test]
    fn file_outputs_sorted() {
        let mut cb = CaptureBuilder::new(Link::Sll2);
        cb.push_frame(2 * SECOND, vec![2]);
        cb.push_frame(SECOND, vec![1]);
        let pcap = cb
            .to_pcap_bytes(TsPrecision::Micro, Endian::Little)
            .unwrap();
        assert_eq!(&pcap[20..24], &276u32.to_le_bytes());
        assert_eq!((pcap[24], pcap[40], pcap[41 + 16]), (1, 1, 2));
        let ng = cb.to_pcapng_bytes();
        assert_eq!(&ng[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&ng[28 + 8..28 + 10], &276u16.to_le_bytes());
        assert!(cb.to_pcap_bytes(TsPrecision::Nano, Endian::Big).is_ok());
    }
}
