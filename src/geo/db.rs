//! MaxMind DB files: opening them, telling their schema from the metadata,
//! and decoding the few fields phonehome uses.
//!
//! Location databases come in two schemas:
//!
//! - **nested** — MaxMind GeoIP2/GeoLite2 City and Country (and DB-IP's own
//!   `DBIP-City-Lite`/`DBIP-Country-Lite`, which copy it):
//!   `country.iso_code`, `city.names.en`, `location.{latitude, longitude,
//!   time_zone, accuracy_radius}`;
//! - **flat** — the files built by ip-location-db (including its DB-IP and
//!   GeoLite2 conversions), whose `database_type` is `city ipv4`,
//!   `country ipv6`, ...: `country_code`, `city`, `latitude`, `longitude`,
//!   `timezone`.
//!
//! ASN databases (GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite, ip-location-db
//! `asn ipv4`) all use `autonomous_system_number` and
//! `autonomous_system_organization`.
//!
//! A database file is input like any other: a corrupt or hostile file gives
//! a [`GeoError`] naming the file at open time, or a lookup error (counted,
//! treated as "unknown") later — never a panic. Decoding borrows strings from
//! the loaded file, so a lookup allocates nothing.

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Location databases larger than this are refused (the largest GeoIP2
/// City file is about 130 MB).
pub const MAX_DB_BYTES: u64 = 1 << 30;

/// Why a database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DB_BYTES`].
    #[error("{}: {size} bytes is more than the {MAX_DB_BYTES}-byte limit for a database", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not a readable MaxMind DB (bad metadata, search tree
    /// outside the file, ...).
    #[error("{}: not a valid MaxMind DB file: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The reader's diagnosis.
        #[source]
        source: MaxMindDbError,
    },
    /// A valid database, but not of a kind this option reads.
    #[error("{}: database type {database_type:?} is not {expected}", path.display())]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// Its `database_type` metadata.
        database_type: String,
        /// What the option needs.
        expected: &'static str,
    },
}

/// The record layout of a location database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// GeoIP2/GeoLite2 (and DB-IP's own files): nested maps.
    Nested,
    /// ip-location-db: one flat map.
    Flat,
}

/// What a database holds, from its `database_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Locations (city or country level) in the given schema.
    Location(Schema),
    /// Autonomous systems.
    Asn,
}

/// Tells the kind of a database from its `database_type` metadata, or
/// `None` when it is neither a location nor an ASN database (e.g.
/// GeoIP2-Anonymous-IP, GeoIP2-Domain).
pub fn kind_of(database_type: &str) -> Option<Kind> {
    let t = database_type.to_ascii_lowercase();
    // ip-location-db: "city ipv4", "country ipv6", "asn ipv4" (its Go writer
    // appends the IP version to the file kind).
    for (prefix, kind) in [
        ("city ipv", Kind::Location(Schema::Flat)),
        ("country ipv", Kind::Location(Schema::Flat)),
        ("asn ipv", Kind::Asn),
    ] {
        if t.starts_with(prefix) {
            return Some(kind);
        }
    }
    if t.contains("asn") || t.ends_with("-isp") || t.contains("-isp-") {
        return Some(Kind::Asn);
    }
    if t.contains("city") || t.contains("country") || t.contains("enterprise") {
        return Some(Kind::Location(Schema::Nested));
    }
    None
}

/// A location, borrowed from the database.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlaceRef<'a> {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<&'a str>,
    /// City name (English).
    pub city: Option<&'a str>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// How far off the coordinates may be, km (nested schema only).
    pub accuracy_km: Option<u16>,
    /// IANA time zone.
    pub tz: Option<&'a str>,
}

impl PlaceRef<'_> {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.city.is_none()
            && self.lat.is_none()
            && self.lon.is_none()
            && self.tz.is_none()
    }

    /// An owned copy.
    pub fn to_place(&self) -> Place {
        Place {
            country: self.country.map(Into::into),
            city: self.city.map(Into::into),
            lat: self.lat,
            lon: self.lon,
            accuracy_km: self.accuracy_km,
            tz: self.tz.map(Into::into),
        }
    }
}

