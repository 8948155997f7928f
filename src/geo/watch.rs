//! Watch rules: the places whose servers deserve a look even when no feed
//! names the vendor — "an unknown periodic beacon to a Moscow-hosted server".
//!
//! Three syntaxes (`--watch-geo`):
//!
//! - `RU` — a country (ISO 3166-1 alpha-2, any case);
//! - `RU/Moscow` — a city of a country (the database's English name, any
//!   case);
//! - `55.7558,37.6173,50km` — within a radius of a point (great-circle
//!   distance; `km` or `m`).
//!
//! The default watch is Moscow: city `RU/Moscow`, **or** within 50 km of
//! 55.7558,37.6173, **or** — only when the database gives neither a city nor
//! usable coordinates — time zone `Europe/Moscow`. Databases often leave the
//! city empty and give only coordinates or the time zone; the time-zone
//! fallback then covers most of European Russia (documented in README as
//! the rule's false-positive risk).
//!
//! Coordinates are usable only when their accuracy radius (GeoIP2's
//! `location.accuracy_radius`) is at most [`COARSE_KM`], or — in files that
//! give no accuracy (ip-location-db) — when the record also names a city.
//! Country-level records put every address of a country at one point (for
//! Russia, 55.7386,37.6068: inside Moscow) with a 1000 km radius, or no
//! radius and no city in the flat conversions; they must not match a 50 km
//! circle. (For Russia they still carry the time zone `Europe/Moscow`, so
//! the default watch's fallback matches them: the report's `watch_rule`
//! says `tz:Europe/Moscow`, the weakest of the three.)
//!
//! City names compare case-insensitively and ignore a parenthesised
//! district (DB-IP writes `Moscow (Tsentralnyy administrativnyy okrug)`).

use super::db::PlaceRef;
use std::fmt;

/// Mean Earth radius, km (IUGG).
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Coordinates less accurate than this (km) are treated as unknown.
pub const COARSE_KM: u16 = 200;

/// Longest radius accepted, km (half the Earth's circumference).
const MAX_RADIUS_KM: f64 = 20_038.0;

/// One watched place.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchRule {
    /// A country.
    Country(String),
    /// A city of a country.
    City {
        /// Country code (upper case).
        country: String,
        /// City name as given.
        city: String,
    },
    /// Within `km` of a point.
    Radius {
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
        /// Radius, km.
        km: f64,
    },
    /// An IANA time zone, used only when the record has neither a city nor
    /// usable coordinates (part of the default Moscow watch).
    TimeZoneFallback(String),
}

/// Why a `--watch-geo` value is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Empty value.
    #[error("empty watch rule (expected CC, CC/City or LAT,LON,RADIUSkm)")]
    Empty,
    /// Not a two-letter country code.
    #[error("{0:?} is not a two-letter country code (e.g. RU)")]
    Country(String),
    /// `CC/` with no city.
    #[error("{0:?}: the city after '/' is empty")]
    NoCity(String),
    /// Not three comma-separated parts.
    #[error("{0:?}: a radius is LAT,LON,RADIUS (e.g. 55.7558,37.6173,50km)")]
    RadiusShape(String),
    /// A latitude outside -90..=90 or a longitude outside -180..=180.
    #[error("{0:?}: latitude must be within -90..90 and longitude within -180..180")]
    Coordinates(String),
    /// The radius is not a positive distance with a unit.
    #[error("{0:?}: the radius must be a positive distance in km or m (e.g. 50km)")]
    Radius(String),
}

impl WatchRule {
    /// Parses one `--watch-geo` value.
    ///
    /// # Errors
    ///
    /// [`WatchError`] saying what is wrong and what was expected.
    pub fn parse(s: &str) -> Result<Self, WatchError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(WatchError::Empty);
        }
        if s.contains(',') {
            return parse_radius(s);
        }
        let (cc, city) = match s.split_once('/') {
            Some((cc, city)) => (cc.trim(), Some(city.trim())),
            None => (s, None),
        };
        if cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(WatchError::Country(cc.to_string()));
        }
        let country = cc.to_ascii_uppercase();
        match city {
            None => Ok(WatchRule::Country(country)),
            Some("") => Err(WatchError::NoCity(s.to_string())),
            Some(city) => Ok(WatchRule::City {
                country,
                city: city.to_string(),
            }),
        }
    }

    /// Whether a located server falls under this rule.
    pub fn matches(&self, p: &PlaceRef<'_>) -> bool {
        match self {
            WatchRule::Country(cc) => p.country.is_some_and(|c| c.eq_ignore_ascii_case(cc)),
            WatchRule::City { country, city } => {
                p.country.is_some_and(|c| c.eq_ignore_ascii_case(country))
                    && p.city.is_some_and(|c| same_name(c, city))
            }
            WatchRule::Radius { lat, lon, km } => {
                usable_coords(p).is_some_and(|(a, b)| haversine_km(*lat, *lon, a, b) <= *km)
            }
            WatchRule::TimeZoneFallback(tz) => {
                p.city.is_none() && usable_coords(p).is_none() && p.tz == Some(tz.as_str())
            }
        }
    }
}

