//! Lookups against the loaded feeds, built once and shared read-only.
//!
//! Names: a hash map from each feed name to its exact and suffix rules.
//! A query walks the name's label boundaries from the full name down to the
//! last two labels, so `KSN-1.Kaspersky-Labs.COM.` finds `kaspersky-labs.com`
//! and `notkaspersky.com` never does; the first hit is the most specific
//! (exact beats suffix on the same name). Most names match nothing, and
//! one lookup of their last two labels in the set of rules' last two
//! labels says so before the walk. Addresses: a prefix trie per
//! family, longest prefix wins. No allocation per query: names are
//! lowercased into a stack buffer.
//!
//! A prefilter ([`Matcher::may_name_in`]) tells, from a DNS message's raw
//! bytes, whether any name in it could match a name rule, by walking the
//! question and CNAME names on the wire for their last two labels (no
//! decoding, no escaping): a message that does not pass need not be parsed
//! at all when only vendor answers matter (passive DNS).

use super::{Feeds, RuleId, RuleKind};
use foldhash::HashMap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

#[derive(Debug, Default, Clone, Copy)]
struct NameRules {
    exact: Option<RuleId>,
    suffix: Option<RuleId>,
}

/// A name's best rule and the feed value it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameMatch {
    /// The rule.
    pub rule: RuleId,
    /// Whether it matched exactly (not as a parent domain).
    pub exact: bool,
}

/// A set of 16-bit address prefixes (an address's top 16 bits), as 65,536
/// bits.
#[derive(Clone)]
struct Blocks(Box<[u64; 1024]>);

impl Default for Blocks {
    fn default() -> Self {
        Blocks(Box::new([0; 1024]))
    }
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        write!(f, "Blocks({n} of 65536)")
    }
}

impl Blocks {
    /// Adds the blocks a range covers: the one its first 16 bits name, or
    /// all of them below a /16.
    fn mark(&mut self, top: u16, prefix_len: u8) {
        let count = 1u32 << 16u8.saturating_sub(prefix_len).min(16);
        // Below a /16 the range starts at a multiple of `count`.
        let first = u32::from(top) & !(count - 1);
        for b in first..(first + count).min(1 << 16) {
            if let Some(w) = self.0.get_mut((b / 64) as usize) {
                *w |= 1 << (b % 64);
            }
        }
    }

    #[inline]
    fn contains(&self, top: u16) -> bool {
        self.0
            .get(usize::from(top / 64))
            .is_some_and(|w| w & (1 << (top % 64)) != 0)
    }
}

/// Compiled feeds.
#[derive(Debug)]
pub struct Matcher {
    /// Lowercase names (as bytes: lookups need no UTF-8 check).
    names: HashMap<Box<[u8]>, NameRules>,
    v4: PrefixMap<Ipv4Net, RuleId>,
    v6: PrefixMap<Ipv6Net, RuleId>,
    /// The top 16 bits of every address some IPv4 range rule covers: most
    /// addresses are in no rule's /16, and one bit says so before the trie
    /// is walked (~50 ns).
    v4_blocks: Blocks,
    /// The same for IPv6 range rules.
    v6_blocks: Blocks,
    asns: HashMap<u32, RuleId>,
    user_agents: Vec<(regex::Regex, RuleId)>,
    paths: Vec<(regex::Regex, RuleId)>,
    content_types: HashMap<Box<str>, RuleId>,
    ja4: HashMap<Box<str>, RuleId>,
    fallback: HashMap<(super::VendorId, IpAddr), RuleId>,
    /// (IP protocol, first port, last port, rule), in feed order.
    ports: Vec<(u8, u16, u16, RuleId)>,
    /// Fewest and most labels of any name rule: a query only looks up the
    /// suffixes of a name with a label count in this range.
    labels: (usize, usize),
    /// The last two labels of every name rule (when no rule is a single
    /// label): a name whose last two labels are not here matches nothing,
    /// which one lookup of a hash of those labels tells for almost every
    /// name.
    tails: Option<Tails>,
}

/// A set of two-label name tails, kept as seeded hashes of their lowercase
/// text: a lookup hashes the candidate and probes for a number, with no
/// pointer to follow and no bytes to compare. Two tails with the same hash
/// only make a name worth the full, exact lookup; the seed is random, so
/// a collision cannot be aimed at.
#[derive(Debug)]
struct Tails {
    seed: u64,
    set: foldhash::HashSet<u64>,
}

