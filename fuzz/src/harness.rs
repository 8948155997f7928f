//! The fuzz harness: one function per entry point that reads untrusted
//! bytes, each taking the fuzzer's input as it is.
//!
//! This file is compiled twice: by the cargo-fuzz package in `fuzz/` (one
//! libFuzzer target per function) and, on stable, by the integration tests
//! (`tests/fuzz_regressions.rs` replays every input kept in
//! `fuzz/regressions/TARGET/` through [`run`]), so a crash, once fixed,
//! stays fixed without a nightly toolchain. It depends on nothing but the
//! `phonehome` library and std.
//!
//! Structured targets (`defrag`, `tcp_stream`, `engine`) cut the input into
//! records; [`encode_frames`] and [`encode_tcp`] write that format, so seeds
//! can be made from real captures (`examples/fuzz_seeds.rs`).

#![allow(dead_code)]

use phonehome::analyze::{Engine, Limits};
use phonehome::capture::{CaptureFile, Frame, Timestamp, linktype};
use phonehome::decode::defrag::{DefragLimits, Defragmenter};
use phonehome::decode::{self, Decoded};
use phonehome::feeds::{self, Intel};
use phonehome::flow::FlowLimits;
use phonehome::hosts::HostLimits;
use phonehome::hosts::pdns::PdnsLimits;
use phonehome::output::events::EventLog;
use phonehome::output::{Report, Summary};
use phonehome::protocols::quic::{self as q, CryptoStream, Frame as QuicFrame, Progress, Version};
use phonehome::protocols::{dns, http, tls};
use phonehome_synth::quic as sq;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and of the
/// folders under `fuzz/regressions/` and `fuzz/corpus/`).
pub const TARGETS: &[&str] = &[
    "decode",
    "defrag",
    "dns",
    "tls",
    "http",
    "tcp_stream",
    "engine",
    "pcap",
    "pcapng",
    "feeds",
    "quic",
    "mmdb",
];

/// Runs the target called `name` on `data`. Returns `false` for an unknown
/// name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "decode" => decode_frame(data),
        "defrag" => defrag(data),
        "dns" => dns_message(data),
        "tls" => tls_hello(data),
        "http" => http_head(data),
        "tcp_stream" => tcp_stream(data),
        "engine" => engine(data),
        "pcap" => capture_file(data, PCAP_MAGIC),
        "pcapng" => capture_file(data, PCAPNG_MAGIC),
        "feeds" => feed_file(data),
        "quic" => quic(data),
        "mmdb" => mmdb(data),
        _ => return false,
    }
    true
}

/// The link types a fuzz input can pick (by index, modulo the length).
pub const LINKTYPES: &[u32] = &[
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NFLOG,
    linktype::RAW_14,
    linktype::RAW_OPENBSD,
];

fn pick_linktype(b: u8) -> u32 {
    LINKTYPES
        .get(usize::from(b) % LINKTYPES.len())
        .copied()
        .unwrap_or(linktype::ETHERNET)
}

/// Frame decode: the first byte picks the link type, the rest is the frame.
/// A fragment goes through a reassembler, and a reassembled datagram through
/// the upper-layer decoder, as the engine does.
pub fn decode_frame(data: &[u8]) {
    let Some((&lt, frame)) = data.split_first() else {
        return;
    };
    let mut d = Defragmenter::new(DefragLimits::default());
    decode_one(&mut d, Timestamp(0), pick_linktype(lt), frame);
}

fn decode_one(d: &mut Defragmenter, ts: Timestamp, lt: u32, frame: &[u8]) {
    match decode::decode(lt, frame) {
        Decoded::Packet(p) => touch_packet(&p),
        Decoded::Fragment(f) => {
            if let Some(r) = d.push(ts, &f)
                && let Decoded::Packet(p) =
                    decode::decode_reassembled(r.link, r.src, r.dst, r.proto, r.payload)
            {
                touch_packet(&p);
            }
        }
        Decoded::Malformed(e) => {
            // The error must be printable without panicking.
            let _ = e.to_string();
        }
        Decoded::NotIp | Decoded::UnsupportedLink(_) => {}
    }
}

