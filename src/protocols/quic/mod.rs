//! QUIC Initial packets (RFC 9000, RFC 9001; v2 RFC 9369): the ClientHello
//! a QUIC client sends in its first packets, decrypted with the Initial keys
//! every observer can derive, so that its server name and ALPN can be read
//! like those of TLS over TCP.
//!
//! - [`keys`]: versions, salts and labels, the HKDF key schedule;
//! - [`packet`]: long headers, header protection, AES-128-GCM decryption,
//!   coalesced packets, Initial frames;
//! - [`crypto`]: the CRYPTO stream reassembled from frames that arrive in
//!   any order, across packets and datagrams, with hard caps.
//!
//! The parsed hello is handed to [`crate::protocols::tls::parse_client_hello`]:
//! a QUIC CRYPTO stream carries TLS handshake messages without the record
//! layer. Per-conversation state (for hellos spread over several datagrams)
//! lives in [`crate::flow::quic`].

pub mod crypto;
pub mod keys;
pub mod packet;

pub use crypto::{CryptoStream, Progress};
pub use keys::{InitialKeys, PacketType, Version};
pub use packet::{Frame, LongHeader, decrypt_initial, frames, may_be_initial, parse_long};

/// The smallest UDP payload that may carry a client's Initial packets: a
/// client pads every such datagram to 1200 bytes, and a server discards
/// smaller ones (RFC 9000 §14.1), so a smaller one cannot open a
/// connection and is not worth deriving keys for.
pub const MIN_INITIAL_DATAGRAM: usize = 1200;

use thiserror::Error;

