//! Byte-exact frame builders: link layers (Ethernet with 802.1Q/QinQ tags,
//! Linux SLL/SLL2, BSD loopback), IPv4 (with fragmentation), IPv6 (with
//! extension headers and fragmentation), and TCP/UDP with checksums over the
//! correct pseudo-header. Every builder returns a fresh `Vec<u8>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{BitOr, BitOrAssign};

use crate::pcapfile::Endian;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// TPID of an 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad service (outer QinQ) tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 Fragment extension header.
pub const IPPROTO_FRAGMENT: u8 = 44;
/// BSD loopback address family of IPv4.
pub const AF_INET: u32 = 2;
/// BSD loopback IPv6 family on NetBSD/OpenBSD.
pub const AF_INET6_BSD: u32 = 24;
/// BSD loopback IPv6 family on FreeBSD.
pub const AF_INET6_FREEBSD: u32 = 28;
/// BSD loopback IPv6 family on macOS.
pub const AF_INET6_DARWIN: u32 = 30;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const TTL: u8 = 64;
const TCP_WINDOW: u16 = 64240;
const TCP_MSS: u16 = 1460;

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A fixed, locally administered MAC derived from an IP address:
    /// `02:00` followed by the address's last four bytes.
    pub fn from_ip(ip: IpAddr) -> Mac {
        let tail: [u8; 4] = match ip {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                [o[12], o[13], o[14], o[15]]
            }
        };
        Mac([0x02, 0x00, tail[0], tail[1], tail[2], tail[3]])
    }
}

/// TCP header flags; combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);

    /// True if every flag of `other` is set in `self`.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// Adds `data` as big-endian 16-bit words (odd byte padded) to `sum`.
fn sum_words(data: &[u8], mut sum: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds carries and returns the ones' complement.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// RFC 1071 Internet checksum of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum_words(data, 0))
}

/// Maps an IPv4 address into IPv6 (`::ffff:a.b.c.d`); IPv6 is unchanged.
fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// TCP/UDP checksum of `segment` (checksum field zeroed by the caller) over
/// the IPv4 pseudo-header, or the IPv6 one when either address is IPv6 (an
/// IPv4 address is then used in its IPv4-mapped form).
pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend([0, proto]);
            pseudo.extend((segment.len() as u16).to_be_bytes());
        }
        _ => {
            pseudo.extend(to_v6(src).octets());
            pseudo.extend(to_v6(dst).octets());
            pseudo.extend((segment.len() as u32).to_be_bytes());
            pseudo.extend([0, 0, 0, proto]);
        }
    }
    fold(sum_words(segment, sum_words(&pseudo, 0)))
}

/// Builds an IPv4 packet: IHL 5, TTL 64, no DF, correct header checksum.
///
/// # Panics
/// If the packet would exceed 65535 bytes (`payload` over 65515 bytes).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ident: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_with_frag(src, dst, proto, ident, 0, payload)
}

fn ipv4_with_frag(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ident: u16,
    flags_frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total =
        u16::try_from(IPV4_HEADER_LEN + payload.len()).expect("IPv4 packet exceeds 65535 bytes");
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend([0x45, 0]);
    p.extend(total.to_be_bytes());
    p.extend(ident.to_be_bytes());
    p.extend(flags_frag.to_be_bytes());
    p.extend([TTL, proto, 0, 0]);
    p.extend(src.octets());
    p.extend(dst.octets());
    let csum = internet_checksum(&p);
    p[10..12].copy_from_slice(&csum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Fragment payload size rounded down to a multiple of 8 (at least 8).
fn fragment_chunk(frag_payload_size: usize) -> usize {
    (frag_payload_size / 8 * 8).max(8)
}

/// Splits `payload` (a whole L4 datagram, checksum already computed) into
/// IPv4 fragments carrying `frag_payload_size` bytes each (rounded down to a
/// multiple of 8, minimum 8); MF is set on all but the last. An empty
/// payload yields one unfragmented packet.
///
/// # Panics
/// If `payload` exceeds 65515 bytes.
pub fn ipv4_fragments(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ident: u16,
    payload: &[u8],
    frag_payload_size: usize,
) -> Vec<Vec<u8>> {
    assert!(payload.len() <= 65515, "IPv4 datagram exceeds 65535 bytes");
    if payload.is_empty() {
        return vec![ipv4(src, dst, proto, ident, payload)];
    }
    let chunk = fragment_chunk(frag_payload_size);
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let offset = i * chunk;
            let more = offset + part.len() < payload.len();
            let flags_frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            ipv4_with_frag(src, dst, proto, ident, flags_frag, part)
        })
        .collect()
}