fn touch_packet(p: &decode::Packet<'_>) {
    if let decode::Transport::Tcp(s) = p.transport {
        std::hint::black_box(s.payload.len());
    }
}

/// Reads records `[delta-seconds u8][linktype index u8][length u16 LE][bytes]`
/// until the input ends (a cut last record keeps what is present).
pub fn frames(data: &[u8]) -> impl Iterator<Item = (i64, u32, &[u8])> {
    let mut rest = data;
    let mut secs = 1_500_000_000i64;
    std::iter::from_fn(move || {
        let (hdr, tail) = rest.split_at_checked(4)?;
        let len = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
        let (frame, tail) = tail.split_at_checked(len).unwrap_or((tail, &[]));
        rest = tail;
        secs += i64::from(hdr[0]);
        Some((secs, pick_linktype(hdr[1]), frame))
    })
}

/// Writes frames in the format [`frames`] reads (for seeds).
pub fn encode_frames<'a>(items: impl IntoIterator<Item = (u8, u32, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (dt, lt, data) in items {
        let idx = LINKTYPES.iter().position(|l| *l == lt).unwrap_or(0);
        let len = data.len().min(usize::from(u16::MAX));
        out.push(dt);
        out.push(idx as u8);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&data[..len]);
    }
    out
}

/// IP reassembly: a sequence of frames into one small reassembler (so its
/// caps and eviction are reached), each reassembled datagram decoded.
pub fn defrag(data: &[u8]) {
    let limits = DefragLimits {
        max_datagrams: 8,
        max_bytes: 96 * 1024,
        timeout_secs: 30,
    };
    let mut d = Defragmenter::new(limits);
    for (secs, lt, frame) in frames(data) {
        decode_one(&mut d, Timestamp::from_parts(secs, 0), lt, frame);
        assert!(d.in_flight() <= limits.max_datagrams, "defrag cap exceeded");
    }
}

/// DNS: one message into a reused arena, twice (the second parse must not
/// see the first one's leftovers), with every name read back.
pub fn dns_message(data: &[u8]) {
    let mut m = dns::DnsMessage::default();
    let _ = dns::plausible(data);
    for _ in 0..2 {
        if m.parse(data) {
            for q in &m.questions {
                assert!(m.text(&q.name).len() <= 4 * 255, "name cap");
            }
            for a in &m.answers {
                let _ = m.text(&a.name);
            }
            let _ = m.qname();
        }
    }
    assert!(
        m.questions.len() <= 16 && m.answers.len() <= 256,
        "count caps"
    );
    // A clean walk vouches only for what the parser reads cleanly (the
    // engine then counts the message without parsing it).
    if dns::clean_name_tails(data, |_, _| false) == Some(false) {
        assert!(m.parse(data), "vouched for a message the parser rejects");
        assert!(!m.anomalies.any(), "vouched for a message with anomalies");
    }
    // The passive-DNS prefilter's wire walk is sound: when it walks the
    // whole message, every question and CNAME target name the parser
    // decodes ends in two labels the walk saw.
    let mut tails = Vec::new();
    let walked = dns::name_tails(data, |a, b| {
        tails.push([a, b"." as &[u8], b].concat().to_ascii_lowercase());
        false
    });
    if walked == Some(false) && m.parse(data) {
        let cnames = m.answers.iter().filter_map(|a| match &a.data {
            dns::AnswerData::Cname(t) => Some(m.text(t)),
            _ => None,
        });
        for name in m.questions.iter().map(|q| m.text(&q.name)).chain(cnames) {
            let parts: Vec<&str> = name.rsplitn(3, '.').collect();
            if let [last, second, ..] = parts[..]
                && !last.contains('\\')
                && !second.contains('\\')
            {
                let tail = format!("{second}.{last}").to_ascii_lowercase().into_bytes();
                assert!(tails.contains(&tail), "{name} not walked");
            }
        }
    }
}

