//! ClientHello fingerprints: JA3 (Salesforce, 2017) and JA4 (FoxIO, 2023),
//! the two hashes threat-intelligence feeds publish for client software —
//! the same agent build gives the same fingerprint whatever server it
//! calls, so a feed can name a vendor's agent by it.
//!
//! - **JA3** = MD5 of `version,ciphers,extensions,groups,point_formats`
//!   (decimal values joined by `-`, GREASE values removed, wire order).
//! - **JA4** = `a_b_c`: `a` is the transport (`t` TCP, `q` QUIC), the
//!   highest TLS version offered, `d`/`i` for a server name present or not,
//!   the cipher and extension counts and the first and last characters of
//!   the first ALPN value; `b` is the truncated SHA-256 of the sorted cipher
//!   list; `c` of the sorted extension list (without SNI and ALPN) and the
//!   signature algorithms in wire order. GREASE values never count.
//!
//! Both are computed from the hello's borrowed cipher and extension bytes
//! into a caller-owned [`Fingerprinter`] whose buffers are reused.

use super::tls::{ClientHello, ext};
use crate::bytes::Cursor;
use md5::{Digest, Md5};
use std::fmt::Write;

/// Extension types read here besides those in [`ext`].
mod more {
    /// supported_groups (RFC 8422, RFC 7919).
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// ec_point_formats (RFC 8422).
    pub const EC_POINT_FORMATS: u16 = 11;
    /// signature_algorithms (RFC 8446).
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
}

/// Values counted per list at most (real hellos carry fewer than 100
/// ciphers or extensions; JA4 itself caps the printed counts at 99).
const MAX_VALUES: usize = 512;

/// Whether a value is a GREASE value (RFC 8701: `0x?a?a`, both bytes equal).
#[inline]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The transport a ClientHello travelled over (JA4's first character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// TLS over TCP.
    Tcp,
    /// QUIC.
    Quic,
}

/// Reusable buffers; [`Fingerprinter::compute`] fills `ja3` and `ja4`.
#[derive(Debug, Default)]
pub struct Fingerprinter {
    values: Vec<u16>,
    text: String,
    /// The last JA3 (32 hex digits).
    pub ja3: String,
    /// The last JA4 (`t13d1516h2_8daaf6152771_e5627efa2ab1`).
    pub ja4: String,
}

/// Lowercase hex of bytes.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// The 16-bit values of a list, in order.
fn u16s(list: &[u8]) -> impl Iterator<Item = u16> + '_ {
    list.chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
}

/// The extensions of a hello as (type, data), in wire order; stops at the
/// first malformed entry.
fn extensions<'a>(hello: &ClientHello<'a>) -> impl Iterator<Item = (u16, &'a [u8])> {
    let mut c = Cursor::new(hello.extensions);
    std::iter::from_fn(move || Some((c.u16()?, c.vec16()?)))
}

impl Fingerprinter {
    /// Forgets the last fingerprints (both empty).
    pub fn clear(&mut self) {
        self.ja3.clear();
        self.ja4.clear();
    }

    /// Computes JA3 and JA4 of `hello`.
    pub fn compute(&mut self, hello: &ClientHello<'_>, carrier: Carrier) {
        self.ja3_of(hello);
        self.ja4_of(hello, carrier);
    }

    fn ja3_of(&mut self, hello: &ClientHello<'_>) {
        let t = &mut self.text;
        t.clear();
        let _ = write!(t, "{},", hello.legacy_version);
        join_decimal(t, u16s(hello.cipher_suites));
        t.push(',');
        join_decimal(t, extensions(hello).map(|(ty, _)| ty));
        t.push(',');
        let mut groups: &[u8] = &[];
        let mut formats: &[u8] = &[];
        for (ty, data) in extensions(hello) {
            match ty {
                more::SUPPORTED_GROUPS => groups = Cursor::new(data).vec16().unwrap_or(&[]),
                more::EC_POINT_FORMATS => formats = Cursor::new(data).vec8().unwrap_or(&[]),
                _ => {}
            }
        }
        join_decimal(t, u16s(groups));
        t.push(',');
        join_decimal(t, formats.iter().map(|&f| u16::from(f)));
        let digest = Md5::digest(t.as_bytes());
        self.ja3.clear();
        push_hex(&mut self.ja3, &digest);
    }

