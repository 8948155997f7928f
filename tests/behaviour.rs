//! Vendor behaviours expressed in the feeds (not in code): Kaspersky's
//! public-DNS fallback (`dns_fallback_resolver` in `feeds/kaspersky.toml`,
//! from `../shared/vendors.md`) and Kaspersky Security Center's management
//! traffic (`port` rules with a `role`).

use crate::util::{analyze_json, contact, strings};
use phonehome_synth::dns::Answer;
use phonehome_synth::session::{
    CaptureBuilder, Link, MILLI, SECOND, TcpConn, dns_lookup, udp_exchange,
};
use phonehome_synth::tls::{self, ClientHelloSpec};
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
        c["servers"].as_array().is_some_and(|s| s.is_empty()),
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

/// An Administration Server (10.4.0.10) and its agents: agents connect on
/// TCP 13000 and to the KSN proxy on 13111, the server wakes an agent on
/// UDP 15000, and a cloud-managed agent calls *.ksc.kaspersky.com. Each
/// host is reported with its role; the server relays the agents' KSN
/// traffic, yet the agents are still found.
#[test]
fn ksc_management_traffic_reveals_the_server_and_its_agents() {
    let t0 = 1_700_000_000 * SECOND;
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
    let tcp = |cb: &mut CaptureBuilder, ts: u64, c: &str, s: &str, data: &[u8]| {
        let mut conn = TcpConn::new(sa(c), sa(s), 7, 9);
        let t = conn.handshake(cb, ts);
        if !data.is_empty() {
            conn.client_send(cb, t, data);
        }
    };
    tcp(&mut cb, t0, "10.4.0.21:50000", "10.4.0.10:13000", b"");
    tcp(
        &mut cb,
        t0 + SECOND,
        "10.4.0.23:50001",
        "10.4.0.10:13111",
        b"",
    );
    udp_exchange(
        &mut cb,
        t0 + 2 * SECOND,
        sa("10.4.0.10:40000"),
        sa("10.4.0.22:15000"),
        b"wake",
        None,
    );
    let hello = tls::records(
        &tls::client_hello(&ClientHelloSpec::with_sni("a1b2c3.ksc.kaspersky.com")),
        16384,
    );
    tcp(
        &mut cb,
        t0 + 3 * SECOND,
        "10.4.0.24:50002",
        "203.0.113.9:23101",
        &hello,
    );
    // An unrelated internal web server.
    tcp(
        &mut cb,
        t0 + 4 * SECOND + MILLI,
        "10.4.0.30:50003",
        "10.4.0.31:8080",
        b"",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ksc.pcapng");
    cb.write_pcapng(&file).expect("write");

    let (code, r) = analyze_json(&[&file], &[]);
    assert_eq!(code, 0);
    let roles = |host: &str| {
        let c = contact(&r, host, "kaspersky").unwrap_or_else(|| panic!("{host} in {r}"));
        (strings(&c["roles"]), strings(&c["evidence"]), c.clone())
    };
    let (server_roles, ev, c) = roles("10.4.0.10");
    assert_eq!(server_roles, ["management_server"]);
    assert_eq!(ev, ["port"]);
    assert_eq!(c["connections"], 3, "two agents in, one wake-up out: {c}");
    assert!(
        strings(&c["purposes"]).contains(&"telemetry".into()),
        "KSN proxy"
    );
    for agent in ["10.4.0.21", "10.4.0.22", "10.4.0.23"] {
        let (agent_roles, ev, _) = roles(agent);
        assert_eq!(agent_roles, ["managed_client"], "{agent}");
        assert_eq!(ev, ["port"], "{agent}");
    }
    let (_, _, c) = roles("10.4.0.21");
    let servers: Vec<&str> = c["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert_eq!(servers, ["10.4.0.10"]);
    let (cloud_roles, ev, _) = roles("10.4.0.24");
    assert_eq!(cloud_roles, ["managed_client"]);
    assert_eq!(ev, ["sni"]);
    for not in ["10.4.0.30", "10.4.0.31"] {
        assert!(contact(&r, not, "kaspersky").is_none(), "{not}");
    }
    assert_eq!(r["summary"]["hosts_reported"], 5);
}
