//! Runs tshark (when /usr/bin/tshark exists) over generated captures: the
//! demo must expose every expected DNS name, SNI (split and out-of-order
//! ones included) and HTTP host, and no capture may contain malformed
//! packets, bad checksums or other expert errors. Skips with a message if
//! tshark is absent.

mod common;
use common::{TSHARK, fields};

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use phonehome_synth::demo;
use phonehome_synth::dns::{self, Answer, DnsMessage};
use phonehome_synth::packet::{self, IPPROTO_UDP, Ipv6Ext};
use phonehome_synth::pcapfile::{Endian, TsPrecision};
use phonehome_synth::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn, dns_lookup};
use phonehome_synth::tls::{self, ClientHelloSpec};

fn tshark_available() -> bool {
    let found = Path::new(TSHARK).exists();
    if !found {
        eprintln!("skipping tshark checks: {TSHARK} is not installed");
    }
    found
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("phonehome-synth-{}-{name}", std::process::id()))
}

/// Every non-empty value of column `i` (comma-separated occurrences split).
fn column(rows: &[Vec<String>], i: usize) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r.get(i))
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
}

fn assert_clean(file: &Path) {
    let bad = fields(
        file,
        &["frame.number", "_ws.col.Info"],
        "_ws.malformed || _ws.expert.severity >= error",
    );
    assert!(bad.is_empty(), "{}: problems in {bad:?}", file.display());
}

fn assert_contains(found: &BTreeSet<String>, expected: &[&str], what: &str) {
    for name in expected {
        assert!(
            found.contains(*name),
            "{what} {name} not dissected; found {found:?}"
        );
    }
}

#[test]
fn demo_capture_dissects_cleanly() {
    if !tshark_available() {
        return;
    }
    let path = temp_path("demo.pcapng");
    let (frames, _) = demo::write_demo(&path).unwrap();
    let cols = [
        "frame.number",
        "dns.qry.name",
        "tls.handshake.extensions_server_name",
        "http.host",
    ];
    let rows = fields(&path, &cols, "");
    assert_eq!(rows.len(), frames);
    assert_contains(&column(&rows, 1), demo::EXPECTED_DNS_NAMES, "DNS name");
    assert_contains(&column(&rows, 2), demo::EXPECTED_SNIS, "SNI");
    assert_contains(&column(&rows, 3), demo::EXPECTED_HTTP_HOSTS, "HTTP host");

    let hellos = fields(
        &path,
        &["ip.dst", "tls.handshake.extensions_server_name"],
        "tls.handshake.type == 1",
    );
    for server in demo::SNILESS_TLS_SERVERS {
        assert!(
            hellos.iter().any(|r| r[0] == *server && r[1].is_empty()),
            "no SNI-less hello to {server}"
        );
    }
    let vlans = column(&fields(&path, &["vlan.id"], "vlan"), 0);
    assert_eq!(vlans, BTreeSet::from(["120".to_string()]));
    let fragmented = fields(
        &path,
        &["dns.count.answers"],
        "ip.src == 10.20.0.2 && ip.dst == 10.20.0.14 && dns",
    );
    assert_eq!(fragmented, [["100"]]);
    assert_clean(&path);
    std::fs::remove_file(&path).unwrap();
}

/// A small capture exercising IPv6 extension headers, IPv6 fragments and an
/// out-of-order ClientHello, for the link-layer/file-format matrix.
fn mini_capture(link: Link) -> CaptureBuilder {
    let mut cb = CaptureBuilder::new(link);
    let (client, resolver): (SocketAddr, SocketAddr) = (
        "192.0.2.10:40000".parse().unwrap(),
        "192.0.2.53:53".parse().unwrap(),
    );
    let t = dns_lookup(
        &mut cb,
        SECOND,
        client,
        resolver,
        1,
        "v4.test",
        &[Answer::a("v4.test", [198, 51, 100, 7].into(), 60)],
    );
    let mut conn = TcpConn::new(
        "192.0.2.10:40001".parse().unwrap(),
        "198.51.100.7:443".parse().unwrap(),
        7,
        9,
    );
    let t = conn.handshake(&mut cb, t + MILLI);
    let hello = tls::records(
        &tls::client_hello(&ClientHelloSpec::browser("mini.test")),
        300,
    );
    let t = conn.client_send_segments(&mut cb, t + MILLI, &hello, &[100, 900], &[2, 0, 1]);
    let t = conn.close(&mut cb, t + MILLI);

    let (a, b): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().unwrap(),
        "2001:db8::53".parse().unwrap(),
    );
    let query = packet::udp_datagram(
        a.into(),
        b.into(),
        5000,
        53,
        &DnsMessage::query(2, "ext.test", dns::TYPE_AAAA),
    );
    let ext = [
        Ipv6Ext::HopByHop(vec![5, 2, 0, 0]),
        Ipv6Ext::DestOpts(vec![]),
        Ipv6Ext::Routing { addresses: vec![b] },
    ];
    cb.push_ip(
        t + MILLI,
        packet::ipv6_with_ext(a, b, &ext, IPPROTO_UDP, &query),
    );
    let answers: Vec<Answer> = (1..=80u16)
        .map(|i| {
            Answer::aaaa(
                "frag6.test",
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i),
                60,
            )
        })
        .collect();
    let resp = packet::udp_datagram(
        b.into(),
        a.into(),
        53,
        5000,
        &DnsMessage::response(3, "frag6.test", dns::TYPE_AAAA, &answers),
    );
    for (i, frag) in packet::ipv6_fragments(b, a, IPPROTO_UDP, 0x5eed, &resp, 1232)
        .into_iter()
        .enumerate()
    {
        cb.push_ip(t + 2 * MILLI + i as u64, frag);
    }
    cb
}

#[test]
fn link_layers_and_formats_dissect_cleanly() {
    if !tshark_available() {
        return;
    }
    let links = [
        Link::Ethernet {
            vlans: vec![100, 200],
        },
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::Null,
    ];
    for (i, link) in links.into_iter().enumerate() {
        let cb = mini_capture(link);
        let variants = [
            ("pcapng", cb.to_pcapng_bytes()),
            (
                "pcap",
                cb.to_pcap_bytes(TsPrecision::Nano, Endian::Big).unwrap(),
            ),
            (
                "pcap",
                cb.to_pcap_bytes(TsPrecision::Micro, Endian::Little)
                    .unwrap(),
            ),
        ];
        for (j, (ext, bytes)) in variants.into_iter().enumerate() {
            let path = temp_path(&format!("mini-{i}-{j}.{ext}"));
            std::fs::write(&path, bytes).unwrap();
            let rows = fields(
                &path,
                &["dns.qry.name", "tls.handshake.extensions_server_name"],
                "",
            );
            assert_eq!(rows.len(), cb.len(), "{}", path.display());
            assert_contains(
                &column(&rows, 0),
                &["v4.test", "ext.test", "frag6.test"],
                "DNS name",
            );
            assert_contains(&column(&rows, 1), &["mini.test"], "SNI");
            assert_clean(&path);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
