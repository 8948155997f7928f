//! The deterministic demo capture written by `gen-demo`.
//!
//! Ethernet pcapng, one interface, microsecond timestamps, starting
//! 2017-09-13T10:00:00Z (the day BOD 17-01 was issued) and spanning about
//! two hours. Internal hosts live in 10.20.0.0/16 (plus 2001:db8:20::15);
//! the resolvers are 10.20.0.2 and 2001:db8:20::2. All randomness (ports,
//! ISNs, DNS ids, jitter, payload bytes) comes from a fixed-seed xorshift.
//!
//! | host | what it does | a correct analysis reports |
//! |------|--------------|----------------------------|
//! | 10.20.0.5 | DNS `ds.kaspersky.com` → CNAME `dnl-03.geo.kaspersky.com` → A 93.159.228.2; TLS SNI `ds.kaspersky.com` (1800-byte hello split over 2 TCP segments, 1200 + rest); then 24 beacons, one per 300 s ± ≤8 %: DNS `ksn-file-geo.kaspersky-labs.com` → 77.74.178.11 + TLS with that SNI | Kaspersky; periodic beacon, period ≈ 300 s, 24 connections to 77.74.178.11 |
//! | 10.20.0.6 | HTTP `GET /updaters/updater.xml.dif` to bare IP 37.48.82.67 (Host is the IP, UA `Kaspersky Lab Update Agent` — invented, rely on nothing in it), 200 `application/x-kaspavupdate`; TLS SNI `activation-v2.kaspersky.com` → 93.159.230.40, hello spread over 3 TLS records in one segment | Kaspersky (update fetch + activation); no DNS for either |
//! | 10.20.0.7 | DNS `s12.upd.kaspersky.com` → 82.202.186.15, TLS there *without SNI*; later TLS without SNI or DNS to 185.85.12.40 (Kaspersky CIDR), hello in 2 segments sent out of order | Kaspersky: 82.202.186.15 named by passive DNS; 185.85.12.40 by CIDR only |
//! | 10.20.0.8 (VLAN 120) | DNS over TCP (length prefix and message in separate segments) `activation-v2.kaspersky.com` → 93.159.230.40; no connection follows | Kaspersky, DNS evidence only |
//! | 10.20.0.9 | DNS `update.drweb.com` → 195.88.252.10; HTTP `GET /x64/700/drweb32.lst.lzma` UA `DrWebUpdate-7.00.10.02091 (windows: 6.1.7601)`, 200 `application/octet-stream` (3 segments) | Dr.Web |
//! | 2001:db8:20::15 | DNS AAAA `update.eset.com` via 2001:db8:20::2 → 2001:db8:ee::10; TLS SNI `update.eset.com` over IPv6 | ESET |
//! | 10.20.0.10 | TLS SNI `nimbus.bitdefender.net` → 198.51.100.10 (no DNS) | Bitdefender |
//! | 10.20.0.11 | DNS + TLS `notkaspersky.com` (203.0.113.10) and `kaspersky.com.example.net` (203.0.113.11) | nothing (decoys) |
//! | 10.20.0.12 | DNS + HTTP `www.example.com` (93.184.216.34); DNS + TLS `www.wikipedia.org` (185.15.59.224, browser hello split 700 + rest) | nothing (decoys) |
//! | 10.20.0.13 | one DNS + TLS visit to `www.kaspersky.com` (185.85.15.26, browser hello) | Kaspersky website visit — web purpose, not an agent, not a beacon |
//! | 10.20.0.14 | DNS `dc1.ksn.kaspersky-labs.com` → 100 A records 77.74.177.1–100; the UDP response is split into 2 IPv4 fragments | Kaspersky, DNS evidence only (needs IPv4 reassembly) |
//!
//! The resolvers only answer queries and must not be reported as clients.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::dns::{self, Answer, DnsMessage};
use crate::http;
use crate::packet::{self, IPPROTO_UDP};
use crate::rng::Rng;
use crate::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn, dns_lookup};
use crate::tls::{self, ClientHelloSpec, MAX_RECORD_PAYLOAD};