/// A location, owned (for the report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<Box<str>>,
    /// City name (English).
    pub city: Option<Box<str>>,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// How far off the coordinates may be, km.
    pub accuracy_km: Option<u16>,
    /// IANA time zone.
    pub tz: Option<Box<str>>,
}

impl Place {
    /// A borrowed view.
    pub fn as_ref(&self) -> PlaceRef<'_> {
        PlaceRef {
            country: self.country.as_deref(),
            city: self.city.as_deref(),
            lat: self.lat,
            lon: self.lon,
            accuracy_km: self.accuracy_km,
            tz: self.tz.as_deref(),
        }
    }
}

/// An autonomous system, borrowed from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsnRef<'a> {
    /// AS number.
    pub number: u32,
    /// Organisation.
    pub org: Option<&'a str>,
}

// Record layouts. Unknown fields are skipped by the decoder (within the
// reader's own work limits); absent fields are None.

#[derive(Deserialize)]
struct NestedRecord<'a> {
    #[serde(borrow)]
    country: Option<NestedCountry<'a>>,
    #[serde(borrow)]
    registered_country: Option<NestedCountry<'a>>,
    #[serde(borrow)]
    city: Option<NestedCity<'a>>,
    #[serde(borrow)]
    location: Option<NestedLocation<'a>>,
}

#[derive(Deserialize)]
struct NestedCountry<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct NestedCity<'a> {
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct NestedLocation<'a> {
    latitude: Option<Number>,
    longitude: Option<Number>,
    accuracy_radius: Option<u16>,
    #[serde(borrow)]
    time_zone: Option<&'a str>,
}

#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    city: Option<&'a str>,
    latitude: Option<Number>,
    longitude: Option<Number>,
    #[serde(borrow)]
    timezone: Option<&'a str>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

