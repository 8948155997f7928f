//! Link layers: Ethernet with VLAN/MPLS/PPPoE, Linux cooked v1/v2, loopback,
//! raw IP and NFLOG, down to the ethertype or IP version that follows.

use super::error::{DecodeError, DecodeErrorKind, Layer};
use super::ip::{self, Ctx};
use super::{Decoded, LinkInfo};
use crate::bytes::{be16, le16, u8_at};
use crate::capture::linktype;

/// Ethertypes.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const TEB: u16 = 0x6558;
}

/// At most this many VLAN tags or MPLS labels are skipped.
const MAX_TAGS: usize = 8;

/// NFLOG TLV type that holds the packet.
const NFULA_PAYLOAD: u16 = 9;

pub(super) fn decode_link(lt: u32, f: &[u8]) -> Decoded<'_> {
    let ctx = Ctx {
        link: LinkInfo::default(),
        depth: 0,
    };
    match lt {
        linktype::ETHERNET => ethernet(ctx, f, 0),
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_14 => ip::by_version(&ctx, f, 0),
        linktype::IPV4 | linktype::IPV6 => ip::by_version(&ctx, f, 0),
        linktype::LINUX_SLL => match be16(f, 14) {
            Some(proto) => by_ethertype(ctx, proto, f.get(16..).unwrap_or(&[]), 16),
            None => short(Layer::Link, 0, 16, f.len()),
        },
        linktype::LINUX_SLL2 => match (be16(f, 0), f.len() >= 20) {
            (Some(proto), true) => by_ethertype(ctx, proto, &f[20..], 20),
            _ => short(Layer::Link, 0, 20, f.len()),
        },
        linktype::NULL | linktype::LOOP => loopback(ctx, lt, f),
        linktype::NFLOG => nflog(ctx, f),
        other => Decoded::UnsupportedLink(other),
    }
}

fn short(layer: Layer, off: usize, need: usize, have: usize) -> Decoded<'static> {
    Decoded::Malformed(DecodeError::short(layer, off, need, have))
}

/// Ethernet II; frames with an 802.3 length instead of a type carry no IP.
pub(super) fn ethernet(mut ctx: Ctx, f: &[u8], off: usize) -> Decoded<'_> {
    let Some(etype) = be16(f, 12) else {
        return short(Layer::Link, off, 14, f.len());
    };
    if ctx.link.src_mac().is_none()
        && let Some(&mac) = f.get(6..12).and_then(|m| m.first_chunk::<6>())
    {
        ctx.link = ctx.link.with_src_mac(mac);
    }
    by_ethertype(ctx, etype, &f[14..], off + 14)
}

/// Dispatches on an ethertype, skipping VLAN tags, MPLS labels and PPPoE.
pub(super) fn by_ethertype(
    mut ctx: Ctx,
    mut etype: u16,
    mut p: &[u8],
    mut off: usize,
) -> Decoded<'_> {
    let mut tags = 0;
    loop {
        match etype {
            ethertype::IPV4 | ethertype::IPV6 => return ip::by_version(&ctx, p, off),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                tags += 1;
                let (Some(tci), Some(next)) = (be16(p, 0), be16(p, 2)) else {
                    return short(Layer::Vlan, off, 4, p.len());
                };
                if tags > MAX_TAGS {
                    return Decoded::Malformed(DecodeError::new(
                        Layer::Vlan,
                        DecodeErrorKind::TooDeep,
                        off,
                    ));
                }
                ctx.link = ctx.link.with_vlan(tci);
                etype = next;
                p = &p[4..];
                off += 4;
            }
            ethertype::MPLS | ethertype::MPLS_MULTICAST => return mpls(ctx, p, off),
            ethertype::PPPOE_SESSION => {
                // version/type, code, session id, length, then the PPP protocol.
                let Some(proto) = be16(p, 6) else {
                    return short(Layer::Pppoe, off, 8, p.len());
                };
                let inner = &p[8..];
                return match proto {
                    0x0021 => ip::by_version(&ctx, inner, off + 8),
                    0x0057 => ip::by_version(&ctx, inner, off + 8),
                    _ => Decoded::NotIp,
                };
            }
            ethertype::TEB => return nested_ethernet(ctx, p, off),
            _ => return Decoded::NotIp,
        }
    }
}

/// Ethernet inside a tunnel (GRE TEB, VXLAN, Geneve).
pub(super) fn nested_ethernet(mut ctx: Ctx, p: &[u8], off: usize) -> Decoded<'_> {
    ctx.depth += 1;
    if ctx.depth > super::MAX_DEPTH {
        return Decoded::Malformed(DecodeError::new(Layer::Link, DecodeErrorKind::TooDeep, off));
    }
    ethernet(ctx, p, off)
}

/// An MPLS label stack, then IPv4 or IPv6 guessed from the version nibble
/// (what every decoder does: MPLS does not say what it carries).
fn mpls(ctx: Ctx, p: &[u8], off: usize) -> Decoded<'_> {
    let mut at = 0;
    for _ in 0..MAX_TAGS {
        let Some(b2) = u8_at(p, at + 2) else {
            return short(Layer::Mpls, off + at, 4, p.len().saturating_sub(at));
        };
        at += 4;
        if b2 & 0x01 != 0 {
            let inner = p.get(at..).unwrap_or(&[]);
            return match u8_at(inner, 0).map(|b| b >> 4) {
                Some(4) | Some(6) => ip::by_version(&ctx, inner, off + at),
                _ => Decoded::NotIp,
            };
        }
    }
    Decoded::Malformed(DecodeError::new(Layer::Mpls, DecodeErrorKind::TooDeep, off))
}

/// BSD loopback: a 4-byte address family, in host order (NULL) or network
/// order (LOOP). IPv6 has several family values across BSDs.
fn loopback(ctx: Ctx, lt: u32, f: &[u8]) -> Decoded<'_> {
    let Some(raw) = f.get(..4) else {
        return short(Layer::Link, 0, 4, f.len());
    };
    let be = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let le = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let family = if lt == linktype::LOOP || be < 256 {
        be
    } else {
        le
    };
    match family {
        2 | 24 | 28 | 30 => ip::by_version(&ctx, &f[4..], 4),
        // Some writers put other values here (Wireshark shows such files
        // as IP too): trust the version nibble when it says IP.
        _ => match u8_at(f, 4).map(|b| b >> 4) {
            Some(4) | Some(6) => ip::by_version(&ctx, &f[4..], 4),
            _ => Decoded::NotIp,
        },
    }
}

/// NFLOG: a 4-byte header, then TLVs in host (little-endian) byte order; the
/// packet is in the NFULA_PAYLOAD attribute.
fn nflog(ctx: Ctx, f: &[u8]) -> Decoded<'_> {
    if f.len() < 4 {
        return short(Layer::Link, 0, 4, f.len());
    }
    let mut at = 4;
    while let (Some(len), Some(kind)) = (le16(f, at), le16(f, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            return Decoded::Malformed(DecodeError::new(
                Layer::Link,
                DecodeErrorKind::BadLength,
                at,
            ));
        }
        if kind == NFULA_PAYLOAD {
            let end = (at + len).min(f.len());
            return ip::by_version(&ctx, f.get(at + 4..end).unwrap_or(&[]), at + 4);
        }
        at += len.div_ceil(4) * 4;
    }
    Decoded::NotIp
}
