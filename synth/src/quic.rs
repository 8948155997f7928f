//! QUIC builders: client Initial packets protected exactly as RFC 9001
//! (v1) and RFC 9369 (v2) say — HKDF-SHA256 Initial keys from the
//! Destination Connection ID, AES-128-GCM payload protection, AES header
//! protection — carrying CRYPTO frames at any offsets and in any order,
//! PADDING, PING and ACK frames; coalescing into datagrams; and the
//! server's Version Negotiation and Retry packets (with a valid Retry
//! integrity tag), so tests can replay realistic handshakes.
//!
//! The key schedule is written here independently of phonehome's decoder
//! (same RFCs, separate code), and `synth/tests/tshark.rs` checks that
//! tshark decrypts what is built here.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// QUIC version 1.
pub const V1: u32 = 1;
/// QUIC version 2 (RFC 9369).
pub const V2: u32 = 0x6b33_43cf;
/// Minimum size of a datagram carrying a client Initial (RFC 9000 §14.1).
pub const MIN_INITIAL_DATAGRAM: usize = 1200;

/// A frame to put in an Initial packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameSpec {
    /// CRYPTO frame: `data` at `offset` of the handshake stream.
    Crypto {
        /// Stream offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// PING.
    Ping,
    /// ACK of packet numbers `0..=largest` (one range).
    Ack {
        /// Largest acknowledged.
        largest: u64,
    },
    /// `n` PADDING bytes.
    Padding(usize),
}

/// A client Initial packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialSpec {
    /// Version (`V1` or `V2`).
    pub version: u32,
    /// Destination Connection ID (the keys derive from it).
    pub dcid: Vec<u8>,
    /// Source Connection ID.
    pub scid: Vec<u8>,
    /// Token (from a Retry), empty otherwise.
    pub token: Vec<u8>,
    /// Packet number.
    pub pn: u32,
    /// Packet number length, 1 to 4 bytes.
    pub pn_len: usize,
    /// Frames, in order.
    pub frames: Vec<FrameSpec>,
    /// Add PADDING so that the packet is at least this long.
    pub min_len: usize,
}

