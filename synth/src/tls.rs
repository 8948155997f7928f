//! TLS builders: a realistic TLS 1.3 ClientHello (SNI, ALPN, GREASE, ECH,
//! X25519MLKEM768 key share, padding to a target size), record framing that
//! can spread one handshake over several records, and a ServerHello stub.
//!
//! Random fields are deterministic: they are derived from the spec itself.

use crate::rng::Rng;

/// Named group X25519MLKEM768 (hybrid post-quantum).
pub const GROUP_X25519_MLKEM768: u16 = 0x11ec;
/// Named group x25519.
pub const GROUP_X25519: u16 = 0x001d;
/// Extension type server_name.
pub const EXT_SERVER_NAME: u16 = 0;
/// Extension type padding.
pub const EXT_PADDING: u16 = 21;
/// Extension type encrypted_client_hello.
pub const EXT_ECH: u16 = 0xfe0d;
/// Record content type handshake.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Largest record payload allowed by TLS (2^14).
pub const MAX_RECORD_PAYLOAD: usize = 16384;

const MLKEM_SHARE_LEN: usize = 1216;
const X25519_SHARE_LEN: usize = 32;
const ECH_PAYLOAD_LEN: usize = 176;
const CIPHER_SUITES: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
];
const SIGNATURE_ALGORITHMS: [u16; 8] = [
    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
];

/// What the ClientHello should contain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloSpec {
    /// server_name extension; `None` omits the extension entirely.
    pub sni: Option<String>,
    /// ALPN protocols (empty omits the extension; empty names are skipped).
    pub alpn: Vec<String>,
    /// Pad (extension 21) so the whole handshake message is exactly this many
    /// bytes when possible (e.g. 1800 imitates post-quantum hellos). If the
    /// hybrid key share would not fit, only the x25519 share is sent.
    pub target_len: Option<usize>,
    /// Add GREASE cipher suite, extensions, group, key share and version.
    pub grease: bool,
    /// Add an encrypted_client_hello (0xfe0d) outer extension with a
    /// random-looking payload.
    pub ech: bool,
}

impl ClientHelloSpec {
    /// A plain hello naming `sni`, with no padding target.
    pub fn with_sni(sni: &str) -> Self {
        Self {
            sni: Some(sni.to_string()),
            ..Self::default()
        }
    }

    /// A browser-like hello: SNI, ALPN h2/http/1.1, GREASE and ECH.
    pub fn browser(sni: &str) -> Self {
        Self {
            sni: Some(sni.to_string()),
            alpn: vec!["h2".to_string(), "http/1.1".to_string()],
            grease: true,
            ech: true,
            target_len: None,
        }
    }
}

/// Builds the ClientHello *handshake message* (type 1, 3-byte length, body);
/// wrap it with [`records`].
pub fn client_hello(spec: &ClientHelloSpec) -> Vec<u8> {
    let seed = format!("{spec:?}");
    let (mut prefix, mut exts) = hello_parts(spec, &seed, true);
    if spec
        .target_len
        .is_some_and(|t| message_len(&prefix, &exts) > t)
    {
        (prefix, exts) = hello_parts(spec, &seed, false);
    }
    if let Some(target) = spec.target_len {
        let current = message_len(&prefix, &exts);
        add_padding(&mut exts, current, target);
    }
    let mut body = prefix;
    body.extend(u16_prefixed(
        &exts
            .iter()
            .flat_map(|(t, d)| encode_ext(*t, d))
            .collect::<Vec<_>>(),
    ));
    handshake(1, &body)
}

