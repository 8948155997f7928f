//! QUIC versions and the Initial packet key schedule (RFC 9001 §5.2,
//! RFC 9369 §3.3): keys derived from the client's first Destination
//! Connection ID with HKDF-SHA256, for AES-128-GCM packet protection and
//! AES-128 header protection.
//!
//! Initial keys protect against nothing but off-path tampering: anyone who
//! sees the client's first packet can derive them, which is what a passive
//! monitor does here. Only the client's keys are derived (the ClientHello
//! travels from the client).

use ring::aead::{self, LessSafeKey, UnboundKey};
use ring::hkdf;

/// A QUIC version number as sent on the wire (an open set: unknown values
/// are kept as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u32);

impl Version {
    /// Version negotiation (RFC 9000 §17.2.1).
    pub const NEGOTIATION: Version = Version(0);
    /// QUIC version 1 (RFC 9000).
    pub const V1: Version = Version(1);
    /// QUIC version 2 (RFC 9369).
    pub const V2: Version = Version(0x6b33_43cf);
    /// Google QUIC T051 (IETF packet format with TLS 1.3), still sent by
    /// some Chrome builds; Wireshark decrypts it.
    pub const T051: Version = Version(0x5430_3531);

    /// The key-schedule family, for the versions whose Initial packets can
    /// be decrypted.
    fn family(self) -> Option<Family> {
        match self.0 {
            1 => Some(Family::V1),
            0x6b33_43cf => Some(Family::V2),
            0x5430_3531 => Some(Family::T051),
            // IETF drafts 23-28 and 29-32 (0xff0000NN).
            0xff00_0017..=0xff00_001c => Some(Family::Draft23),
            0xff00_001d..=0xff00_0020 => Some(Family::Draft29),
            _ => None,
        }
    }

    /// Whether Initial packets of this version can be decrypted.
    #[inline]
    pub fn is_known(self) -> bool {
        self.family().is_some()
    }

    /// The long-header packet type of a first byte (RFC 9000 §17.2; the
    /// codes are rotated in v2, RFC 9369 §3.2).
    pub fn packet_type(self, first: u8) -> PacketType {
        let bits = (first >> 4) & 0b11;
        let bits = if self.family() == Some(Family::V2) {
            bits.wrapping_sub(1) & 0b11
        } else {
            bits
        };
        match bits {
            0 => PacketType::Initial,
            1 => PacketType::ZeroRtt,
            2 => PacketType::Handshake,
            _ => PacketType::Retry,
        }
    }

    /// A short name: `v1`, `v2`, `draft-29`, `T051`, or the number in hex.
    pub fn name(self) -> String {
        match self.0 {
            1 => "v1".into(),
            0x6b33_43cf => "v2".into(),
            v if v >> 8 == 0x00ff_0000 => format!("draft-{}", v & 0xff),
            v if v.to_be_bytes().iter().all(u8::is_ascii_alphanumeric) => {
                v.to_be_bytes().iter().map(|&b| char::from(b)).collect()
            }
            v => format!("0x{v:08x}"),
        }
    }
}

/// Long-header packet types (RFC 9000 §17.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// Initial: carries the ClientHello.
    Initial,
    /// 0-RTT.
    ZeroRtt,
    /// Handshake.
    Handshake,
    /// Retry (no Length field; runs to the end of the datagram).
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V1,
    V2,
    Draft23,
    Draft29,
    T051,
}

impl Family {
    /// initial_salt (RFC 9001 §5.2, RFC 9369 §3.3.1, the drafts, and
    /// Chromium's T051 salt).
    fn salt(self) -> &'static [u8; 20] {
        match self {
            Family::V1 => &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Family::V2 => &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
            Family::Draft23 => &[
                0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4,
                0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02,
            ],
            Family::Draft29 => &[
                0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
                0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99,
            ],
            Family::T051 => &[
                0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f,
                0xc8, 0xcc, 0xda, 0x6e, 0x03, 0x3d,
            ],
        }
    }

    /// Labels of the key, IV and header-protection key (v2 renamed them).
    /// The HKDF salt, keyed once per process (keying it hashes two blocks,
    /// a sixth of deriving a connection's keys).
    fn hkdf_salt(self) -> &'static hkdf::Salt {
        static SALTS: std::sync::LazyLock<[hkdf::Salt; 5]> = std::sync::LazyLock::new(|| {
            [
                Family::V1,
                Family::V2,
                Family::Draft23,
                Family::Draft29,
                Family::T051,
            ]
            .map(|f| hkdf::Salt::new(hkdf::HKDF_SHA256, f.salt()))
        });
        let [v1, v2, d23, d29, t051] = &*SALTS;
        match self {
            Family::V1 => v1,
            Family::V2 => v2,
            Family::Draft23 => d23,
            Family::Draft29 => d29,
            Family::T051 => t051,
        }
    }

    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Family::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
            _ => [b"quic key", b"quic iv", b"quic hp"],
        }
    }
}