impl InitialSpec {
    /// A v1 Initial with the given IDs and frames, padded to 1200 bytes.
    pub fn new(version: u32, dcid: &[u8], scid: &[u8], pn: u32, frames: Vec<FrameSpec>) -> Self {
        InitialSpec {
            version,
            dcid: dcid.to_vec(),
            scid: scid.to_vec(),
            token: Vec::new(),
            pn,
            pn_len: 2,
            frames,
            min_len: MIN_INITIAL_DATAGRAM,
        }
    }
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x3f => out.push(v as u8),
        0x40..=0x3fff => out.extend_from_slice(&(v as u16 | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// The key, IV and header-protection key of a client's Initial packets.
pub fn client_initial_keys(version: u32, dcid: &[u8]) -> ([u8; 16], [u8; 12], [u8; 16]) {
    let (salt, prefix): (&[u8], &str) = if version == V2 {
        (
            &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
            "quicv2 ",
        )
    } else {
        (
            &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            "quic ",
        )
    };
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let secret: [u8; 32] = expand(&initial, "client in");
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    (
        expand(&client, &format!("{prefix}key")),
        expand(&client, &format!("{prefix}iv")),
        expand(&client, &format!("{prefix}hp")),
    )
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand<const N: usize>(prk: &hkdf::Prk, label: &str) -> [u8; N] {
    let full = format!("tls13 {label}");
    let mut info = (N as u16).to_be_bytes().to_vec();
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    let mut out = [0u8; N];
    prk.expand(&[&info], OutLen(N))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF output length is valid");
    out
}

fn aes_mask(hp: &[u8; 16], sample: &[u8]) -> [u8; 5] {
    aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, hp)
        .and_then(|k| k.new_mask(sample))
        .expect("16-byte key and sample")
}

/// Builds and protects a client Initial packet.
pub fn client_initial(spec: &InitialSpec) -> Vec<u8> {
    assert!((1..=4).contains(&spec.pn_len), "packet number length 1..=4");
    let mut payload = Vec::new();
    for f in &spec.frames {
        match f {
            FrameSpec::Crypto { offset, data } => {
                payload.push(0x06);
                put_varint(&mut payload, *offset);
                put_varint(&mut payload, data.len() as u64);
                payload.extend_from_slice(data);
            }
            FrameSpec::Ping => payload.push(0x01),
            FrameSpec::Ack { largest } => {
                payload.extend_from_slice(&[0x02]);
                put_varint(&mut payload, *largest);
                payload.extend_from_slice(&[0x00, 0x00]); // delay, no extra ranges
                put_varint(&mut payload, *largest); // first range
            }
            FrameSpec::Padding(n) => payload.extend(std::iter::repeat_n(0u8, *n)),
        }
    }
    let type_bits: u8 = if spec.version == V2 { 0b01 } else { 0b00 };
    let mut header = vec![0xc0 | type_bits << 4 | (spec.pn_len as u8 - 1)];
    header.extend_from_slice(&spec.version.to_be_bytes());
    header.push(spec.dcid.len() as u8);
    header.extend_from_slice(&spec.dcid);
    header.push(spec.scid.len() as u8);
    header.extend_from_slice(&spec.scid);
    put_varint(&mut header, spec.token.len() as u64);
    header.extend_from_slice(&spec.token);
    // The sample needs 4 + 16 bytes after the packet number's start.
    let min_payload = 20usize.saturating_sub(spec.pn_len + 16);
    if payload.len() < min_payload {
        payload.resize(min_payload, 0);
    }
    // Length is written on 2 bytes; pad so the packet reaches min_len.
    let fixed = header.len() + 2 + spec.pn_len + 16;
    if fixed + payload.len() < spec.min_len {
        payload.resize(spec.min_len - fixed, 0);
    }
    let length = spec.pn_len + payload.len() + 16;
    assert!(length < 0x4000, "Initial too long for a 2-byte Length");
    header.extend_from_slice(&(length as u16 | 0x4000).to_be_bytes());
    let pn_offset = header.len();
    header.extend_from_slice(&spec.pn.to_be_bytes()[4 - spec.pn_len..]);

    let (key, iv, hp) = client_initial_keys(spec.version, &spec.dcid);
    let mut nonce = iv;
    for (n, p) in nonce[4..].iter_mut().zip(u64::from(spec.pn).to_be_bytes()) {
        *n ^= p;
    }
    let sealing = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &key).expect("16-byte key"));
    let mut body = payload;
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut body,
        )
        .expect("seal");
    let mut packet = header;
    packet.extend_from_slice(&body);
    let sample_at = pn_offset + 4;
    let mask = aes_mask(&hp, &packet[sample_at..sample_at + 16]);
    packet[0] ^= mask[0] & 0x0f;
    for i in 0..spec.pn_len {
        packet[pn_offset + i] ^= mask[1 + i];
    }
    packet
}

/// CRYPTO frames carrying `hello` cut at `cuts` (stream offsets), listed in
/// `order` (indices of the pieces; pieces not named are appended in order).
pub fn crypto_pieces(hello: &[u8], cuts: &[usize], order: &[usize]) -> Vec<FrameSpec> {
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < hello.len()));
    bounds.push(hello.len());
    let pieces: Vec<FrameSpec> = bounds
        .windows(2)
        .map(|w| FrameSpec::Crypto {
            offset: w[0] as u64,
            data: hello[w[0]..w[1]].to_vec(),
        })
        .collect();
    let mut idx: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| i < pieces.len())
        .collect();
    idx.extend((0..pieces.len()).filter(|i| !order.contains(i)));
    idx.into_iter().map(|i| pieces[i].clone()).collect()
}

/// Concatenates packets into one datagram (coalescing, RFC 9000 §12.2) and
/// appends `trailing_zeros` bytes of zeros after them.
pub fn datagram(packets: &[Vec<u8>], trailing_zeros: usize) -> Vec<u8> {
    let mut d: Vec<u8> = packets.concat();
    d.extend(std::iter::repeat_n(0u8, trailing_zeros));
    d
}