/// TLS: record reassembly of a ClientHello from a stream prefix, then the
/// hello parser; also the parser on the raw input.
pub fn tls_hello(data: &[u8]) {
    let _ = tls::starts_client_hello(data);
    let mut scratch = Vec::new();
    if let tls::Assembly::Complete(msg) = tls::assemble(data, &mut scratch) {
        touch_hello(tls::parse_client_hello(msg));
    }
    touch_hello(tls::parse_client_hello(data));
}

fn touch_hello(h: Result<tls::ClientHello<'_>, tls::HelloError>) {
    if let Ok(h) = h {
        std::hint::black_box(h.alpn_protocols().count());
        let mut s = String::new();
        if let Some(sni) = h.sni {
            phonehome::protocols::escape_name(sni, &mut s);
        }
    }
}

/// HTTP: request and response heads, chunk sizes, header lines, media types.
pub fn http_head(data: &[u8]) {
    let _ = http::starts_request(data);
    let _ = http::starts_response(data);
    if let http::Parsed::Done(r) = http::parse_request(data) {
        assert!(r.head_len <= data.len());
    }
    for head in [false, true] {
        if let http::Parsed::Done(r) = http::parse_response(data, head) {
            let mut s = String::new();
            if let Some(ct) = r.content_type {
                http::media_type(ct, &mut s);
            }
        }
    }
    let _ = http::parse_chunk_size(data);
    let _ = http::line_len(data);
    let mut s = String::new();
    http::media_type(data, &mut s);
}

/// Engine limits small enough for a fuzz input to reach every cap.
pub fn small_limits() -> Limits {
    Limits {
        flows: FlowLimits {
            max_flows: 64,
            tcp_idle_secs: 300,
            tcp_closed_secs: 10,
            udp_idle_secs: 60,
        },
        defrag: DefragLimits {
            max_datagrams: 16,
            max_bytes: 256 * 1024,
            timeout_secs: 30,
        },
        pdns: PdnsLimits {
            max_entries: 64,
            grace_secs: 3600,
        },
        hosts: HostLimits { max_hosts: 32 },
        stream_memory: 512 * 1024,
    }
}

fn intel() -> Arc<Intel> {
    static INTEL: OnceLock<Arc<Intel>> = OnceLock::new();
    Arc::clone(INTEL.get_or_init(|| {
        // The built-in feeds are compiled in and checked by the unit tests;
        // an empty feed set would still exercise every parser.
        let feeds = feeds::load(None).unwrap_or_default();
        Arc::new(Intel::new(feeds))
    }))
}

fn run_engine<'a>(frames: impl Iterator<Item = (i64, u32, &'a [u8])>) {
    let intel = intel();
    let mut engine = Engine::new(Arc::clone(&intel), Vec::new(), &small_limits());
    let mut log = EventLog::new(std::io::sink());
    for (secs, lt, data) in frames {
        let frame = Frame {
            ts: Timestamp::from_parts(secs, 0),
            linktype: lt,
            data,
            orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            mapped: None,
        };
        engine.process(&frame, &mut log);
    }
    engine.finish(&mut log);
    let report = Report::new(Summary::default(), &engine.analysis.hosts, &intel);
    std::hint::black_box(phonehome::output::table::render(&report).len());
    let _ = log.finish();
}

/// The whole per-packet pipeline (decode, defrag, flows, TCP reassembly,
/// DNS/TLS/HTTP, attribution, event log, report) over a frame sequence.
pub fn engine(data: &[u8]) {
    run_engine(frames(data));
}

