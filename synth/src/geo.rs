//! The GeoIP/ASN scenario: a capture whose servers only databases can
//! place, and the records of the small City and ASN databases that place
//! them (write them with [`crate::mmdb`]).
//!
//! Ethernet pcapng, starting 2017-09-13T10:00:00Z like the demo. Hosts live
//! in 10.30.0.0/16 (plus 2001:db8:30::5). No server has a name a feed knows,
//! except where the table says so. Documentation addresses only.
//!
//! | host | what it does | server's place / AS | a correct analysis with both databases |
//! |------|--------------|---------------------|----------------------------------------|
//! | 10.30.0.5 | 12 TLS connections without server name, one per 300 s | 203.0.113.77: RU, Moscow, AS64500 | vendor null, evidence `geo`, 12 connections, server watched (`RU/Moscow`) |
//! | 10.30.0.6 | one TLS connection without server name | 198.51.100.201: NL, Amsterdam, AS200107 "Kaspersky Lab AO" | Kaspersky, evidence `asn` only; server not watched |
//! | 10.30.0.7 | one TLS connection without server name | 192.0.2.50: DE, Berlin, AS64501 | nothing |
//! | 10.30.0.8 | one TLS connection with a server name in no feed (`telemetry.example-av.ru`) | 192.0.2.70: RU, no city, coordinates 37 km from Moscow's centre | vendor null, `geo` (the radius rule), that name |
//! | 10.30.0.9 | one TLS connection without server name | 192.0.2.100: RU, no city, no coordinates, time zone Europe/Moscow | vendor null, `geo` (the time-zone fallback) |
//! | 10.30.0.10 | one TLS connection without server name | 192.0.2.130: RU, Saint Petersburg (59.939, 30.3158), Europe/Moscow | nothing by default; watched with `RU`, `RU/Saint Petersburg` or a radius around it |
//! | 10.30.0.11 | TLS with server name `ds.kaspersky.com` | 203.0.113.80: RU, Moscow, AS64500 | Kaspersky (`sni`), server watched; no vendor-null contact |
//! | 2001:db8:30::5 | one TLS connection without server name over IPv6 | 2001:db8:77::1: RU, Moscow | vendor null, `geo` (absent with the flat IPv4-only database) |
//!
//! The records also place the demo capture's Kaspersky servers
//! (77.74.176.0/21 and 93.159.228.0/22: RU, Moscow, AS200107), so the demo
//! report shows enriched, watched servers.

use crate::demo::at;
use crate::mmdb::{AsnRecord, GeoRecord};
use crate::rng::Rng;
use crate::session::{CaptureBuilder, Link, MILLI, SECOND, TcpConn};
use crate::tls::{self, ClientHelloSpec, MAX_RECORD_PAYLOAD};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// The periodic, unnamed server in Moscow.
pub const MOSCOW_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
/// The server name 10.30.0.8 sends to its server near Moscow: in no feed.
pub const UNLISTED_NAME: &str = "telemetry.example-av.ru";
/// Beacon period of 10.30.0.5, seconds.
pub const BEACON_PERIOD_SECS: u64 = 300;
/// Beacons sent by 10.30.0.5.
pub const BEACON_COUNT: u64 = 12;

const SEED: u64 = 0x0006_e01d;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

struct Scenario {
    cb: CaptureBuilder,
    rng: Rng,
    port: u16,
}

impl Scenario {
    /// A TLS connection: handshake, ClientHello, server flight, close.
    fn tls(&mut self, ts: u64, host: IpAddr, server: IpAddr, sni: Option<&str>) {
        self.port = self.port.wrapping_add(1).max(49152);
        let mut c = TcpConn::new(
            SocketAddr::new(host, self.port),
            SocketAddr::new(server, 443),
            self.rng.next_u32(),
            self.rng.next_u32(),
        );
        let spec = ClientHelloSpec {
            sni: sni.map(str::to_string),
            ..ClientHelloSpec::default()
        };
        let hello = tls::records(&tls::client_hello(&spec), MAX_RECORD_PAYLOAD);
        let t = c.handshake(&mut self.cb, ts);
        let t = c.client_send(&mut self.cb, t + MILLI, &hello);
        let t = c.server_send(&mut self.cb, t + MILLI, &tls::server_hello_stub());
        c.close(&mut self.cb, t + 200 * MILLI);
    }
}

