//! QUIC on one UDP conversation: finds the client's Initial packets,
//! decrypts them, and reassembles their CRYPTO frames until the ClientHello
//! is complete — within one datagram with no state at all (the common
//! case), or across datagrams with a small per-flow state.
//!
//! The state lives only while a ClientHello is incomplete: it is created
//! when an Initial leaves the hello unfinished, and freed as soon as the
//! hello is complete (or abandoned). It is bounded per flow (the CRYPTO
//! stream cap [`quic::crypto::MAX_CRYPTO`], at most [`MAX_INITIALS`]
//! Initial packets) and counted against the worker's stream memory budget
//! ([`MemBudget`]), like TCP reassembly.

use super::stream::Observation;
use super::tcp::MemBudget;
use crate::protocols::quic::{self, CryptoStream, Frame, InitialKeys, PacketType, Progress};
use crate::protocols::tls;

/// Client Initial packets read per conversation before a ClientHello that
/// never completes is abandoned.
pub const MAX_INITIALS: u16 = 32;
/// Coalesced packets looked at per datagram.
const MAX_COALESCED: usize = 8;

/// The connection a ClientHello belongs to: version and the client's
/// Destination Connection ID (a Retry or version negotiation makes the
/// client start again with another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conn {
    version: quic::Version,
    dcid: [u8; quic::packet::MAX_CID],
    len: u8,
}

impl Conn {
    fn new(version: quic::Version, dcid: &[u8]) -> Self {
        let mut c = Conn {
            version,
            dcid: [0; quic::packet::MAX_CID],
            len: 0,
        };
        let n = dcid.len().min(quic::packet::MAX_CID);
        if let (Some(dst), Some(src)) = (c.dcid.get_mut(..n), dcid.get(..n)) {
            dst.copy_from_slice(src);
        }
        c.len = n as u8;
        c
    }

    fn is(&self, version: quic::Version, dcid: &[u8]) -> bool {
        self.version == version && self.dcid.get(..usize::from(self.len)) == Some(dcid)
    }
}

/// A ClientHello in progress.
#[derive(Debug)]
pub struct Pending {
    conn: Conn,
    stream: CryptoStream,
    initials: u16,
}

impl Pending {
    fn memory(&self) -> usize {
        std::mem::size_of::<Self>() + self.stream.memory()
    }
}

/// QUIC state of a UDP conversation.
#[derive(Debug, Default)]
pub enum QuicState {
    /// No Initial with part of a ClientHello seen yet.
    #[default]
    Idle,
    /// A ClientHello is being reassembled.
    Pending(Box<Pending>),
    /// The ClientHello was read (or given up): nothing more to do.
    Done,
}

/// Counters of QUIC Initial processing.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicStats {
    /// Client Initial packets decrypted.
    pub initials: u64,
    /// Initial packets that did not decrypt with the client keys.
    pub undecryptable: u64,
    /// ClientHellos abandoned (caps, malformed CRYPTO data, memory budget).
    pub abandoned: u64,
    /// Datagrams that looked like client Initials but were shorter than
    /// [`quic::MIN_INITIAL_DATAGRAM`]: ignored, as a server would.
    pub short: u64,
}

impl QuicStats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, o: &QuicStats) {
        self.initials += o.initials;
        self.undecryptable += o.undecryptable;
        self.abandoned += o.abandoned;
        self.short += o.short;
    }
}

/// The client Initial keys of the last connection seen: consecutive
/// Initials of one connection share them.
#[derive(Debug)]
struct CachedKeys {
    conn: Conn,
    keys: InitialKeys,
}

/// Reusable buffers and the key cache, one per worker.
#[derive(Debug, Default)]
pub struct QuicScratch {
    plain: Vec<u8>,
    stream: CryptoStream,
    keys: Option<CachedKeys>,
    /// Counters.
    pub stats: QuicStats,
}