    fn ja4_of(&mut self, hello: &ClientHello<'_>, carrier: Carrier) {
        let out = &mut self.ja4;
        out.clear();
        out.push(match carrier {
            Carrier::Tcp => 't',
            Carrier::Quic => 'q',
        });
        // Version: the highest non-GREASE supported_versions entry, else
        // the legacy version.
        let mut version = hello.legacy_version;
        let mut sni = false;
        let mut sigalgs: &[u8] = &[];
        let mut n_ext = 0usize;
        for (ty, data) in extensions(hello) {
            if is_grease(ty) {
                continue;
            }
            n_ext += 1;
            match ty {
                ext::SUPPORTED_VERSIONS => {
                    let list = Cursor::new(data).vec8().unwrap_or(&[]);
                    if let Some(v) = u16s(list).filter(|v| !is_grease(*v)).max() {
                        version = v;
                    }
                }
                ext::SERVER_NAME => sni = true,
                more::SIGNATURE_ALGORITHMS => sigalgs = Cursor::new(data).vec16().unwrap_or(&[]),
                _ => {}
            }
        }
        out.push_str(match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        });
        out.push(if sni { 'd' } else { 'i' });
        let n_ciphers = u16s(hello.cipher_suites).filter(|v| !is_grease(*v)).count();
        let _ = write!(out, "{:02}{:02}", n_ciphers.min(99), n_ext.min(99));
        let first_alpn = hello.alpn_protocols().next().unwrap_or(&[]);
        match (first_alpn.first(), first_alpn.last()) {
            (Some(&first), Some(&last)) => {
                if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                    out.push(char::from(first));
                    out.push(char::from(last));
                } else {
                    // The first hex digit of the first byte and the last of
                    // the last byte.
                    let hex = b"0123456789abcdef";
                    out.push(char::from(hex[usize::from(first >> 4)]));
                    out.push(char::from(hex[usize::from(last & 0x0f)]));
                }
            }
            _ => out.push_str("00"),
        }
        out.push('_');
        // b: the sorted ciphers.
        let values = &mut self.values;
        values.clear();
        values.extend(
            u16s(hello.cipher_suites)
                .filter(|v| !is_grease(*v))
                .take(MAX_VALUES),
        );
        values.sort_unstable();
        hash12(out, &mut self.text, values);
        out.push('_');
        // c: the sorted extensions without SNI and ALPN, then the signature
        // algorithms in wire order.
        values.clear();
        values.extend(
            extensions(hello)
                .map(|(ty, _)| ty)
                .filter(|&ty| !is_grease(ty) && ty != ext::SERVER_NAME && ty != ext::ALPN)
                .take(MAX_VALUES),
        );
        values.sort_unstable();
        hash12_with_sigalgs(out, &mut self.text, values, sigalgs);
    }
}

/// Appends `v1-v2-...` (GREASE removed) to `t`.
fn join_decimal(t: &mut String, values: impl Iterator<Item = u16>) {
    let mut first = true;
    for v in values.filter(|v| !is_grease(*v)) {
        if !first {
            t.push('-');
        }
        first = false;
        let _ = write!(t, "{v}");
    }
}

/// Appends `xxxx,xxxx,...` to `t`.
fn join_hex(t: &mut String, values: impl Iterator<Item = u16>) {
    let mut first = true;
    for v in values {
        if !first {
            t.push(',');
        }
        first = false;
        let _ = write!(t, "{v:04x}");
    }
}

