//! A simulated day for beacon analysis: 24 hours of an infected host's
//! agent traffic among visits and browser bursts, kept small (short
//! hellos, tiny bodies: about 4,000 frames, well under a megabyte).
//!
//! Ethernet pcapng starting 2024-06-20T00:00:00Z (the day the US Commerce
//! ban of Kaspersky was announced); resolver 10.30.0.2. Deterministic.
//!
//! | host | what it does | a correct analysis reports |
//! |------|--------------|----------------------------|
//! | 10.30.0.5 | reputation lookups: TLS SNI `ksn-file-geo.kaspersky-labs.com` → 77.74.178.11 every 300 s ± 12 % (sleep-with-jitter); 5 % of them missed; asleep 02:00–03:30; one in ten first refused (SYN, RST) and retried a second later; DNS only when the 30-minute TTL ran out. Hourly update check: DNS + HTTP `GET /updaters/updater.xml.dif` to `dnl-03.geo.kaspersky.com` (93.159.228.2), 3600 s ± 2 % | Kaspersky; beacon ≈ 300 s with [`DayTruth::lookups`] on-beat sessions, and a second period ≈ 3600 s |
//! | 10.30.0.6 | one visit to `www.kaspersky.com`: DNS + 4 browser connections within a second | Kaspersky (web); no beacon |
//! | 10.30.0.7 | three browser bursts to `www.kaspersky.com`, 30 connections in 2 s each, at 09:12, 13:47, 17:05 | Kaspersky (web); 90 connections; no beacon |
//! | 10.30.0.8 | DNS `dc1.ksn.kaspersky-labs.com` every 600 s ± 3 %, its connections leave through a proxy the tap does not see | Kaspersky; DNS-only beacon ≈ 600 s |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::dns::Answer;
use crate::http;
use crate::packet::{self, IPPROTO_TCP, TcpFlags};
use crate::rng::Rng;
use crate::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn, dns_lookup};
use crate::tls::{self, ClientHelloSpec, MAX_RECORD_PAYLOAD};

/// Capture start, 2024-06-20T00:00:00Z, in Unix seconds.
pub const START_SECS: u64 = 1_718_841_600;
/// Length of the day, seconds.
pub const DAY_SECS: u64 = 86_400;
/// Reputation lookup period of 10.30.0.5.
pub const LOOKUP_PERIOD_S: u64 = 300;
/// Update check period of 10.30.0.5.
pub const UPDATE_PERIOD_S: u64 = 3600;
/// DNS-only beacon period of 10.30.0.8.
pub const DNS_PERIOD_S: u64 = 600;

const SEED: u64 = 0x0DA7_2024;
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 30, 0, 2);
const KSN: &str = "ksn-file-geo.kaspersky-labs.com";
const KSN_IP: Ipv4Addr = Ipv4Addr::new(77, 74, 178, 11);
const UPD: &str = "dnl-03.geo.kaspersky.com";
const UPD_IP: Ipv4Addr = Ipv4Addr::new(93, 159, 228, 2);
const WEB: &str = "www.kaspersky.com";
const WEB_IP: Ipv4Addr = Ipv4Addr::new(185, 85, 15, 26);
const DC1: &str = "dc1.ksn.kaspersky-labs.com";

/// What was generated, for tests to compare the analysis with.
#[derive(Debug, Clone, Default)]
pub struct DayTruth {
    /// Start (Unix ns) of each reputation lookup of 10.30.0.5 (its first
    /// attempt, when it was retried).
    pub lookups: Vec<u64>,
    /// Lookups whose first attempt was refused and retried a second later.
    pub retried: usize,
    /// Start of each hourly update check of 10.30.0.5.
    pub updates: Vec<u64>,
    /// Time of each DNS query of 10.30.0.8.
    pub dns_only: Vec<u64>,
    /// Connections of 10.30.0.7 (browser bursts).
    pub burst_connections: usize,
}

/// Unix-epoch nanoseconds `secs` after the start of the day.
pub fn at(secs: f64) -> u64 {
    START_SECS * SECOND + (secs * 1e9) as u64
}