/// A protected long-header packet of another type with a random-looking
/// payload (0-RTT or Handshake), for coalescing tests: `ptype` is the v1
/// type code (1 = 0-RTT, 2 = Handshake).
pub fn opaque_long_packet(
    version: u32,
    ptype: u8,
    dcid: &[u8],
    scid: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut p = vec![0xc0 | (ptype & 3) << 4 | 0x01];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.extend_from_slice(&(len as u16 | 0x4000).to_be_bytes());
    let mut rng = crate::rng::Rng::new(len as u64 ^ u64::from(version));
    p.extend(rng.bytes(len));
    p
}

/// A Version Negotiation packet from the server (RFC 9000 §17.2.1): its
/// DCID is the client's SCID and vice versa.
pub fn version_negotiation(dcid: &[u8], scid: &[u8], versions: &[u32]) -> Vec<u8> {
    let mut p = vec![0x80 | 0x2a];
    p.extend_from_slice(&0u32.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    for v in versions {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A Retry packet (RFC 9000 §17.2.5) with its integrity tag (RFC 9001
/// §5.8, RFC 9369 §3.3.3). `odcid` is the DCID of the client's first
/// Initial; `scid` is the new connection ID the client must use.
pub fn retry(version: u32, dcid: &[u8], scid: &[u8], token: &[u8], odcid: &[u8]) -> Vec<u8> {
    let (key, nonce): ([u8; 16], [u8; 12]) = if version == V2 {
        (
            [
                0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2, 0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c,
                0xcc, 0x92,
            ],
            [
                0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c, 0x6d, 0x99, 0x90, 0xef, 0xb0, 0x4a,
            ],
        )
    } else {
        (
            [
                0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68,
                0xc8, 0x4e,
            ],
            [
                0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb,
            ],
        )
    };
    let type_bits: u8 = if version == V2 { 0b00 } else { 0b11 };
    let mut p = vec![0xc0 | type_bits << 4 | 0x0f];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.extend_from_slice(token);
    let mut pseudo = vec![odcid.len() as u8];
    pseudo.extend_from_slice(odcid);
    pseudo.extend_from_slice(&p);
    let sealing = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &key).expect("16-byte key"));
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&pseudo),
            &mut [],
        )
        .expect("seal");
    p.extend_from_slice(tag.as_ref());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn keys_match_rfc9001_and_rfc9369_appendix_a() {
        let dcid = hex("8394c8f03e515708");
        let (k, iv, hp) = client_initial_keys(V1, &dcid);
        assert_eq!(k.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let (k, iv, hp) = client_initial_keys(V2, &dcid);
        assert_eq!(k.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    /// RFC 9001 A.2 / RFC 9369 A.2: the same CRYPTO frame, packet number 2
    /// on 4 bytes, padded to 1200 bytes, gives the RFC's protected packet.
    #[test]
    fn client_initial_reproduces_the_rfc_packets() {
        let crypto = hex(concat!(
            "010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868",
            "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578",
            "616d706c652e636f6dff01000100000a00080006001d00170018001000070005",
            "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba",
            "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400",
            "0d0010000e0403050306030203080408050806002d00020101001c0002400100",
            "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000",
            "75300901100f088394c8f03e51570806048000ffff"
        ));
        for (version, start, end) in [
            (
                V1,
                "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11",
                "e221af44860018ab0856972e194cd934",
            ),
            (
                V2,
                "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485",
                "a18b2faa745b6fe189cf772a9f84cbfc",
            ),
        ] {
            let mut spec = InitialSpec::new(
                version,
                &hex("8394c8f03e515708"),
                &[],
                2,
                vec![FrameSpec::Crypto {
                    offset: 0,
                    data: crypto.clone(),
                }],
            );
            spec.pn_len = 4;
            let p = client_initial(&spec);
            assert_eq!(p.len(), 1200);
            assert_eq!(p[..32].to_vec(), hex(start), "version {version:#x}");
            assert_eq!(p[1184..].to_vec(), hex(end), "version {version:#x}");
        }
    }

    /// RFC 9001 A.4: the Retry packet and its integrity tag.
    #[test]
    fn retry_matches_rfc9001_a4() {
        let p = retry(
            V1,
            &[],
            &hex("f067a5502a4262b5"),
            b"token",
            &hex("8394c8f03e515708"),
        );
        // The RFC's first byte is 0xff (unused bits set to 1), as here.
        assert_eq!(
            p,
            hex("ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba")
        );
    }
}
