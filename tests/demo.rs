//! The demo capture (`captures/demo.pcapng`, written by
//! `cargo run -p phonehome-synth --bin gen-demo`): the scenario in
//! `synth/src/demo.rs` says what each host does; these tests check that the
//! report says exactly that, decoys included.

use crate::util::{analyze_json, capture, contact, server_ips, strings};
use serde_json::Value;

fn report() -> Value {
    let (code, report) = analyze_json(&[&capture("demo.pcapng")], &[]);
    assert_eq!(code, 0);
    report
}

fn evidence(c: &Value) -> Vec<String> {
    strings(&c["evidence"])
}

#[test]
fn the_committed_demo_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("demo.pcapng");
    phonehome_synth::demo::write_demo(&fresh).unwrap();
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        std::fs::read(capture("demo.pcapng")).unwrap(),
        "captures/demo.pcapng is stale: run `cargo run -p phonehome-synth --bin gen-demo`"
    );
}

#[test]
fn kaspersky_agent_with_split_client_hello_and_beacon() {
    let r = report();
    let c = contact(&r, "10.20.0.5", "kaspersky").expect("10.20.0.5 contacts Kaspersky");
    assert_eq!(
        strings(&c["names"]),
        ["ds.kaspersky.com", "ksn-file-geo.kaspersky-labs.com"]
    );
    let ev = evidence(c);
    assert!(
        ev.contains(&"dns".into()) && ev.contains(&"sni".into()),
        "{ev:?}"
    );
    assert_eq!(c["connections"], 25, "1 update connection + 24 beacons");
    assert_eq!(c["dns_queries"], 25);
    assert_eq!(c["first_seen"], "2017-09-13T10:00:05Z");
    assert!(strings(&c["purposes"]).contains(&"telemetry".into()));
    // The 24 beacons, 300 s ± 8 % apart: the period is the median of the
    // intervals the generator drew; the update connection before them is
    // not a beat.
    let times = phonehome_synth::demo::beacon_times();
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e9)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    let b = &c["beacon"];
    let period = b["period_s"].as_f64().expect("a beacon");
    assert!((period - median).abs() <= 1.0, "{b} vs median {median}");
    assert_eq!(b["count"], 24, "{b}");
    assert_eq!(b["source"], "connections");
    let jitter = b["jitter"].as_f64().unwrap();
    assert!(jitter > 0.0 && jitter < 0.08, "{b}");
    assert!(b["score"].as_f64().unwrap() >= 0.7, "{b}");
    assert!(b.get("periods").is_none(), "one period: {b}");
}

#[test]
fn update_by_bare_address_is_recognised_by_path_and_media_type() {
    let r = report();
    let c = contact(&r, "10.20.0.6", "kaspersky").expect("10.20.0.6");
    let ev = evidence(c);
    for e in ["http_path", "http_content_type", "sni"] {
        assert!(ev.contains(&e.to_string()), "{e} missing from {ev:?}");
    }
    assert!(server_ips(c).contains(&"37.48.82.67".to_string()));
    assert!(
        strings(&c["names"]).contains(&"activation-v2.kaspersky.com".into()),
        "ClientHello over 3 records"
    );
}

#[test]
fn passive_dns_names_a_connection_without_sni() {
    let r = report();
    let c = contact(&r, "10.20.0.7", "kaspersky").expect("10.20.0.7");
    let ev = evidence(c);
    assert!(ev.contains(&"passive_dns".into()), "{ev:?}");
    assert!(
        ev.contains(&"cidr".into()),
        "185.85.12.40 is in a Kaspersky range: {ev:?}"
    );
    assert_eq!(c["connections"], 2);
    let servers = server_ips(c);
    assert_eq!(servers, ["82.202.186.15", "185.85.12.40"]);
}

#[test]
fn dns_over_tcp_on_a_vlan_and_fragmented_dns() {
    let r = report();
    let host = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ip"] == "10.20.0.8")
        .expect("10.20.0.8");
    assert_eq!(host["vlan"], 120);
    let c = contact(&r, "10.20.0.8", "kaspersky").unwrap();
    assert_eq!(evidence(c), ["dns"]);
    assert_eq!(c["connections"], 0);
    let c = contact(&r, "10.20.0.14", "kaspersky").expect("fragmented answer reassembled");
    assert_eq!(strings(&c["names"]), ["dc1.ksn.kaspersky-labs.com"]);
}

#[test]
fn other_vendors_are_found() {
    let r = report();
    let d = contact(&r, "10.20.0.9", "drweb").expect("Dr.Web");
    assert!(evidence(d).contains(&"http_user_agent".into()));
    assert!(
        contact(&r, "2001:db8:20::15", "eset").is_some(),
        "ESET over IPv6"
    );
    assert!(contact(&r, "10.20.0.10", "bitdefender").is_some());
}

#[test]
fn decoys_and_resolvers_are_not_reported() {
    let r = report();
    let ips: Vec<&str> = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    for not in ["10.20.0.11", "10.20.0.12", "10.20.0.2", "2001:db8:20::2"] {
        assert!(!ips.contains(&not), "{not} must not be reported: {ips:?}");
    }
    assert_eq!(r["summary"]["hosts_reported"], 9);
    let web = contact(&r, "10.20.0.13", "kaspersky").expect("the web visit is reported");
    assert!(strings(&web["purposes"]).contains(&"web".into()));
    assert_eq!(web["connections"], 1);
    assert!(web["beacon"].is_null(), "a visit is not a beacon");
    for h in r["hosts"].as_array().unwrap() {
        for c in h["contacts"].as_array().unwrap() {
            if h["ip"] != "10.20.0.5" {
                assert!(c["beacon"].is_null(), "{}: {}", h["ip"], c["beacon"]);
            }
        }
    }
}

#[test]
fn connection_times_trace_the_beacon() {
    let r = report();
    let c = contact(&r, "10.20.0.5", "kaspersky").unwrap();
    let times: Vec<i64> = c["connection_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(times.len(), 25, "one per connection: {times:?}");
    assert_eq!(c["connection_times_every"], 1);
    assert_eq!(times[0], 0, "the update connection opens the contact");
    // Beacons 300 s ± 8 % apart (whole seconds, so ± 1 more).
    for w in times[1..].windows(2) {
        assert!((275..=325).contains(&(w[1] - w[0])), "{times:?}");
    }
    let dns_only = contact(&r, "10.20.0.8", "kaspersky").unwrap();
    assert_eq!(dns_only["connection_times"], serde_json::json!([]));
}