/// Appends the first 12 hex digits of SHA-256(`values` as hex list), or
/// twelve zeros for an empty list.
fn hash12(out: &mut String, text: &mut String, values: &[u16]) {
    if values.is_empty() {
        out.push_str("000000000000");
        return;
    }
    text.clear();
    join_hex(text, values.iter().copied());
    sha12(out, text);
}

/// Like [`hash12`], with `_` and the signature algorithms (GREASE removed,
/// wire order) appended to the hashed text when there are any.
fn hash12_with_sigalgs(out: &mut String, text: &mut String, values: &[u16], sigalgs: &[u8]) {
    if values.is_empty() {
        out.push_str("000000000000");
        return;
    }
    text.clear();
    join_hex(text, values.iter().copied());
    let mut algs = u16s(sigalgs).filter(|v| !is_grease(*v)).peekable();
    if algs.peek().is_some() {
        text.push('_');
        join_hex(text, algs);
    }
    sha12(out, text);
}

fn sha12(out: &mut String, text: &str) {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    push_hex(out, d.as_ref().get(..6).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::tls;

    /// A Chrome ClientHello (one TLS record) published with its JA4 by
    /// FoxIO's JA4 suite (also CyberChef's JA4 test):
    /// `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    const CHROME: &[u8] = include_bytes!("testdata/chrome-client-hello.bin");

    /// The hello of a single-record capture of it.
    fn parse(record: &[u8]) -> tls::ClientHello<'_> {
        tls::parse_client_hello(&record[5..]).unwrap()
    }

    #[test]
    fn ja4_of_the_published_chrome_hello() {
        let h = parse(CHROME);
        let mut f = Fingerprinter::default();
        f.compute(&h, Carrier::Tcp);
        assert_eq!(f.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        f.compute(&h, Carrier::Quic);
        assert_eq!(f.ja4, "q13d1516h2_8daaf6152771_e5627efa2ab1");
        // JA3 string of this hello, built by hand from the hex (GREASE
        // 0x5a5a, 0xfafa, 0x3a3a, 0x1a1a removed).
        let ja3 = "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
                   0-51-13-35-11-65281-10-27-17513-18-45-16-5-43-23-21,29-23-24,0";
        let digest = Md5::digest(ja3.as_bytes());
        let mut want = String::new();
        push_hex(&mut want, &digest);
        assert_eq!(f.ja3, want);
    }

    #[test]
    fn ja4_hash_parts_match_the_spec_raw_strings() {
        let mut out = String::new();
        sha12(
            &mut out,
            "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9",
        );
        assert_eq!(out, "8daaf6152771");
        out.clear();
        sha12(
            &mut out,
            "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601",
        );
        assert_eq!(out, "e5627efa2ab1");
    }

    #[test]
    fn grease_alpn_edge_cases_and_empty_lists() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
        // A bare hello: no extensions, one cipher, TLS 1.2.
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        let mut msg = vec![1, 0, 0, body.len() as u8];
        msg.extend_from_slice(&body);
        let h = tls::parse_client_hello(&msg).unwrap();
        let mut f = Fingerprinter::default();
        f.compute(&h, Carrier::Tcp);
        assert!(f.ja4.starts_with("t12i010000_"), "{}", f.ja4);
        assert!(f.ja4.ends_with("_000000000000"), "{}", f.ja4);
        // ALPN edge cases (FoxIO's rules): one character, non-alphanumeric.
        for (alpn, want) in [
            (&b"h"[..], "hh"),
            (&b"\xab\xcd"[..], "ad"),
            (&b"h2\xff"[..], "6f"),
            (&b"http/1.1"[..], "h1"),
        ] {
            let mut h2 = h;
            let mut list = vec![alpn.len() as u8];
            list.extend_from_slice(alpn);
            h2.alpn = Some(Box::leak(list.into_boxed_slice()));
            f.compute(&h2, Carrier::Tcp);
            assert_eq!(&f.ja4[8..10], want, "{alpn:?}");
        }
    }
}