impl Tails {
    fn new<'a>(tails: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let seed = foldhash::fast::RandomState::default().hash_one(0u64);
        let set = tails.map(|(a, b)| tail_hash(seed, a, b)).collect();
        Tails { seed, set }
    }

    /// Whether a name whose last two labels are these (any case) may be
    /// matched by some rule (false: surely not).
    fn may_hold(&self, second_last: &[u8], last: &[u8]) -> bool {
        self.set.contains(&tail_hash(self.seed, second_last, last))
    }
}

/// The hash of a name's last two labels, lowercased, from a random `seed`:
/// each label's bytes are read eight at a time, lowercased in a register
/// and folded into the state by a 64×64→128-bit multiply (its halves
/// xored, as foldhash does), the label's last word with its length in the
/// multiplier. Nothing is copied: copying the labels into a buffer and
/// hashing that stalled each word's load on the byte stores before it
/// (measured: 2 % of a thread, on the path of every DNS name), and a
/// general-purpose streaming hasher cost twice these few multiplies.
fn tail_hash(seed: u64, second_last: &[u8], last: &[u8]) -> u64 {
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
    let fold = |x: u64, m: u64| {
        let p = u128::from(x) * u128::from(m);
        (p as u64) ^ ((p >> 64) as u64)
    };
    let mut h = seed;
    for label in [second_last, last] {
        let mut words = label.chunks_exact(8);
        for w in &mut words {
            let w = w.first_chunk::<8>().copied().unwrap_or_default();
            h = fold(h ^ ascii_lowercase_word(u64::from_le_bytes(w)), MUL);
        }
        let mut rest = 0u64;
        for (i, &b) in words.remainder().iter().enumerate() {
            rest |= u64::from(b) << (8 * i);
        }
        // MUL with the length (at most 2^16 here) in its high bits is
        // still odd and large.
        let len = (label.len() as u64) << 40;
        h = fold(h ^ ascii_lowercase_word(rest), MUL ^ len);
    }
    h
}

/// The eight bytes of `w` with ASCII capitals made small (the others
/// unchanged), all at once: a byte is a capital when its low seven bits
/// are at least `A` and below `[` and its top bit is clear; adding to the
/// low seven bits never carries into the next byte.
fn ascii_lowercase_word(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP: u64 = 0x8080_8080_8080_8080;
    let low = w & LOW7;
    let from_a = low + 0x3f3f_3f3f_3f3f_3f3f; // top bit set: >= b'A' (0x41)
    let past_z = low + 0x2525_2525_2525_2525; // top bit set: >= b'[' (0x5b)
    let capital = from_a & !past_z & !w & TOP;
    w | (capital >> 2)
}

/// A name's second-last and last labels (`b` and `c` of `a.b.c`); None for
/// a single label.
fn split_tail(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let last_dot = memchr::memrchr(b'.', name)?;
    let head = name.get(..last_dot)?;
    let start = memchr::memrchr(b'.', head).map_or(0, |d| d + 1);
    Some((head.get(start..)?, name.get(last_dot + 1..)?))
}

/// Longest name looked up (RFC 1035 limit on the text form).
const MAX_NAME: usize = 253;