/// One TCP connection between fixed endpoints, built from records
/// `[control u8][seq u32 LE][length u8][payload]`: control bit 0 is the
/// direction (client→server when 0), bits 1–5 the TCP flags
/// FIN, SYN, RST, PSH, ACK; bits 6–7 choose the server port (443, 80, 53,
/// 8080). `seq` is relative to each side's initial sequence number. The
/// segments become raw IPv4 packets and go through the whole engine, so TCP
/// reassembly, the stream state machine and the parsers see them in order,
/// out of order, overlapping, with gaps and after wrap-around.
pub fn tcp_stream(data: &[u8]) {
    let Some(&port_sel) = data.first() else {
        return;
    };
    let sport = 40_000u16;
    let dport = [443u16, 80, 53, 8080][usize::from(port_sel >> 6)];
    let isn = [0xffff_f000u32, 0x1000_0000u32];
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while let Some((hdr, tail)) = rest.split_at_checked(6) {
        let len = usize::from(hdr[5]);
        let (payload, tail) = tail.split_at_checked(len).unwrap_or((tail, &[]));
        rest = tail;
        let to_client = hdr[0] & 1 != 0;
        let flags = (hdr[0] >> 1) & 0x1f;
        // Bits FIN SYN RST PSH ACK map onto the TCP header's low five bits.
        let seq = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]])
            .wrapping_add(isn[usize::from(to_client)]);
        let (src, dst, sp, dp) = if to_client {
            ([10, 0, 0, 2], [10, 0, 0, 1], dport, sport)
        } else {
            ([10, 0, 0, 1], [10, 0, 0, 2], sport, dport)
        };
        packets.push(ipv4_tcp(src, dst, sp, dp, seq, flags, payload));
        if packets.len() >= 256 {
            break;
        }
    }
    run_engine(
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| (1_500_000_000 + i as i64 / 4, linktype::RAW, p.as_slice())),
    );
}

/// Writes one TCP record for [`tcp_stream`] (for seeds).
pub fn encode_tcp(out: &mut Vec<u8>, to_client: bool, flags: u8, rel_seq: u32, payload: &[u8]) {
    let mut payload = payload;
    let mut seq = rel_seq;
    loop {
        let n = payload.len().min(255);
        out.push(u8::from(to_client) | ((flags & 0x1f) << 1));
        out.extend_from_slice(&seq.to_le_bytes());
        out.push(n as u8);
        out.extend_from_slice(&payload[..n]);
        payload = &payload[n..];
        seq = seq.wrapping_add(n as u32);
        if payload.is_empty() {
            break;
        }
    }
}

/// A raw IPv4 + TCP packet (checksums are not checked by the decoder).
pub fn ipv4_tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

