//! GeoIP and ASN: where each server is, who runs it, and whether its place
//! is watched.
//!
//! [`Geo`] holds the databases given with `--geoip` (City or Country, in
//! MaxMind's nested schema or ip-location-db's flat one, told apart by the
//! metadata; see [`db`]) and `--asn`, plus the [`Watch`] rules
//! (`--watch-geo`, Moscow by default; see [`watch`]). It is read-only and
//! shared by every engine through [`crate::feeds::Intel`].
//!
//! Two uses:
//!
//! - attribution asks for a compact [`Verdict`] (AS number, watched or not)
//!   at the start of every conversation, through a per-engine [`GeoCache`]
//!   (bounded, allocation-free on a hit);
//! - the report asks for the full [`ServerGeo`] of each server it lists
//!   (country, city, ASN, organisation, the watch rule that matched).
//!
//! No database ships with phonehome: README says where to get them.
//! Without `--geoip`/`--asn` nothing here runs and nothing is allocated.

pub mod cache;
pub mod db;
pub mod watch;

pub use cache::{CacheStats, GeoCache};
pub use db::{AsnRef, Database, GeoError, Kind, Place, PlaceRef, Schema};
pub use watch::{Watch, WatchError, WatchRule};

use std::net::IpAddr;

/// What attribution needs to know about a server, per conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Its autonomous system, when the ASN database knows it.
    pub asn: Option<u32>,
    /// Whether a watch rule matches its place.
    pub watched: bool,
    /// A database record could not be decoded (the rest is "unknown").
    pub error: bool,
}

/// Everything known about a server, for the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerGeo {
    /// Its place, when the location database knows it.
    pub place: Option<Place>,
    /// AS number.
    pub asn: Option<u32>,
    /// AS organisation.
    pub org: Option<Box<str>>,
    /// The watch rule that matched, if any (`None` also without `--geoip`).
    pub watch: Option<String>,
}

/// The loaded databases and the watch rules. Several files of a kind may
/// be given (ip-location-db ships IPv4 and IPv6 separately): the first that
/// has a record for an address answers.
#[derive(Debug, Default)]
pub struct Geo {
    location: Vec<Database>,
    asn: Vec<Database>,
    watch: Watch,
}

impl Geo {
    /// No database: every server is unknown, nothing is watched.
    pub fn none() -> Self {
        Geo::default()
    }

    /// Databases (either list may be empty) and watch rules.
    pub fn new(location: Vec<Database>, asn: Vec<Database>, watch: Watch) -> Self {
        Geo {
            location,
            asn,
            watch,
        }
    }

    /// Whether any database is loaded.
    pub fn is_enabled(&self) -> bool {
        !self.location.is_empty() || !self.asn.is_empty()
    }

    /// The location databases.
    pub fn location_dbs(&self) -> &[Database] {
        &self.location
    }

    /// The ASN databases.
    pub fn asn_dbs(&self) -> &[Database] {
        &self.asn
    }

    /// The place of `ip` in the first location database that knows it
    /// (`Err` only when no database answered and one failed).
    fn place(&self, ip: IpAddr) -> Result<Option<PlaceRef<'_>>, ()> {
        let mut failed = false;
        for db in &self.location {
            match db.place(ip) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if failed { Err(()) } else { Ok(None) }
    }

    /// The autonomous system of `ip`, likewise.
    fn asn(&self, ip: IpAddr) -> Result<Option<AsnRef<'_>>, ()> {
        let mut failed = false;
        for db in &self.asn {
            match db.asn(ip) {
                Ok(Some(a)) => return Ok(Some(a)),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if failed { Err(()) } else { Ok(None) }
    }

    /// The watch rules.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The compact verdict for `ip`, straight from the databases (use a
    /// [`GeoCache`] on the per-conversation path). Allocates nothing.
    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        let mut v = Verdict::default();
        match self.place(ip) {
            Ok(Some(p)) => v.watched = self.watch.matching(&p).is_some(),
            Ok(None) => {}
            Err(()) => v.error = true,
        }
        match self.asn(ip) {
            Ok(a) => v.asn = a.map(|a| a.number),
            Err(()) => v.error = true,
        }
        v
    }