/// Builds an IPv6 packet (traffic class 0, flow label 0, hop limit 64).
///
/// # Panics
/// If `payload` exceeds 65535 bytes.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("IPv6 payload exceeds 65535 bytes");
    let mut p = Vec::with_capacity(IPV6_HEADER_LEN + payload.len());
    p.extend([0x60, 0, 0, 0]);
    p.extend(len.to_be_bytes());
    p.extend([next_header, TTL]);
    p.extend(src.octets());
    p.extend(dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 extension header for [`ipv6_with_ext`]. Option bytes are raw
/// TLVs; the header is padded with Pad1/PadN to a multiple of 8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Ext {
    /// Hop-by-Hop Options header (next-header value 0).
    HopByHop(Vec<u8>),
    /// Destination Options header (60).
    DestOpts(Vec<u8>),
    /// Routing header (43), type 0 with Segments Left 0, listing
    /// `addresses` (so the upper-layer checksum still uses the IPv6 dst).
    Routing {
        /// Addresses carried in the header.
        addresses: Vec<Ipv6Addr>,
    },
}

impl Ipv6Ext {
    /// The next-header value identifying this extension.
    pub fn protocol(&self) -> u8 {
        match self {
            Ipv6Ext::HopByHop(_) => 0,
            Ipv6Ext::DestOpts(_) => 60,
            Ipv6Ext::Routing { .. } => 43,
        }
    }

    /// Encodes this header with the given next-header value.
    ///
    /// # Panics
    /// If the encoded header would exceed 2048 bytes.
    pub fn encode(&self, next: u8) -> Vec<u8> {
        let mut h = vec![next, 0];
        match self {
            Ipv6Ext::HopByHop(opts) | Ipv6Ext::DestOpts(opts) => {
                h.extend_from_slice(opts);
                pad_options(&mut h);
            }
            Ipv6Ext::Routing { addresses } => {
                h.extend([0, 0, 0, 0, 0, 0]);
                addresses.iter().for_each(|a| h.extend(a.octets()));
            }
        }
        h[1] = u8::try_from(h.len() / 8 - 1).expect("IPv6 extension header exceeds 2048 bytes");
        h
    }
}

/// Pads an options header to a multiple of 8 with Pad1 or PadN.
fn pad_options(h: &mut Vec<u8>) {
    match (8 - h.len() % 8) % 8 {
        0 => {}
        1 => h.push(0),
        n => {
            h.extend([1, (n - 2) as u8]);
            h.extend(std::iter::repeat_n(0, n - 2));
        }
    }
}

/// Builds an IPv6 packet whose payload follows the extension-header chain
/// `ext` (in order), ending in `upper_proto`.
///
/// # Panics
/// If the IPv6 payload exceeds 65535 bytes or a header exceeds 2048 bytes.
pub fn ipv6_with_ext(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ext: &[Ipv6Ext],
    upper_proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(upper_proto, Ipv6Ext::protocol);
        body.extend(e.encode(next));
    }
    body.extend_from_slice(payload);
    let first = ext.first().map_or(upper_proto, Ipv6Ext::protocol);
    ipv6(src, dst, first, &body)
}

/// Splits `payload` (a whole L4 datagram) into IPv6 fragments, each with a
/// Fragment header (44) carrying `ident`; sizes as in [`ipv4_fragments`].
///
/// # Panics
/// If `payload` exceeds 65527 bytes.
pub fn ipv6_fragments(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    upper_proto: u8,
    ident: u32,
    payload: &[u8],
    frag_payload_size: usize,
) -> Vec<Vec<u8>> {
    assert!(payload.len() <= 65527, "IPv6 datagram exceeds 65535 bytes");
    let chunk = fragment_chunk(frag_payload_size);
    let parts: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(chunk).collect()
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let offset = i * chunk;
            let more = offset + part.len() < payload.len();
            let mut body = vec![upper_proto, 0];
            body.extend((offset as u16 | u16::from(more)).to_be_bytes());
            body.extend(ident.to_be_bytes());
            body.extend_from_slice(part);
            ipv6(src, dst, IPPROTO_FRAGMENT, &body)
        })
        .collect()
}

/// Builds a TCP segment (20-byte header, plus an MSS option on SYN; window
/// 64240) with its checksum over the pseudo-header of `src`/`dst`.
///
/// # Panics
/// If the segment exceeds 65535 bytes.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    let mss = TCP_MSS.to_be_bytes();
    let opts: &[u8] = if flags.contains(TcpFlags::SYN) {
        &[2, 4, mss[0], mss[1]]
    } else {
        &[]
    };
    let header_len = 20 + opts.len();
    assert!(
        header_len + payload.len() <= 65535,
        "TCP segment exceeds 65535 bytes"
    );
    let mut s = Vec::with_capacity(header_len + payload.len());
    s.extend(sport.to_be_bytes());
    s.extend(dport.to_be_bytes());
    s.extend(seq.to_be_bytes());
    s.extend(ack.to_be_bytes());
    s.extend([((header_len / 4) as u8) << 4, flags.0]);
    s.extend(TCP_WINDOW.to_be_bytes());
    s.extend([0, 0, 0, 0]);
    s.extend_from_slice(opts);
    s.extend_from_slice(payload);
    let csum = l4_checksum(src, dst, IPPROTO_TCP, &s);
    s[16..18].copy_from_slice(&csum.to_be_bytes());
    s
}