/// Why a QUIC packet or stream was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QuicError {
    /// The packet has a short header (no version, not an Initial).
    #[error("short-header packet")]
    NotLongHeader,
    /// A Version Negotiation packet (version 0).
    #[error("version negotiation packet")]
    VersionNegotiation,
    /// A version whose Initial key schedule is unknown.
    #[error("unknown QUIC version 0x{0:08x}")]
    UnknownVersion(u32),
    /// A length runs past the end of the datagram.
    #[error("packet cut short")]
    Truncated,
    /// An impossible field value.
    #[error("malformed packet")]
    Malformed,
    /// The AEAD tag did not verify (not a client Initial of this connection
    /// ID, or corrupted).
    #[error("Initial packet does not decrypt")]
    Undecryptable,
    /// A frame type not allowed in Initial packets.
    #[error("frame type 0x{0:x} in an Initial packet")]
    UnexpectedFrame(u64),
    /// CRYPTO data beyond the stream cap.
    #[error("CRYPTO stream beyond its cap")]
    TooLarge,
    /// CRYPTO data in too many disjoint pieces.
    #[error("CRYPTO stream in too many pieces")]
    TooFragmented,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::tls;

    const V1_PACKET: &[u8] = include_bytes!("testdata/rfc9001-a2-client-initial.bin");
    const V2_PACKET: &[u8] = include_bytes!("testdata/rfc9369-a2-client-initial.bin");
    /// The CRYPTO frame of RFC 9001 A.2 (the same in RFC 9369 A.2).
    const CRYPTO_FRAME: &[u8] = include_bytes!("testdata/rfc9001-a2-crypto-frame.bin");

    /// Decrypts the single Initial of `packet` and returns its CRYPTO data.
    fn crypto_of(packet: &[u8], version: Version) -> (u64, Vec<(u64, Vec<u8>)>) {
        assert!(may_be_initial(packet));
        let hdr = parse_long(packet).unwrap();
        assert_eq!(hdr.version, version);
        assert_eq!(hdr.ptype, PacketType::Initial);
        assert_eq!(hdr.len, packet.len());
        let keys = InitialKeys::client(hdr.version, hdr.dcid).unwrap();
        let mut out = Vec::new();
        let (pn, plain) = decrypt_initial(packet, &hdr, &keys, &mut out).unwrap();
        // RFC 9001 A.2: the payload is padded to 1162 bytes.
        assert_eq!(plain.len(), 1162);
        let mut crypto = Vec::new();
        for f in frames(plain, version) {
            if let Frame::Crypto { offset, data } = f.unwrap() {
                crypto.push((offset, data.to_vec()));
            }
        }
        (pn, crypto)
    }

    fn check_example_com(packet: &[u8], version: Version) {
        let (pn, crypto) = crypto_of(packet, version);
        assert_eq!(pn, 2);
        assert_eq!(crypto, vec![(0, CRYPTO_FRAME[4..].to_vec())]);
        let mut s = CryptoStream::default();
        s.insert(0, &crypto[0].1).unwrap();
        let Progress::Complete(msg) = s.hello() else {
            panic!("hello incomplete")
        };
        let h = tls::parse_client_hello(msg).unwrap();
        assert_eq!(h.sni, Some(&b"example.com"[..]));
        assert_eq!(h.alpn_protocols().collect::<Vec<_>>(), vec![&b"alpn"[..]]);
    }

    #[test]
    fn rfc9001_a2_client_initial_decrypts_to_its_crypto_frame() {
        check_example_com(V1_PACKET, Version::V1);
    }

    #[test]
    fn rfc9369_a2_client_initial_decrypts_to_its_crypto_frame() {
        check_example_com(V2_PACKET, Version::V2);
    }

    #[test]
    fn protected_header_fields_are_as_in_rfc9001_a2() {
        let hdr = parse_long(V1_PACKET).unwrap();
        assert_eq!(hdr.dcid, &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]);
        assert!(hdr.scid.is_empty() && hdr.token.is_empty());
        assert_eq!(hdr.pn_offset, 18);
    }

    #[test]
    fn tampered_truncated_and_foreign_packets_are_errors_not_panics() {
        let hdr = parse_long(V1_PACKET).unwrap();
        let keys = InitialKeys::client(hdr.version, hdr.dcid).unwrap();
        let mut out = Vec::new();
        // A flipped ciphertext bit fails the tag.
        let mut bad = V1_PACKET.to_vec();
        bad[100] ^= 1;
        assert_eq!(
            decrypt_initial(&bad, &hdr, &keys, &mut out).map(|_| ()),
            Err(QuicError::Undecryptable)
        );
        // v2 keys do not open a v1 packet.
        let v2keys = InitialKeys::client(Version::V2, hdr.dcid).unwrap();
        assert!(decrypt_initial(V1_PACKET, &hdr, &v2keys, &mut out).is_err());
        // Every prefix and every single-byte corruption of the header.
        for cut in 0..V1_PACKET.len() {
            let p = &V1_PACKET[..cut];
            if let Ok(h) = parse_long(p)
                && let Some(k) = InitialKeys::client(h.version, h.dcid)
            {
                let _ = decrypt_initial(p.get(..h.len).unwrap_or(p), &h, &k, &mut out);
            }
        }
        for i in 0..40 {
            for x in [0x01u8, 0x40, 0x80, 0xff] {
                let mut p = V1_PACKET.to_vec();
                p[i] ^= x;
                if let Ok(h) = parse_long(&p)
                    && let Some(k) = InitialKeys::client(h.version, h.dcid)
                {
                    let r = decrypt_initial(&p[..h.len], &h, &k, &mut out);
                    assert!(r.is_err(), "corrupted byte {i} ^ {x:#x} still decrypts");
                }
            }
        }
        assert_eq!(
            parse_long(&[0x40, 1, 2]).map(|_| ()),
            Err(QuicError::NotLongHeader)
        );
        assert_eq!(
            parse_long(&[0xc0, 0, 0, 0, 0, 0, 0]).map(|_| ()),
            Err(QuicError::VersionNegotiation)
        );
        assert_eq!(
            parse_long(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 0, 0]).map(|_| ()),
            Err(QuicError::UnknownVersion(0x1a2a_3a4a))
        );
        assert!(may_be_initial(&[0xc0, 0, 0, 0, 1]));
        assert!(!may_be_initial(b"\x40abcdefgh"));
        // A Handshake packet (type 2) is no Initial.
        assert!(!may_be_initial(&[0xe0, 0, 0, 0, 1, 0]));
    }

    #[test]
    fn frames_of_every_initial_kind_are_read_and_junk_stops_the_walk() {
        let payload = [
            0x00, 0x00, 0x01, // padding, ping
            0x02, 0x05, 0x00, 0x01, 0x02, 0x01, 0x00, // ACK, one extra range
            0x03, 0x05, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, // ACK_ECN
            0x06, 0x40, 0x10, 0x02, b'h', b'i', // CRYPTO at 16
            0x1c, 0x00, 0x06, 0x01, b'x', // CONNECTION_CLOSE
            0x1d, 0x00, 0x00, // application close
            0x08, 0x00, // STREAM: not allowed
            0x06, 0x00, 0x01, b'z',
        ];
        let got: Vec<_> = frames(&payload, Version::V1).collect();
        assert_eq!(
            got,
            vec![
                Ok(Frame::Padding),
                Ok(Frame::Ping),
                Ok(Frame::Ack),
                Ok(Frame::Ack),
                Ok(Frame::Crypto {
                    offset: 16,
                    data: b"hi"
                }),
                Ok(Frame::ConnectionClose),
                Ok(Frame::ConnectionClose),
                Err(QuicError::UnexpectedFrame(8)),
            ]
        );
        // A CRYPTO frame whose length runs past the payload.
        let got: Vec<_> = frames(&[0x06, 0x00, 0x10, 1, 2], Version::V1).collect();
        assert_eq!(got, vec![Err(QuicError::Malformed)]);
        // Google QUIC T051 numbers CRYPTO 0x08; 0x06 is not CRYPTO there.
        let got: Vec<_> = frames(&[0x00, 0x00, 0x08, 0x00, 0x01, 7, 0x06], Version::T051).collect();
        assert_eq!(
            got,
            vec![
                Ok(Frame::Padding),
                Ok(Frame::Crypto {
                    offset: 0,
                    data: &[7]
                }),
                Err(QuicError::UnexpectedFrame(6))
            ]
        );
        let got: Vec<_> = frames(&[0x06, 0x00, 0x10, 1, 2], Version::V2).collect();
        assert_eq!(got, vec![Err(QuicError::Malformed)]);
    }
}
