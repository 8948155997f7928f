//! Tunnels whose inner conversation is the one worth analysing: IP-in-IP,
//! GRE, VXLAN, Geneve and Teredo. A tunnel is opened only when its inner
//! packet decodes; otherwise the outer packet is kept as it is (a UDP flow on
//! port 4789 that is not VXLAN stays a UDP flow).

use super::error::{DecodeError, DecodeErrorKind, Layer};
use super::ip::{Ctx, by_version};
use super::link::{by_ethertype, nested_ethernet};
use super::{Decoded, MAX_DEPTH};
use crate::bytes::{be16, u8_at};

const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const TEREDO_PORT: u16 = 3544;

fn deeper(ctx: &Ctx) -> Option<Ctx> {
    (ctx.depth < MAX_DEPTH).then(|| Ctx {
        link: ctx.link,
        depth: ctx.depth + 1,
    })
}

/// Keeps an inner decode only when it found IP.
fn useful(d: Decoded<'_>) -> Option<Decoded<'_>> {
    matches!(d, Decoded::Packet(_) | Decoded::Fragment(_)).then_some(d)
}

/// IP protocols that carry tunnels: 4 (IPv4), 41 (IPv6), 47 (GRE).
pub(super) fn ip<'a>(ctx: &Ctx, proto: u8, p: &'a [u8]) -> Option<Decoded<'a>> {
    match proto {
        4 | 41 => {
            let Some(inner) = deeper(ctx) else {
                return Some(Decoded::Malformed(DecodeError::new(
                    Layer::Ipv4,
                    DecodeErrorKind::TooDeep,
                    0,
                )));
            };
            Some(by_version(&inner, p, 0))
        }
        47 => gre(ctx, p),
        _ => None,
    }
}

/// GRE (RFC 2784/2890): flags say which optional words follow.
fn gre<'a>(ctx: &Ctx, p: &'a [u8]) -> Option<Decoded<'a>> {
    let flags = be16(p, 0)?;
    let proto = be16(p, 2)?;
    let version = flags & 0x7;
    let mut len = 4;
    if flags & 0x8000 != 0 {
        len += 4; // checksum + reserved
    }
    if flags & 0x2000 != 0 {
        len += 4; // key
    }
    if flags & 0x1000 != 0 {
        len += 4; // sequence number
    }
    if version == 1 && flags & 0x0080 != 0 {
        len += 4; // enhanced GRE (PPTP) acknowledgment
    }
    let Some(body) = p.get(len..) else {
        return Some(Decoded::Malformed(DecodeError::short(
            Layer::Gre,
            0,
            len,
            p.len(),
        )));
    };
    let inner = deeper(ctx)?;
    match (version, proto) {
        // ERSPAN type II carries an 8-byte header before the Ethernet frame.
        (0, 0x88be) => useful(nested_ethernet(*ctx, body.get(8..)?, 0)),
        (0, _) => useful(by_ethertype(inner, proto, body, 0)),
        _ => None,
    }
}

/// UDP-borne tunnels, recognised by port and header shape.
pub(super) fn udp<'a>(ctx: &Ctx, sport: u16, dport: u16, p: &'a [u8]) -> Option<Decoded<'a>> {
    let either = |port| sport == port || dport == port;
    if either(VXLAN_PORT) && u8_at(p, 0)? & 0x08 != 0 {
        return useful(nested_ethernet(*ctx, p.get(8..)?, 0));
    }
    if either(GENEVE_PORT) && u8_at(p, 0)? >> 6 == 0 {
        let opt_len = usize::from(u8_at(p, 0)? & 0x3f) * 4;
        let proto = be16(p, 2)?;
        let body = p.get(8 + opt_len..)?;
        return useful(by_ethertype(deeper(ctx)?, proto, body, 0));
    }
    if either(TEREDO_PORT) {
        return teredo(ctx, p);
    }
    None
}

/// Teredo (RFC 4380): IPv6 in UDP, optionally preceded by authentication
/// (0x0001) and origin indication (0x0000) headers.
fn teredo<'a>(ctx: &Ctx, mut p: &'a [u8]) -> Option<Decoded<'a>> {
    if be16(p, 0)? == 0x0001 {
        let id_len = usize::from(u8_at(p, 2)?);
        let au_len = usize::from(u8_at(p, 3)?);
        p = p.get(4 + id_len + au_len + 9..)?;
    }
    if be16(p, 0)? == 0x0000 {
        p = p.get(8..)?;
    }
    if u8_at(p, 0)? >> 4 != 6 {
        return None;
    }
    useful(by_version(&deeper(ctx)?, p, 0))
}
