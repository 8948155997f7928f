//! A small capture from the benchmark generator (`gen-bulk`'s library):
//! every packet and conversation it wrote is read and counted (DNS over
//! UDP with an ordinary resolver without a tracked conversation), exactly the
//! beaconing hosts are reported, each with its Kaspersky name found in DNS
//! and in the SNI, and the report is the same with one and two threads,
//! and with and without event lines.

use crate::util::analyze_json;
use phonehome::capture::Timeline;
use phonehome_synth::bulk::{self, BulkConfig};
use serde_json::Value;
use std::fs::File;
use std::io::BufWriter;

#[test]
fn beaconing_hosts_are_found_in_a_bulk_capture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bulk.pcap");
    let mut cfg = BulkConfig::new(2 << 20);
    cfg.hosts = 500;
    let file = BufWriter::new(File::create(&path).expect("create"));
    let stats = bulk::generate(&cfg, file).expect("generate");

    let mut timeline = Timeline::new(vec![path.clone()]);
    let mut frames = 0u64;
    while timeline.next_frame().is_some() {
        frames += 1;
    }
    assert!(timeline.failures().is_empty());
    assert_eq!(frames, stats.packets);

    let (code, report) = analyze_json(&[&path], &["--threads", "1"]);
    assert_eq!(code, 0);
    let s = &report["summary"];
    assert_eq!(s["packets"], stats.packets);
    // Every conversation written is counted: tracked, or (DNS over UDP
    // with a resolver that is no evidence itself) read message by message.
    let untracked = s["dns_queries_without_flow"].as_u64().expect("counter");
    assert_eq!(s["flows"].as_u64(), Some(stats.flows - untracked));
    assert!(untracked >= stats.kinds[0] && untracked > 0, "{untracked}");
    assert_eq!(s["malformed_packets"], 0);
    assert_eq!(s["streams_abandoned"], 0);

    let beacons = bulk::beacons(&cfg);
    let hosts = report["hosts"].as_array().expect("hosts");
    let mut reported: Vec<String> = hosts
        .iter()
        .map(|h| h["ip"].as_str().unwrap_or("").to_string())
        .collect();
    let mut expected: Vec<String> = beacons.iter().map(|b| b.host.to_string()).collect();
    reported.sort();
    expected.sort();
    assert_eq!(reported, expected, "only the beaconing hosts phone home");
    for b in &beacons {
        let host = hosts
            .iter()
            .find(|h| h["ip"] == b.host.to_string())
            .expect("host");
        let contacts = host["contacts"].as_array().expect("contacts");
        assert_eq!(contacts.len(), 1);
        let c = &contacts[0];
        assert_eq!(c["vendor"], "kaspersky");
        assert_eq!(c["names"], Value::from(vec![b.name]));
        let evidence = c["evidence"].as_array().expect("evidence");
        for kind in ["dns", "sni"] {
            assert!(
                evidence.contains(&Value::from(kind)),
                "{}: {evidence:?}",
                b.host
            );
        }
        // One beacon per 300 s ± 10 % over the simulated span.
        let expected = stats.duration_secs / bulk::BEACON_PERIOD_SECS as f64;
        let conns = c["connections"].as_f64().unwrap_or(0.0);
        assert!(
            conns >= expected * 0.8 - 1.0 && conns <= expected * 1.2 + 1.0,
            "{}: {conns} connections in {} s",
            b.host,
            stats.duration_secs
        );
        assert_eq!(c["dns_queries"], c["connections"]);
    }

    let (code, two) = analyze_json(&[&path], &["--threads", "2"]);
    assert_eq!(code, 0);
    assert_eq!(report, two, "the report differs with two threads");

    // Without event lines most DNS messages are counted unparsed (they
    // name no rule); with them every message is parsed: the same report.
    let events = dir.path().join("events.jsonl");
    let events_arg = events.to_str().expect("UTF-8 path");
    let (code, with_events) = analyze_json(&[&path], &["--threads", "1", "--events", events_arg]);
    assert_eq!(code, 0);
    assert_eq!(report, with_events, "the report differs with event lines");
    let dns_lines = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .filter(|l| l.contains("\"dns_"))
        .count() as u64;
    assert!(s["dns_messages"].as_u64() >= Some(dns_lines) && dns_lines > 0);
}
