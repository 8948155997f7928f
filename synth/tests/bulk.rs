//! tshark (when /usr/bin/tshark exists) dissects a small bulk capture
//! without malformed packets, bad checksums or expert errors, and finds the
//! advertised mix in it: VLAN and QinQ tags, IPv6, DNS over UDP and TCP,
//! ClientHellos spread over two segments, HTTP, QUIC and the beacon names.
//! Skips with a message if tshark is absent.

mod common;
use common::{TSHARK, fields};

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use phonehome_synth::bulk::{self, BulkConfig};

#[test]
fn bulk_capture_dissects_cleanly_with_the_advertised_mix() {
    if !Path::new(TSHARK).exists() {
        eprintln!("skipping bulk tshark check: {TSHARK} is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("phonehome-bulk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bulk.pcap");
    let mut cfg = BulkConfig::new(2 << 20);
    cfg.hosts = 500;
    let stats = bulk::generate(&cfg, BufWriter::new(File::create(&path).unwrap())).unwrap();

    let bad = fields(
        &path,
        &["frame.number", "_ws.col.Info"],
        "_ws.malformed || _ws.expert.severity >= error",
    );
    assert!(bad.is_empty(), "problems in {bad:?}");

    // One pass: the protocol stack, the hello's SNI and segment count, QUIC type.
    let rows = fields(
        &path,
        &[
            "frame.protocols",
            "tls.handshake.extensions_server_name",
            "tcp.segment.count",
            "quic.long.packet_type",
        ],
        "",
    );
    assert_eq!(rows.len() as u64, stats.packets);
    let col = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
    let with = |layers: &[&str]| {
        rows.iter()
            .filter(|r| {
                let stack: Vec<&str> = r[0].split(':').collect();
                layers.iter().all(|l| stack.contains(l))
            })
            .count()
    };
    let snis: BTreeSet<String> = rows
        .iter()
        .map(|r| col(r, 1))
        .filter(|s| !s.is_empty())
        .collect();
    for b in bulk::beacons(&cfg) {
        assert!(snis.contains(b.name), "no SNI {} in {snis:?}", b.name);
    }
    assert!(snis.len() > 20, "only {} distinct SNIs", snis.len());
    // Hellos reassembled from two segments (the post-quantum sized ones).
    let split = rows
        .iter()
        .filter(|r| !col(r, 1).is_empty() && !col(r, 2).is_empty())
        .count();
    assert!(split > 0, "no ClientHello over several segments");
    assert_eq!(with(&["ipv6"]) as u64, stats.ipv6_packets);
    assert!(
        with(&["vlan"]) > 0 && with(&["ieee8021ad"]) > 0,
        "no 802.1Q or QinQ"
    );
    assert!(
        with(&["udp", "dns"]) > 0 && with(&["tcp", "dns"]) > 0,
        "no DNS over UDP and TCP"
    );
    assert!(with(&["http"]) > 0, "no HTTP");
    assert!(rows.iter().any(|r| col(r, 3) == "0"), "no QUIC Initial");
    std::fs::remove_dir_all(&dir).unwrap();
}