/// The client keys of (`version`, `dcid`), from the cache or derived.
fn cached_keys<'c>(
    cache: &'c mut Option<CachedKeys>,
    version: quic::Version,
    dcid: &[u8],
) -> Option<&'c InitialKeys> {
    if !cache.as_ref().is_some_and(|k| k.conn.is(version, dcid)) {
        *cache = Some(CachedKeys {
            conn: Conn::new(version, dcid),
            keys: InitialKeys::client(version, dcid)?,
        });
    }
    cache.as_ref().map(|k| &k.keys)
}

impl QuicState {
    /// Bytes held.
    pub fn memory(&self) -> usize {
        match self {
            QuicState::Pending(p) => p.memory(),
            _ => 0,
        }
    }

    /// Whether a ClientHello is being reassembled.
    pub fn is_pending(&self) -> bool {
        matches!(self, QuicState::Pending(_))
    }

    /// Frees the state (hello read, given up, or the conversation ended)
    /// and returns its memory to the budget.
    pub fn release(&mut self, budget: &mut MemBudget) {
        budget.used = budget.used.saturating_sub(self.memory());
        *self = QuicState::Done;
    }

    /// Processes one client-to-server datagram: decrypts its Initial
    /// packets, adds their CRYPTO frames to the stream, and emits the
    /// ClientHello once it is complete.
    pub fn datagram(
        &mut self,
        payload: &[u8],
        scratch: &mut QuicScratch,
        budget: &mut MemBudget,
        emit: &mut dyn FnMut(Observation<'_>),
    ) {
        if matches!(self, QuicState::Done) || !quic::may_be_initial(payload) {
            return;
        }
        let QuicScratch {
            plain,
            stream: tmp,
            keys: cache,
            stats,
        } = scratch;
        // A key derivation costs microseconds: a flood of tiny crafted
        // Initials must not buy one per 30 bytes on the wire.
        if payload.len() < quic::MIN_INITIAL_DATAGRAM {
            stats.short += 1;
            return;
        }
        let before = self.memory();
        let mut conn = match self {
            QuicState::Pending(p) => Some(p.conn),
            _ => None,
        };
        tmp.clear();
        let mut decrypted = false;
        let mut failed = false;
        let mut pos = 0usize;
        for _ in 0..MAX_COALESCED {
            let Some(rest) = payload.get(pos..).filter(|r| !r.is_empty()) else {
                break;
            };
            // Anything but a long header of a known version (padding, a
            // short-header packet) ends the datagram's long packets.
            let Ok(hdr) = quic::parse_long(rest) else {
                break;
            };
            pos += hdr.len;
            match hdr.ptype {
                PacketType::Initial => {}
                PacketType::Retry => break,
                PacketType::ZeroRtt | PacketType::Handshake => continue,
            }
            let (Some(packet), Some(keys)) = (
                rest.get(..hdr.len),
                cached_keys(cache, hdr.version, hdr.dcid),
            ) else {
                break;
            };
            let Ok((_, frames)) = quic::decrypt_initial(packet, &hdr, keys, plain) else {
                stats.undecryptable += 1;
                continue;
            };
            stats.initials += 1;
            decrypted = true;
            let this = Conn::new(hdr.version, hdr.dcid);
            let stream = match self {
                QuicState::Pending(p) => {
                    p.initials = p.initials.saturating_add(1);
                    &mut p.stream
                }
                _ => &mut *tmp,
            };
            if conn.is_some_and(|c| c != this) {
                // A new attempt: its ClientHello starts again at offset 0.
                stream.clear();
            }
            conn = Some(this);
            for f in quic::frames(frames, hdr.version) {
                match f {
                    Ok(Frame::Crypto { offset, data }) => {
                        if stream.insert(offset, data).is_err() {
                            failed = true;
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if failed {
                break;
            }
        }
        if let QuicState::Pending(p) = self
            && let Some(c) = conn
        {
            p.conn = c;
        }
        if !decrypted {
            return;
        }
        let mut finish = failed;
        if !failed {
            let stream = match self {
                QuicState::Pending(p) => &p.stream,
                _ => &*tmp,
            };
            match stream.hello() {
                Progress::Complete(msg) => {
                    match tls::parse_client_hello(msg) {
                        Ok(hello) => emit(Observation::QuicClientHello {
                            hello,
                            version: conn.map_or(quic::Version::V1, |c| c.version),
                        }),
                        Err(_) => stats.abandoned += 1,
                    }
                    finish = true;
                }
                Progress::Fail(_) => {
                    stats.abandoned += 1;
                    finish = true;
                }
                Progress::Need => match self {
                    QuicState::Pending(p) => {
                        if p.initials >= MAX_INITIALS {
                            stats.abandoned += 1;
                            finish = true;
                        }
                    }
                    _ => {
                        if let Some(conn) = conn.filter(|_| !tmp.is_empty()) {
                            *self = QuicState::Pending(Box::new(Pending {
                                conn,
                                stream: tmp.clone(),
                                initials: 1,
                            }));
                        }
                    }
                },
            }
        } else {
            stats.abandoned += 1;
        }
        // Account for growth, then let go when done or over the budget.
        budget.used = (budget.used + self.memory()).saturating_sub(before);
        if finish {
            self.release(budget);
        } else if budget.used > budget.cap {
            self.release(budget);
            budget.refusals += 1;
            stats.abandoned += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonehome_synth::quic::{FrameSpec, InitialSpec, V1, client_initial, crypto_pieces};
    use phonehome_synth::tls::{ClientHelloSpec, client_hello};

    const DCID: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08";

    fn hello() -> Vec<u8> {
        client_hello(&ClientHelloSpec {
            sni: Some("ds.kaspersky.com".into()),
            target_len: Some(1800),
            ..Default::default()
        })
    }

    fn initial(pn: u32, frames: Vec<FrameSpec>) -> Vec<u8> {
        client_initial(&InitialSpec::new(V1, DCID, b"", pn, frames))
    }

    /// Runs datagrams through one flow's state; returns the SNIs emitted.
    fn run(
        state: &mut QuicState,
        scratch: &mut QuicScratch,
        budget: &mut MemBudget,
        datagrams: &[Vec<u8>],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for d in datagrams {
            state.datagram(d, scratch, budget, &mut |o| {
                if let Observation::QuicClientHello { hello, .. } = o {
                    out.push(String::from_utf8_lossy(hello.sni.unwrap_or(b"")).into_owned());
                }
            });
            assert_eq!(budget.used, state.memory(), "budget tracks the state");
        }
        out
    }

    #[test]
    fn datagrams_under_1200_bytes_cost_no_key_derivation() {
        let h = hello();
        let frames = crypto_pieces(&h, &[300], &[]);
        let mut spec = InitialSpec::new(V1, DCID, b"", 0, vec![frames[0].clone()]);
        spec.min_len = 0;
        let short = client_initial(&spec);
        assert!(short.len() < quic::MIN_INITIAL_DATAGRAM);
        let (mut s, mut scratch, mut budget) = (
            QuicState::Idle,
            QuicScratch::default(),
            MemBudget::new(1 << 20),
        );
        run(
            &mut s,
            &mut scratch,
            &mut budget,
            std::slice::from_ref(&short),
        );
        assert_eq!(scratch.stats.short, 1);
        assert_eq!(scratch.stats.initials, 0, "not decrypted");
        assert!(scratch.keys.is_none(), "no keys derived");
        // The same frames padded to 1200 bytes are read.
        let padded = initial(0, vec![frames[0].clone()]);
        run(&mut s, &mut scratch, &mut budget, &[padded]);
        assert_eq!(scratch.stats.initials, 1);
    }

    #[test]
    fn a_hello_over_two_datagrams_keeps_state_only_in_between() {
        let h = hello();
        let pieces = crypto_pieces(&h, &[900], &[]);
        let (mut s, mut scratch, mut budget) = (
            QuicState::Idle,
            QuicScratch::default(),
            MemBudget::new(1 << 20),
        );
        let got = run(
            &mut s,
            &mut scratch,
            &mut budget,
            &[initial(1, vec![pieces[1].clone()])],
        );
        assert!(got.is_empty());
        assert!(s.is_pending() && s.memory() > 0);
        let got = run(
            &mut s,
            &mut scratch,
            &mut budget,
            &[initial(0, vec![pieces[0].clone()])],
        );
        assert_eq!(got, ["ds.kaspersky.com"]);
        assert!(matches!(s, QuicState::Done));
        assert_eq!(budget.used, 0);
        // Later Initials (a retransmission) are not read again.
        let again = initial(2, vec![FrameSpec::Crypto { offset: 0, data: h }]);
        assert!(run(&mut s, &mut scratch, &mut budget, &[again]).is_empty());
        assert_eq!(scratch.stats.initials, 2);
    }

    #[test]
    fn a_hello_that_never_completes_is_abandoned_after_max_initials() {
        let h = hello();
        let (mut s, mut scratch, mut budget) = (
            QuicState::Idle,
            QuicScratch::default(),
            MemBudget::new(1 << 20),
        );
        // Byte 0 never arrives; every other piece keeps coming.
        let dgrams: Vec<Vec<u8>> = (1..60u32)
            .map(|pn| {
                let off = pn as usize;
                initial(
                    pn,
                    vec![FrameSpec::Crypto {
                        offset: off as u64,
                        data: h[off..off + 1].to_vec(),
                    }],
                )
            })
            .collect();
        assert!(run(&mut s, &mut scratch, &mut budget, &dgrams).is_empty());
        assert!(matches!(s, QuicState::Done));
        assert_eq!(scratch.stats.initials, u64::from(MAX_INITIALS));
        assert_eq!(scratch.stats.abandoned, 1);
        assert_eq!(budget.used, 0);
    }

    #[test]
    fn the_memory_budget_refuses_state_and_counts_it() {
        let h = hello();
        let pieces = crypto_pieces(&h, &[900], &[]);
        let (mut s, mut scratch, mut budget) =
            (QuicState::Idle, QuicScratch::default(), MemBudget::new(256));
        run(
            &mut s,
            &mut scratch,
            &mut budget,
            &[initial(1, vec![pieces[1].clone()])],
        );
        assert!(matches!(s, QuicState::Done));
        assert_eq!((budget.used, budget.refusals), (0, 1));
        // A hello in one datagram needs no state and passes whatever the budget.
        let mut s = QuicState::Idle;
        let whole = initial(0, vec![FrameSpec::Crypto { offset: 0, data: h }]);
        assert_eq!(
            run(&mut s, &mut scratch, &mut budget, &[whole]),
            ["ds.kaspersky.com"]
        );
    }

    #[test]
    fn mutated_initials_never_panic_and_never_leak_budget() {
        let h = hello();
        let base = initial(0, crypto_pieces(&h, &[300, 700], &[2, 0, 1]));
        let mut rng = phonehome_synth::rng::Rng::new(7);
        let mut scratch = QuicScratch::default();
        let mut budget = MemBudget::new(1 << 20);
        for _ in 0..3000 {
            let mut d = base.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(d.len() as u64) as usize;
                d[i] ^= 1 << rng.below(8);
            }
            if rng.below(4) == 0 {
                d.truncate(rng.below(d.len() as u64) as usize);
            }
            let mut s = QuicState::Idle;
            run(&mut s, &mut scratch, &mut budget, &[d]);
            s.release(&mut budget);
            assert_eq!(budget.used, 0);
        }
        // Header bytes are authenticated: most mutations fail to decrypt.
        assert!(scratch.stats.undecryptable > 1000, "{:?}", scratch.stats);
    }
}
