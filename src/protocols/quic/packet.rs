//! QUIC long-header packets (RFC 9000 §17.2): header parsing, removal of
//! header protection and AEAD decryption of client Initial packets
//! (RFC 9001 §5.3–5.4), and the frames of a decrypted Initial payload.
//!
//! A datagram may hold several coalesced packets (RFC 9000 §12.2); each
//! long header's Length field says where the next one starts. Nothing here
//! indexes past the end of its input: lengths are checked once in
//! [`parse_long`], and the decryption works on a copy of the packet in a
//! caller-owned buffer.

use super::QuicError;
use super::keys::{InitialKeys, PacketType, Version};
use crate::bytes::Cursor;
use ring::aead::{Aad, Nonce};

/// Largest connection ID of a known version (RFC 9000 §17.2).
pub const MAX_CID: usize = 20;
/// AEAD tag length of AES-128-GCM.
const TAG_LEN: usize = 16;
/// Header-protection sample length (RFC 9001 §5.4.2).
const SAMPLE_LEN: usize = 16;

/// A parsed long header, borrowing from the datagram.
#[derive(Debug, Clone, Copy)]
pub struct LongHeader<'a> {
    /// The version.
    pub version: Version,
    /// The packet type.
    pub ptype: PacketType,
    /// Destination Connection ID.
    pub dcid: &'a [u8],
    /// Source Connection ID.
    pub scid: &'a [u8],
    /// Initial token (empty for other types).
    pub token: &'a [u8],
    /// Offset of the (protected) packet number.
    pub pn_offset: usize,
    /// Length of the whole packet: the next coalesced packet starts here.
    pub len: usize,
}

/// Whether a UDP payload can start with a decryptable Initial packet: the
/// long-header form bit and a known version. This is the hot-path filter;
/// it reads five bytes.
#[inline]
pub fn may_be_initial(payload: &[u8]) -> bool {
    match payload {
        [first, a, b, c, d, ..] if first & 0x80 != 0 => {
            let v = Version(u32::from_be_bytes([*a, *b, *c, *d]));
            v.is_known() && v.packet_type(*first) == PacketType::Initial
        }
        _ => false,
    }
}

/// Parses the long header at the start of `buf` (one packet of a datagram).
pub fn parse_long(buf: &[u8]) -> Result<LongHeader<'_>, QuicError> {
    let mut c = Cursor::new(buf);
    let first = c.u8().ok_or(QuicError::Truncated)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotLongHeader);
    }
    let version = Version(c.u32().ok_or(QuicError::Truncated)?);
    if version == Version::NEGOTIATION {
        return Err(QuicError::VersionNegotiation);
    }
    if !version.is_known() {
        return Err(QuicError::UnknownVersion(version.0));
    }
    let dcid = c.vec8().ok_or(QuicError::Truncated)?;
    let scid = c.vec8().ok_or(QuicError::Truncated)?;
    if dcid.len() > MAX_CID || scid.len() > MAX_CID {
        return Err(QuicError::Malformed);
    }
    let ptype = version.packet_type(first);
    if ptype == PacketType::Retry {
        return Ok(LongHeader {
            version,
            ptype,
            dcid,
            scid,
            token: &[],
            pn_offset: c.pos(),
            len: buf.len(),
        });
    }
    let token = if ptype == PacketType::Initial {
        let n = c.varint().ok_or(QuicError::Truncated)?;
        let n = usize::try_from(n).map_err(|_| QuicError::Malformed)?;
        c.bytes(n).ok_or(QuicError::Truncated)?
    } else {
        &[]
    };
    let length = c.varint().ok_or(QuicError::Truncated)?;
    let length = usize::try_from(length).map_err(|_| QuicError::Malformed)?;
    let pn_offset = c.pos();
    let len = pn_offset.checked_add(length).ok_or(QuicError::Malformed)?;
    if len > buf.len() {
        return Err(QuicError::Truncated);
    }
    Ok(LongHeader {
        version,
        ptype,
        dcid,
        scid,
        token,
        pn_offset,
        len,
    })
}

/// Removes header protection from an Initial packet and decrypts its
/// payload. `packet` is exactly the packet (`hdr.len` bytes from its
/// header); `out` receives a copy that is decrypted in place. Returns the
/// packet number and the plaintext payload (the frames).
pub fn decrypt_initial<'o>(
    packet: &[u8],
    hdr: &LongHeader<'_>,
    keys: &InitialKeys,
    out: &'o mut Vec<u8>,
) -> Result<(u64, &'o [u8]), QuicError> {
    let sample_at = hdr.pn_offset + 4;
    let sample = packet
        .get(sample_at..sample_at + SAMPLE_LEN)
        .ok_or(QuicError::Truncated)?;
    let mask = keys.hp.new_mask(sample).map_err(|_| QuicError::Malformed)?;
    out.clear();
    out.extend_from_slice(packet);
    let first = out.first_mut().ok_or(QuicError::Truncated)?;
    *first ^= mask[0] & 0x0f;
    let pn_len = usize::from(*first & 0x03) + 1;
    let pn_bytes = out
        .get_mut(hdr.pn_offset..hdr.pn_offset + pn_len)
        .ok_or(QuicError::Truncated)?;
    let mut pn = 0u64;
    for (b, m) in pn_bytes.iter_mut().zip(&mask[1..]) {
        *b ^= m;
        pn = (pn << 8) | u64::from(*b);
    }
    // Initial packet numbers start at 0 and stay small: the truncated value
    // is the packet number (RFC 9000 §A.3 with no packet received yet).
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let body_at = hdr.pn_offset + pn_len;
    if out.len() < body_at + TAG_LEN {
        return Err(QuicError::Truncated);
    }
    let (aad, body) = out.split_at_mut(body_at);
    let plain = keys
        .aead
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
        .map_err(|_| QuicError::Undecryptable)?;
    let plain_len = plain.len();
    let plain = out
        .get(body_at..body_at + plain_len)
        .ok_or(QuicError::Truncated)?;
    Ok((pn, plain))
}

