//! Flood captures: hostile traffic volumes that try to exhaust every table of
//! the analyser, with one real Kaspersky client mixed in that must still be
//! reported.
//!
//! A flood is a time-ordered mix (deterministic for a seed) of:
//! - TCP SYNs from random sources to random servers, never answered
//!   (half-open connections: the flow table);
//! - DNS queries for random names under a vendor's domain (ESET), with
//!   their answers (passive DNS);
//! - TLS ClientHellos whose first segment arrives and whose rest never does,
//!   after a completed handshake (TCP stream buffers);
//! - first IPv4 fragments of datagrams that never complete (IP reassembly);
//! - many distinct hosts, each asking once for an Avast name (the host
//!   table).
//!
//! The Kaspersky host `10.99.0.7` arrives once the flood has filled the
//! tables (at 70 % of it): it resolves `ds.kaspersky.com` and sends a
//! ClientHello for it over two TCP segments, then the flood goes on.
//! Frames are written one by one, so a flood of millions of packets costs no
//! memory to generate.

use crate::dns::{Answer, DnsMessage};
use crate::packet::{self, Mac, TcpFlags};
use crate::pcapfile::{Endian, PcapWriter, TsPrecision};
use crate::rng::Rng;
use crate::tls::{self, ClientHelloSpec};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

/// The Kaspersky client hidden in the flood.
pub const KASPERSKY_HOST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 7);
/// The server name it asks for and sends in its ClientHello.
pub const KASPERSKY_NAME: &str = "ds.kaspersky.com";
/// The server it connects to (inside a Kaspersky range of the feeds).
pub const KASPERSKY_SERVER: Ipv4Addr = Ipv4Addr::new(93, 159, 228, 2);

const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
const START_NANOS: u64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z

/// How much of each kind of flood traffic to write.
#[derive(Debug, Clone, Copy)]
pub struct FloodSpec {
    /// Unanswered SYNs from random sources.
    pub syns: usize,
    /// DNS lookups (query and answer) of random names.
    pub dns_names: usize,
    /// Connections whose ClientHello never completes.
    pub partial_hellos: usize,
    /// First fragments of datagrams that never complete.
    pub fragments: usize,
    /// Distinct hosts contacting a vendor (Avast) once each.
    pub hosts: usize,
    /// Time between two flood events, in nanoseconds.
    pub gap_nanos: u64,
    /// Seed of the random choices.
    pub seed: u64,
}

impl FloodSpec {
    /// The full-size flood of the benchmark: 1 million SYNs, 100,000 random
    /// names, 100,000 incomplete hellos, 100,000 incomplete datagrams and
    /// 100,000 hosts, at 100,000 events per second.
    pub fn full() -> Self {
        FloodSpec {
            syns: 1_000_000,
            dns_names: 100_000,
            partial_hellos: 100_000,
            fragments: 100_000,
            hosts: 100_000,
            gap_nanos: 10_000,
            seed: 7,
        }
    }

