//! DNS messages (RFC 1035): header, questions, and the answer section's A,
//! AAAA and CNAME records, with compressed names.
//!
//! Names are decoded into a scratch arena that the caller reuses, so parsing
//! allocates nothing once warmed up. Hostile input is expected: compression
//! pointers must point strictly backwards (which makes loops impossible), a
//! name stops at 255 wire bytes and 128 labels, and at most
//! [`MAX_QUESTIONS`] questions and [`MAX_ANSWERS`] answers are read. Anything
//! beyond a cap, or a record running past the end, stops the walk and sets a
//! flag; what was read before stays (the Suricata approach: anomalies are
//! data, not failures). Unknown record and query types (HTTPS, SVCB, ...) are
//! kept as numbers — a browser's HTTPS query is a query like any other.

use crate::bytes::{Cursor, be16, u8_at};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Questions read per message (real messages carry one).
pub const MAX_QUESTIONS: usize = 16;
/// Answer records read per message.
pub const MAX_ANSWERS: usize = 256;
/// Longest name on the wire (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;
/// Compression jumps followed per name.
const MAX_JUMPS: usize = 64;

/// Record types this parser decodes.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
}

/// Anomalies met while parsing, as bit flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anomalies(pub u8);

impl Anomalies {
    /// A name exceeded 255 bytes or 128 labels and was cut.
    pub const NAME_TOO_LONG: u8 = 0x01;
    /// A compression pointer pointed forward or at itself (loop attempt).
    pub const BAD_POINTER: u8 = 0x02;
    /// A section ran past the end of the message.
    pub const TRUNCATED: u8 = 0x04;
    /// More questions or answers than the caps; the rest were skipped.
    pub const TOO_MANY_RECORDS: u8 = 0x08;
    /// A label used the reserved 0x40/0x80 type bits.
    pub const BAD_LABEL: u8 = 0x10;

    fn set(&mut self, f: u8) {
        self.0 |= f;
    }

    /// Whether any anomaly was seen.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// One question.
#[derive(Debug, Clone)]
pub struct Question {
    /// The name, as a range into [`DnsMessage::text`].
    pub name: Range<usize>,
    /// QTYPE.
    pub qtype: u16,
}

/// The data of an answer record.
#[derive(Debug, Clone)]
pub enum AnswerData {
    /// An A or AAAA address.
    Addr(IpAddr),
    /// A CNAME target (range into [`DnsMessage::text`]).
    Cname(Range<usize>),
    /// Any other type (its data is not decoded).
    Other,
}

/// One answer-section record.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Owner name (range into [`DnsMessage::text`]).
    pub name: Range<usize>,
    /// TYPE.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// Decoded data.
    pub data: AnswerData,
}

/// A parsed message. Reuse one value across messages: [`DnsMessage::parse`]
/// clears it and keeps the capacity.
#[derive(Debug, Default, Clone)]
pub struct DnsMessage {
    /// Transaction id.
    pub id: u16,
    /// Whether QR is set.
    pub response: bool,
    /// Opcode.
    pub opcode: u8,
    /// Response code.
    pub rcode: u8,
    /// Whether TC is set.
    pub truncated: bool,
    /// ANCOUNT as written in the header.
    pub ancount: u16,
    /// Questions read.
    pub questions: Vec<Question>,
    /// Answer records read.
    pub answers: Vec<Answer>,
    /// Anomalies seen.
    pub anomalies: Anomalies,
    /// Text of every decoded name, concatenated (names are ranges into it):
    /// printable ASCII only (see `push_label`).
    text: Vec<u8>,
    /// The first names decoded cleanly, by wire offset: a name that is
    /// only a compression pointer to one of them (an answer's owner
    /// pointing at the question, the common case) shares its text instead
    /// of being decoded and escaped again.
    decoded: [(u16, Range<usize>); DECODED_MEMO],
    /// Entries of `decoded` in use.
    decoded_len: usize,
}

/// Names remembered per message for compression pointers to share.
const DECODED_MEMO: usize = 4;