impl fmt::Display for WatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchRule::Country(c) => write!(f, "{c}"),
            WatchRule::City { country, city } => write!(f, "{country}/{city}"),
            WatchRule::Radius { lat, lon, km } => write!(f, "{lat},{lon},{km}km"),
            WatchRule::TimeZoneFallback(tz) => write!(f, "tz:{tz}"),
        }
    }
}

fn parse_radius(s: &str) -> Result<WatchRule, WatchError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [lat, lon, r] = parts.as_slice() else {
        return Err(WatchError::RadiusShape(s.to_string()));
    };
    let coords = |v: &str, limit: f64| {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.abs() <= limit)
            .ok_or_else(|| WatchError::Coordinates(s.to_string()))
    };
    let (lat, lon) = (coords(lat, 90.0)?, coords(lon, 180.0)?);
    let lower = r.to_ascii_lowercase();
    let km = if let Some(v) = lower.strip_suffix("km") {
        v.trim().parse::<f64>().ok()
    } else if let Some(v) = lower.strip_suffix('m') {
        v.trim().parse::<f64>().ok().map(|m| m / 1000.0)
    } else {
        None
    };
    let km = km
        .filter(|k| k.is_finite() && *k > 0.0 && *k <= MAX_RADIUS_KM)
        .ok_or_else(|| WatchError::Radius(s.to_string()))?;
    Ok(WatchRule::Radius { lat, lon, km })
}

/// Whether the database's city name `db` is the rule's `rule`:
/// case-insensitive (Unicode lower case), ignoring a trailing
/// parenthesised district; no allocation.
fn same_name(db: &str, rule: &str) -> bool {
    let eq = |a: &str, b: &str| {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    };
    if eq(db, rule) {
        return true;
    }
    match db.split_once(" (") {
        Some((city, district)) if district.ends_with(')') => eq(city, rule),
        _ => false,
    }
}

/// The coordinates, when present and precise enough to place a city.
fn usable_coords(p: &PlaceRef<'_>) -> Option<(f64, f64)> {
    let precise = match p.accuracy_km {
        Some(a) => a <= COARSE_KM,
        None => p.city.is_some(),
    };
    if !precise {
        return None;
    }
    Some((p.lat?, p.lon?))
}

/// Great-circle distance between two points, km (haversine formula).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// The watched places: a server is watched when any rule matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watch {
    rules: Vec<WatchRule>,
}

impl Watch {
    /// The default: Moscow (city, 50 km radius, or the time zone when the
    /// record has neither city nor coordinates).
    pub fn moscow() -> Self {
        Watch {
            rules: vec![
                WatchRule::City {
                    country: "RU".into(),
                    city: "Moscow".into(),
                },
                WatchRule::Radius {
                    lat: 55.7558,
                    lon: 37.6173,
                    km: 50.0,
                },
                WatchRule::TimeZoneFallback("Europe/Moscow".into()),
            ],
        }
    }

    /// No rule: nothing is watched.
    pub fn none() -> Self {
        Watch::default()
    }