/// Capture start, 2017-09-13T10:00:00Z, in Unix seconds.
pub const START_SECS: u64 = 1_505_296_800;
/// Nominal beacon period of 10.20.0.5.
pub const BEACON_INTERVAL_SECS: u64 = 300;
/// Number of beacons emitted by 10.20.0.5.
pub const BEACON_COUNT: usize = 24;
/// Maximum beacon jitter, in percent of the period.
pub const BEACON_JITTER_PERCENT: u64 = 8;
/// VLAN id of 10.20.0.8.
pub const VLAN_ID: u16 = 120;

/// IPv4 resolver.
pub const RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 2);
/// IPv6 resolver.
pub const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 2);

/// Every name asked in a DNS query.
pub const EXPECTED_DNS_NAMES: &[&str] = &[
    "ds.kaspersky.com",
    "ksn-file-geo.kaspersky-labs.com",
    "s12.upd.kaspersky.com",
    "activation-v2.kaspersky.com",
    "update.drweb.com",
    "update.eset.com",
    "notkaspersky.com",
    "kaspersky.com.example.net",
    "www.example.com",
    "www.wikipedia.org",
    "www.kaspersky.com",
    "dc1.ksn.kaspersky-labs.com",
];
/// Every TLS server_name sent.
pub const EXPECTED_SNIS: &[&str] = &[
    "ds.kaspersky.com",
    "ksn-file-geo.kaspersky-labs.com",
    "activation-v2.kaspersky.com",
    "update.eset.com",
    "nimbus.bitdefender.net",
    "notkaspersky.com",
    "kaspersky.com.example.net",
    "www.wikipedia.org",
    "www.kaspersky.com",
];
/// Every HTTP Host header sent.
pub const EXPECTED_HTTP_HOSTS: &[&str] = &["37.48.82.67", "update.drweb.com", "www.example.com"];
/// Servers that receive a ClientHello without server_name.
pub const SNILESS_TLS_SERVERS: &[&str] = &["82.202.186.15", "185.85.12.40"];

const SEED: u64 = 0x0B0D_1701;
const SHORT_HELLO: Option<usize> = Some(512);

/// Unix-epoch nanoseconds `secs` after the capture start.
pub fn at(secs: u64) -> u64 {
    (START_SECS + secs) * SECOND
}

/// Start timestamps of the beacon DNS lookups of 10.20.0.5 (nanoseconds):
/// first at start + 60 s, then 300 s apart ± up to 8 %.
pub fn beacon_times() -> Vec<u64> {
    let mut rng = Rng::new(SEED ^ 0xbeac);
    let max_jitter_ms = BEACON_INTERVAL_SECS * 10 * BEACON_JITTER_PERCENT;
    let mut t = at(60);
    let mut out = Vec::with_capacity(BEACON_COUNT);
    for _ in 0..BEACON_COUNT {
        out.push(t);
        let interval_ms =
            BEACON_INTERVAL_SECS * 1000 - max_jitter_ms + rng.below(2 * max_jitter_ms + 1);
        t += interval_ms * MILLI;
    }
    out
}

/// Builds the whole demo capture.
pub fn build() -> CaptureBuilder {
    let mut d = Demo {
        cb: CaptureBuilder::new(Link::Ethernet { vlans: Vec::new() }),
        rng: Rng::new(SEED),
        port: 49152,
    };
    d.cb.set_host_vlans(v4(10, 20, 0, 8), &[VLAN_ID]);
    kaspersky_agent(&mut d);
    kaspersky_updater(&mut d);
    kaspersky_sniless(&mut d);
    kaspersky_dns_over_tcp(&mut d);
    other_vendors(&mut d);
    decoys(&mut d);
    kaspersky_website_and_fragments(&mut d);
    d.cb
}