/// Builds the capture.
pub fn build() -> CaptureBuilder {
    let mut s = Scenario {
        cb: CaptureBuilder::new(Link::Ethernet { vlans: Vec::new() }),
        rng: Rng::new(SEED),
        port: 49152,
    };
    for i in 0..BEACON_COUNT {
        let jitter = s.rng.below(4 * SECOND);
        s.tls(
            at(30 + i * BEACON_PERIOD_SECS) + jitter,
            v4(10, 30, 0, 5),
            MOSCOW_SERVER.into(),
            None,
        );
    }
    let one_offs: [(u64, IpAddr, IpAddr, Option<&str>); 7] = [
        (100, v4(10, 30, 0, 6), v4(198, 51, 100, 201), None),
        (110, v4(10, 30, 0, 7), v4(192, 0, 2, 50), None),
        (
            120,
            v4(10, 30, 0, 8),
            v4(192, 0, 2, 70),
            Some(UNLISTED_NAME),
        ),
        (130, v4(10, 30, 0, 9), v4(192, 0, 2, 100), None),
        (140, v4(10, 30, 0, 10), v4(192, 0, 2, 130), None),
        (
            150,
            v4(10, 30, 0, 11),
            v4(203, 0, 113, 80),
            Some("ds.kaspersky.com"),
        ),
        (
            160,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x30, 0, 0, 0, 0, 5)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 1)),
            None,
        ),
    ];
    for (secs, host, server, sni) in one_offs {
        s.tls(at(secs), host, server, sni);
    }
    s.cb
}

/// Writes the capture (pcapng) to `path`.
///
/// # Errors
///
/// The file cannot be written.
pub fn write_capture(path: impl AsRef<Path>) -> std::io::Result<()> {
    build().write_pcapng(path)
}

const MOSCOW: (f64, f64) = (55.7522, 37.6156);

/// Locations of the scenario's (and the demo's Kaspersky) servers.
pub fn city_records() -> Vec<GeoRecord<'static>> {
    let moscow = |net| GeoRecord {
        net,
        country: Some("RU"),
        city: Some("Moscow"),
        lat_lon: Some(MOSCOW),
        accuracy_km: Some(20),
        tz: Some("Europe/Moscow"),
    };
    vec![
        moscow("203.0.113.64/26"),
        moscow("77.74.176.0/21"),
        moscow("93.159.228.0/22"),
        moscow("2001:db8:77::/48"),
        GeoRecord {
            net: "198.51.100.200/29",
            country: Some("NL"),
            city: Some("Amsterdam"),
            lat_lon: Some((52.3740, 4.8897)),
            accuracy_km: Some(20),
            tz: Some("Europe/Amsterdam"),
        },
        GeoRecord {
            net: "192.0.2.48/28",
            country: Some("DE"),
            city: Some("Berlin"),
            lat_lon: Some((52.5244, 13.4105)),
            accuracy_km: Some(20),
            tz: Some("Europe/Berlin"),
        },
        // Zelenograd, without a city name: only the radius can tell.
        GeoRecord {
            net: "192.0.2.64/28",
            country: Some("RU"),
            lat_lon: Some((55.9825, 37.1814)),
            accuracy_km: Some(50),
            ..GeoRecord::default()
        },
        // Only the time zone.
        GeoRecord {
            net: "192.0.2.96/28",
            country: Some("RU"),
            tz: Some("Europe/Moscow"),
            ..GeoRecord::default()
        },
        GeoRecord {
            net: "192.0.2.128/28",
            country: Some("RU"),
            city: Some("Saint Petersburg"),
            lat_lon: Some((59.939, 30.3158)),
            accuracy_km: Some(20),
            tz: Some("Europe/Moscow"),
        },
    ]
}

/// Autonomous systems of the scenario's (and the demo's Kaspersky) servers.
pub fn asn_records() -> Vec<AsnRecord<'static>> {
    let kaspersky = |net| AsnRecord {
        net,
        number: 200_107,
        org: Some("Kaspersky Lab AO"),
    };
    vec![
        kaspersky("198.51.100.200/29"),
        kaspersky("77.74.176.0/21"),
        kaspersky("93.159.228.0/22"),
        AsnRecord {
            net: "203.0.113.64/26",
            number: 64_500,
            org: Some("Example Moscow Hosting"),
        },
        AsnRecord {
            net: "192.0.2.0/24",
            number: 64_501,
            org: None,
        },
    ]
}
