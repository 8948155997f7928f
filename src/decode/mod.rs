//! Decode: slices a link-layer frame into the layers phonehome needs (VLAN
//! tags, the innermost IPv4/IPv6 header, TCP or UDP) without copying a byte.
//!
//! Link types: Ethernet (with 802.1Q/802.1ad/QinQ tags, MPLS and PPPoE
//! sessions), Linux cooked capture v1 and v2, raw IPv4/IPv6, BSD and OpenBSD
//! loopback, and NFLOG. Tunnels are opened so that the inner conversation is
//! the one analysed: IP-in-IP, GRE (including transparent Ethernet bridging),
//! VXLAN (UDP 4789), Geneve (UDP 6081) and Teredo (UDP 3544), up to
//! [`MAX_DEPTH`] layers.
//!
//! Promises: [`decode`] never panics and never allocates; every length read
//! from the wire is checked against the bytes present. Frames cut short by the
//! snap length keep the layers that are complete ([`Packet::truncated`]), and
//! an IP fragment comes back as a [`Fragment`] for [`defrag`] to reassemble.

pub mod defrag;
mod error;
mod ip;
mod link;
mod tunnel;

pub use error::{DecodeError, DecodeErrorKind, Layer};

use std::net::IpAddr;

/// How many encapsulation layers (VLAN stacks excluded) are opened at most.
pub const MAX_DEPTH: usize = 4;

/// IP protocol numbers used here.
pub mod ipproto {
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
}

/// TCP header flag bits.
pub mod tcpflags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment, borrowed from the frame.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits ([`tcpflags`]).
    pub flags: u8,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// The payload length on the wire (larger than `payload.len()` when the
    /// frame was cut by the snap length).
    pub wire_len: u32,
}

/// A UDP datagram, borrowed from the frame.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
}

/// The transport layer of a packet.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(TcpSegment<'a>),
    /// UDP.
    Udp(UdpDatagram<'a>),
    /// Any other IP protocol (ICMP, ESP, ...): only addresses are known.
    Other(u8),
}

/// Link-layer facts about the sending host, when the link type has them:
/// the innermost 802.1Q VLAN id and the Ethernet source address, packed in
/// one word. It travels with every packet through the pipeline, and as a
/// struct of a 2-byte option and a 7-byte one it was copied in odd pieces
/// whose reloads stalled on the stores before them (measured: the largest
/// cost in a worker's batch loop).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo(u64);

impl LinkInfo {
    const MAC: u64 = (1 << 48) - 1;
    const MAC_SET: u64 = 1 << 63;
    const VLAN_SHIFT: u32 = 48;
    const VLAN_SET: u64 = 1 << 62;

    /// The innermost 802.1Q VLAN id.
    pub fn vlan(self) -> Option<u16> {
        (self.0 & Self::VLAN_SET != 0).then_some(((self.0 >> Self::VLAN_SHIFT) & 0x0fff) as u16)
    }

    /// The Ethernet source address.
    pub fn src_mac(self) -> Option<[u8; 6]> {
        let [_, _, a, b, c, d, e, f] = (self.0 & Self::MAC).to_be_bytes();
        (self.0 & Self::MAC_SET != 0).then_some([a, b, c, d, e, f])
    }

    /// These facts with VLAN id `id` (its low 12 bits).
    pub fn with_vlan(self, id: u16) -> Self {
        let vlan = u64::from(id & 0x0fff) << Self::VLAN_SHIFT;
        LinkInfo(self.0 & !(0x0fff << Self::VLAN_SHIFT) | vlan | Self::VLAN_SET)
    }

    /// These facts with source address `mac`.
    pub fn with_src_mac(self, mac: [u8; 6]) -> Self {
        let [a, b, c, d, e, f] = mac;
        let mac = u64::from_be_bytes([0, 0, a, b, c, d, e, f]);
        LinkInfo(self.0 & !Self::MAC | mac | Self::MAC_SET)
    }
}

impl std::fmt::Debug for LinkInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkInfo")
            .field("vlan", &self.vlan())
            .field("src_mac", &self.src_mac())
            .finish()
    }
}

/// A decoded IP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// VLAN and MAC of the frame.
    pub link: LinkInfo,
    /// Innermost source address.
    pub src: IpAddr,
    /// Innermost destination address.
    pub dst: IpAddr,
    /// The transport layer.
    pub transport: Transport<'a>,
    /// Whether some of the packet's bytes are missing from the capture.
    pub truncated: bool,
}

/// One fragment of an IPv4 or IPv6 datagram.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// VLAN and MAC of the frame.
    pub link: LinkInfo,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification (IPv4: 16 bits; IPv6: 32 bits).
    pub id: u32,
    /// The upper-layer protocol.
    pub proto: u8,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// Whether more fragments follow.
    pub more: bool,
    /// This fragment's data.
    pub payload: &'a [u8],
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// An IP packet with its transport layer.
    Packet(Packet<'a>),
    /// An IP fragment, to be reassembled.
    Fragment(Fragment<'a>),
    /// A well-formed frame that carries no IP (ARP, LLDP, STP, ...).
    NotIp,
    /// A link type this build does not decode.
    UnsupportedLink(u32),
    /// A frame whose headers are inconsistent.
    Malformed(DecodeError),
}

/// Decodes one frame of the given LINKTYPE.
pub fn decode(linktype: u32, frame: &[u8]) -> Decoded<'_> {
    link::decode_link(linktype, frame)
}

/// Decodes the upper layer of a reassembled datagram (see [`defrag`]).
pub fn decode_reassembled<'a>(
    link: LinkInfo,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
) -> Decoded<'a> {
    ip::decode_l4(
        &ip::Ctx { link, depth: 1 },
        src,
        dst,
        proto,
        payload,
        false,
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::LinkInfo;

    #[test]
    fn link_facts_pack_and_unpack_unchanged() {
        let none = LinkInfo::default();
        assert_eq!((none.vlan(), none.src_mac()), (None, None));
        for mac in [[0; 6], [0xff; 6], [2, 0, 10, 20, 0, 5]] {
            for vlan in [0, 1, 0x0fff] {
                let l = none.with_src_mac(mac).with_vlan(vlan);
                assert_eq!((l.vlan(), l.src_mac()), (Some(vlan), Some(mac)));
                // Set in the other order, and overwritten.
                let m = none.with_vlan(0x0abc).with_vlan(vlan).with_src_mac([9; 6]);
                assert_eq!(m.with_src_mac(mac), l);
            }
        }
        // A tag's priority bits are not part of the id.
        assert_eq!(none.with_vlan(0xe00a).vlan(), Some(0x00a));
    }
}
