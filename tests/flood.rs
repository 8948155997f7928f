//! Floods: a test-sized version of `benches/flood.sh` (which runs the full
//! size and measures peak memory). Unanswered SYNs from random sources,
//! random DNS names, ClientHellos that never complete, IPv4 datagrams that
//! never complete and thousands of hosts, with every cap lowered so that
//! each one is reached — and the Kaspersky client mixed into the flood is
//! still reported, with its server name.

use crate::util::{analyze_json, contact, strings};
use phonehome_synth::flood::{self, FloodSpec};

fn spec() -> FloodSpec {
    FloodSpec {
        syns: 20_000,
        dns_names: 2_000,
        partial_hellos: 2_000,
        fragments: 2_000,
        hosts: 2_000,
        gap_nanos: 10_000,
        seed: 11,
    }
}

#[test]
fn a_flood_reaches_every_cap_and_the_kaspersky_host_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let written = flood::write_flood(std::io::BufWriter::new(file), &spec()).unwrap();
    assert!(written.packets > 35_000, "{written:?}");

    let caps = [
        "--max-flows",
        "4000",
        "--stream-memory-mib",
        "1",
        "--max-fragmented",
        "500",
        "--pdns-entries",
        "500",
    ];
    let (code, r) = analyze_json(&[&path], &caps);
    assert_eq!(code, 0);
    let s = &r["summary"];
    assert_eq!(s["packets"], written.packets, "{s}");
    // Every table was full at some point.
    assert!(s["flows_evicted"].as_u64().unwrap() > 10_000, "{s}");
    assert!(s["streams_abandoned"].as_u64().unwrap() > 0, "{s}");
    assert!(s["fragments_dropped"].as_u64().unwrap() > 1_000, "{s}");
    assert!(s["pdns_evicted"].as_u64().unwrap() > 1_000, "{s}");
    // The hosts are all there (each asked once for an Avast name), and so
    // are the clients of the random-name flood.
    assert_eq!(s["hosts_per_vendor"]["avast"], 2_000, "{s}");
    assert!(
        s["hosts_per_vendor"]["eset"].as_u64().unwrap() > 1_500,
        "{s}"
    );

    let host = flood::KASPERSKY_HOST.to_string();
    let c = contact(&r, &host, "kaspersky").expect("the Kaspersky host is reported");
    let evidence = strings(&c["evidence"]);
    for e in ["dns", "sni", "cidr"] {
        assert!(evidence.contains(&e.to_string()), "{e} missing: {c}");
    }
    assert!(strings(&c["names"]).contains(&flood::KASPERSKY_NAME.to_string()));
    assert_eq!(c["connections"], 1, "{c}");
}

/// ClientHellos that never complete fill stream memory while the flow
/// table has room: the Kaspersky client's two-segment hello, arriving after
/// them, still gets a buffer (the hello that has waited longest gives its
/// up), so its server name is read.
#[test]
fn incomplete_hellos_cannot_hold_stream_memory_against_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hellos.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let spec = FloodSpec {
        syns: 0,
        dns_names: 0,
        partial_hellos: 3_000,
        fragments: 0,
        hosts: 0,
        gap_nanos: 10_000,
        seed: 12,
    };
    flood::write_flood(std::io::BufWriter::new(file), &spec).unwrap();
    let (code, r) = analyze_json(&[&path], &["--stream-memory-mib", "1"]);
    assert_eq!(code, 0);
    let s = &r["summary"];
    assert!(s["streams_abandoned"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["flows_evicted"], 0, "{s}");
    let host = flood::KASPERSKY_HOST.to_string();
    let c = contact(&r, &host, "kaspersky").expect("the Kaspersky host is reported");
    assert!(strings(&c["evidence"]).contains(&"sni".to_string()), "{c}");
}