/// A coordinate stored as a double (MaxMind), a float (ip-location-db) or
/// an integer: the decoder is strict about the type asked for, so accept
/// whichever the file holds.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_f32<E>(self, v: f32) -> Result<Number, E> {
                Ok(Number(f64::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// Empty strings mean "unknown" (ip-location-db writes every column).
fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// Coordinates outside the globe are "unknown".
fn coord(v: Option<Number>, limit: f64) -> Option<f64> {
    v.map(|n| n.0).filter(|x| x.is_finite() && x.abs() <= limit)
}

/// An open database file.
#[derive(Debug)]
pub struct Database {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
    kind: Kind,
}

impl Database {
    /// Opens a database file and tells its kind.
    ///
    /// # Errors
    ///
    /// [`GeoError`] naming the file: unreadable, too large, not a MaxMind
    /// DB, or of a type that is neither location nor ASN.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let io = |source| GeoError::Io {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_DB_BYTES {
            return Err(GeoError::TooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(bytes, path)
    }

    /// A database from bytes already in memory; `path` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Database::open`].
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, GeoError> {
        let reader = Reader::from_source(bytes).map_err(|source| GeoError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        let t = &reader.metadata().database_type;
        let kind = kind_of(t).ok_or_else(|| GeoError::WrongKind {
            path: path.to_path_buf(),
            database_type: t.clone(),
            expected: "a City, Country or ASN database",
        })?;
        Ok(Database {
            reader,
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Opens a location database (for `--geoip`).
    ///
    /// # Errors
    ///
    /// As [`Database::open`], and [`GeoError::WrongKind`] for an ASN file.
    pub fn open_location(path: &Path) -> Result<Self, GeoError> {
        let db = Self::open(path)?;
        match db.kind {
            Kind::Location(_) => Ok(db),
            Kind::Asn => Err(db.wrong("a City or Country database (this one belongs to --asn)")),
        }
    }

    /// Opens an ASN database (for `--asn`).
    ///
    /// # Errors
    ///
    /// As [`Database::open`], and [`GeoError::WrongKind`] for a location file.
    pub fn open_asn(path: &Path) -> Result<Self, GeoError> {
        let db = Self::open(path)?;
        match db.kind {
            Kind::Asn => Ok(db),
            Kind::Location(_) => Err(db.wrong("an ASN database (this one belongs to --geoip)")),
        }
    }

    fn wrong(&self, expected: &'static str) -> GeoError {
        GeoError::WrongKind {
            path: self.path.clone(),
            database_type: self.database_type().to_string(),
            expected,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its `database_type` metadata.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Its build time, Unix seconds.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// Checks the whole file (search tree and every record). Slow on large
    /// files (it walks every network); lookups do not need it.
    ///
    /// # Errors
    ///
    /// [`GeoError::Invalid`] with the first problem found.
    pub fn verify(&self) -> Result<(), GeoError> {
        self.reader.verify().map_err(|source| GeoError::Invalid {
            path: self.path.clone(),
            source,
        })
    }

    /// The location of `ip` (`Ok(None)` when the database has no record,
    /// or holds only IPv4 and `ip` is IPv6).
    ///
    /// # Errors
    ///
    /// A damaged record.
    pub fn place(&self, ip: IpAddr) -> Result<Option<PlaceRef<'_>>, MaxMindDbError> {
        let ip = canonical(ip);
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let found = self.reader.lookup(ip)?;
        let place = match self.kind {
            Kind::Location(Schema::Nested) => found.decode::<NestedRecord<'_>>()?.map(|r| {
                let (lat, lon, accuracy_km, tz) = match r.location {
                    Some(l) => (l.latitude, l.longitude, l.accuracy_radius, l.time_zone),
                    None => (None, None, None, None),
                };
                let country = r
                    .country
                    .and_then(|c| nonempty(c.iso_code))
                    .or_else(|| r.registered_country.and_then(|c| nonempty(c.iso_code)));
                PlaceRef {
                    country,
                    city: nonempty(r.city.and_then(|c| c.names).and_then(|n| n.en)),
                    lat: coord(lat, 90.0),
                    lon: coord(lon, 180.0),
                    accuracy_km,
                    tz: nonempty(tz),
                }
            }),
            Kind::Location(Schema::Flat) => found.decode::<FlatRecord<'_>>()?.map(|r| PlaceRef {
                country: nonempty(r.country_code),
                city: nonempty(r.city),
                lat: coord(r.latitude, 90.0),
                lon: coord(r.longitude, 180.0),
                accuracy_km: None,
                tz: nonempty(r.timezone),
            }),
            Kind::Asn => None,
        };
        Ok(place.filter(|p| !p.is_empty()))
    }

    /// The autonomous system of `ip` (`Ok(None)` when unknown).
    ///
    /// # Errors
    ///
    /// A damaged record.
    pub fn asn(&self, ip: IpAddr) -> Result<Option<AsnRef<'_>>, MaxMindDbError> {
        let ip = canonical(ip);
        if self.kind != Kind::Asn || (ip.is_ipv6() && self.reader.metadata().ip_version == 4) {
            return Ok(None);
        }
        let found = self.reader.lookup(ip)?;
        Ok(found.decode::<AsnRecord<'_>>()?.and_then(|r| {
            Some(AsnRef {
                number: r.autonomous_system_number.filter(|n| *n != 0)?,
                org: nonempty(r.autonomous_system_organization),
            })
        }))
    }
}