/// Writes the demo pcapng to `path` (creating parent directories) and
/// returns (frames, bytes).
pub fn write_demo(path: impl AsRef<Path>) -> io::Result<(usize, usize)> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let cb = build();
    let bytes = cb.to_pcapng_bytes();
    fs::write(path, &bytes)?;
    Ok((cb.len(), bytes.len()))
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn sock(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn hello(sni: Option<&str>, target_len: Option<usize>) -> Vec<u8> {
    let spec = ClientHelloSpec {
        sni: sni.map(str::to_string),
        target_len,
        ..Default::default()
    };
    tls::records(&tls::client_hello(&spec), MAX_RECORD_PAYLOAD)
}

fn browser_hello(sni: &str) -> Vec<u8> {
    tls::records(
        &tls::client_hello(&ClientHelloSpec::browser(sni)),
        MAX_RECORD_PAYLOAD,
    )
}

/// Scenario state: the capture plus deterministic ports, ids and ISNs.
struct Demo {
    cb: CaptureBuilder,
    rng: Rng,
    port: u16,
}

impl Demo {
    /// A fresh client socket; ephemeral ports only increase, so no reuse.
    fn client(&mut self, host: IpAddr) -> SocketAddr {
        self.port = self
            .port
            .wrapping_add(1 + self.rng.below(16) as u16)
            .max(49152);
        sock(host, self.port)
    }

    fn conn(&mut self, host: IpAddr, server: SocketAddr) -> TcpConn {
        let client = self.client(host);
        TcpConn::new(client, server, self.rng.next_u32(), self.rng.next_u32())
    }

    fn dns(&mut self, ts: u64, host: IpAddr, name: &str, answers: &[Answer]) -> u64 {
        let resolver = match host {
            IpAddr::V4(_) => sock(RESOLVER_V4.into(), 53),
            IpAddr::V6(_) => sock(RESOLVER_V6.into(), 53),
        };
        let (client, id) = (self.client(host), self.rng.next_u32() as u16);
        dns_lookup(&mut self.cb, ts, client, resolver, id, name, answers)
    }

    /// Handshake, ClientHello records cut by `sizes` (default: MSS) and sent
    /// in `order`, the server's first flight, then a close 200 ms later.
    fn tls(
        &mut self,
        ts: u64,
        host: IpAddr,
        server: SocketAddr,
        hello: &[u8],
        sizes: &[usize],
        order: &[usize],
    ) -> u64 {
        let mut c = self.conn(host, server);
        let sizes = if sizes.is_empty() {
            &[TcpConn::MSS][..]
        } else {
            sizes
        };
        let t = c.handshake(&mut self.cb, ts);
        let t = c.client_send_segments(&mut self.cb, t + MILLI, hello, sizes, order);
        let t = c.server_send(&mut self.cb, t + MILLI, &tls::server_hello_stub());
        c.close(&mut self.cb, t + 200 * MILLI)
    }

    fn http(
        &mut self,
        ts: u64,
        host: IpAddr,
        server: SocketAddr,
        request: &[u8],
        response: &[u8],
    ) -> u64 {
        let mut c = self.conn(host, server);
        let t = c.handshake(&mut self.cb, ts);
        let t = c.client_send(&mut self.cb, t + MILLI, request);
        let t = c.server_send(&mut self.cb, t + MILLI, response);
        c.close(&mut self.cb, t + 5 * MILLI)
    }
}

/// 10.20.0.5: ds.kaspersky.com (split 1800-byte hello), then the beacon.
fn kaspersky_agent(d: &mut Demo) {
    let host = v4(10, 20, 0, 5);
    let ds = Ipv4Addr::new(93, 159, 228, 2);
    let answers = [
        Answer::cname("ds.kaspersky.com", "dnl-03.geo.kaspersky.com", 300),
        Answer::a("dnl-03.geo.kaspersky.com", ds, 300),
    ];
    let t = d.dns(at(5), host, "ds.kaspersky.com", &answers);
    d.tls(
        t + 3 * MILLI,
        host,
        sock(ds.into(), 443),
        &hello(Some("ds.kaspersky.com"), Some(1800)),
        &[1200],
        &[],
    );

    let ksn = "ksn-file-geo.kaspersky-labs.com";
    let ksn_ip = Ipv4Addr::new(77, 74, 178, 11);
    let beacon_hello = hello(Some(ksn), SHORT_HELLO);
    for ts in beacon_times() {
        let t = d.dns(ts, host, ksn, &[Answer::a(ksn, ksn_ip, 60)]);
        d.tls(
            t + 3 * MILLI,
            host,
            sock(ksn_ip.into(), 443),
            &beacon_hello,
            &[],
            &[],
        );
    }
}

/// 10.20.0.6: HTTP update by bare IP, then activation with 3 TLS records.
fn kaspersky_updater(d: &mut Demo) {
    let host = v4(10, 20, 0, 6);
    let server = v4(37, 48, 82, 67);
    let ua = "Kaspersky Lab Update Agent";
    let req = http::request(
        "GET",
        "/updaters/updater.xml.dif",
        Some("37.48.82.67"),
        Some(ua),
        &[("Accept", "*/*")],
    );
    let body = d.rng.bytes(600);
    let resp = http::response(200, Some("application/x-kaspavupdate"), &body);
    d.http(at(120), host, sock(server, 80), &req, &resp);

    let msg = tls::client_hello(&ClientHelloSpec {
        target_len: SHORT_HELLO,
        ..ClientHelloSpec::with_sni("activation-v2.kaspersky.com")
    });
    let three = tls::records(&msg, msg.len().div_ceil(3));
    d.tls(
        at(125),
        host,
        sock(v4(93, 159, 230, 40), 443),
        &three,
        &[],
        &[],
    );
}

/// 10.20.0.7: SNI-less TLS named by passive DNS, and one by CIDR only.
fn kaspersky_sniless(d: &mut Demo) {
    let host = v4(10, 20, 0, 7);
    let upd = Ipv4Addr::new(82, 202, 186, 15);
    let t = d.dns(
        at(200),
        host,
        "s12.upd.kaspersky.com",
        &[Answer::a("s12.upd.kaspersky.com", upd, 300)],
    );
    d.tls(
        t + 3 * MILLI,
        host,
        sock(upd.into(), 443),
        &hello(None, SHORT_HELLO),
        &[],
        &[],
    );
    let anon = hello(None, Some(600));
    d.tls(
        at(400),
        host,
        sock(v4(185, 85, 12, 40), 443),
        &anon,
        &[200],
        &[1, 0],
    );
}

/// 10.20.0.8 on VLAN 120: DNS over TCP, prefix and message split.
fn kaspersky_dns_over_tcp(d: &mut Demo) {
    let host = v4(10, 20, 0, 8);
    let name = "activation-v2.kaspersky.com";
    let id = d.rng.next_u32() as u16;
    let query = dns::tcp_framed(&DnsMessage::query(id, name, dns::TYPE_A));
    let answer = [Answer::a(name, Ipv4Addr::new(93, 159, 230, 40), 300)];
    let response = dns::tcp_framed(&DnsMessage::response(id, name, dns::TYPE_A, &answer));
    let mut c = d.conn(host, sock(RESOLVER_V4.into(), 53));
    let t = c.handshake(&mut d.cb, at(600));
    let t = c.client_send_segments(&mut d.cb, t + MILLI, &query, &[2], &[]);
    let t = c.server_send(&mut d.cb, t + MILLI, &response);
    c.close(&mut d.cb, t + MILLI);
}

/// Dr.Web over HTTP, ESET over IPv6, Bitdefender by SNI.
fn other_vendors(d: &mut Demo) {
    let drweb = v4(10, 20, 0, 9);
    let drweb_ip = Ipv4Addr::new(195, 88, 252, 10);
    let t = d.dns(
        at(900),
        drweb,
        "update.drweb.com",
        &[Answer::a("update.drweb.com", drweb_ip, 300)],
    );
    let ua = "DrWebUpdate-7.00.10.02091 (windows: 6.1.7601)";
    let req = http::request(
        "GET",
        "/x64/700/drweb32.lst.lzma",
        Some("update.drweb.com"),
        Some(ua),
        &[("Accept", "*/*")],
    );
    let body = d.rng.bytes(3000);
    let resp = http::response(200, Some("application/octet-stream"), &body);
    d.http(t + 3 * MILLI, drweb, sock(drweb_ip.into(), 80), &req, &resp);

    let eset: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x15).into();
    let eset_srv = Ipv6Addr::new(0x2001, 0xdb8, 0xee, 0, 0, 0, 0, 0x10);
    let t = d.dns(
        at(1000),
        eset,
        "update.eset.com",
        &[Answer::aaaa("update.eset.com", eset_srv, 300)],
    );
    d.tls(
        t + 3 * MILLI,
        eset,
        sock(eset_srv.into(), 443),
        &hello(Some("update.eset.com"), SHORT_HELLO),
        &[],
        &[],
    );

    let bd = hello(Some("nimbus.bitdefender.net"), SHORT_HELLO);
    d.tls(
        at(1100),
        v4(10, 20, 0, 10),
        sock(v4(198, 51, 100, 10), 443),
        &bd,
        &[],
        &[],
    );
}

