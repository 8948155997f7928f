//! IPv4 and IPv6 (with extension headers and fragments), then TCP and UDP,
//! handing tunnelled payloads to [`super::tunnel`].

use super::error::{DecodeError, DecodeErrorKind, Layer};
use super::{
    Decoded, Fragment, LinkInfo, Packet, TcpSegment, Transport, UdpDatagram, ipproto, tunnel,
};
use crate::bytes::{be16, be32, u8_at};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Decoding context carried down the layers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) link: LinkInfo,
    /// Encapsulation layers opened so far.
    pub(crate) depth: usize,
}

/// At most this many IPv6 extension headers are walked.
const MAX_EXT_HEADERS: usize = 16;

/// Dispatches on the IP version nibble.
pub(crate) fn by_version<'a>(ctx: &Ctx, p: &'a [u8], off: usize) -> Decoded<'a> {
    match u8_at(p, 0).map(|b| b >> 4) {
        Some(4) => ipv4(ctx, p, off),
        Some(6) => ipv6(ctx, p, off),
        Some(_) => Decoded::Malformed(DecodeError::new(
            Layer::Ipv4,
            DecodeErrorKind::BadVersion,
            off,
        )),
        None => Decoded::Malformed(DecodeError::short(Layer::Ipv4, off, 20, 0)),
    }
}

/// Trims `p` to the length its header claims, noting when bytes are missing.
/// A claimed length of zero (TSO/GRO captures) means "whatever is present".
fn claimed(p: &[u8], total: usize) -> (&[u8], bool) {
    if total == 0 {
        (p, false)
    } else if total <= p.len() {
        (&p[..total], false)
    } else {
        (p, true)
    }
}

fn ipv4<'a>(ctx: &Ctx, p: &'a [u8], off: usize) -> Decoded<'a> {
    if p.len() < 20 {
        return Decoded::Malformed(DecodeError::short(Layer::Ipv4, off, 20, p.len()));
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(be16(p, 2).unwrap_or(0));
    if ihl < 20 || (total != 0 && total < ihl) {
        return Decoded::Malformed(DecodeError::new(
            Layer::Ipv4,
            DecodeErrorKind::BadLength,
            off,
        ));
    }
    if p.len() < ihl {
        return Decoded::Malformed(DecodeError::short(Layer::Ipv4, off, ihl, p.len()));
    }
    let (p, truncated) = claimed(p, total);
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    let proto = p[9];
    let frag = be16(p, 6).unwrap_or(0);
    let more = frag & 0x2000 != 0;
    let frag_offset = u32::from(frag & 0x1fff) * 8;
    let payload = &p[ihl..];
    if more || frag_offset != 0 {
        return Decoded::Fragment(Fragment {
            link: ctx.link,
            src,
            dst,
            id: u32::from(be16(p, 4).unwrap_or(0)),
            proto,
            offset: frag_offset,
            more,
            payload,
        });
    }
    let wire_payload = if total == 0 {
        payload.len()
    } else {
        total - ihl
    };
    decode_l4(
        ctx,
        src,
        dst,
        proto,
        payload,
        truncated,
        wire_payload.saturating_sub(payload.len()),
    )
}

fn ipv6<'a>(ctx: &Ctx, p: &'a [u8], off: usize) -> Decoded<'a> {
    if p.len() < 40 {
        return Decoded::Malformed(DecodeError::short(Layer::Ipv6, off, 40, p.len()));
    }
    let plen = usize::from(be16(p, 4).unwrap_or(0));
    let mut s = [0u8; 16];
    s.copy_from_slice(&p[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&p[24..40]);
    let (src, dst) = (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)));
    let (body, truncated) = claimed(&p[40..], plen);
    let missing = if plen == 0 {
        0
    } else {
        plen.saturating_sub(body.len())
    };
    let mut next = p[6];
    let mut at = 0usize;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let (Some(nh), Some(len)) = (u8_at(body, at), u8_at(body, at + 1)) else {
                    return Decoded::Malformed(DecodeError::short(
                        Layer::Ipv6,
                        off + 40 + at,
                        2,
                        body.len().saturating_sub(at),
                    ));
                };
                next = nh;
                at += (usize::from(len) + 1) * 8;
            }
            // Authentication header: length in 4-byte units, minus 2.
            51 => {
                let (Some(nh), Some(len)) = (u8_at(body, at), u8_at(body, at + 1)) else {
                    return Decoded::Malformed(DecodeError::short(
                        Layer::Ipv6,
                        off + 40 + at,
                        2,
                        body.len().saturating_sub(at),
                    ));
                };
                next = nh;
                at += (usize::from(len) + 2) * 4;
            }
            44 => {
                let (Some(nh), Some(fo), Some(id)) =
                    (u8_at(body, at), be16(body, at + 2), be32(body, at + 4))
                else {
                    return Decoded::Malformed(DecodeError::short(
                        Layer::Ipv6,
                        off + 40 + at,
                        8,
                        body.len().saturating_sub(at),
                    ));
                };
                let payload = body.get(at + 8..).unwrap_or(&[]);
                let offset = u32::from(fo & 0xfff8);
                let more = fo & 1 != 0;
                if !more && offset == 0 {
                    // An "atomic" fragment: the whole datagram in one piece.
                    next = nh;
                    at += 8;
                    continue;
                }
                return Decoded::Fragment(Fragment {
                    link: ctx.link,
                    src,
                    dst,
                    id,
                    proto: nh,
                    offset,
                    more,
                    payload,
                });
            }
            _ => {
                let Some(payload) = body.get(at..) else {
                    return Decoded::Malformed(DecodeError::short(
                        Layer::Ipv6,
                        off + 40,
                        at,
                        body.len(),
                    ));
                };
                return decode_l4(ctx, src, dst, next, payload, truncated, missing);
            }
        }
    }
    Decoded::Malformed(DecodeError::new(
        Layer::Ipv6,
        DecodeErrorKind::TooDeep,
        off + 40,
    ))
}

