//! Vendor behaviours expressed in the feeds (not in code): Kaspersky's
//! public-DNS fallback (`dns_fallback_resolver` in `feeds/kaspersky.toml`,
//! from `../shared/vendors.md`).

use crate::util::{analyze_json, contact, strings};
use phonehome_synth::dns::Answer;
use phonehome_synth::session::{CaptureBuilder, Link, SECOND, dns_lookup};
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

#[test]
fn vendor_names_asked_straight_at_the_fallback_resolvers_are_dns_fallback() {
    let t0 = 1_700_000_000 * SECOND;
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
    let addr = "77.74.178.11".parse().expect("addr");
    let a = |n: &str| [Answer::a(n, addr, 60)];
    // The fallback sequence: the internal resolver fails, then 8.8.8.8 and
    // 1.1.1.1 are asked directly.
    dns_lookup(
        &mut cb,
        t0,
        sa("10.3.0.5:40001"),
        sa("10.3.0.2:53"),
        1,
        "ds.kaspersky.com",
        &[],
    );
    for (i, r) in ["8.8.8.8:53", "1.1.1.1:53"].into_iter().enumerate() {
        let ts = t0 + (1 + i as u64) * SECOND;
        let name = "ds.kaspersky.com";
        dns_lookup(
            &mut cb,
            ts,
            sa("10.3.0.5:40002"),
            sa(r),
            2 + i as u16,
            name,
            &a(name),
        );
    }
    // The same name through the internal resolver only: plain `dns`.
    let name = "dnl-01.geo.kaspersky.com";
    dns_lookup(
        &mut cb,
        t0,
        sa("10.3.0.6:40003"),
        sa("10.3.0.2:53"),
        9,
        name,
        &a(name),
    );
    // Any other name at a public resolver: nothing.
    dns_lookup(
        &mut cb,
        t0,
        sa("10.3.0.7:40004"),
        sa("8.8.8.8:53"),
        10,
        "www.example.org",
        &[],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fallback.pcapng");
    cb.write_pcapng(&file).expect("write");

    let (code, r) = analyze_json(&[&file], &[]);
    assert_eq!(code, 0);
    let c = contact(&r, "10.3.0.5", "kaspersky").expect("the falling-back host");
    assert_eq!(strings(&c["evidence"]), ["dns", "dns_fallback"]);
    assert_eq!(c["dns_queries"], 3);
    assert!(
        strings(&c["servers"]).is_empty(),
        "a public resolver is no Kaspersky server: {c}"
    );
    assert!(
        c["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["kind"] == "dns_fallback_resolver" && r["value"] == "8.8.8.8"),
        "{c}"
    );
    let c = contact(&r, "10.3.0.6", "kaspersky").expect("the normal host");
    assert_eq!(strings(&c["evidence"]), ["dns"]);
    assert!(contact(&r, "10.3.0.7", "kaspersky").is_none());
    assert_eq!(r["summary"]["hosts_reported"], 2);
}