/// Everything before the extensions block, and the extensions themselves.
fn hello_parts(spec: &ClientHelloSpec, seed: &str, pq: bool) -> (Vec<u8>, Vec<(u16, Vec<u8>)>) {
    let mut rng = Rng::from_text(seed);
    let greases = [grease(&mut rng), grease(&mut rng) ^ 0x1010];
    let mut prefix = vec![3, 3];
    prefix.extend(rng.bytes(32));
    prefix.extend(u8_prefixed(&rng.bytes(32)));
    let mut suites = spec
        .grease
        .then_some(greases[0])
        .into_iter()
        .collect::<Vec<_>>();
    suites.extend(CIPHER_SUITES);
    prefix.extend(u16_prefixed(&u16_list(&suites)));
    prefix.extend([1, 0]);
    (prefix, extensions(spec, &mut rng, pq, greases))
}

fn extensions(spec: &ClientHelloSpec, rng: &mut Rng, pq: bool, g: [u16; 2]) -> Vec<(u16, Vec<u8>)> {
    let gr = |v: u16| spec.grease.then_some(v);
    let mut exts = Vec::new();
    exts.extend(gr(g[0]).map(|v| (v, Vec::new())));
    if let Some(name) = &spec.sni {
        let mut list = vec![0];
        list.extend(u16_prefixed(&name.as_bytes()[..name.len().min(255)]));
        exts.push((EXT_SERVER_NAME, u16_prefixed(&list)));
    }
    exts.push((23, Vec::new())); // extended_master_secret
    exts.push((0xff01, vec![0])); // renegotiation_info
    let groups: Vec<u16> = gr(g[1])
        .into_iter()
        .chain([GROUP_X25519_MLKEM768, GROUP_X25519, 0x17, 0x18])
        .collect();
    exts.push((10, u16_prefixed(&u16_list(&groups))));
    exts.push((11, vec![1, 0])); // ec_point_formats: uncompressed
    exts.push((35, Vec::new())); // session_ticket
    let alpn: Vec<u8> = spec
        .alpn
        .iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| u8_prefixed(p.as_bytes()))
        .collect();
    if !alpn.is_empty() {
        exts.push((16, u16_prefixed(&alpn)));
    }
    exts.push((5, vec![1, 0, 0, 0, 0])); // status_request (OCSP)
    exts.push((13, u16_prefixed(&u16_list(&SIGNATURE_ALGORITHMS))));
    exts.push((18, Vec::new())); // signed_certificate_timestamp
    exts.push((51, u16_prefixed(&key_shares(rng, pq, gr(g[1])))));
    exts.push((45, vec![1, 1])); // psk_key_exchange_modes: psk_dhe_ke
    let versions: Vec<u16> = gr(g[0]).into_iter().chain([0x0304, 0x0303]).collect();
    exts.push((43, u8_prefixed(&u16_list(&versions))));
    if spec.ech {
        exts.push((EXT_ECH, ech_outer(rng)));
    }
    exts.extend(gr(g[1] ^ 0x2020).map(|v| (v, vec![0])));
    exts
}

fn key_shares(rng: &mut Rng, pq: bool, grease: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(g) = grease {
        out.extend(g.to_be_bytes());
        out.extend(u16_prefixed(&[0]));
    }
    if pq {
        out.extend(GROUP_X25519_MLKEM768.to_be_bytes());
        out.extend(u16_prefixed(&rng.bytes(MLKEM_SHARE_LEN)));
    }
    out.extend(GROUP_X25519.to_be_bytes());
    out.extend(u16_prefixed(&rng.bytes(X25519_SHARE_LEN)));
    out
}

/// ECHClientHello of type outer: HPKE suite, config id, enc and payload.
fn ech_outer(rng: &mut Rng) -> Vec<u8> {
    let mut out = vec![0, 0, 1, 0, 1];
    out.push(rng.bytes(1)[0]);
    out.extend(u16_prefixed(&rng.bytes(32)));
    out.extend(u16_prefixed(&rng.bytes(ECH_PAYLOAD_LEN)));
    out
}