/// The raw client Initial key material (for tests and packet builders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMaterial {
    /// AEAD_AES_128_GCM key.
    pub key: [u8; 16],
    /// AEAD IV (XORed with the packet number to form the nonce).
    pub iv: [u8; 12],
    /// AES-128 header-protection key.
    pub hp: [u8; 16],
}

/// An HKDF output length (ring's `KeyType`).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, into `out`.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// Derives the client's Initial key material for `version` from the
/// Destination Connection ID of the client's first Initial packet.
/// `None` for a version without a known key schedule.
pub fn client_key_material(version: Version, dcid: &[u8]) -> Option<KeyMaterial> {
    let family = version.family()?;
    let initial = family.hkdf_salt().extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let [key_label, iv_label, hp_label] = family.labels();
    let mut m = KeyMaterial {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, key_label, &mut m.key)?;
    expand_label(&client, iv_label, &mut m.iv)?;
    expand_label(&client, hp_label, &mut m.hp)?;
    Some(m)
}

/// Ready-to-use client Initial keys.
pub struct InitialKeys {
    /// Packet protection.
    pub(super) aead: LessSafeKey,
    /// The IV.
    pub(super) iv: [u8; 12],
    /// Header protection.
    pub(super) hp: aead::quic::HeaderProtectionKey,
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitialKeys")
    }
}

impl InitialKeys {
    /// The client's Initial keys for `version` and the client's first
    /// Destination Connection ID.
    pub fn client(version: Version, dcid: &[u8]) -> Option<Self> {
        let m = client_key_material(version, dcid)?;
        Some(InitialKeys {
            aead: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &m.key).ok()?),
            iv: m.iv,
            hp: aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, &m.hp).ok()?,
        })
    }
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

    const DCID: &str = "8394c8f03e515708";

    #[test]
    fn rfc9001_a1_client_initial_keys() {
        let m = client_key_material(Version::V1, &hex(DCID)).unwrap();
        assert_eq!(m.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(m.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(m.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9369_a1_client_initial_keys() {
        let m = client_key_material(Version::V2, &hex(DCID)).unwrap();
        assert_eq!(m.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(m.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(m.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn versions_names_and_packet_types() {
        assert!(Version::V1.is_known() && Version::V2.is_known());
        assert!(Version(0xff00_001d).is_known() && Version(0xff00_0017).is_known());
        assert!(!Version(0xff00_0016).is_known() && !Version::NEGOTIATION.is_known());
        assert!(!Version(0x1a2a_3a4a).is_known(), "a GREASE version");
        assert_eq!(Version::V1.name(), "v1");
        assert_eq!(Version::V2.name(), "v2");
        assert_eq!(Version(0xff00_001d).name(), "draft-29");
        assert_eq!(Version::T051.name(), "T051");
        assert_eq!(Version(0x1a2a_3a4a).name(), "0x1a2a3a4a");
        assert_eq!(Version::V1.packet_type(0xc3), PacketType::Initial);
        assert_eq!(Version::V1.packet_type(0xf0), PacketType::Retry);
        assert_eq!(Version::V2.packet_type(0xd3), PacketType::Initial);
        assert_eq!(Version::V2.packet_type(0xc0), PacketType::Retry);
        assert_eq!(Version::V2.packet_type(0xe0), PacketType::ZeroRtt);
        assert_eq!(Version::V2.packet_type(0xf0), PacketType::Handshake);
        assert!(client_key_material(Version(7), b"x").is_none());
    }
}