const PCAP_MAGIC: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Frames read from one capture file at most (bounds a fuzz run's time).
const MAX_FRAMES: usize = 4096;

/// A capture file read through the stream window, every frame decoded. Unless
/// the input is already a pcap, pcapng or gzip file, its first four bytes are
/// replaced by `magic`, so that mutations reach the container parser.
pub fn capture_file(data: &[u8], magic: [u8; 4]) {
    let mut bytes = data.to_vec();
    let known = data.starts_with(&PCAP_MAGIC)
        || data.starts_with(&[0xa1, 0xb2, 0xc3, 0xd4])
        || data.starts_with(&[0x4d, 0x3c, 0xb2, 0xa1])
        || data.starts_with(&[0xa1, 0xb2, 0x3c, 0x4d])
        || data.starts_with(&PCAPNG_MAGIC)
        || data.starts_with(&[0x1f, 0x8b]);
    if !known && let Some(head) = bytes.get_mut(..4) {
        head.copy_from_slice(&magic);
    }
    let Ok(mut file) = CaptureFile::from_reader("fuzz", Box::new(Cursor::new(bytes))) else {
        return;
    };
    let mut d = Defragmenter::new(DefragLimits::default());
    for _ in 0..MAX_FRAMES {
        match file.advance() {
            Ok(true) => {
                if let Some(f) = file.frame() {
                    decode_one(&mut d, f.ts, f.linktype, f.data);
                }
            }
            Ok(false) => break,
            Err(e) => {
                // Every error names an offset and prints.
                assert!(e.offset().is_some());
                let _ = e.to_string();
                break;
            }
        }
    }
}

/// A feed file: validation, then the compiled matcher queried with names and
/// addresses taken from the input.
pub fn feed_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match feeds::check_text("fuzz.toml", &text) {
        Ok(f) => {
            let intel = Intel::new(f);
            let m = &intel.matcher;
            for word in text.split(|c: char| c.is_whitespace() || c == '"').take(64) {
                let _ = m.name(word);
                if let Ok(a) = word.parse() {
                    let _ = m.addr(a);
                }
                let _ = m.user_agent(word);
                let _ = m.path(word);
                let _ = m.content_type(word);
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
}

/// QUIC: the input as a datagram (long header, Initial keys from its DCID,
/// header protection, AEAD — which fails on anything the fuzzer makes, so
/// the paths before it are what is tested); as decrypted Initial frames
/// (frame parser, CRYPTO reassembly, the hello inside); and as CRYPTO data
/// cut into pieces, protected with the real Initial keys (synth) and sent
/// through the whole engine, so decryption succeeds and the reassembly and
/// hello parser see the fuzzer's bytes. The first byte picks the version
/// (bit 0) and how the CRYPTO data is cut (the rest).
pub fn quic(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(d) = rest.get(at..).filter(|d| !d.is_empty()) {
        let Ok(h) = q::parse_long(d) else { break };
        if let (Some(keys), Some(pkt)) = (q::InitialKeys::client(h.version, h.dcid), d.get(..h.len))
        {
            let _ = q::decrypt_initial(pkt, &h, &keys, &mut out);
        }
        at += h.len.max(1);
    }
    let version = if sel & 1 == 0 { sq::V1 } else { sq::V2 };
    let mut stream = CryptoStream::default();
    for f in q::frames(rest, Version(version)) {
        match f {
            Ok(QuicFrame::Crypto { offset, data }) => {
                let _ = stream.insert(offset, data);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Progress::Complete(h) = stream.hello() {
        touch_hello(tls::parse_client_hello(h));
    }
    // Cut the bytes into up to 8 CRYPTO frames, sent in reverse order when
    // bit 1 is set, two per Initial packet.
    let cut = usize::from(sel >> 2).max(1) * 16;
    let mut pieces: Vec<sq::FrameSpec> = rest
        .chunks(cut)
        .take(8)
        .scan(0u64, |off, c| {
            let f = sq::FrameSpec::Crypto {
                offset: *off,
                data: c.to_vec(),
            };
            *off += c.len() as u64;
            Some(f)
        })
        .collect();
    if sel & 2 != 0 {
        pieces.reverse();
    }
    let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
    let mut frames_ip = Vec::new();
    for (n, two) in pieces.chunks(2).enumerate() {
        let spec = sq::InitialSpec::new(version, &dcid, &[1, 2, 3, 4], n as u32, two.to_vec());
        let udp = udp_datagram(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            50_000,
            443,
            &sq::client_initial(&spec),
        );
        frames_ip.push(udp);
    }
    run_engine(
        frames_ip
            .iter()
            .map(|p| (1_500_000_000, linktype::RAW, p.as_slice())),
    );
}

/// A raw IPv4 + UDP packet (checksum 0).
fn udp_datagram(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A MaxMind DB file (GeoIP2 City/Country, flat city, ASN) opened from
/// hostile bytes, then looked up: addresses from both families, including
/// ones a truncated search tree or a record pointing anywhere would reach.
pub fn mmdb(data: &[u8]) {
    let Ok(db) = phonehome::geo::Database::from_bytes(data.to_vec(), std::path::Path::new("fuzz"))
    else {
        return;
    };
    let _ = (db.kind(), db.database_type().len(), db.build_epoch());
    for ip in [
        "1.1.1.1",
        "93.159.228.2",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        let Ok(ip) = ip.parse() else { continue };
        if let Ok(Some(p)) = db.place(ip) {
            std::hint::black_box(p.to_place());
        }
        let _ = db.asn(ip);
    }
}