/// Decodes the transport layer (or a tunnel) of an IP payload. `missing` is
/// how many payload bytes the IP header claims beyond those present.
pub(crate) fn decode_l4<'a>(
    ctx: &Ctx,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
    truncated: bool,
    missing: usize,
) -> Decoded<'a> {
    let packet = |transport| {
        Decoded::Packet(Packet {
            link: ctx.link,
            src,
            dst,
            transport,
            truncated,
        })
    };
    match proto {
        ipproto::TCP => {
            let Some(flags_word) = be16(payload, 12) else {
                return Decoded::Malformed(DecodeError::short(Layer::Tcp, 0, 20, payload.len()));
            };
            let hl = usize::from(flags_word >> 12) * 4;
            if hl < 20 {
                return Decoded::Malformed(DecodeError::new(
                    Layer::Tcp,
                    DecodeErrorKind::BadLength,
                    0,
                ));
            }
            let Some(data) = payload.get(hl..) else {
                return Decoded::Malformed(DecodeError::short(Layer::Tcp, 0, hl, payload.len()));
            };
            packet(Transport::Tcp(TcpSegment {
                sport: be16(payload, 0).unwrap_or(0),
                dport: be16(payload, 2).unwrap_or(0),
                seq: be32(payload, 4).unwrap_or(0),
                ack: be32(payload, 8).unwrap_or(0),
                flags: (flags_word & 0xff) as u8,
                payload: data,
                wire_len: u32::try_from(data.len() + missing).unwrap_or(u32::MAX),
            }))
        }
        ipproto::UDP => {
            let (Some(sport), Some(dport), Some(len)) =
                (be16(payload, 0), be16(payload, 2), be16(payload, 4))
            else {
                return Decoded::Malformed(DecodeError::short(Layer::Udp, 0, 8, payload.len()));
            };
            let len = usize::from(len);
            if len != 0 && len < 8 {
                return Decoded::Malformed(DecodeError::new(
                    Layer::Udp,
                    DecodeErrorKind::BadLength,
                    0,
                ));
            }
            let (body, cut) = claimed(payload, len);
            // A zero length (jumbogram) or one beyond the capture leaves the
            // whole payload, which may still be shorter than the header.
            let Some(data) = body.get(8..) else {
                return Decoded::Malformed(DecodeError::short(Layer::Udp, 0, 8, payload.len()));
            };
            if let Some(inner) = tunnel::udp(ctx, sport, dport, data) {
                return inner;
            }
            let udp = UdpDatagram {
                sport,
                dport,
                payload: data,
            };
            Decoded::Packet(Packet {
                link: ctx.link,
                src,
                dst,
                transport: Transport::Udp(udp),
                truncated: truncated || cut,
            })
        }
        _ => match tunnel::ip(ctx, proto, payload) {
            Some(inner) => inner,
            None => packet(Transport::Other(proto)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::linktype;

    /// Found by the `decode` fuzz target: a UDP header cut after 6 or 7
    /// bytes whose length field is 0 (jumbogram) or beyond the capture.
    #[test]
    fn a_udp_header_shorter_than_8_bytes_is_malformed_whatever_its_length() {
        for (udp_len, cut) in [(0u16, 6usize), (0, 7), (200, 6), (200, 7)] {
            let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
            p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            let total = (20 + cut) as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            let mut udp = vec![0x9c, 0x40, 0, 53];
            udp.extend_from_slice(&udp_len.to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&udp[..cut]);
            let d = crate::decode::decode(linktype::RAW, &p);
            assert!(
                matches!(d, Decoded::Malformed(e) if e.layer == Layer::Udp),
                "length {udp_len}, {cut} bytes: {d:?}"
            );
        }
    }
}