/// Appends a padding extension bringing the message to `target` bytes when
/// there is room for one (keeping the extensions block under 64 KiB).
fn add_padding(exts: &mut Vec<(u16, Vec<u8>)>, current: usize, target: usize) {
    let Some(room) = target.checked_sub(current + 4) else {
        return;
    };
    let used: usize = exts.iter().map(|(_, d)| 4 + d.len()).sum();
    let limit = usize::from(u16::MAX).saturating_sub(used + 4);
    exts.push((EXT_PADDING, vec![0; room.min(limit)]));
}

fn message_len(prefix: &[u8], exts: &[(u16, Vec<u8>)]) -> usize {
    4 + prefix.len() + 2 + exts.iter().map(|(_, d)| 4 + d.len()).sum::<usize>()
}

fn encode_ext(ext_type: u16, data: &[u8]) -> Vec<u8> {
    let mut out = ext_type.to_be_bytes().to_vec();
    out.extend(u16_prefixed(data));
    out
}

/// A GREASE value of the form 0x?a?a (RFC 8701).
fn grease(rng: &mut Rng) -> u16 {
    let n = rng.below(16) as u16;
    (n << 12) | 0x0a00 | (n << 4) | 0x0a
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// `data` (cut to 255 bytes) with a 1-byte length prefix.
fn u8_prefixed(data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(255)];
    let mut out = vec![data.len() as u8];
    out.extend_from_slice(data);
    out
}

/// `data` (cut to 65535 bytes) with a 2-byte length prefix.
fn u16_prefixed(data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// A handshake message: type, 3-byte length, body (cut to 2^24-1 bytes).
fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(0xff_ffff)];
    let mut out = vec![msg_type];
    out.extend(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type];
    out.extend(version.to_be_bytes());
    out.extend(u16_prefixed(payload));
    out
}

/// Wraps handshake bytes into handshake records (type 22, version 0x0301)
/// of at most `max_record_payload` bytes each (clamped to 1..=16384), so
/// one message can span several records. Empty input yields no records.
pub fn records(handshake: &[u8], max_record_payload: usize) -> Vec<u8> {
    let size = max_record_payload.clamp(1, MAX_RECORD_PAYLOAD);
    handshake
        .chunks(size)
        .flat_map(|c| record(CONTENT_HANDSHAKE, 0x0301, c))
        .collect()
}