/// Builds a UDP datagram with its checksum (0 is sent as 0xffff).
///
/// # Panics
/// If the datagram exceeds 65535 bytes.
pub fn udp_datagram(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("UDP datagram exceeds 65535 bytes");
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend(sport.to_be_bytes());
    d.extend(dport.to_be_bytes());
    d.extend(len.to_be_bytes());
    d.extend([0, 0]);
    d.extend_from_slice(payload);
    let csum = match l4_checksum(src, dst, IPPROTO_UDP, &d) {
        0 => 0xffff,
        c => c,
    };
    d[6..8].copy_from_slice(&csum.to_be_bytes());
    d
}

/// Wraps `l4` in IPv4 when both addresses are IPv4, else IPv6 (mapping an
/// IPv4 address to `::ffff:a.b.c.d`). The IPv4 identification is derived
/// deterministically from the payload.
///
/// # Panics
/// If the packet would exceed the IP length limits.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, proto, internet_checksum(l4), l4),
        _ => ipv6(to_v6(src), to_v6(dst), proto, l4),
    }
}

/// Builds an Ethernet II frame (destination first on the wire). `vlans`:
/// none, one 802.1Q tag, or QinQ (outer 0x88a8, then 0x8100 tags). Only the
/// low 12 bits of each id are used. Frames are not padded to 60 bytes.
pub fn ethernet(src: Mac, dst: Mac, vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend(dst.0);
    f.extend(src.0);
    for (i, vid) in vlans.iter().enumerate() {
        let tpid = if i == 0 && vlans.len() > 1 {
            TPID_8021AD
        } else {
            TPID_8021Q
        };
        f.extend(tpid.to_be_bytes());
        f.extend((vid & 0x0fff).to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const FAKE_SLL_ADDR: [u8; 8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0, 0];

/// Linux cooked capture v1 header (16 bytes, packet type 4 "outgoing",
/// ARPHRD_ETHER, a fixed 6-byte address) followed by `payload`.
pub fn sll(payload: &[u8], protocol: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(16 + payload.len());
    f.extend([0, 4, 0, 1, 0, 6]);
    f.extend(FAKE_SLL_ADDR);
    f.extend(protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked capture v2 header (20 bytes: protocol, reserved, interface
/// index 1, ARPHRD_ETHER, packet type 4, address) followed by `payload`.
pub fn sll2(payload: &[u8], protocol: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(20 + payload.len());
    f.extend(protocol.to_be_bytes());
    f.extend([0, 0, 0, 0, 0, 1, 0, 1, 4, 6]);
    f.extend(FAKE_SLL_ADDR);
    f.extend_from_slice(payload);
    f
}

/// BSD loopback frame: 4-byte address family `af` in byte order `endian`
/// (see [`AF_INET`], [`AF_INET6_BSD`] etc.), then `payload`.
pub fn null_loopback(payload: &[u8], af: u32, endian: Endian) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + payload.len());
    f.extend(endian.u32(af));
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent checksum: byte-pair loop with end-around carry per step.
    fn reference_checksum(parts: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = parts.concat();
        let mut sum: u32 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let hi = u32::from(bytes[i]) << 8;
            let lo = bytes.get(i + 1).copied().map_or(0, u32::from);
            sum += hi | lo;
            sum = (sum & 0xffff) + (sum >> 16);
            i += 2;
        }
        !(sum as u16)
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 5);
    const B: Ipv4Addr = Ipv4Addr::new(93, 159, 228, 2);

    #[test]
    fn ipv4_header_known_vector() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0xb861);
        let p = ipv4(A, B, IPPROTO_UDP, 7, b"xyz");
        assert_eq!(reference_checksum(&[&p[..20]]), 0);
        assert_eq!((p.len(), &p[2..4], p[8]), (23, &[0u8, 23][..], 64));
    }

    #[test]
    fn tcp_udp_checksums_v4_and_v6() {
        let (s, d) = (IpAddr::V4(A), IpAddr::V4(B));
        let seg = tcp_segment(
            s,
            d,
            49700,
            443,
            1,
            2,
            TcpFlags::ACK | TcpFlags::PSH,
            b"hello",
        );
        let pseudo4 = [&A.octets()[..], &B.octets(), &[0, 6, 0, 25]].concat();
        assert_eq!(reference_checksum(&[&pseudo4, &seg]), 0);
        assert_eq!((seg[12], seg[13]), (0x50, 0x18));

        let (s6, d6): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:20::15".parse().unwrap(),
            "2001:db8:ee::10".parse().unwrap(),
        );
        let udp = udp_datagram(s6.into(), d6.into(), 5353, 53, b"abc");
        let pseudo6 = [&s6.octets()[..], &d6.octets(), &[0, 0, 0, 11, 0, 0, 0, 17]].concat();
        assert_eq!(reference_checksum(&[&pseudo6, &udp]), 0);
        let syn = tcp_segment(s6.into(), d6.into(), 1, 2, 0, 0, TcpFlags::SYN, &[]);
        assert_eq!((syn.len(), syn[12]), (24, 0x60));
        let pseudo6 = [&s6.octets()[..], &d6.octets(), &[0, 0, 0, 24, 0, 0, 0, 6]].concat();
        assert_eq!(reference_checksum(&[&pseudo6, &syn]), 0);
    }

    #[test]
    fn ipv4_fragmentation() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let frags = ipv4_fragments(A, B, IPPROTO_UDP, 0x1234, &payload, 403);
        assert_eq!(frags.len(), 3);
        let fields: Vec<(u16, usize)> = frags
            .iter()
            .map(|f| (u16::from_be_bytes([f[6], f[7]]), f.len() - 20))
            .collect();
        assert_eq!(fields, [(0x2000, 400), (0x2000 | 50, 400), (100, 200)]);
        assert!(frags.iter().all(|f| reference_checksum(&[&f[..20]]) == 0));
        let joined: Vec<u8> = frags.iter().flat_map(|f| f[20..].to_vec()).collect();
        assert_eq!(joined, payload);
        assert_eq!(ipv4_fragments(A, B, 17, 1, &[], 0).len(), 1);
    }

    #[test]
    fn ipv6_extensions_and_fragments() {
        let (s, d) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        let ext = [
            Ipv6Ext::HopByHop(vec![5, 2, 0, 0]),
            Ipv6Ext::DestOpts(vec![]),
            Ipv6Ext::Routing { addresses: vec![s] },
        ];
        let p = ipv6_with_ext(s, d, &ext, IPPROTO_UDP, b"x");
        assert_eq!(p[6], 0);
        assert_eq!(&p[40..48], &[60, 0, 5, 2, 0, 0, 1, 0]);
        assert_eq!(&p[48..56], &[43, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(&p[56..60], &[17, 2, 0, 0]);
        assert_eq!((p.len(), u16::from_be_bytes([p[4], p[5]])), (81, 41));
        assert_eq!(Ipv6Ext::DestOpts(vec![1, 3, 0, 0, 0]).encode(6)[7], 0);

        let frags = ipv6_fragments(s, d, IPPROTO_UDP, 0xdead_beef, &[7; 20], 8);
        assert_eq!(frags.len(), 3);
        assert_eq!(&frags[1][40..48], &[17, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&frags[2][42..44], &[0, 16]);
        assert_eq!(frags[2].len(), 40 + 8 + 4);
    }

    #[test]
    fn link_layers() {
        let (m1, m2) = (Mac([1; 6]), Mac([2; 6]));
        assert_eq!(
            ethernet(m1, m2, &[], 0x0800, &[9]),
            [[2; 6], [1; 6]]
                .concat()
                .into_iter()
                .chain([8, 0, 9])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            &ethernet(m1, m2, &[120], 0x86dd, &[])[12..18],
            &[0x81, 0, 0, 120, 0x86, 0xdd]
        );
        assert_eq!(
            &ethernet(m1, m2, &[0x1064, 7], 0x0800, &[])[12..22],
            &[0x88, 0xa8, 0, 0x64, 0x81, 0, 0, 7, 8, 0]
        );
        let s = sll(&[1], 0x0800);
        assert_eq!(
            (s.len(), &s[..2], &s[14..16]),
            (17, &[0u8, 4][..], &[8u8, 0][..])
        );
        let s = sll2(&[1], 0x86dd);
        assert_eq!((s.len(), &s[..2], s[10]), (21, &[0x86u8, 0xdd][..], 4));
        assert_eq!(
            null_loopback(&[], AF_INET6_DARWIN, Endian::Big),
            [0, 0, 0, 30]
        );
        assert_eq!(null_loopback(&[], AF_INET, Endian::Little), [2, 0, 0, 0]);
        assert_eq!(Mac::from_ip(IpAddr::V4(A)).0, [2, 0, 10, 20, 0, 5]);
    }

    #[test]
    fn ip_packet_chooses_family() {
        let six: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_packet(A.into(), B.into(), 17, &[0; 8])[0], 0x45);
        assert_eq!(ip_packet(A.into(), six, 17, &[0; 8])[0], 0x60);
        assert!(TcpFlags(0x12).contains(TcpFlags::SYN | TcpFlags::ACK));
    }
}