struct Day {
    cb: CaptureBuilder,
    rng: Rng,
    port: u16,
}

impl Day {
    fn client(&mut self, host: IpAddr) -> SocketAddr {
        self.port = self
            .port
            .wrapping_add(1 + self.rng.below(8) as u16)
            .max(49152);
        SocketAddr::new(host, self.port)
    }

    fn dns(&mut self, ts: u64, host: IpAddr, name: &str, answers: &[Answer]) -> u64 {
        let client = self.client(host);
        let id = self.rng.next_u32() as u16;
        let resolver = SocketAddr::new(RESOLVER.into(), 53);
        dns_lookup(&mut self.cb, ts, client, resolver, id, name, answers)
    }

    fn conn(&mut self, host: IpAddr, server: SocketAddr) -> TcpConn {
        let client = self.client(host);
        TcpConn::new(client, server, self.rng.next_u32(), self.rng.next_u32())
    }

    /// A TLS connection: handshake, hello, server flight, close.
    fn tls(&mut self, ts: u64, host: IpAddr, server: SocketAddr, hello: &[u8]) -> u64 {
        let mut c = self.conn(host, server);
        let t = c.handshake(&mut self.cb, ts);
        let t = c.client_send(&mut self.cb, t + MILLI, hello);
        let t = c.server_send(&mut self.cb, t + MILLI, &tls::server_hello_stub());
        c.close(&mut self.cb, t + 50 * MILLI)
    }

    /// A refused attempt: SYN answered by RST.
    fn refused(&mut self, ts: u64, host: IpAddr, server: SocketAddr) {
        let client = self.client(host);
        let isn = self.rng.next_u32();
        let syn = packet::tcp_segment(
            client.ip(),
            server.ip(),
            client.port(),
            server.port(),
            isn,
            0,
            TcpFlags::SYN,
            &[],
        );
        let pkt = self
            .cb
            .ip_packet(client.ip(), server.ip(), IPPROTO_TCP, &syn);
        self.cb.push_ip(ts, pkt);
        let rst = packet::tcp_segment(
            server.ip(),
            client.ip(),
            server.port(),
            client.port(),
            0,
            isn.wrapping_add(1),
            TcpFlags::RST | TcpFlags::ACK,
            &[],
        );
        let pkt = self
            .cb
            .ip_packet(server.ip(), client.ip(), IPPROTO_TCP, &rst);
        self.cb.push_ip(ts + 20 * MILLI, pkt);
    }

    /// `t + period ± jitter` (uniform, in seconds).
    fn next(&mut self, t: f64, period: f64, jitter: f64) -> f64 {
        let u = self.rng.below(1_000_001) as f64 / 1e6 * 2.0 - 1.0;
        t + period * (1.0 + jitter * u)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }
}

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 30, 0, d))
}

fn small_hello(sni: &str) -> Vec<u8> {
    let spec = ClientHelloSpec {
        target_len: Some(300),
        ..ClientHelloSpec::with_sni(sni)
    };
    tls::records(&tls::client_hello(&spec), MAX_RECORD_PAYLOAD)
}

/// Builds the day's capture and what it contains.
pub fn build() -> (CaptureBuilder, DayTruth) {
    let mut d = Day {
        cb: CaptureBuilder::new(Link::Ethernet { vlans: Vec::new() }),
        rng: Rng::new(SEED),
        port: 49152,
    };
    let mut truth = DayTruth::default();
    agent(&mut d, &mut truth);
    visits(&mut d, &mut truth);
    dns_only(&mut d, &mut truth);
    (d.cb, truth)
}