    /// Everything known about `ip` (damaged records count as unknown).
    pub fn describe(&self, ip: IpAddr) -> ServerGeo {
        let mut s = ServerGeo::default();
        if let Ok(Some(p)) = self.place(ip) {
            s.watch = self.watch.matching(&p).map(|r| r.to_string());
            s.place = Some(p.to_place());
        }
        if let Ok(Some(a)) = self.asn(ip) {
            s.asn = Some(a.number);
            s.org = a.org.map(Into::into);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonehome_synth::geo::{asn_records, city_records};
    use phonehome_synth::mmdb::{CitySchema, asn_db, city_db};
    use std::path::Path;

    fn geo(schema: CitySchema, watch: Watch) -> Geo {
        let city = city_db(schema, &city_records()).unwrap();
        let asn = asn_db(&asn_records()).unwrap();
        Geo::new(
            vec![Database::from_bytes(city, Path::new("city.mmdb")).unwrap()],
            vec![Database::from_bytes(asn, Path::new("asn.mmdb")).unwrap()],
            watch,
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn verdicts_and_descriptions() {
        let g = geo(CitySchema::GeoIp2City, Watch::moscow());
        assert_eq!(
            g.verdict(ip("203.0.113.77")),
            Verdict {
                asn: Some(64_500),
                watched: true,
                error: false
            }
        );
        assert_eq!(
            g.verdict(ip("198.51.100.201")),
            Verdict {
                asn: Some(200_107),
                watched: false,
                error: false
            }
        );
        assert_eq!(g.verdict(ip("10.0.0.1")), Verdict::default());
        assert!(g.verdict(ip("192.0.2.70")).watched, "radius");
        assert!(g.verdict(ip("192.0.2.100")).watched, "time zone");
        assert!(!g.verdict(ip("192.0.2.130")).watched, "Saint Petersburg");
        assert!(g.verdict(ip("2001:db8:77::1")).watched);
        let d = g.describe(ip("77.74.178.11"));
        assert_eq!(
            d.place.as_ref().and_then(|p| p.city.as_deref()),
            Some("Moscow")
        );
        assert_eq!(
            (d.asn, d.org.as_deref()),
            (Some(200_107), Some("Kaspersky Lab AO"))
        );
        assert_eq!(d.watch.as_deref(), Some("RU/Moscow"));
        let d = g.describe(ip("192.0.2.100"));
        assert_eq!(d.watch.as_deref(), Some("tz:Europe/Moscow"));
        assert_eq!((d.asn, d.org), (Some(64_501), None));
        assert_eq!(g.describe(ip("10.0.0.1")), ServerGeo::default());
    }

    #[test]
    fn country_databases_watch_countries_not_cities() {
        let g = geo(CitySchema::GeoLite2Country, Watch::moscow());
        assert!(!g.verdict(ip("203.0.113.77")).watched);
        let mut w = Watch::none();
        w.push(WatchRule::parse("RU").unwrap());
        let g = geo(CitySchema::GeoLite2Country, w);
        assert!(g.verdict(ip("203.0.113.77")).watched);
        assert!(!g.verdict(ip("192.0.2.50")).watched);
    }

    #[test]
    fn the_cache_answers_repeats_and_stays_bounded() {
        let g = geo(CitySchema::GeoIp2City, Watch::moscow());
        let mut c = GeoCache::with_slots(4);
        let a = ip("203.0.113.77");
        let first = c.verdict(&g, a);
        assert_eq!(c.verdict(&g, a), first);
        assert_eq!(
            c.stats,
            CacheStats {
                lookups: 2,
                hits: 1,
                errors: 0
            }
        );
        // Many addresses through 4 slots: still correct, memory fixed.
        for i in 0..1000u32 {
            let x = IpAddr::from((0xcb00_7140u32 + (i % 64)).to_be_bytes());
            assert!(c.verdict(&g, x).watched, "{x}");
        }
        assert_eq!(c.stats.lookups, 1002);
        assert!(c.stats.hits < 1000);
        // Without databases nothing is known.
        let none = Geo::none();
        assert!(!none.is_enabled());
        assert_eq!(GeoCache::default().verdict(&none, a), Verdict::default());
    }
}
