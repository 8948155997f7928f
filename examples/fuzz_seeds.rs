//! Writes the seed corpora of the fuzz targets from the real captures.
//!
//! `cargo run --example fuzz_seeds -- OUT_DIR [CAPTURES_DIR]` (run by
//! `fuzz/run.sh`): for each target a folder `OUT_DIR/TARGET/` of inputs cut
//! from `captures/corpus` and the demo capture — whole small files for the
//! pcap/pcapng readers, frames for decode and the engine, fragments for
//! defrag, UDP/TCP payloads for the DNS, TLS and HTTP parsers, each TCP
//! connection for `tcp_stream`, and the built-in feed files for `feeds`.

#![forbid(unsafe_code)]

#[path = "../fuzz/src/harness.rs"]
mod harness;

use phonehome::capture::{CaptureFile, Format, find_captures};
use phonehome::decode::{self, Decoded, Transport};
use phonehome::protocols::{http, quic, tls};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Largest whole capture used as a seed (bigger ones are cut to this).
const MAX_FILE_SEED: usize = 64 * 1024;
/// Largest engine seed (frame sequences are split into pieces of this size).
const MAX_ENGINE_SEED: usize = 32 * 1024;
/// At most this many seeds per target from one capture.
const PER_FILE: usize = 40;

struct Seeds {
    out: PathBuf,
    seen: HashSet<(String, Vec<u8>)>,
    counts: HashMap<String, usize>,
}

impl Seeds {
    fn add(&mut self, target: &str, data: &[u8], name: &str) {
        if data.is_empty() || !self.seen.insert((target.to_string(), data.to_vec())) {
            return;
        }
        let dir = self.out.join(target);
        let n = self.counts.entry(target.to_string()).or_default();
        *n += 1;
        let file = dir.join(format!("{name}-{n:05}"));
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, data)) {
            eprintln!("{}: {e}", file.display());
        }
    }
}

type ConnKey = (IpAddr, u16, IpAddr, u16);

/// One TCP connection's segments, for `tcp_stream`.
#[derive(Default)]
struct Conn {
    isn: [Option<u32>; 2],
    records: Vec<u8>,
    segments: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: fuzz_seeds OUT_DIR [CAPTURES_DIR]");
        std::process::exit(2);
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let captures = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("captures"));
    let mut seeds = Seeds {
        out: PathBuf::from(out),
        seen: HashSet::new(),
        counts: HashMap::new(),
    };
    let files = find_captures(&[captures]).unwrap_or_default();
    for path in &files {
        seed_capture(&mut seeds, path);
    }
    // MaxMind DB files: the test databases, good and broken (small ones).
    let mut mmdbs = vec![root.join("tests/data/maxmind")];
    while let Some(dir) = mmdbs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                mmdbs.push(p);
            } else if p.extension().is_some_and(|x| x == "mmdb")
                && let Ok(b) = std::fs::read(&p)
                && b.len() <= 256 * 1024
            {
                seeds.add("mmdb", &b, "mmdb");
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir(root.join("feeds")) {
        for e in dir.flatten() {
            if e.path().extension().is_some_and(|x| x == "toml")
                && let Ok(b) = std::fs::read(e.path())
            {
                seeds.add("feeds", &b, "feed");
            }
        }
    }
    let mut counts: Vec<_> = seeds.counts.into_iter().collect();
    counts.sort();
    for (t, n) in counts {
        println!("{t}: {n} seeds");
    }
}

