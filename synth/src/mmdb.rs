//! Small MaxMind DB (`.mmdb`) files for tests and benchmarks, in the
//! layouts of the real databases phonehome reads:
//!
//! - [`CitySchema::GeoIp2City`]: MaxMind GeoIP2/GeoLite2 City (nested maps:
//!   `country.iso_code`, `city.names.en`, `location.*`), IPv6 tree with
//!   IPv4 aliased, coordinates as doubles;
//! - [`CitySchema::GeoLite2Country`]: the same without city and location;
//! - [`CitySchema::FlatCity`]: ip-location-db's `city ipv4` files (one flat
//!   map, every column a string, empty when unknown; coordinates as 32-bit
//!   floats; IPv4 only, so IPv6 records are left out);
//! - [`asn_db`]: GeoLite2-ASN (`autonomous_system_number`,
//!   `autonomous_system_organization`).
//!
//! Written with the `mmdb-writer` crate; the build time is fixed so the
//! output is deterministic.

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};
use std::io;
use std::time::{Duration, UNIX_EPOCH};

/// Build time written to every database: 2026-11-01T00:00:00Z.
pub const BUILD_EPOCH: u64 = 1_793_491_200;

/// One network's location.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeoRecord<'a> {
    /// The network, e.g. `203.0.113.0/24`.
    pub net: &'a str,
    /// ISO country code.
    pub country: Option<&'a str>,
    /// English city name.
    pub city: Option<&'a str>,
    /// Latitude and longitude.
    pub lat_lon: Option<(f64, f64)>,
    /// `location.accuracy_radius`, km (nested schema only).
    pub accuracy_km: Option<u16>,
    /// IANA time zone.
    pub tz: Option<&'a str>,
}

/// One network's autonomous system.
#[derive(Debug, Clone, Copy)]
pub struct AsnRecord<'a> {
    /// The network.
    pub net: &'a str,
    /// AS number.
    pub number: u32,
    /// Organisation.
    pub org: Option<&'a str>,
}

/// Layout of a location database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitySchema {
    /// GeoIP2-City (nested).
    GeoIp2City,
    /// GeoLite2-Country (nested, country only).
    GeoLite2Country,
    /// ip-location-db `city ipv4` (flat).
    FlatCity,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

fn writer(database_type: &str, v4_only: bool) -> Writer {
    Writer::builder(database_type)
        .ip_version(if v4_only {
            IpVersion::V4
        } else {
            IpVersion::V6
        })
        .description(&[("en", "phonehome test database")])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH))
        .build()
}

fn names(en: &str) -> Value {
    Value::map([("en", Value::from(en))])
}

fn nested(r: &GeoRecord<'_>, with_city: bool) -> Value {
    let mut m: Vec<(&str, Value)> = Vec::new();
    if let Some(cc) = r.country {
        let country = Value::map([("iso_code", Value::from(cc)), ("names", names(cc))]);
        m.push(("country", country.clone()));
        m.push(("registered_country", country));
    }
    if with_city {
        if let Some(city) = r.city {
            m.push(("city", Value::map([("names", names(city))])));
        }
        let mut loc: Vec<(&str, Value)> = Vec::new();
        if let Some((lat, lon)) = r.lat_lon {
            loc.push(("latitude", Value::Double(lat)));
            loc.push(("longitude", Value::Double(lon)));
        }
        if let Some(a) = r.accuracy_km {
            loc.push(("accuracy_radius", Value::U16(a)));
        }
        if let Some(tz) = r.tz {
            loc.push(("time_zone", Value::from(tz)));
        }
        if !loc.is_empty() {
            m.push(("location", Value::map(loc)));
        }
    }
    Value::map(m)
}

fn flat(r: &GeoRecord<'_>) -> Value {
    let mut m = vec![
        ("country_code", Value::from(r.country.unwrap_or(""))),
        ("state1", Value::from("")),
        ("state2", Value::from("")),
        ("city", Value::from(r.city.unwrap_or(""))),
        ("postcode", Value::from("")),
        ("timezone", Value::from(r.tz.unwrap_or(""))),
    ];
    if let Some((lat, lon)) = r.lat_lon {
        m.push(("latitude", Value::Float(lat as f32)));
        m.push(("longitude", Value::Float(lon as f32)));
    }
    Value::map(m)
}

/// A location database holding `records` (later records win on overlap).
///
/// # Errors
///
/// A network that does not parse, or the writer's own errors.
pub fn city_db(schema: CitySchema, records: &[GeoRecord<'_>]) -> io::Result<Vec<u8>> {
    let mut w = match schema {
        CitySchema::GeoIp2City => writer("GeoIP2-City", false),
        CitySchema::GeoLite2Country => writer("GeoLite2-Country", false),
        CitySchema::FlatCity => writer("city ipv4", true),
    };
    for r in records {
        let net: IpNet = r.net.parse().map_err(invalid)?;
        let value = match schema {
            CitySchema::GeoIp2City => nested(r, true),
            CitySchema::GeoLite2Country => nested(r, false),
            CitySchema::FlatCity if net.addr().is_ipv6() => continue,
            CitySchema::FlatCity => flat(r),
        };
        w.insert_value(net, value).map_err(invalid)?;
    }
    w.to_bytes().map_err(invalid)
}

/// A GeoLite2-ASN database holding `records`.
///
/// # Errors
///
/// A network that does not parse, or the writer's own errors.
pub fn asn_db(records: &[AsnRecord<'_>]) -> io::Result<Vec<u8>> {
    let mut w = writer("GeoLite2-ASN", false);
    for r in records {
        let net: IpNet = r.net.parse().map_err(invalid)?;
        let mut m = vec![("autonomous_system_number", Value::U32(r.number))];
        if let Some(org) = r.org {
            m.push(("autonomous_system_organization", Value::from(org)));
        }
        w.insert_value(net, Value::map(m)).map_err(invalid)?;
    }
    w.to_bytes().map_err(invalid)
}