/// Names that merely contain "kaspersky", and ordinary browsing.
fn decoys(d: &mut Demo) {
    let host = v4(10, 20, 0, 11);
    for (i, name) in ["notkaspersky.com", "kaspersky.com.example.net"]
        .into_iter()
        .enumerate()
    {
        let ip = Ipv4Addr::new(203, 0, 113, 10 + i as u8);
        let t = d.dns(
            at(1200 + 10 * i as u64),
            host,
            name,
            &[Answer::a(name, ip, 300)],
        );
        d.tls(
            t + 3 * MILLI,
            host,
            sock(ip.into(), 443),
            &hello(Some(name), SHORT_HELLO),
            &[],
            &[],
        );
    }

    let host = v4(10, 20, 0, 12);
    let example = Ipv4Addr::new(93, 184, 216, 34);
    let t = d.dns(
        at(1300),
        host,
        "www.example.com",
        &[Answer::a("www.example.com", example, 300)],
    );
    let browser_ua =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:55.0) Gecko/20100101 Firefox/55.0";
    let req = http::request(
        "GET",
        "/",
        Some("www.example.com"),
        Some(browser_ua),
        &[("Accept", "text/html")],
    );
    let resp = http::response(
        200,
        Some("text/html; charset=UTF-8"),
        b"<!doctype html><title>Example Domain</title>",
    );
    d.http(t + 3 * MILLI, host, sock(example.into(), 80), &req, &resp);

    let wiki = Ipv4Addr::new(185, 15, 59, 224);
    let t = d.dns(
        at(1310),
        host,
        "www.wikipedia.org",
        &[Answer::a("www.wikipedia.org", wiki, 300)],
    );
    d.tls(
        t + 3 * MILLI,
        host,
        sock(wiki.into(), 443),
        &browser_hello("www.wikipedia.org"),
        &[700],
        &[],
    );
}