/// 10.30.0.5: 5-minute lookups and hourly update checks.
fn agent(d: &mut Day, truth: &mut DayTruth) {
    let host = v4(5);
    let ksn = SocketAddr::new(KSN_IP.into(), 443);
    let hello = small_hello(KSN);
    let asleep = 7200.0..12_600.0;
    let mut dns_valid_until = 0.0;
    let mut t = 47.0;
    while t < DAY_SECS as f64 {
        let missed = d.chance(5) || asleep.contains(&t);
        if !missed {
            let mut ts = at(t);
            truth.lookups.push(ts);
            if t >= dns_valid_until {
                ts = d.dns(ts, host, KSN, &[Answer::a(KSN, KSN_IP, 1800)]) + MILLI;
                dns_valid_until = t + 1800.0;
            }
            if d.chance(10) {
                d.refused(ts, host, ksn);
                ts += SECOND;
                truth.retried += 1;
            }
            d.tls(ts, host, ksn, &hello);
        }
        t = d.next(t, LOOKUP_PERIOD_S as f64, 0.12);
    }

    let upd = SocketAddr::new(UPD_IP.into(), 80);
    let req = http::request(
        "GET",
        "/updaters/updater.xml.dif",
        Some(UPD),
        Some("Kaspersky Lab Update Agent"),
        &[],
    );
    let body = d.rng.bytes(200);
    let resp = http::response(200, Some("application/x-kaspavupdate"), &body);
    let mut t = 1234.0;
    while t < DAY_SECS as f64 {
        let ts = at(t);
        truth.updates.push(ts);
        let ts = d.dns(ts, host, UPD, &[Answer::a(UPD, UPD_IP, 300)]) + MILLI;
        let mut c = d.conn(host, upd);
        let ts = c.handshake(&mut d.cb, ts);
        let ts = c.client_send(&mut d.cb, ts + MILLI, &req);
        let ts = c.server_send(&mut d.cb, ts + MILLI, &resp);
        c.close(&mut d.cb, ts + 5 * MILLI);
        t = d.next(t, UPDATE_PERIOD_S as f64, 0.02);
    }
}

/// 10.30.0.6 visits the website once; 10.30.0.7 opens it in bursts.
fn visits(d: &mut Day, truth: &mut DayTruth) {
    let web = SocketAddr::new(WEB_IP.into(), 443);
    let hello = small_hello(WEB);
    let host = v4(6);
    let ts = d.dns(at(40_000.0), host, WEB, &[Answer::a(WEB, WEB_IP, 300)]);
    for i in 0..4 {
        d.tls(ts + MILLI + i * 150 * MILLI, host, web, &hello);
    }

    let host = v4(7);
    for start in [33_120.0, 49_620.0, 61_500.0] {
        let ts = d.dns(at(start), host, WEB, &[Answer::a(WEB, WEB_IP, 300)]);
        for i in 0..30 {
            d.tls(ts + MILLI + i * 66 * MILLI, host, web, &hello);
            truth.burst_connections += 1;
        }
    }
}

/// 10.30.0.8: DNS queries only (its connections go through a proxy).
fn dns_only(d: &mut Day, truth: &mut DayTruth) {
    let host = v4(8);
    let ip = Ipv4Addr::new(77, 74, 177, 1);
    let mut t = 300.0;
    while t < DAY_SECS as f64 {
        let ts = at(t);
        truth.dns_only.push(ts);
        d.dns(ts, host, DC1, &[Answer::a(DC1, ip, 60)]);
        t = d.next(t, DNS_PERIOD_S as f64, 0.03);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_deterministic_small_and_as_described() {
        let (cb, truth) = build();
        let (cb2, _) = build();
        let bytes = cb.to_pcapng_bytes();
        assert_eq!(bytes, cb2.to_pcapng_bytes());
        assert!(bytes.len() < 2_000_000, "{}", bytes.len());
        // ≈ 288 lookups minus 5 % and 90 minutes asleep.
        assert!(
            (230..275).contains(&truth.lookups.len()),
            "{}",
            truth.lookups.len()
        );
        assert!(truth.retried > 10, "{}", truth.retried);
        assert!((23..=25).contains(&truth.updates.len()));
        assert_eq!(truth.burst_connections, 90);
        assert!(truth.lookups.windows(2).all(|w| w[1] - w[0] > 200 * SECOND));
    }
}