/// A server's first flight stub: a TLS 1.3 ServerHello record (x25519 key
/// share, TLS_AES_128_GCM_SHA256), a ChangeCipherSpec record and one
/// opaque application-data record standing in for the encrypted flight.
pub fn server_hello_stub() -> Vec<u8> {
    let mut rng = Rng::from_text("server_hello_stub");
    let mut body = vec![3, 3];
    body.extend(rng.bytes(32));
    body.extend(u8_prefixed(&rng.bytes(32)));
    body.extend([0x13, 0x01, 0]);
    let mut key_share = GROUP_X25519.to_be_bytes().to_vec();
    key_share.extend(u16_prefixed(&rng.bytes(X25519_SHARE_LEN)));
    let exts = [encode_ext(43, &[3, 4]), encode_ext(51, &key_share)].concat();
    body.extend(u16_prefixed(&exts));
    let mut out = record(CONTENT_HANDSHAKE, 0x0303, &handshake(2, &body));
    out.extend(record(20, 0x0303, &[1]));
    out.extend(record(23, 0x0303, &rng.bytes(96)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent parse of a ClientHello: returns (type, data) per extension.
    fn parse_extensions(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(msg[0], 1);
        let len = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
        assert_eq!(len + 4, msg.len());
        let mut at = 4 + 2 + 32;
        at += 1 + msg[at] as usize;
        at += 2 + u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
        at += 1 + msg[at] as usize;
        let end = at + 2 + u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
        assert_eq!(end, msg.len());
        at += 2;
        let mut out = Vec::new();
        while at < end {
            let t = u16::from_be_bytes([msg[at], msg[at + 1]]);
            let l = u16::from_be_bytes([msg[at + 2], msg[at + 3]]) as usize;
            out.push((t, msg[at + 4..at + 4 + l].to_vec()));
            at += 4 + l;
        }
        assert_eq!(at, end);
        out
    }

    fn ext(exts: &[(u16, Vec<u8>)], t: u16) -> Option<&[u8]> {
        exts.iter().find(|e| e.0 == t).map(|e| &e.1[..])
    }

    #[test]
    fn padded_post_quantum_hello() {
        let spec = ClientHelloSpec {
            target_len: Some(1800),
            ..ClientHelloSpec::with_sni("ds.kaspersky.com")
        };
        let msg = client_hello(&spec);
        assert_eq!(msg.len(), 1800);
        let exts = parse_extensions(&msg);
        assert_eq!(
            ext(&exts, 0).unwrap(),
            b"\x00\x13\x00\x00\x10ds.kaspersky.com"
        );
        let ks = ext(&exts, 51).unwrap();
        assert_eq!(&ks[2..6], &[0x11, 0xec, 0x04, 0xc0]);
        assert_eq!(ks.len(), 2 + 4 + 1216 + 4 + 32);
        assert!(ext(&exts, EXT_PADDING).is_some());
        assert_eq!(ext(&exts, 43).unwrap(), &[4, 3, 4, 3, 3]);
        assert_eq!(msg, client_hello(&spec), "deterministic");
    }

    #[test]
    fn short_hello_drops_hybrid_share() {
        let spec = ClientHelloSpec {
            sni: None,
            target_len: Some(512),
            ..Default::default()
        };
        let msg = client_hello(&spec);
        assert_eq!(msg.len(), 512);
        let exts = parse_extensions(&msg);
        assert!(ext(&exts, 0).is_none());
        assert_eq!(ext(&exts, 51).unwrap().len(), 2 + 4 + 32);
        let tiny = client_hello(&ClientHelloSpec {
            target_len: Some(10),
            ..Default::default()
        });
        assert!(ext(&parse_extensions(&tiny), EXT_PADDING).is_none());
        let huge = client_hello(&ClientHelloSpec {
            target_len: Some(1 << 20),
            ..Default::default()
        });
        assert!(parse_extensions(&huge).len() > 5);
    }

    #[test]
    fn browser_hello_has_grease_alpn_ech() {
        let msg = client_hello(&ClientHelloSpec::browser("www.wikipedia.org"));
        let exts = parse_extensions(&msg);
        assert_eq!(exts[0].0 & 0x0f0f, 0x0a0a);
        assert_eq!(ext(&exts, 16).unwrap(), b"\x00\x0c\x02h2\x08http/1.1");
        assert_eq!(
            ext(&exts, EXT_ECH).unwrap().len(),
            5 + 1 + 34 + 2 + ECH_PAYLOAD_LEN
        );
        assert!(msg.len() > 1300);
    }

    #[test]
    fn records_split_and_rejoin() {
        let msg = client_hello(&ClientHelloSpec::with_sni("activation-v2.kaspersky.com"));
        let recs = records(&msg, msg.len().div_ceil(3));
        let (mut at, mut joined, mut count) = (0, Vec::new(), 0);
        while at < recs.len() {
            assert_eq!(&recs[at..at + 3], &[22, 3, 1]);
            let l = u16::from_be_bytes([recs[at + 3], recs[at + 4]]) as usize;
            joined.extend(&recs[at + 5..at + 5 + l]);
            at += 5 + l;
            count += 1;
        }
        assert_eq!((count, joined), (3, msg));
        assert!(records(&[], 0).is_empty());
        assert_eq!(records(&[1, 2], 0).len(), 12);
    }

    #[test]
    fn server_hello_stub_records() {
        let s = server_hello_stub();
        assert_eq!(&s[..3], &[22, 3, 3]);
        let l = u16::from_be_bytes([s[3], s[4]]) as usize;
        assert_eq!(s[5], 2);
        assert_eq!(&s[5 + l..5 + l + 6], &[20, 3, 3, 0, 1, 1]);
        assert_eq!(s[5 + l + 6], 23);
    }
}