/// 10.20.0.13 visits the website; 10.20.0.14 gets a fragmented DNS answer.
fn kaspersky_website_and_fragments(d: &mut Demo) {
    let host = v4(10, 20, 0, 13);
    let web = Ipv4Addr::new(185, 85, 15, 26);
    let t = d.dns(
        at(1500),
        host,
        "www.kaspersky.com",
        &[Answer::a("www.kaspersky.com", web, 300)],
    );
    d.tls(
        t + 3 * MILLI,
        host,
        sock(web.into(), 443),
        &browser_hello("www.kaspersky.com"),
        &[],
        &[],
    );

    let client = d.client(v4(10, 20, 0, 14));
    let resolver = sock(RESOLVER_V4.into(), 53);
    let name = "dc1.ksn.kaspersky-labs.com";
    let answers: Vec<Answer> = (1..=100)
        .map(|i| Answer::a(name, Ipv4Addr::new(77, 74, 177, i), 60))
        .collect();
    let id = d.rng.next_u32() as u16;
    let query = DnsMessage::query(id, name, dns::TYPE_A);
    crate::session::udp_exchange(&mut d.cb, at(1800), client, resolver, &query, None);
    let response = DnsMessage::response(id, name, dns::TYPE_A, &answers);
    let udp = packet::udp_datagram(resolver.ip(), client.ip(), 53, client.port(), &response);
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (resolver.ip(), client.ip()) else {
        return;
    };
    let ident = d.cb.next_ident();
    for (i, frag) in packet::ipv4_fragments(src, dst, IPPROTO_UDP, ident, &udp, 1480)
        .into_iter()
        .enumerate()
    {
        d.cb.push_ip(at(1800) + 2 * MILLI + i as u64 * 10_000, frag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_within_jitter() {
        let times = beacon_times();
        assert_eq!(times.len(), BEACON_COUNT);
        for w in times.windows(2) {
            let gap = (w[1] - w[0]) / MILLI;
            assert!((276_000..=324_000).contains(&gap), "{gap}");
        }
        assert!(times[BEACON_COUNT - 1] - times[0] < 2 * 3600 * SECOND);
    }

    #[test]
    fn demo_is_deterministic_and_small() {
        let a = build().to_pcapng_bytes();
        assert_eq!(a, build().to_pcapng_bytes());
        assert!(a.len() < 1_000_000, "{}", a.len());
        assert_eq!(&a[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    }

    #[test]
    fn write_creates_directories() {
        let dir = std::env::temp_dir().join(format!("synth-demo-{}", std::process::id()));
        let path = dir.join("sub/demo.pcapng");
        let (frames, bytes) = write_demo(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, bytes);
        assert!(frames > 300);
        fs::remove_dir_all(dir).unwrap();
    }
}