impl DnsMessage {
    /// The text of a name range (lowercase is NOT applied: names are as sent).
    pub fn text(&self, r: &Range<usize>) -> &str {
        self.text
            .get(r.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The first question's name, if any.
    pub fn qname(&self) -> Option<&str> {
        self.questions.first().map(|q| self.text(&q.name))
    }

    /// Parses `buf` into `self`. Returns `false` when the header is missing
    /// or the message is not a standard query/response (opcode other than
    /// QUERY, or no question and no answer): such bytes are not treated as DNS.
    pub fn parse(&mut self, buf: &[u8]) -> bool {
        self.questions.clear();
        self.answers.clear();
        self.text.clear();
        self.decoded_len = 0;
        self.anomalies = Anomalies::default();
        let (Some(id), Some(flags), Some(qd), Some(an)) =
            (be16(buf, 0), be16(buf, 2), be16(buf, 4), be16(buf, 6))
        else {
            return false;
        };
        if buf.len() < HEADER_LEN {
            return false;
        }
        self.id = id;
        self.response = flags & 0x8000 != 0;
        self.opcode = ((flags >> 11) & 0x0f) as u8;
        self.truncated = flags & 0x0200 != 0;
        self.rcode = (flags & 0x000f) as u8;
        self.ancount = an;
        if self.opcode != 0 || (qd == 0 && an == 0) {
            return false;
        }
        let mut cur = Cursor::new(buf);
        let _ = cur.skip(HEADER_LEN);
        for i in 0..qd {
            if usize::from(i) >= MAX_QUESTIONS {
                self.anomalies.set(Anomalies::TOO_MANY_RECORDS);
                return true;
            }
            let Some(name) = self.read_name(buf, &mut cur) else {
                self.anomalies.set(Anomalies::TRUNCATED);
                return true;
            };
            let (Some(qtype), Some(_class)) = (cur.u16(), cur.u16()) else {
                self.anomalies.set(Anomalies::TRUNCATED);
                return true;
            };
            self.questions.push(Question { name, qtype });
        }
        for i in 0..an {
            if usize::from(i) >= MAX_ANSWERS {
                self.anomalies.set(Anomalies::TOO_MANY_RECORDS);
                break;
            }
            if self.read_answer(buf, &mut cur).is_none() {
                self.anomalies.set(Anomalies::TRUNCATED);
                break;
            }
        }
        true
    }

    fn read_answer(&mut self, buf: &[u8], cur: &mut Cursor<'_>) -> Option<()> {
        let name = self.read_name(buf, cur)?;
        let rtype = cur.u16()?;
        let _class = cur.u16()?;
        let ttl = cur.u32()?;
        let rdlen = usize::from(cur.u16()?);
        let rdata_at = cur.pos();
        let rdata = cur.bytes(rdlen)?;
        let data = match (rtype, rdata.len()) {
            (rtype::A, 4) => AnswerData::Addr(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (rtype::AAAA, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                AnswerData::Addr(IpAddr::V6(Ipv6Addr::from(a)))
            }
            (rtype::CNAME, _) => {
                let mut at = Cursor::new(buf);
                at.skip(rdata_at)?;
                AnswerData::Cname(self.read_name(buf, &mut at)?)
            }
            _ => AnswerData::Other,
        };
        self.answers.push(Answer {
            name,
            rtype,
            ttl,
            data,
        });
        Some(())
    }

    /// Decodes the name at the cursor into the text arena and moves the
    /// cursor past it. `None` if it runs past the end of the message.
    fn read_name(&mut self, buf: &[u8], cur: &mut Cursor<'_>) -> Option<Range<usize>> {
        let at = cur.pos();
        // A bare pointer, backwards, to a name decoded cleanly before: the
        // same text (the same labels, read with the same pointer floor).
        if let Some(ptr) = be16(buf, at).filter(|p| p >> 14 == 3) {
            let target = ptr & 0x3fff;
            let known = self.decoded.get(..self.decoded_len).unwrap_or_default();
            if usize::from(target) < at
                && let Some((_, r)) = known.iter().find(|(w, _)| *w == target)
            {
                let r = r.clone();
                cur.skip(2)?;
                return Some(r);
            }
        }
        let before = std::mem::take(&mut self.anomalies);
        let range = self.decode_name(buf, cur);
        let clean = !self.anomalies.any();
        self.anomalies = Anomalies(before.0 | self.anomalies.0);
        let range = range?;
        if clean
            && let (Ok(wire), Some(slot)) =
                (u16::try_from(at), self.decoded.get_mut(self.decoded_len))
        {
            *slot = (wire, range.clone());
            self.decoded_len += 1;
        }
        Some(range)
    }

    /// [`DnsMessage::read_name`]'s decoding of the labels.
    fn decode_name(&mut self, buf: &[u8], cur: &mut Cursor<'_>) -> Option<Range<usize>> {
        let start = self.text.len();
        let DnsMessage {
            text, anomalies, ..
        } = self;
        let end = walk_name(buf, cur.pos(), anomalies, |label| {
            if text.len() > start {
                text.push(b'.');
            }
            push_label(text, label);
        })?;
        cur.skip(end.checked_sub(cur.pos())?)?;
        Some(start..self.text.len())
    }
}

/// Walks the name at `pos` under the parser's rules, handing each label to
/// `label` in order: compression pointers must go strictly backwards from
/// the lowest position seen (which makes loops impossible), at most
/// [`MAX_JUMPS`] of them, and a name stops at [`MAX_NAME_WIRE`] wire bytes
/// (`NAME_TOO_LONG`: the rest is skipped) or at a bad pointer
/// (`BAD_POINTER`: the labels so far stand). Returns where the record goes
/// on: after the first pointer, or after the name. `None` if the name runs
/// past the end of the message, or on a reserved label type (`BAD_LABEL`:
/// the rest of the message cannot be located).
fn walk_name<'a>(
    buf: &'a [u8],
    mut pos: usize,
    anomalies: &mut Anomalies,
    mut label: impl FnMut(&'a [u8]),
) -> Option<usize> {
    let mut resume: Option<usize> = None;
    let (mut floor, mut jumps, mut wire_len) = (pos, 0, 0usize);
    loop {
        let len = u8_at(buf, pos)?;
        match len >> 6 {
            0 if len == 0 => {
                pos += 1;
                break;
            }
            0 => {
                let bytes = buf.get(pos + 1..pos + 1 + usize::from(len))?;
                wire_len += usize::from(len) + 1;
                pos += 1 + usize::from(len);
                if wire_len > MAX_NAME_WIRE {
                    anomalies.set(Anomalies::NAME_TOO_LONG);
                    // Skip to the end of this name without decoding more.
                    if resume.is_none() {
                        while let Some(l) = u8_at(buf, pos) {
                            if l == 0 {
                                pos += 1;
                                break;
                            } else if l >> 6 == 3 {
                                pos += 2;
                                break;
                            }
                            pos += 1 + usize::from(l);
                        }
                    }
                    break;
                }
                label(bytes);
            }
            3 => {
                let target = usize::from(be16(buf, pos)? & 0x3fff);
                resume.get_or_insert(pos + 2);
                jumps += 1;
                if target >= floor || jumps > MAX_JUMPS {
                    anomalies.set(Anomalies::BAD_POINTER);
                    break;
                }
                (floor, pos) = (target, target);
            }
            _ => {
                anomalies.set(Anomalies::BAD_LABEL);
                return None;
            }
        }
    }
    Some(resume.unwrap_or(pos))
}

/// The last two labels of each name a message could be matched by — every
/// question's name and every CNAME target — read from the wire without
/// decoding anything: `visit(second_last, last)` for each name of two or
/// more labels, until it returns true. `Some(true)` if it did, `Some(false)`
/// if none did, `None` if the message cannot be walked this cheaply (cut
/// short, an over-long name, a bad pointer or label type): then only a full
/// [`DnsMessage::parse`] can tell.
///
/// A decoded name's text is its labels, escaped, joined by dots, so the
/// last two dot-separated parts of the text are these two labels (escaped):
/// whatever a name's text matches, its wire labels say so too.
pub fn name_tails(buf: &[u8], visit: impl FnMut(&[u8], &[u8]) -> bool) -> Option<bool> {
    walk_tails(buf, false, visit)
}

/// [`name_tails`] that also vouches for the parse: `Some(false)` only if
/// [`DnsMessage::parse`] would take `buf` as a DNS message (a standard
/// query or response) and read all of it without an anomaly, so that a
/// caller who wants nothing from the message but a rule's name and its
/// anomaly count may skip the parse. It walks every name the parser
/// reads, owners included, under the same rules (an owner that is only a
/// pointer to a question walked cleanly is not walked again, as the parser
/// does not decode it again); `None` for any doubt.
pub fn clean_name_tails(buf: &[u8], visit: impl FnMut(&[u8], &[u8]) -> bool) -> Option<bool> {
    let (flags, qd, an) = (be16(buf, 2)?, be16(buf, 4)?, be16(buf, 6)?);
    let standard = (flags >> 11) & 0x0f == 0 && (qd != 0 || an != 0);
    let counted = usize::from(qd) <= MAX_QUESTIONS && usize::from(an) <= MAX_ANSWERS;
    if buf.len() < HEADER_LEN || !standard || !counted {
        return None;
    }
    walk_tails(buf, true, visit)
}

/// [`name_tails`], and with `strict` [`clean_name_tails`]'s walk (its
/// header checks aside).
fn walk_tails(
    buf: &[u8],
    strict: bool,
    mut visit: impl FnMut(&[u8], &[u8]) -> bool,
) -> Option<bool> {
    let (qd, an) = (be16(buf, 4)?, be16(buf, 6)?);
    let mut pos = HEADER_LEN;
    let mut seen = |tail: Tail<'_>| match tail {
        (Some(a), Some(b)) => visit(a, b),
        _ => false,
    };
    // Where the questions walked cleanly start (the usual target of an
    // owner's pointer; the parser reuses their text).
    let mut questions = [0u16; MAX_QUESTIONS];
    for slot in questions
        .iter_mut()
        .take(usize::from(qd).min(MAX_QUESTIONS))
    {
        let (next, tail) = wire_name_tail(buf, pos)?;
        if seen(tail) {
            return Some(true);
        }
        *slot = u16::try_from(pos).ok()?;
        pos = next.checked_add(4).filter(|&p| p <= buf.len())?;
    }
    let questions = questions
        .get(..usize::from(qd).min(MAX_QUESTIONS))
        .unwrap_or_default();
    for _ in 0..usize::from(an).min(MAX_ANSWERS) {
        // An owner's name is never matched: only where it ends matters,
        // and (strict) that the parser finds it clean.
        let bare = be16(buf, pos).filter(|p| p >> 14 == 3).map(|p| p & 0x3fff);
        let next = if !strict || bare.is_some_and(|t| questions.contains(&t)) {
            skip_name(buf, pos)?
        } else {
            wire_name_tail(buf, pos)?.0
        };
        let rtype = be16(buf, next)?;
        let rdlen = usize::from(be16(buf, next + 8)?);
        let rdata = next + 10;
        if rtype == rtype::CNAME && seen(wire_name_tail(buf, rdata)?.1) {
            return Some(true);
        }
        pos = rdata.checked_add(rdlen).filter(|&p| p <= buf.len())?;
    }
    Some(false)
}

/// Where the record goes on after the name at `pos`, without following its
/// pointer (the same position [`walk_name`] returns: after the first
/// pointer, or after the name); `None` where `walk_name` gives up (past the
/// end of the message, a reserved label type). An answer's owner is
/// usually a pointer back to the question, which `walk_name` would walk
/// again in full.
fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = u8_at(buf, pos)?;
        match len >> 6 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            3 => return be16(buf, pos).map(|_| pos + 2),
            _ => return None,
        }
    }
}

