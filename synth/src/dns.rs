//! DNS message builders (queries, responses with A/AAAA/CNAME answers,
//! NXDOMAIN) using RFC 1035 name compression, plus TCP length framing.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Resource record type A.
pub const TYPE_A: u16 = 1;
/// Resource record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Resource record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;

const FLAGS_QUERY: u16 = 0x0100; // RD
const FLAGS_RESPONSE: u16 = 0x8180; // QR RD RA, NOERROR
const FLAGS_NXDOMAIN: u16 = 0x8183; // QR RD RA, NXDOMAIN
const HEADER_LEN: usize = 12;

/// One answer record of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An IPv4 address record.
    A {
        /// Owner name.
        name: String,
        /// Address.
        addr: Ipv4Addr,
        /// Time to live in seconds.
        ttl: u32,
    },
    /// An IPv6 address record.
    Aaaa {
        /// Owner name.
        name: String,
        /// Address.
        addr: Ipv6Addr,
        /// Time to live in seconds.
        ttl: u32,
    },
    /// An alias record.
    Cname {
        /// Owner name (the alias).
        name: String,
        /// Canonical name.
        target: String,
        /// Time to live in seconds.
        ttl: u32,
    },
}

impl Answer {
    /// Shorthand for [`Answer::A`].
    pub fn a(name: &str, addr: Ipv4Addr, ttl: u32) -> Self {
        Answer::A {
            name: name.to_string(),
            addr,
            ttl,
        }
    }

    /// Shorthand for [`Answer::Aaaa`].
    pub fn aaaa(name: &str, addr: Ipv6Addr, ttl: u32) -> Self {
        Answer::Aaaa {
            name: name.to_string(),
            addr,
            ttl,
        }
    }

    /// Shorthand for [`Answer::Cname`].
    pub fn cname(name: &str, target: &str, ttl: u32) -> Self {
        Answer::Cname {
            name: name.to_string(),
            target: target.to_string(),
            ttl,
        }
    }
}

/// Builder namespace for whole DNS messages (one question each).
///
/// Names are split on dots; empty labels are skipped and labels longer than
/// 63 bytes are cut to 63. Repeated names and name suffixes are compressed
/// with pointers (an owner name equal to the question becomes `0xc00c`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsMessage;

impl DnsMessage {
    /// A recursive query (RD set) for `name`/`qtype`, class IN.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut e = Encoder::new(id, FLAGS_QUERY, 0);
        e.question(name, qtype);
        e.buf
    }

    /// A NOERROR response echoing the question, with `answers` in order
    /// (at most 65535 are written).
    pub fn response(id: u16, name: &str, qtype: u16, answers: &[Answer]) -> Vec<u8> {
        let answers = &answers[..answers.len().min(usize::from(u16::MAX))];
        let mut e = Encoder::new(id, FLAGS_RESPONSE, answers.len() as u16);
        e.question(name, qtype);
        answers.iter().for_each(|a| e.answer(a));
        e.buf
    }

    /// An NXDOMAIN response echoing the question, without records.
    pub fn nxdomain(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut e = Encoder::new(id, FLAGS_NXDOMAIN, 0);
        e.question(name, qtype);
        e.buf
    }
}