/// IPv4-mapped IPv6 addresses are looked up as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/maxmind")
            .join(name)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn maxmind_city_test_database() {
        for f in ["GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb"] {
            let db = Database::open_location(&data(f)).unwrap();
            assert_eq!(db.kind(), Kind::Location(Schema::Nested));
            let p = db.place(ip("81.2.69.142")).unwrap().unwrap();
            assert_eq!(p.country, Some("GB"));
            assert_eq!(p.city, Some("London"));
            assert_eq!((p.lat, p.lon), (Some(51.5142), Some(-0.0931)));
            assert_eq!(p.accuracy_km, Some(10));
            assert_eq!(p.tz, Some("Europe/London"));
            // The same address, IPv4-mapped.
            assert_eq!(db.place(ip("::ffff:81.2.69.142")).unwrap(), Some(p));
            // Russia at country level: centroid, 100 km, no city.
            let ru = db.place(ip("2a02:d0c0::1")).unwrap().unwrap();
            assert_eq!((ru.country, ru.city), (Some("RU"), None));
            assert_eq!((ru.lat, ru.lon), (Some(60.0), Some(100.0)));
            assert_eq!(db.place(ip("10.0.0.1")).unwrap(), None);
            assert_eq!(db.asn(ip("81.2.69.142")).unwrap(), None, "not an ASN db");
        }
    }

    #[test]
    fn maxmind_country_test_database() {
        for f in ["GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb"] {
            let db = Database::open_location(&data(f)).unwrap();
            let p = db.place(ip("81.2.69.142")).unwrap().unwrap();
            assert_eq!((p.country, p.city, p.lat), (Some("GB"), None, None));
        }
    }

    #[test]
    fn maxmind_asn_and_isp_test_databases() {
        for f in ["GeoLite2-ASN-Test.mmdb", "GeoIP2-ISP-Test.mmdb"] {
            let db = Database::open_asn(&data(f)).unwrap();
            assert_eq!(db.kind(), Kind::Asn);
            let a = db.asn(ip("1.128.0.1")).unwrap().unwrap();
            assert_eq!(a.number, 1221);
            assert_eq!(a.org, Some("Telstra Pty Ltd"));
            assert_eq!(db.place(ip("1.128.0.1")).unwrap(), None);
        }
        let db = Database::open_asn(&data("GeoLite2-ASN-Test.mmdb")).unwrap();
        let a = db.asn(ip("12.81.96.1")).unwrap().unwrap();
        assert_eq!((a.number, a.org), (7018, None));
        // ISP records without an AS number are "unknown".
        let isp = Database::open_asn(&data("GeoIP2-ISP-Test.mmdb")).unwrap();
        assert_eq!(isp.asn(ip("1.0.128.1")).unwrap(), None);
    }

    #[test]
    fn a_database_of_the_wrong_kind_is_refused_by_name() {
        let e = Database::open_location(&data("GeoLite2-ASN-Test.mmdb")).unwrap_err();
        assert!(e.to_string().contains("GeoLite2-ASN-Test.mmdb"), "{e}");
        assert!(e.to_string().contains("--asn"), "{e}");
        let e = Database::open_asn(&data("GeoIP2-City-Test.mmdb")).unwrap_err();
        assert!(e.to_string().contains("--geoip"), "{e}");
        let e = Database::open(&data("GeoIP2-Anonymous-IP-Test.mmdb")).unwrap_err();
        assert!(matches!(e, GeoError::WrongKind { .. }), "{e}");
        assert!(e.to_string().contains("GeoIP2-Anonymous-IP"), "{e}");
    }

    /// Addresses spread over both families, for probing damaged files.
    fn probes() -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = (0..=255u8)
            .map(|i| IpAddr::from([i, i.wrapping_mul(7), 3, 1]))
            .collect();
        v.extend((0..64u16).map(|i| IpAddr::from([0x2a02, i << 4, 0, 0, 0, 0, 0, 1])));
        v.extend(["1.1.1.1", "::1.1.1.1", "::", "255.255.255.255"].map(ip));
        v
    }

    #[test]
    fn damaged_and_hostile_files_never_panic() {
        let dir = data("");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("bad-data")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "mmdb"))
            .collect();
        files.sort();
        assert!(files.len() >= 30, "{files:?}");
        let (mut refused, mut opened) = (0, 0);
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let reader = match Reader::from_source(bytes) {
                Ok(r) => r,
                Err(_) => {
                    // The same failure through our API is typed and names the file.
                    let e = Database::open(f).unwrap_err();
                    assert!(e.to_string().contains(&*f.to_string_lossy()), "{e}");
                    refused += 1;
                    continue;
                }
            };
            opened += 1;
            // Whatever the file claims to be, decode it as each kind.
            let mut db = Database {
                reader,
                path: f.clone(),
                kind: Kind::Asn,
            };
            for kind in [
                Kind::Asn,
                Kind::Location(Schema::Nested),
                Kind::Location(Schema::Flat),
            ] {
                db.kind = kind;
                for a in probes() {
                    let _ = db.place(a);
                    let _ = db.asn(a);
                }
            }
        }
        assert!(
            refused >= 5 && opened >= 10,
            "{refused} refused, {opened} opened"
        );
    }

    #[test]
    fn flat_ip_location_db_schema() {
        use phonehome_synth::mmdb::{CitySchema, GeoRecord, city_db};
        // As ip-location-db's writer does: every column a string (empty when
        // unknown), coordinates as 32-bit floats, IPv4 only.
        let bytes = city_db(
            CitySchema::FlatCity,
            &[
                GeoRecord {
                    net: "198.51.100.0/24",
                    country: Some("RU"),
                    city: Some("Moscow"),
                    lat_lon: Some((55.7522, 37.6156)),
                    tz: Some("Europe/Moscow"),
                    ..GeoRecord::default()
                },
                GeoRecord {
                    net: "203.0.113.0/24",
                    country: Some("RU"),
                    ..GeoRecord::default()
                },
            ],
        )
        .unwrap();
        let db = Database::from_bytes(bytes, Path::new("flat.mmdb")).unwrap();
        assert_eq!(db.kind(), Kind::Location(Schema::Flat));
        let p = db.place(ip("198.51.100.7")).unwrap().unwrap();
        assert_eq!(
            (p.country, p.city, p.tz),
            (Some("RU"), Some("Moscow"), Some("Europe/Moscow"))
        );
        assert!((p.lat.unwrap() - 55.7522).abs() < 1e-4, "{p:?}");
        let bare = db.place(ip("203.0.113.9")).unwrap().unwrap();
        assert_eq!(
            (bare.country, bare.city, bare.lat, bare.tz),
            (Some("RU"), None, None, None)
        );
        // IPv6 in an IPv4-only database: unknown, not an error.
        assert_eq!(db.place(ip("2001:db8::1")).unwrap(), None);
        assert_eq!(db.place(ip("192.0.2.1")).unwrap(), None);
    }

    #[test]
    fn kinds_come_from_the_database_type() {
        let loc = Some(Kind::Location(Schema::Nested));
        let flat = Some(Kind::Location(Schema::Flat));
        for (t, k) in [
            ("GeoIP2-City", loc),
            ("GeoLite2-City", loc),
            ("GeoLite2-Country", loc),
            ("GeoIP2-Precision-Enterprise", loc),
            ("DBIP-City-Lite", loc),
            ("DBIP-Country-Lite", loc),
            ("GeoLite2-ASN", Some(Kind::Asn)),
            ("DBIP-ASN-Lite", Some(Kind::Asn)),
            ("GeoIP2-ISP", Some(Kind::Asn)),
            ("city ipv4", flat),
            ("country ipv6", flat),
            ("asn ipv4", Some(Kind::Asn)),
            ("GeoIP2-Anonymous-IP", None),
            ("GeoIP2-Domain", None),
            ("", None),
        ] {
            assert_eq!(kind_of(t), k, "{t}");
        }
    }

    #[test]
    fn garbage_is_a_typed_error_naming_the_file() {
        for bytes in [
            Vec::new(),
            b"not a database".to_vec(),
            b"\xab\xcd\xefMaxMind.com".to_vec(),
            [&[0u8; 64][..], b"\xab\xcd\xefMaxMind.com\xe0"].concat(),
        ] {
            let e = Database::from_bytes(bytes, Path::new("x/broken.mmdb")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("x/broken.mmdb: "), "{msg}");
            assert!(matches!(e, GeoError::Invalid { .. }), "{msg}");
        }
        let e = Database::open(Path::new("/nonexistent/geo.mmdb")).unwrap_err();
        assert!(matches!(e, GeoError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/geo.mmdb"));
    }
}