    /// Every count divided by `div` (at least 1 each).
    pub fn scaled(self, div: usize) -> Self {
        let d = |n: usize| (n / div.max(1)).max(1);
        FloodSpec {
            syns: d(self.syns),
            dns_names: d(self.dns_names),
            partial_hellos: d(self.partial_hellos),
            fragments: d(self.fragments),
            hosts: d(self.hosts),
            ..self
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Frames written.
    pub packets: u64,
    /// Bytes of frames written.
    pub bytes: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Syn,
    Dns,
    Hello,
    Fragment,
    Host,
}

struct Out<W: Write> {
    w: PcapWriter<W>,
    ts: u64,
    stats: FloodStats,
}

impl<W: Write> Out<W> {
    fn ip(&mut self, ip: Vec<u8>) -> io::Result<()> {
        let (src, dst) = match (ip.get(12..16), ip.get(16..20)) {
            (Some(s), Some(d)) => (
                Ipv4Addr::new(s[0], s[1], s[2], s[3]),
                Ipv4Addr::new(d[0], d[1], d[2], d[3]),
            ),
            _ => (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
        };
        let frame = packet::ethernet(
            Mac::from_ip(IpAddr::V4(src)),
            Mac::from_ip(IpAddr::V4(dst)),
            &[],
            0x0800,
            &ip,
        );
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        self.w.write_packet(self.ts, &frame)?;
        self.ts += 1_000;
        Ok(())
    }

    fn tcp(
        &mut self,
        (src, sport): (Ipv4Addr, u16),
        (dst, dport): (Ipv4Addr, u16),
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
    ) -> io::Result<()> {
        let seg = packet::tcp_segment(
            src.into(),
            dst.into(),
            sport,
            dport,
            seq,
            ack,
            flags,
            payload,
        );
        self.ip(packet::ipv4(src, dst, 6, 1, &seg))
    }

    fn udp(
        &mut self,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        payload: &[u8],
    ) -> io::Result<()> {
        let d = packet::udp_datagram(src.0.into(), dst.0.into(), src.1, dst.1, payload);
        self.ip(packet::ipv4(src.0, dst.0, 17, 1, &d))
    }
}

fn label(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// Writes a flood as a classic pcap (Ethernet, microseconds) to `w`.
pub fn write_flood<W: Write>(w: W, spec: &FloodSpec) -> io::Result<FloodStats> {
    let mut rng = Rng::new(spec.seed);
    let mut out = Out {
        w: PcapWriter::new(w, 1, 65535, TsPrecision::Micro, Endian::Little)?,
        ts: START_NANOS,
        stats: FloodStats::default(),
    };
    let mut kinds: Vec<Kind> = Vec::new();
    for (kind, n) in [
        (Kind::Syn, spec.syns),
        (Kind::Dns, spec.dns_names),
        (Kind::Hello, spec.partial_hellos),
        (Kind::Fragment, spec.fragments),
        (Kind::Host, spec.hosts),
    ] {
        kinds.extend(std::iter::repeat_n(kind, n));
    }
    // Fisher–Yates: the kinds arrive mixed, as an attack would send them.
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let hello = tls::records(
        &tls::client_hello(&ClientHelloSpec::browser("www.example.org")),
        16384,
    );
    let kaspersky_at = kinds.len() * 7 / 10;
    let mut host_no = 0u32;
    for (i, kind) in kinds.iter().enumerate() {
        if i == kaspersky_at {
            kaspersky(&mut out)?;
        }
        out.ts = START_NANOS + i as u64 * spec.gap_nanos.max(1_000 * 8);
        let r = rng.next_u32();
        match kind {
            Kind::Syn => {
                // Random sources in 100.64.0.0/10, random servers in 198.18.0.0/15.
                let src = Ipv4Addr::from(0x6440_0000 | (r & 0x003f_ffff));
                let dst = Ipv4Addr::from(0xc612_0000 | (rng.next_u32() & 0x0001_ffff));
                let sport = 1024 + (rng.below(64_000) as u16);
                out.tcp(
                    (src, sport),
                    (dst, 443),
                    rng.next_u32(),
                    0,
                    TcpFlags::SYN,
                    &[],
                )?;
            }
            Kind::Dns => {
                let client = Ipv4Addr::from(0x0a32_0000 | (r & 0xffff));
                // Random names under a vendor's domain (a "water torture"
                // flood): their answers are what passive DNS keeps.
                let name = format!("{}.{}.eset.com", label(&mut rng, 12), label(&mut rng, 8));
                let id = rng.below(65_536) as u16;
                let sport = 1024 + (rng.below(64_000) as u16);
                let addr = Ipv4Addr::from(0xcb00_7100 | (rng.next_u32() & 0xff));
                out.udp(
                    (client, sport),
                    (RESOLVER, 53),
                    &DnsMessage::query(id, &name, 1),
                )?;
                let resp = DnsMessage::response(id, &name, 1, &[Answer::a(&name, addr, 300)]);
                out.udp((RESOLVER, 53), (client, sport), &resp)?;
            }
            Kind::Hello => {
                let client = Ipv4Addr::from(0x0a3c_0000 | (r & 0xffff));
                let server = Ipv4Addr::from(0xcb00_7100 | (rng.next_u32() & 0xff));
                let sport = 1024 + (rng.below(64_000) as u16);
                let (c, s) = ((client, sport), (server, 443));
                let (isn_c, isn_s) = (rng.next_u32(), rng.next_u32());
                out.tcp(c, s, isn_c, 0, TcpFlags::SYN, &[])?;
                out.tcp(s, c, isn_s, isn_c.wrapping_add(1), TcpFlags(0x12), &[])?;
                out.tcp(
                    c,
                    s,
                    isn_c.wrapping_add(1),
                    isn_s.wrapping_add(1),
                    TcpFlags::ACK,
                    &[],
                )?;
                let first = &hello[..hello.len().min(600)];
                out.tcp(
                    c,
                    s,
                    isn_c.wrapping_add(1),
                    isn_s.wrapping_add(1),
                    TcpFlags(0x18),
                    first,
                )?;
            }
            Kind::Fragment => {
                let src = Ipv4Addr::from(0x6440_0000 | (r & 0x003f_ffff));
                let dst = Ipv4Addr::from(0xc612_0000 | (rng.next_u32() & 0x0001_ffff));
                let body = vec![0u8; 2000];
                let dgram = packet::udp_datagram(src.into(), dst.into(), 4000, 4001, &body);
                let ident = rng.below(65_536) as u16;
                let frags = packet::ipv4_fragments(src, dst, 17, ident, &dgram, 1000);
                if let Some(first) = frags.into_iter().next() {
                    out.ip(first)?;
                }
            }
            Kind::Host => {
                // Distinct hosts 172.16.0.0 upwards (up to 1M of them).
                let host = Ipv4Addr::from(0xac10_0000 + host_no);
                host_no += 1;
                let name = format!("{}.avast.com", label(&mut rng, 6));
                out.udp(
                    (host, 40_000),
                    (RESOLVER, 53),
                    &DnsMessage::query(host_no as u16, &name, 1),
                )?;
            }
        }
    }
    if kaspersky_at >= kinds.len() {
        kaspersky(&mut out)?;
    }
    out.w.into_inner().flush()?;
    Ok(out.stats)
}

/// The Kaspersky client: a lookup, then a connection whose ClientHello spans
/// two segments.
fn kaspersky<W: Write>(out: &mut Out<W>) -> io::Result<()> {
    let c = (KASPERSKY_HOST, 50_007);
    let s = (KASPERSKY_SERVER, 443);
    out.udp(
        (KASPERSKY_HOST, 50_006),
        (RESOLVER, 53),
        &DnsMessage::query(77, KASPERSKY_NAME, 1),
    )?;
    let resp = DnsMessage::response(
        77,
        KASPERSKY_NAME,
        1,
        &[Answer::a(KASPERSKY_NAME, KASPERSKY_SERVER, 300)],
    );
    out.udp((RESOLVER, 53), (KASPERSKY_HOST, 50_006), &resp)?;
    let mut spec = ClientHelloSpec::browser(KASPERSKY_NAME);
    spec.target_len = Some(1800);
    let hello = tls::records(&tls::client_hello(&spec), 16384);
    let (isn_c, isn_s) = (1_000u32, 9_000u32);
    out.tcp(c, s, isn_c, 0, TcpFlags::SYN, &[])?;
    out.tcp(s, c, isn_s, isn_c + 1, TcpFlags(0x12), &[])?;
    out.tcp(c, s, isn_c + 1, isn_s + 1, TcpFlags::ACK, &[])?;
    let (a, b) = hello.split_at(hello.len().min(1200));
    out.tcp(c, s, isn_c + 1, isn_s + 1, TcpFlags(0x18), a)?;
    let next = isn_c + 1 + a.len() as u32;
    out.tcp(c, s, next, isn_s + 1, TcpFlags(0x18), b)?;
    out.tcp(s, c, isn_s + 1, next + b.len() as u32, TcpFlags::ACK, &[])?;
    Ok(())
}
