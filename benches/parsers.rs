//! Micro-benchmarks of the per-packet work, in nanoseconds per operation:
//! frame decode, DNS parse, ClientHello SNI extraction, QUIC Initial
//! decryption, feed name (suffix) match and address (CIDR) lookup. Inputs
//! are real frames from `captures/`, loaded once outside the timed loops.
//! Also the beacon state: one connection start pushed (with its streaming
//! check, rings full) and one full score of 512 sessions.
//!
//! Run: `cargo bench --bench parsers`.

#![forbid(unsafe_code)]

use criterion::{Criterion, criterion_group, criterion_main};
use phonehome::beacons::Beacons;
use phonehome::capture::{CaptureFile, Timestamp};
use phonehome::decode::{self, Decoded, Transport};
use phonehome::feeds::{self, Intel};
use phonehome::flow::quic::{QuicScratch, QuicState};
use phonehome::flow::tcp::MemBudget;
use phonehome::protocols::{dns::DnsMessage, quic, tls};
use std::hint::black_box;
use std::path::Path;

/// Every frame of a capture, with its link type.
fn frames(name: &str) -> Vec<(u32, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    let mut f = CaptureFile::open(&path).expect("capture");
    let mut out = Vec::new();
    while f.advance().expect("readable") {
        if let Some(fr) = f.frame() {
            out.push((fr.linktype, fr.data.to_vec()));
        }
    }
    out
}

/// Every UDP payload of a capture.
fn udp_payloads(name: &str) -> Vec<Vec<u8>> {
    frames(name)
        .iter()
        .filter_map(|(lt, f)| match decode::decode(*lt, f) {
            Decoded::Packet(p) => match p.transport {
                Transport::Udp(u) => Some(u.payload.to_vec()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// UDP payloads (port 53) of a capture.
fn dns_payloads(name: &str) -> Vec<Vec<u8>> {
    frames(name)
        .iter()
        .filter_map(|(lt, f)| match decode::decode(*lt, f) {
            Decoded::Packet(p) => match p.transport {
                Transport::Udp(u) if u.sport == 53 || u.dport == 53 => Some(u.payload.to_vec()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let demo = frames("demo.pcapng");
    c.bench_function("decode/frame (demo mix)", |b| {
        let mut i = 0;
        b.iter(|| {
            let (lt, f) = &demo[i % demo.len()];
            i += 1;
            black_box(decode::decode(*lt, black_box(f)));
        })
    });

    let dns = dns_payloads("corpus/pcapplusplus__DnsPackets.pcap");
    let mut msg = DnsMessage::default();
    c.bench_function("dns/parse message", |b| {
        let mut i = 0;
        b.iter(|| {
            let p = &dns[i % dns.len()];
            i += 1;
            black_box(msg.parse(black_box(p)));
        })
    });

    let hello = {
        let spec = phonehome_synth::tls::ClientHelloSpec {
            sni: Some("ksn-file-geo.kaspersky-labs.com".into()),
            target_len: Some(1800),
            ..Default::default()
        };
        phonehome_synth::tls::records(&phonehome_synth::tls::client_hello(&spec), 16384)
    };
    let mut scratch = Vec::new();
    c.bench_function("tls/ClientHello SNI (1.8 kB)", |b| {
        b.iter(|| match tls::assemble(black_box(&hello), &mut scratch) {
            tls::Assembly::Complete(m) => black_box(
                tls::parse_client_hello(m)
                    .ok()
                    .and_then(|h| h.sni)
                    .map(<[u8]>::len),
            ),
            _ => None,
        })
    });

    // A real client Initial (curl 8.1.2 to www.google.de, v1, 1200 bytes).
    let initial = udp_payloads("corpus/zeek__quic__curl-8.1.2-dev-http3-www-google-de.pcap")
        .into_iter()
        .find(|p| quic::may_be_initial(p))
        .expect("a client Initial");
    let mut plain = Vec::new();
    let mut stream = quic::CryptoStream::default();
    c.bench_function("quic/Initial: derive keys, decrypt, SNI (1200 B)", |b| {
        b.iter(|| {
            let p = black_box(&initial[..]);
            let hdr = quic::parse_long(p).ok()?;
            let keys = quic::InitialKeys::client(hdr.version, hdr.dcid)?;
            let (_, payload) =
                quic::decrypt_initial(p.get(..hdr.len)?, &hdr, &keys, &mut plain).ok()?;
            stream.clear();
            for f in quic::frames(payload, hdr.version) {
                if let Ok(quic::Frame::Crypto { offset, data }) = f {
                    stream.insert(offset, data).ok()?;
                }
            }
            match stream.hello() {
                quic::Progress::Complete(m) => {
                    tls::parse_client_hello(m).ok()?.sni.map(<[u8]>::len)
                }
                _ => None,
            }
        })
    });
    let mut qscratch = QuicScratch::default();
    let mut budget = MemBudget::new(1 << 20);
    c.bench_function("quic/Initial via flow state (keys cached)", |b| {
        b.iter(|| {
            let mut state = QuicState::Idle;
            let mut n = 0usize;
            state.datagram(black_box(&initial), &mut qscratch, &mut budget, &mut |_| {
                n += 1
            });
            n
        })
    });
    let dns = dns_payloads("corpus/pcapplusplus__DnsPackets.pcap");
    c.bench_function("quic/hot-path filter on a non-QUIC payload", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            quic::may_be_initial(black_box(&dns[i % dns.len()]))
        })
    });

    let intel = Intel::new(feeds::load(None).expect("built-in feeds"));
    let names = [
        "ksn-file-geo.kaspersky-labs.com",
        "www.wikipedia.org",
        "s12.upd.kaspersky.com",
        "a.b.c.d.example.net",
    ];
    c.bench_function("feeds/name suffix match", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(intel.matcher.name(black_box(names[i % names.len()])))
        })
    });
    // Most names on a network match no rule: the last-two-labels check
    // answers them.
    let others = [
        "www.wikipedia.org",
        "a.b.c.d.example.net",
        "clients4.google.com",
        "login.microsoftonline.com",
    ];
    c.bench_function("feeds/name that matches no rule", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(intel.matcher.name(black_box(others[i % others.len()])))
        })
    });
    // Half in a vendor's range, half not; then addresses in no rule's /16
    // (most servers), which the prefilter answers without the trie.
    let cases: [(&str, [&str; 4]); 2] = [
        (
            "feeds/CIDR lookup",
            [
                "77.74.178.11",
                "8.8.8.8",
                "2a03:2480:8020::1",
                "2001:db8::1",
            ],
        ),
        (
            "feeds/CIDR lookup, no rule's block",
            [
                "8.8.8.8",
                "142.250.74.46",
                "2606:4700::1111",
                "2a00:1450::1",
            ],
        ),
    ];
    for (name, addrs) in cases {
        let addrs: Vec<std::net::IpAddr> =
            addrs.iter().map(|a| a.parse().expect("address")).collect();
        c.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box(intel.matcher.addr(black_box(addrs[i % addrs.len()])))
            })
        });
    }
}