fn seed_capture(seeds: &mut Seeds, path: &Path) {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("capture")
        .split("__")
        .last()
        .unwrap_or("capture")
        .replace('.', "_");
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let Ok(mut file) = CaptureFile::open(path) else {
        return;
    };
    let target = match file.format() {
        Format::Pcap => "pcap",
        Format::PcapNg => "pcapng",
    };
    seeds.add(target, &bytes[..bytes.len().min(MAX_FILE_SEED)], &stem);

    let mut per: HashMap<&str, usize> = HashMap::new();
    let mut take = |t: &'static str| {
        let n = per.entry(t).or_default();
        *n += 1;
        *n <= PER_FILE
    };
    let mut engine: Vec<u8> = Vec::new();
    let mut frags: Vec<u8> = Vec::new();
    let mut conns: HashMap<ConnKey, Conn> = HashMap::new();
    let mut last_secs: Option<i64> = None;
    while let Ok(true) = file.advance() {
        let Some(f) = file.frame() else { break };
        let dt = last_secs.map_or(0, |l| (f.ts.secs() - l).clamp(0, 255) as u8);
        last_secs = Some(f.ts.secs());
        let framed = harness::encode_frames([(dt, f.linktype, f.data)]);
        if engine.len() + framed.len() > MAX_ENGINE_SEED && !engine.is_empty() {
            if take("engine") {
                seeds.add("engine", &engine, &stem);
            }
            engine.clear();
        }
        engine.extend_from_slice(&framed);
        if take("decode") {
            let mut d = vec![framed[1]];
            d.extend_from_slice(f.data);
            seeds.add("decode", &d, &stem);
        }
        match decode::decode(f.linktype, f.data) {
            Decoded::Fragment(_) => frags.extend_from_slice(&framed),
            Decoded::Packet(p) => match p.transport {
                Transport::Udp(u) if quic::may_be_initial(u.payload) && take("quic") => {
                    // Selector 0: version 1, CRYPTO cut every 16 bytes.
                    let mut d = vec![0u8];
                    d.extend_from_slice(u.payload);
                    seeds.add("quic", &d, &stem);
                }
                Transport::Udp(u)
                    if ([53, 5353, 5355].contains(&u.sport)
                        || [53, 5353, 5355].contains(&u.dport))
                        && take("dns") =>
                {
                    seeds.add("dns", u.payload, &stem);
                }
                Transport::Tcp(s) => {
                    let pl = s.payload;
                    if tls::starts_client_hello(pl) == Some(true) && take("tls") {
                        seeds.add("tls", pl, &stem);
                        // The handshake message as QUIC CRYPTO data (version
                        // 1, cut every 256 bytes, sent out of order).
                        let mut d = vec![0x42u8];
                        d.extend_from_slice(pl.get(5..).unwrap_or_default());
                        seeds.add("quic", &d, &stem);
                    }
                    if (http::starts_request(pl) == Some(true)
                        || http::starts_response(pl) == Some(true))
                        && take("http")
                    {
                        seeds.add("http", pl, &stem);
                    }
                    if (s.sport == 53 || s.dport == 53) && pl.len() > 2 && take("dns") {
                        seeds.add("dns", &pl[2..], &stem);
                    }
                    add_segment(&mut conns, &p, &s);
                }
                _ => {}
            },
            _ => {}
        }
    }
    if !engine.is_empty() {
        seeds.add("engine", &engine, &stem);
    }
    if !frags.is_empty() {
        seeds.add("defrag", &frags[..frags.len().min(MAX_ENGINE_SEED)], &stem);
    }
    let mut conns: Vec<_> = conns.into_values().filter(|c| c.segments > 1).collect();
    conns.sort_by_key(|c| std::cmp::Reverse(c.segments));
    for c in conns.into_iter().take(PER_FILE) {
        seeds.add(
            "tcp_stream",
            &c.records[..c.records.len().min(16 * 1024)],
            &stem,
        );
    }
}

fn add_segment(
    conns: &mut HashMap<ConnKey, Conn>,
    p: &decode::Packet<'_>,
    s: &decode::TcpSegment<'_>,
) {
    let fwd = (p.src, s.sport, p.dst, s.dport);
    let rev = (p.dst, s.dport, p.src, s.sport);
    let (key, to_client) = if conns.contains_key(&rev) {
        (rev, true)
    } else {
        (fwd, false)
    };
    let c = conns.entry(key).or_default();
    if c.segments == 0 {
        // The first record's top bits choose the server port in the harness.
        let sel = match key.3 {
            443 => 0u8,
            80 => 1,
            53 => 2,
            _ => 3,
        };
        let mut first = Vec::new();
        let isn = *c.isn[usize::from(to_client)].get_or_insert(s.seq);
        harness::encode_tcp(
            &mut first,
            to_client,
            s.flags,
            s.seq.wrapping_sub(isn),
            s.payload,
        );
        if let Some(b) = first.first_mut() {
            *b |= sel << 6;
        }
        c.records = first;
    } else {
        let isn = *c.isn[usize::from(to_client)].get_or_insert(s.seq);
        harness::encode_tcp(
            &mut c.records,
            to_client,
            s.flags,
            s.seq.wrapping_sub(isn),
            s.payload,
        );
    }
    c.segments += 1;
}