impl Matcher {
    /// Compiles the feeds. Values were validated at load time, so a value
    /// that still fails to compile is skipped (it cannot happen for feeds
    /// that came through [`super::load`]).
    pub fn new(feeds: &Feeds) -> Self {
        let mut m = Matcher {
            names: HashMap::default(),
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            v4_blocks: Blocks::default(),
            v6_blocks: Blocks::default(),
            asns: HashMap::default(),
            user_agents: Vec::new(),
            paths: Vec::new(),
            content_types: HashMap::default(),
            ja4: HashMap::default(),
            fallback: HashMap::default(),
            ports: Vec::new(),
            labels: (usize::MAX, 0),
            tails: None,
        };
        for (i, r) in feeds.rules.iter().enumerate() {
            let id = i as RuleId;
            match r.kind {
                RuleKind::Suffix => {
                    m.names.entry(r.value.as_bytes().into()).or_default().suffix = Some(id)
                }
                RuleKind::Exact => {
                    m.names.entry(r.value.as_bytes().into()).or_default().exact = Some(id)
                }
                RuleKind::Cidr => match r.value.parse::<IpNet>() {
                    Ok(IpNet::V4(n)) => {
                        let top = (u32::from(n.network()) >> 16) as u16;
                        m.v4_blocks.mark(top, n.prefix_len());
                        m.v4.insert(n, id);
                    }
                    Ok(IpNet::V6(n)) => {
                        let top = (u128::from(n.network()) >> 112) as u16;
                        m.v6_blocks.mark(top, n.prefix_len());
                        m.v6.insert(n, id);
                    }
                    Err(_) => {}
                },
                RuleKind::Asn => {
                    if let Ok(n) = r.value.parse() {
                        m.asns.insert(n, id);
                    }
                }
                RuleKind::HttpUserAgent => {
                    if let Ok(re) = regex::Regex::new(&r.value) {
                        m.user_agents.push((re, id));
                    }
                }
                RuleKind::HttpPath => {
                    if let Ok(re) = regex::Regex::new(&r.value) {
                        m.paths.push((re, id));
                    }
                }
                RuleKind::HttpContentType => {
                    m.content_types.insert(r.value.as_str().into(), id);
                }
                RuleKind::Ja4 => {
                    m.ja4.insert(r.value.as_str().into(), id);
                }
                RuleKind::Port => {
                    if let Some((proto, lo, hi)) = super::parse_port(&r.value) {
                        m.ports.push((proto, lo, hi, id));
                    }
                }
                RuleKind::DnsFallbackResolver => {
                    if let Ok(a) = r.value.parse() {
                        m.fallback.insert((r.vendor, a), id);
                    }
                }
            }
        }
        for n in m.names.keys() {
            let count = n.iter().filter(|&&b| b == b'.').count() + 1;
            m.labels = (m.labels.0.min(count), m.labels.1.max(count));
        }
        m.tails = m
            .names
            .keys()
            .map(|n| split_tail(n))
            .collect::<Option<Vec<_>>>()
            .map(|tails| Tails::new(tails.into_iter()));
        m
    }

    /// Whether a DNS response (its raw bytes) could name a rule: whether
    /// the last two labels of its question or of a CNAME target are some
    /// rule's (see [`crate::protocols::dns::name_tails`]). False means
    /// surely not; true means parse it and look. Without the two-label set
    /// (a single-label rule), every message is worth a look.
    pub fn may_name_in(&self, raw: &[u8]) -> bool {
        if self.names.is_empty() {
            return false;
        }
        let Some(tails) = &self.tails else {
            return true;
        };
        let hit = crate::protocols::dns::name_tails(raw, |a, b| tails.may_hold(a, b));
        hit.unwrap_or(true)
    }

    /// Whether a DNS message (its raw bytes) surely names no rule *and*
    /// parses cleanly ([`crate::protocols::dns::clean_name_tails`]): then
    /// nothing in it can be evidence, and a caller that keeps no record of
    /// it may count it without parsing it. False means parse it.
    pub fn names_none_in(&self, raw: &[u8]) -> bool {
        use crate::protocols::dns::clean_name_tails;
        let walked = if self.names.is_empty() {
            clean_name_tails(raw, |_, _| false)
        } else {
            let Some(tails) = &self.tails else {
                return false;
            };
            clean_name_tails(raw, |a, b| tails.may_hold(a, b))
        };
        walked == Some(false)
    }