/// A deterministic pseudo-random stream of interval lengths, in ns.
struct Gaps(u64);

impl Gaps {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// 300 s ± 15 %.
    fn beacon(&mut self) -> i64 {
        ((300.0 + 90.0 * (self.unit() - 0.5)) * 1e9) as i64
    }
    /// Random arrivals, mean 300 s.
    fn random(&mut self) -> i64 {
        ((5.0 - 295.0 * (1.0 - self.unit()).ln()) * 1e9) as i64
    }
}

fn beacon_benches(c: &mut Criterion) {
    // Steady state: rings full, random arrivals never confirm, so the
    // streaming check keeps running (every 64th session) — the worst case.
    let mut gaps = Gaps(1);
    let mut b = Beacons::default();
    let mut t = Timestamp(1_700_000_000_000_000_000);
    for _ in 0..2000 {
        t = Timestamp(t.0 + gaps.random());
        b.connection(t);
        b.connection_bytes(t, 4000);
    }
    c.bench_function("beacons/push connection (random, checks on)", |bn| {
        bn.iter(|| {
            t = Timestamp(t.0 + gaps.random());
            b.connection(black_box(t));
            b.connection_bytes(t, black_box(4000));
        })
    });
    let mut full = Beacons::default();
    let mut t = Timestamp(1_700_000_000_000_000_000);
    for _ in 0..2000 {
        t = Timestamp(t.0 + gaps.beacon());
        full.connection(t);
        full.connection_bytes(t, 4000);
    }
    let window = Some((Timestamp(1_700_000_000_000_000_000), t));
    c.bench_function("beacons/score 512 sessions", |bn| {
        bn.iter(|| black_box(full.result(black_box(window))))
    });
}

criterion_group!(parsers, benches, beacon_benches);
criterion_main!(parsers);