/// A frame of an Initial packet (RFC 9000 §12.4, Table 3: only these may
/// appear in Initial packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A run of PADDING bytes.
    Padding,
    /// PING.
    Ping,
    /// ACK (contents skipped).
    Ack,
    /// CRYPTO: handshake bytes at a stream offset.
    Crypto {
        /// Offset in the Initial CRYPTO stream.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// CONNECTION_CLOSE.
    ConnectionClose,
}

/// Frame types read here.
mod ftype {
    pub const PADDING: u64 = 0x00;
    pub const PING: u64 = 0x01;
    pub const ACK: u64 = 0x02;
    pub const ACK_ECN: u64 = 0x03;
    pub const CRYPTO: u64 = 0x06;
    pub const CLOSE: u64 = 0x1c;
    pub const CLOSE_APP: u64 = 0x1d;
    pub const GOOGLE_PING: u64 = 0x07;
    pub const GOOGLE_CRYPTO: u64 = 0x08;
}

/// Most ACK ranges read from one ACK frame (bounds the loop; a real Initial
/// ACK has one or two).
const MAX_ACK_RANGES: u64 = 256;

/// Iterates the frames of a decrypted payload of `version`; stops at the
/// first frame that cannot be read (an error is yielded once, then
/// nothing).
pub fn frames(
    payload: &[u8],
    version: Version,
) -> impl Iterator<Item = Result<Frame<'_>, QuicError>> {
    let mut c = Cursor::new(payload);
    let mut failed = false;
    let google = version == Version::T051;
    std::iter::from_fn(move || {
        if failed || c.remaining() == 0 {
            return None;
        }
        let r = next_frame(&mut c, google);
        failed = r.is_err();
        Some(r)
    })
}

fn next_frame<'a>(c: &mut Cursor<'a>, google: bool) -> Result<Frame<'a>, QuicError> {
    let ty = c.varint().ok_or(QuicError::Malformed)?;
    let v = |c: &mut Cursor<'a>| c.varint().ok_or(QuicError::Malformed);
    if google {
        // Google QUIC T051 keeps gQUIC frame numbers: CRYPTO is 0x08 (with
        // IETF varint offset and length), PING 0x07.
        return match ty {
            ftype::PADDING => padding(c),
            ftype::GOOGLE_PING => Ok(Frame::Ping),
            ftype::GOOGLE_CRYPTO => crypto_frame(c),
            other => Err(QuicError::UnexpectedFrame(other)),
        };
    }
    match ty {
        ftype::PADDING => padding(c),
        ftype::PING => Ok(Frame::Ping),
        ftype::ACK | ftype::ACK_ECN => {
            v(c)?; // largest acknowledged
            v(c)?; // ack delay
            let ranges = v(c)?;
            if ranges > MAX_ACK_RANGES {
                return Err(QuicError::Malformed);
            }
            v(c)?; // first range
            for _ in 0..ranges {
                v(c)?; // gap
                v(c)?; // range length
            }
            if ty == ftype::ACK_ECN {
                for _ in 0..3 {
                    v(c)?;
                }
            }
            Ok(Frame::Ack)
        }
        ftype::CRYPTO => crypto_frame(c),
        ftype::CLOSE | ftype::CLOSE_APP => {
            v(c)?; // error code
            if ty == ftype::CLOSE {
                v(c)?; // frame type
            }
            let len = usize::try_from(v(c)?).map_err(|_| QuicError::Malformed)?;
            c.skip(len).ok_or(QuicError::Malformed)?;
            Ok(Frame::ConnectionClose)
        }
        other => Err(QuicError::UnexpectedFrame(other)),
    }
}

/// The body of a CRYPTO frame: offset, length, data.
fn crypto_frame<'a>(c: &mut Cursor<'a>) -> Result<Frame<'a>, QuicError> {
    let offset = c.varint().ok_or(QuicError::Malformed)?;
    let len = c.varint().ok_or(QuicError::Malformed)?;
    let len = usize::try_from(len).map_err(|_| QuicError::Malformed)?;
    let data = c.bytes(len).ok_or(QuicError::Malformed)?;
    Ok(Frame::Crypto { offset, data })
}

/// A run of PADDING (its first byte already read).
fn padding<'a>(c: &mut Cursor<'a>) -> Result<Frame<'a>, QuicError> {
    let run = c.rest().iter().take_while(|&&b| b == 0).count();
    c.skip(run).ok_or(QuicError::Malformed)?;
    Ok(Frame::Padding)
}