/// A name's second-last and last labels, as far as it has them.
type Tail<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// [`walk_name`] keeping only the name's last two labels; `None` where
/// the parser would flag an anomaly.
fn wire_name_tail(buf: &[u8], pos: usize) -> Option<(usize, Tail<'_>)> {
    let (mut prev, mut last) = (None, None);
    let mut anomalies = Anomalies::default();
    let next = walk_name(buf, pos, &mut anomalies, |label| {
        (prev, last) = (last, Some(label));
    })?;
    (!anomalies.any()).then_some((next, (prev, last)))
}

/// Appends a label, escaping bytes that are not printable ASCII (and the
/// dot and backslash, which would change the name's meaning) as `\DDD`, so a
/// hostile name can never carry control characters into a log or terminal.
fn push_label(out: &mut Vec<u8>, label: &[u8]) {
    super::push_escaped_bytes(out, label, &super::LABEL_KEPT);
}

/// Whether payloads on `port` are tried as DNS (DNS, mDNS, LLMNR).
pub fn is_port(port: u16) -> bool {
    matches!(port, 53 | 5353 | 5355)
}

/// Whether a DNS message's header says it is a response (the QR bit).
pub fn is_response(buf: &[u8]) -> bool {
    buf.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// Whether a UDP payload on a DNS port looks like a DNS message (header
/// plausible), used before a full parse.
pub fn plausible(buf: &[u8]) -> bool {
    let (Some(flags), Some(qd)) = (be16(buf, 2), be16(buf, 4)) else {
        return false;
    };
    buf.len() >= HEADER_LEN && (flags >> 11) & 0x0f == 0 && qd <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_a_name_ends_where_walking_it_does() {
        let mut long = Vec::new();
        for _ in 0..6 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        let header = [0u8; 12];
        for name in [
            &b"\x03www\x07example\x03com\x00"[..],
            b"\x03www\xc0\x0c",
            b"\xc0\x0c",
            b"\xc0\x63",
            &long,
            b"\x03www\x07exam",
            b"\x03www\x80",
            b"\x03www\xc0",
            b"",
        ] {
            let mut msg = header.to_vec();
            msg.extend_from_slice(b"\x01a\x00");
            msg.extend_from_slice(name);
            let mut anomalies = Anomalies::default();
            let walked = walk_name(&msg, 15, &mut anomalies, |_| {});
            assert_eq!(skip_name(&msg, 15), walked, "{name:02x?}");
        }
    }

    /// A response for www.example.com: CNAME to example.com (compressed), then
    /// an A record. Offsets: question name at 12.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // CNAME: owner -> pointer 12, target -> pointer to "example.com" at 16.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 16]);
        // A: owner -> pointer 16.
        m.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 93, 184, 216, 34]);
        m
    }

    #[test]
    fn parses_questions_cnames_and_addresses() {
        let mut d = DnsMessage::default();
        assert!(d.parse(&response()));
        assert!(d.response);
        assert_eq!(d.qname(), Some("www.example.com"));
        assert_eq!(d.answers.len(), 2);
        match &d.answers[0].data {
            AnswerData::Cname(t) => assert_eq!(d.text(t), "example.com"),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.text(&d.answers[1].name), "example.com");
        assert_eq!(d.answers[1].ttl, 300);
        assert!(
            matches!(d.answers[1].data, AnswerData::Addr(IpAddr::V4(a)) if a == Ipv4Addr::new(93, 184, 216, 34))
        );
        assert!(!d.anomalies.any());
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_flagged_not_followed() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        // Answer owner name points at itself (offset 19).
        m.extend_from_slice(&[0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let mut d = DnsMessage::default();
        assert!(d.parse(&m));
        assert!(d.anomalies.0 & Anomalies::BAD_POINTER != 0);
        assert_eq!(d.qname(), Some("a"));
    }

    /// A response whose three owners point at the question, at a label
    /// inside it, and (after a label of their own) at the question again;
    /// its CNAME target points at the question.
    fn pointing_owners() -> Vec<u8> {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        // Question at 12: Www.Example.COM A IN.
        m.extend_from_slice(b"\x03Www\x07Example\x03COM\x00\x00\x01\x00\x01");
        // Owner -> the question; A 1.2.3.4.
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        // Owner -> the question's second label (not a decoded name start);
        // CNAME -> the question.
        m.extend_from_slice(&[0xc0, 16, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2, 0xc0, 12]);
        // Owner: a label, then a pointer to the question.
        m.extend_from_slice(b"\x01x\xc0\x0c");
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 5, 6, 7, 8]);
        m
    }

    #[test]
    fn names_that_point_at_a_decoded_name_share_its_text() {
        let m = pointing_owners();
        let mut d = DnsMessage::default();
        assert!(d.parse(&m));
        assert!(!d.anomalies.any());
        assert_eq!(d.answers.len(), 3);
        let q = d.questions[0].name.clone();
        assert_eq!(d.text(&q), "Www.Example.COM");
        assert_eq!(d.answers[0].name, q, "shared, not decoded again");
        assert_eq!(d.text(&d.answers[1].name), "Example.COM");
        match &d.answers[1].data {
            AnswerData::Cname(t) => assert_eq!(*t, q),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.text(&d.answers[2].name), "x.Www.Example.COM");
        // A name cut for length is not shared: a pointer to it is decoded
        // (and flagged) again.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for _ in 0..130 {
            m.extend_from_slice(b"\x01y");
        }
        m.extend_from_slice(b"\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert!(d.parse(&m));
        assert!(d.anomalies.0 & Anomalies::NAME_TOO_LONG != 0);
        assert_eq!(d.answers.len(), 1);
        assert_ne!(d.answers[0].name, d.questions[0].name);
        assert_eq!(d.text(&d.answers[0].name), d.qname().unwrap());
    }

    #[test]
    fn long_names_stop_at_255_bytes() {
        let mut m = vec![0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..300 {
            m.extend_from_slice(b"\x01x");
        }
        m.extend_from_slice(b"\x00\x00\x01\x00\x01");
        let mut d = DnsMessage::default();
        assert!(d.parse(&m));
        assert!(d.anomalies.0 & Anomalies::NAME_TOO_LONG != 0);
        assert!(d.qname().unwrap().len() <= 255);
        assert_eq!(d.questions[0].qtype, 1, "the cursor resumed after the name");
    }

    #[test]
    fn hostile_bytes_are_escaped_and_unknown_types_kept() {
        let mut m = vec![0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x04a\x1b.\\\x03com\x00\x00\x41\x00\x01");
        let mut d = DnsMessage::default();
        assert!(d.parse(&m));
        assert_eq!(d.qname(), Some("a\\027\\046\\092.com"));
        assert_eq!(
            d.questions[0].qtype, 65,
            "HTTPS queries are ordinary queries"
        );
    }

    /// Whether `clean_name_tails` vouched for `m` while the parser found
    /// it no DNS or flagged an anomaly (the one thing it must never do),
    /// or missed a name's last two labels.
    fn vouched_wrongly(m: &[u8]) -> Option<String> {
        let mut tails = Vec::new();
        let walked = clean_name_tails(m, |a, b| {
            tails.push([a, b"." as &[u8], b].concat());
            false
        });
        if walked != Some(false) {
            return None;
        }
        let mut d = DnsMessage::default();
        if !d.parse(m) || d.anomalies.any() {
            return Some(format!("vouched for {m:?}: {:?}", d.anomalies));
        }
        let cnames = d.answers.iter().filter_map(|a| match &a.data {
            AnswerData::Cname(t) => Some(d.text(t)),
            _ => None,
        });
        for name in d.questions.iter().map(|q| d.text(&q.name)).chain(cnames) {
            let parts: Vec<&str> = name.rsplitn(3, '.').collect();
            if let [last, second, ..] = parts[..]
                && !last.contains('\\')
                && !second.contains('\\')
                && !tails.contains(&format!("{second}.{last}").into_bytes())
            {
                return Some(format!("{name} not walked in {m:?}"));
            }
        }
        None
    }

    #[test]
    fn clean_walks_vouch_only_for_messages_the_parser_reads_cleanly() {
        let mut loop_owner = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        loop_owner.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        loop_owner.extend_from_slice(&[0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let mut long_owner = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        long_owner.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        for _ in 0..130 {
            long_owner.extend_from_slice(b"\x01y");
        }
        long_owner.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let mut query = vec![0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // What a clean walk is for: a query and a compressed response.
        assert_eq!(clean_name_tails(&query, |_, _| false), Some(false));
        assert_eq!(clean_name_tails(&response(), |_, _| false), Some(false));
        assert_eq!(
            clean_name_tails(&pointing_owners(), |_, _| false),
            Some(false)
        );
        assert_eq!(
            clean_name_tails(&response(), |a, b| a == b"example" && b == b"com"),
            Some(true)
        );
        // Anomalies the prefilter's walk does not look for: an owner that
        // loops, an owner too long, too many questions, another opcode,
        // neither question nor answer.
        assert_eq!(name_tails(&loop_owner, |_, _| false), Some(false));
        assert_eq!(clean_name_tails(&loop_owner, |_, _| false), None);
        assert_eq!(clean_name_tails(&long_owner, |_, _| false), None);
        let mut many = query.clone();
        many[5] = 17;
        let mut notify = query.clone();
        notify[2] = 0x20;
        let empty = [0u8, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
        for m in [&many[..], &notify, &empty] {
            assert_eq!(clean_name_tails(m, |_, _| false), None, "{m:?}");
        }
        // Every truncation and every single-byte change of these: never a
        // vouch the parser disagrees with.
        let names = [query, response(), loop_owner, long_owner, pointing_owners()];
        let mut checked = 0;
        for full in &names {
            for n in 0..=full.len() {
                assert_eq!(vouched_wrongly(&full[..n]), None);
            }
            for i in 0..full.len() {
                for v in [0u8, 1, 2, 0x3f, 0x40, 0x80, 0xc0, 0xc1, 0xff] {
                    let mut m = full.clone();
                    m[i] = v;
                    assert_eq!(vouched_wrongly(&m), None);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn every_truncation_of_a_message_is_safe() {
        let full = response();
        let mut d = DnsMessage::default();
        for n in 0..full.len() {
            d.parse(&full[..n]);
        }
    }
}