    /// Adds a rule.
    pub fn push(&mut self, rule: WatchRule) {
        self.rules.push(rule);
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[WatchRule] {
        &self.rules
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that matches, if any.
    pub fn matching(&self, p: &PlaceRef<'_>) -> Option<&WatchRule> {
        self.rules.iter().find(|r| r.matches(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(
        country: Option<&'a str>,
        city: Option<&'a str>,
        ll: Option<(f64, f64)>,
        tz: Option<&'a str>,
    ) -> PlaceRef<'a> {
        PlaceRef {
            country,
            city,
            lat: ll.map(|x| x.0),
            lon: ll.map(|x| x.1),
            accuracy_km: ll.map(|_| 20),
            tz,
        }
    }

    #[test]
    fn the_three_syntaxes_parse() {
        assert_eq!(WatchRule::parse("ru"), Ok(WatchRule::Country("RU".into())));
        assert_eq!(
            WatchRule::parse(" RU/Saint Petersburg "),
            Ok(WatchRule::City {
                country: "RU".into(),
                city: "Saint Petersburg".into()
            })
        );
        assert_eq!(
            WatchRule::parse("55.7558,37.6173,50km"),
            Ok(WatchRule::Radius {
                lat: 55.7558,
                lon: 37.6173,
                km: 50.0
            })
        );
        assert_eq!(
            WatchRule::parse("55.7558, 37.6173, 2500m"),
            Ok(WatchRule::Radius {
                lat: 55.7558,
                lon: 37.6173,
                km: 2.5
            })
        );
    }

    #[test]
    fn bad_rules_say_what_is_expected() {
        for (s, want) in [
            ("", WatchError::Empty),
            ("RUS", WatchError::Country("RUS".into())),
            ("R1", WatchError::Country("R1".into())),
            ("RU/", WatchError::NoCity("RU/".into())),
            ("55.7,37.6", WatchError::RadiusShape("55.7,37.6".into())),
            ("95,37.6,5km", WatchError::Coordinates("95,37.6,5km".into())),
            ("55,181,5km", WatchError::Coordinates("55,181,5km".into())),
            ("55,NaN,5km", WatchError::Coordinates("55,NaN,5km".into())),
            ("55,37,50", WatchError::Radius("55,37,50".into())),
            ("55,37,-5km", WatchError::Radius("55,37,-5km".into())),
            ("55,37,0km", WatchError::Radius("55,37,0km".into())),
            ("55,37,infkm", WatchError::Radius("55,37,infkm".into())),
        ] {
            assert_eq!(WatchRule::parse(s), Err(want), "{s}");
        }
        assert!(
            WatchError::Radius("x".into())
                .to_string()
                .contains("e.g. 50km")
        );
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Moscow (Red Square) to Saint Petersburg (Palace Square): ~634 km.
        let d = haversine_km(55.7539, 37.6208, 59.9390, 30.3158);
        assert!((d - 634.0).abs() < 5.0, "{d}");
        // A quarter of a meridian.
        let q = haversine_km(0.0, 0.0, 90.0, 0.0);
        assert!((q - 10_007.5).abs() < 1.0, "{q}");
        assert_eq!(haversine_km(10.0, 20.0, 10.0, 20.0), 0.0);
        // Antipodes: no NaN from rounding.
        assert!(haversine_km(0.0, 0.0, 0.0, 180.0).is_finite());
    }

    #[test]
    fn default_moscow_watch() {
        let w = Watch::moscow();
        let hit = |p: PlaceRef<'_>| w.matching(&p).map(|r| r.to_string());
        // By city, whatever the case.
        assert_eq!(
            hit(place(Some("RU"), Some("MOSCOW"), None, None)).as_deref(),
            Some("RU/Moscow")
        );
        // Coordinates only (Zelenograd, ~37 km from the centre).
        assert!(hit(place(Some("RU"), None, Some((55.9825, 37.1814)), None)).is_some());
        // A suburb named differently, within the radius.
        assert!(
            hit(place(
                Some("RU"),
                Some("Khimki"),
                Some((55.8970, 37.4297)),
                None
            ))
            .is_some()
        );
        // Time zone only.
        assert_eq!(
            hit(place(Some("RU"), None, None, Some("Europe/Moscow"))).as_deref(),
            Some("tz:Europe/Moscow")
        );
        // Saint Petersburg shares the time zone but has a city and coordinates.
        assert_eq!(
            hit(place(
                Some("RU"),
                Some("Saint Petersburg"),
                Some((59.9390, 30.3158)),
                Some("Europe/Moscow")
            )),
            None
        );
        // Country-level coordinates (GeoLite2 puts Russia near Moscow, 1000 km
        // accuracy) do not match the radius.
        let mut coarse = place(Some("RU"), None, Some((55.7386, 37.6068)), None);
        coarse.accuracy_km = Some(1000);
        assert_eq!(hit(coarse), None);
        // Nor without an accuracy and without a city (ip-location-db's
        // GeoLite2 conversion); its time zone still matches the fallback.
        coarse.accuracy_km = None;
        assert_eq!(hit(coarse), None);
        coarse.tz = Some("Europe/Moscow");
        assert_eq!(hit(coarse).as_deref(), Some("tz:Europe/Moscow"));
        // With a city and no accuracy (DB-IP), coordinates are trusted.
        let mut dbip = place(Some("RU"), Some("Odintsovo"), Some((55.678, 37.2777)), None);
        dbip.accuracy_km = None;
        assert_eq!(hit(dbip).as_deref(), Some("55.7558,37.6173,50km"));
        assert_eq!(hit(place(Some("DE"), Some("Berlin"), None, None)), None);
        assert_eq!(hit(PlaceRef::default()), None);
        assert!(
            Watch::none()
                .matching(&place(Some("RU"), Some("Moscow"), None, None))
                .is_none()
        );
    }

    #[test]
    fn country_city_and_radius_rules() {
        let spb = place(
            Some("RU"),
            Some("Saint Petersburg"),
            Some((59.939, 30.3158)),
            None,
        );
        let rule = |s: &str| WatchRule::parse(s).unwrap();
        assert!(rule("ru").matches(&spb));
        assert!(rule("RU/saint petersburg").matches(&spb));
        assert!(!rule("RU/Moscow").matches(&spb));
        assert!(!rule("UA/Saint Petersburg").matches(&spb));
        assert!(rule("59.94,30.32,5km").matches(&spb));
        assert!(!rule("55.7558,37.6173,600km").matches(&spb));
        assert!(rule("55.7558,37.6173,640km").matches(&spb));
        // Non-ASCII names compare case-insensitively.
        let msk = place(Some("RU"), Some("Москва"), None, None);
        assert!(rule("RU/МОСКВА").matches(&msk));
        // DB-IP's district suffix.
        let district = place(
            Some("RU"),
            Some("Moscow (Tsentralnyy administrativnyy okrug)"),
            None,
            None,
        );
        assert!(rule("RU/Moscow").matches(&district));
        assert!(!rule("RU/Mosc").matches(&district));
        assert!(!rule("RU/Moscow (Tsentralnyy").matches(&district));
    }
}