/// Prefixes `msg` with its 2-byte big-endian length (DNS over TCP).
///
/// # Panics
/// If `msg` exceeds 65535 bytes.
pub fn tcp_framed(msg: &[u8]) -> Vec<u8> {
    let len = u16::try_from(msg.len()).expect("DNS message exceeds 65535 bytes");
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend(len.to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Message under construction plus the offsets of every name suffix written.
struct Encoder {
    buf: Vec<u8>,
    suffixes: Vec<(Vec<u8>, u16)>,
}

impl Encoder {
    fn new(id: u16, flags: u16, ancount: u16) -> Self {
        let mut buf = Vec::with_capacity(512);
        for field in [id, flags, 1, ancount, 0, 0] {
            buf.extend(field.to_be_bytes());
        }
        debug_assert_eq!(buf.len(), HEADER_LEN);
        Self {
            buf,
            suffixes: Vec::new(),
        }
    }

    fn question(&mut self, name: &str, qtype: u16) {
        self.name(name);
        self.buf.extend(qtype.to_be_bytes());
        self.buf.extend(CLASS_IN.to_be_bytes());
    }

    fn answer(&mut self, answer: &Answer) {
        let (name, rtype, ttl) = match answer {
            Answer::A { name, ttl, .. } => (name, TYPE_A, ttl),
            Answer::Aaaa { name, ttl, .. } => (name, TYPE_AAAA, ttl),
            Answer::Cname { name, ttl, .. } => (name, TYPE_CNAME, ttl),
        };
        self.name(name);
        self.buf.extend(rtype.to_be_bytes());
        self.buf.extend(CLASS_IN.to_be_bytes());
        self.buf.extend(ttl.to_be_bytes());
        let rdlen_at = self.buf.len();
        self.buf.extend([0, 0]);
        match answer {
            Answer::A { addr, .. } => self.buf.extend(addr.octets()),
            Answer::Aaaa { addr, .. } => self.buf.extend(addr.octets()),
            Answer::Cname { target, .. } => self.name(target),
        }
        let rdlen = (self.buf.len() - rdlen_at - 2) as u16;
        self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }

    /// Writes `name`, ending in a pointer at the longest already-written suffix.
    fn name(&mut self, name: &str) {
        let labels = labels(name);
        for i in 0..labels.len() {
            let key = labels[i..].join(&b'.').to_ascii_lowercase();
            if let Some((_, off)) = self.suffixes.iter().find(|(k, _)| *k == key) {
                self.buf.extend((0xc000 | off).to_be_bytes());
                return;
            }
            if let Ok(off @ 0..0x4000) = u16::try_from(self.buf.len()) {
                self.suffixes.push((key, off));
            }
            self.buf.push(labels[i].len() as u8);
            self.buf.extend_from_slice(labels[i]);
        }
        self.buf.push(0);
    }
}

fn labels(name: &str) -> Vec<&[u8]> {
    name.split('.')
        .filter(|l| !l.is_empty())
        .map(|l| &l.as_bytes()[..l.len().min(63)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bytes() {
        let q = DnsMessage::query(0xabcd, "ds.kaspersky.com.", TYPE_A);
        let mut want = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'd', b's', 9];
        want.extend(b"kaspersky");
        want.extend([3, b'c', b'o', b'm', 0, 0, 1, 0, 1]);
        assert_eq!(q, want);
    }

    #[test]
    fn response_compression() {
        let r = DnsMessage::response(
            1,
            "ds.kaspersky.com",
            TYPE_A,
            &[
                Answer::cname("DS.kaspersky.com", "dnl-03.geo.kaspersky.com", 300),
                Answer::a(
                    "dnl-03.geo.kaspersky.com",
                    Ipv4Addr::new(93, 159, 228, 2),
                    300,
                ),
            ],
        );
        assert_eq!(&r[2..8], &[0x81, 0x80, 0, 1, 0, 2]);
        let q_end = 12 + 18 + 4;
        // CNAME owner -> pointer to 12; target "dnl-03.geo" then pointer to "kaspersky.com" (offset 15).
        assert_eq!(&r[q_end..q_end + 2], &[0xc0, 12]);
        let rdata = q_end + 12;
        assert_eq!(&r[rdata - 2..rdata], &[0, 13]);
        assert_eq!(&r[rdata..rdata + 13], b"\x06dnl-03\x03geo\xc0\x0f");
        // A owner -> pointer to the CNAME target.
        let a = rdata + 13;
        assert_eq!(&r[a..a + 2], &(0xc000u16 | rdata as u16).to_be_bytes());
        assert_eq!(&r[a + 10..a + 16], &[0, 4, 93, 159, 228, 2]);
        assert_eq!(r.len(), a + 16);
    }

    #[test]
    fn nxdomain_and_framing() {
        let n = DnsMessage::nxdomain(7, "x.example", TYPE_AAAA);
        assert_eq!(&n[2..4], &[0x81, 0x83]);
        assert_eq!(&n[n.len() - 4..], &[0, 28, 0, 1]);
        assert_eq!(tcp_framed(&[1, 2, 3]), [0, 3, 1, 2, 3]);
        let long = "a".repeat(100);
        assert_eq!(DnsMessage::query(0, &long, 1)[12], 63);
        assert_eq!(DnsMessage::query(0, "", 1).len(), 17);
    }
}