    /// The most specific rule for a host name (any case, trailing dot allowed).
    pub fn name(&self, name: &str) -> Option<NameMatch> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        if let Some(tails) = &self.tails {
            let (a, b) = split_tail(name.as_bytes())?;
            if !tails.may_hold(a, b) {
                return None;
            }
        }
        let mut buf = [0u8; MAX_NAME];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        let mut candidate: &[u8] = lower;
        let mut first = true;
        // Only suffixes with as many labels as some rule can match: skip
        // the longer ones, stop before the shorter ones.
        let (fewest, most) = self.labels;
        let mut labels = candidate.iter().filter(|&&b| b == b'.').count() + 1;
        loop {
            if labels < fewest {
                return None;
            }
            if labels <= most
                && let Some(r) = self.names.get(candidate)
            {
                if first && let Some(rule) = r.exact {
                    return Some(NameMatch { rule, exact: true });
                }
                if let Some(rule) = r.suffix {
                    return Some(NameMatch { rule, exact: first });
                }
            }
            first = false;
            labels -= 1;
            // The parent: what follows the first dot.
            match candidate.iter().position(|&b| b == b'.') {
                Some(dot) => match candidate.get(dot + 1..) {
                    Some(parent) if !parent.is_empty() => candidate = parent,
                    _ => return None,
                },
                None => return None,
            }
        }
    }

    /// The longest-prefix rule for an address.
    pub fn addr(&self, addr: IpAddr) -> Option<RuleId> {
        match addr {
            IpAddr::V4(a) => {
                if !self.v4_blocks.contains((u32::from(a) >> 16) as u16) {
                    return None;
                }
                self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, r)| *r)
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.addr(IpAddr::V4(v4));
                }
                if !self.v6_blocks.contains((u128::from(a) >> 112) as u16) {
                    return None;
                }
                self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, r)| *r)
            }
        }
    }

    /// The rule for an autonomous system number.
    pub fn asn(&self, asn: u32) -> Option<RuleId> {
        self.asns.get(&asn).copied()
    }

    /// The first rule whose regex matches the User-Agent.
    pub fn user_agent(&self, ua: &str) -> Option<RuleId> {
        self.user_agents
            .iter()
            .find(|(re, _)| re.is_match(ua))
            .map(|(_, r)| *r)
    }

    /// The first rule whose regex matches the request path.
    pub fn path(&self, path: &str) -> Option<RuleId> {
        self.paths
            .iter()
            .find(|(re, _)| re.is_match(path))
            .map(|(_, r)| *r)
    }

    /// The first port rule covering `port` of IP protocol `proto` (a
    /// linear scan: feeds list a handful of ports).
    pub fn port(&self, proto: u8, port: u16) -> Option<RuleId> {
        self.ports
            .iter()
            .find(|&&(p, lo, hi, _)| p == proto && (lo..=hi).contains(&port))
            .map(|&(.., r)| r)
    }

    /// The rule naming `resolver` as one `vendor`'s software falls back to.
    pub fn dns_fallback(&self, vendor: super::VendorId, resolver: IpAddr) -> Option<RuleId> {
        if self.fallback.is_empty() {
            return None;
        }
        self.fallback.get(&(vendor, resolver)).copied()
    }

    /// Whether any feed lists JA4 fingerprints.
    pub fn has_ja4(&self) -> bool {
        !self.ja4.is_empty()
    }

    /// The rule listing a JA4 fingerprint (as computed: lowercase).
    pub fn ja4(&self, fingerprint: &str) -> Option<RuleId> {
        if self.ja4.is_empty() {
            return None;
        }
        self.ja4.get(fingerprint).copied()
    }

    /// The rule for a response media type (already lowercased, no parameters).
    pub fn content_type(&self, media_type: &str) -> Option<RuleId> {
        self.content_types.get(media_type).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::{Confidence, Purpose, Rule, Vendor};

    fn feeds(rules: &[(RuleKind, &str)]) -> Feeds {
        Feeds {
            vendors: vec![Vendor {
                id: "k".into(),
                name: "K".into(),
                headquarters: None,
                notes: None,
                origin: "test".into(),
            }],
            rules: rules
                .iter()
                .map(|(kind, v)| Rule {
                    vendor: 0,
                    kind: *kind,
                    value: (*v).into(),
                    purpose: Purpose::Update,
                    product: None,
                    confidence: Confidence::Vendor,
                    source: "https://x".into(),
                    note: None,
                    role: None,
                    origin: "test:1".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn suffixes_match_at_label_boundaries_only() {
        let m = Matcher::new(&feeds(&[
            (RuleKind::Suffix, "kaspersky.com"),
            (RuleKind::Suffix, "kaspersky-labs.com"),
        ]));
        assert_eq!(m.name("KSN-1.Kaspersky-Labs.COM.").map(|x| x.rule), Some(1));
        assert_eq!(m.name("kaspersky.com").map(|x| x.exact), Some(true));
        assert_eq!(m.name("a.b.kaspersky.com").map(|x| x.exact), Some(false));
        // Suffixes longer than any rule are skipped, not missed.
        assert_eq!(
            m.name("a.b.c.d.e.f.g.kaspersky.com")
                .map(|x| (x.rule, x.exact)),
            Some((0, false))
        );
        assert_eq!(m.name("notkaspersky.com"), None);
        assert_eq!(m.name("kaspersky.com.example.net"), None);
        assert_eq!(m.name("com"), None);
        assert_eq!(m.name(""), None);
        assert_eq!(m.name("."), None);
        assert_eq!(m.name(&"a.".repeat(200)), None);
    }

    /// The prefilter never hides a matching name: every DNS answer in the
    /// shared captures (real messages, with compression pointers and mixed
    /// case) is checked against a feed made of the names answered in the
    /// other half of the captures, and against the shipped feeds.
    #[test]
    fn the_dns_prefilter_passes_every_answer_that_names_a_rule() {
        use crate::capture::Timeline;
        use crate::decode::{Decoded, Transport, decode};
        use crate::protocols::dns::{AnswerData, DnsMessage};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/corpus");
        let mut answers: Vec<Vec<u8>> = Vec::new();
        let files = crate::capture::find_captures(&[dir]).expect("corpus");
        let mut t = Timeline::new(files);
        while let Some(f) = t.next_frame() {
            if let Decoded::Packet(p) = decode(f.linktype, f.data)
                && let Transport::Udp(u) = p.transport
                && (u.sport == 53 || u.dport == 53)
                && u.payload.get(2).is_some_and(|b| b & 0x80 != 0)
            {
                answers.push(u.payload.to_vec());
            }
        }
        assert!(answers.len() > 100, "{} answers", answers.len());
        let mut msg = DnsMessage::default();
        let names_of = |msg: &DnsMessage| -> Vec<String> {
            let cnames = msg.answers.iter().filter_map(|a| match &a.data {
                AnswerData::Cname(t) => Some(msg.text(t).to_string()),
                _ => None,
            });
            msg.qname()
                .map(str::to_string)
                .into_iter()
                .chain(cnames)
                .collect()
        };
        let mut feed_names = Vec::new();
        for a in answers.iter().step_by(2) {
            if msg.parse(a) {
                feed_names.extend(names_of(&msg).into_iter().map(|n| n.to_ascii_lowercase()));
            }
        }
        // Two labels or more (a single-label rule turns the prefilter off).
        feed_names.retain(|n| n.contains('.') && !n.contains('\\'));
        let rules: Vec<(RuleKind, &str)> = feed_names
            .iter()
            .map(|n| (RuleKind::Suffix, n.as_str()))
            .collect();
        let shipped = crate::feeds::load(None).expect("shipped feeds");
        let (mut named, mut passed) = (0, [0usize; 2]);
        for (i, m) in [Matcher::new(&feeds(&rules)), Matcher::new(&shipped)]
            .iter()
            .enumerate()
        {
            for a in &answers {
                let may = m.may_name_in(a);
                passed[i] += usize::from(may);

                if msg.parse(a) && names_of(&msg).iter().any(|n| m.name(n).is_some()) {
                    named += 1;
                    assert!(may, "prefilter hid an answer naming a rule: {a:02x?}");
                }
            }
        }
        assert!(named > 50, "{named} answers named a rule");
        // The shipped feeds name almost none of these: nearly all skip the parse.
        assert!(
            passed[1] * 20 < answers.len(),
            "{passed:?} of {}",
            answers.len()
        );
        // No name rules: nothing can match, nothing passes.
        assert!(!Matcher::new(&feeds(&[(RuleKind::Cidr, "10.0.0.0/8")])).may_name_in(b"\x03abc"));
        // Hand-made answers: the question, a CNAME target (through a
        // pointer into another name), mixed case; cut or crafted messages
        // pass (the parser decides).
        let m = Matcher::new(&feeds(&[(RuleKind::Suffix, "kaspersky-labs.com")]));
        let answer = |qname: &[u8], cname: &[u8]| {
            let mut a = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
            a.extend_from_slice(qname);
            a.extend_from_slice(&[0, 1, 0, 1, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 1]);
            a.extend_from_slice(&(cname.len() as u16).to_be_bytes());
            a.extend_from_slice(cname);
            a
        };
        let q = b"\x03ksn\x0eKaspersky-Labs\x03COM\x00";
        let other = b"\x03www\x07example\x03net\x00";
        assert!(m.may_name_in(&answer(q, b"\x01x\xc0\x0c")));
        assert!(!m.may_name_in(&answer(other, b"\x01x\xc0\x0c")));
        // CNAME x.<pointer to "example.net"> vs a target spelled out.
        assert!(!m.may_name_in(&answer(other, b"\x01x\xc0\x10")));
        assert!(m.may_name_in(&answer(other, b"\x01x\x0ekaspersky-labs\x03com\x00")));
        // The rule's labels elsewhere than at the end do not pass...
        assert!(!m.may_name_in(&answer(
            b"\x0ekaspersky-labs\x03com\x04evil\x03net\x00",
            b"\xc0\x0c"
        )));
        // ...a forward pointer or a cut message does (the parser decides).
        assert!(m.may_name_in(&answer(other, b"\x01x\xc0\x7f")));
        let full = answer(other, b"\x01x\xc0\x0c");
        assert!(m.may_name_in(&full[..full.len() - 3]));
    }

    /// The last-two-labels prefilter of [`Matcher::name`] changes no
    /// answer: every name of every DNS message in the corpus, plus odd
    /// ones, is matched with and without it, against a feed of corpus
    /// names and against the shipped feeds.
    #[test]
    fn the_name_prefilter_changes_no_match() {
        use crate::capture::Timeline;
        use crate::decode::{Decoded, Transport, decode};
        use crate::protocols::dns::{AnswerData, DnsMessage};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/corpus");
        let files = crate::capture::find_captures(&[dir]).expect("corpus");
        let mut t = Timeline::new(files);
        let mut msg = DnsMessage::default();
        let mut names: Vec<String> = Vec::new();
        while let Some(f) = t.next_frame() {
            if let Decoded::Packet(p) = decode(f.linktype, f.data)
                && let Transport::Udp(u) = p.transport
                && (u.sport == 53 || u.dport == 53)
                && msg.parse(u.payload)
            {
                names.extend(msg.questions.iter().map(|q| msg.text(&q.name).to_string()));
                names.extend(msg.answers.iter().filter_map(|a| match &a.data {
                    AnswerData::Cname(t) => Some(msg.text(t).to_string()),
                    _ => None,
                }));
            }
        }
        assert!(names.len() > 200, "{} names", names.len());
        let rules: Vec<String> = names
            .iter()
            .step_by(3)
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            // Rules of two labels or more (single labels: see below).
            .filter(|n| n.contains('.') && !n.contains('\\'))
            .collect();
        for odd in [
            "KSN-1.Kaspersky-Labs.COM.",
            "kaspersky.com",
            "a.kaspersky.com.",
            "com",
            "com.",
            ".",
            ".com",
            "kaspersky..com",
            "x.KASPERSKY.com",
            "a\\.kaspersky.com",
        ] {
            names.push(odd.into());
        }
        let half: Vec<(RuleKind, &str)> = rules
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let kind = if i % 2 == 0 {
                    RuleKind::Suffix
                } else {
                    RuleKind::Exact
                };
                (kind, n.as_str())
            })
            .collect();
        let shipped = crate::feeds::load(None).expect("shipped feeds");
        let mut matched = 0;
        for feed in [feeds(&half), shipped] {
            let with = Matcher::new(&feed);
            assert!(with.tails.is_some());
            let mut without = Matcher::new(&feed);
            without.tails = None;
            for n in &names {
                let got = with.name(n);
                assert_eq!(got, without.name(n), "{n}");
                matched += usize::from(got.is_some());
            }
        }
        assert!(matched > 100, "{matched} names matched");
        // A single-label rule (a whole top-level domain) turns it off.
        let tld = Matcher::new(&feeds(&[(RuleKind::Suffix, "ru")]));
        assert!(tld.tails.is_none());
        assert!(tld.name("update.example.ru").is_some());
    }

    #[test]
    fn a_word_is_lowercased_as_its_bytes_are() {
        // Every byte value in every position, next to neighbours that sit
        // on the capital range's edges (a carry would show there).
        for b in 0..=255u8 {
            for (at, fill) in (0..8).zip([b'@', b'A', b'Z', b'[', 0x7f, 0x80, 0xc1, 0xff]) {
                let mut bytes = [fill; 8];
                bytes[at] = b;
                let want = bytes.map(|x| x.to_ascii_lowercase());
                let got = ascii_lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got, want, "{bytes:x?}");
            }
        }
    }

    #[test]
    fn the_name_prefilter_ignores_case_across_words() {
        let m = Matcher::new(&feeds(&[(
            RuleKind::Suffix,
            "downloads-kaspersky-labs.example",
        )]));
        assert!(m.tails.is_some());
        for n in [
            "x.downloads-kaspersky-labs.example",
            "X.DOWNLOADS-KASPERSKY-LABS.EXAMPLE",
            "x.Downloads-Kaspersky-Labs.Example.",
        ] {
            assert_eq!(m.name(n).map(|x| x.rule), Some(0), "{n}");
        }
        assert!(m.name("x.downloads-kaspersky-labz.example").is_none());
    }

    #[test]
    fn exact_beats_suffix_and_deeper_suffix_beats_shallower() {
        let m = Matcher::new(&feeds(&[
            (RuleKind::Suffix, "kaspersky.com"),
            (RuleKind::Suffix, "upd.kaspersky.com"),
            (RuleKind::Exact, "ds.kaspersky.com"),
        ]));
        assert_eq!(m.name("s12.upd.kaspersky.com").map(|x| x.rule), Some(1));
        assert_eq!(m.name("ds.kaspersky.com").map(|x| x.rule), Some(2));
        assert_eq!(
            m.name("x.ds.kaspersky.com").map(|x| x.rule),
            Some(0),
            "exact does not cover children"
        );
    }

    #[test]
    fn the_block_prefilter_never_hides_a_range() {
        // Ranges wider than a /16 (their blocks all marked), one of /0, and
        // ones narrower, in both families; every address a rule covers is
        // still found, the trie's answer unchanged.
        let m = Matcher::new(&feeds(&[
            (RuleKind::Cidr, "10.0.0.0/8"),
            (RuleKind::Cidr, "172.16.0.0/12"),
            (RuleKind::Cidr, "192.0.2.0/24"),
            (RuleKind::Cidr, "2a03:2480::/32"),
            (RuleKind::Cidr, "2400::/6"),
        ]));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(m.addr(ip("10.255.255.255")), Some(0));
        assert_eq!(m.addr(ip("10.0.0.1")), Some(0));
        assert_eq!(m.addr(ip("172.31.9.9")), Some(1));
        assert_eq!(m.addr(ip("172.32.0.1")), None);
        assert_eq!(m.addr(ip("192.0.2.200")), Some(2));
        assert_eq!(m.addr(ip("192.0.3.1")), None);
        assert_eq!(m.addr(ip("11.0.0.1")), None);
        assert_eq!(m.addr(ip("2a03:2480:1::1")), Some(3));
        assert_eq!(m.addr(ip("2a03:2481::1")), None);
        assert_eq!(m.addr(ip("27ff:ffff::1")), Some(4));
        assert_eq!(m.addr(ip("2800::1")), None);
        let all = Matcher::new(&feeds(&[(RuleKind::Cidr, "0.0.0.0/0")]));
        assert_eq!(all.addr(ip("203.0.113.7")), Some(0));
        assert_eq!(all.addr(ip("::ffff:203.0.113.7")), Some(0));
        assert_eq!(all.addr(ip("2001:db8::1")), None);
    }

    #[test]
    fn longest_prefix_wins_for_addresses() {
        let m = Matcher::new(&feeds(&[
            (RuleKind::Cidr, "77.74.176.0/21"),
            (RuleKind::Cidr, "77.74.178.0/24"),
            (RuleKind::Cidr, "2a03:2480::/32"),
        ]));
        assert_eq!(m.addr("77.74.178.11".parse().unwrap()), Some(1));
        assert_eq!(m.addr("77.74.177.1".parse().unwrap()), Some(0));
        assert_eq!(m.addr("77.74.184.1".parse().unwrap()), None);
        assert_eq!(m.addr("2a03:2480:68::1".parse().unwrap()), Some(2));
        assert_eq!(m.addr("::ffff:77.74.178.11".parse().unwrap()), Some(1));
    }
}
