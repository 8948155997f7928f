//! GeoIP and ASN: databases written by the tests (`phonehome_synth::mmdb`)
//! in each schema phonehome reads, the scenario capture of
//! `phonehome_synth::geo` (what each host does and what a correct report
//! says is in its module doc), the demo capture, damaged databases, and a
//! real database when one is installed.

use crate::util::{analyze_json, capture, contact, run, server_ips, strings};
use phonehome_synth::geo::{asn_records, city_records, write_capture};
use phonehome_synth::mmdb::{CitySchema, asn_db, city_db};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A temporary folder holding the scenario capture and its databases.
struct Setup {
    _dir: tempfile::TempDir,
    capture: PathBuf,
    geoip: PathBuf,
    country: PathBuf,
    flat: PathBuf,
    asn: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        write_capture(p("geo.pcapng")).unwrap();
        let city = city_records();
        std::fs::write(
            p("city.mmdb"),
            city_db(CitySchema::GeoIp2City, &city).unwrap(),
        )
        .unwrap();
        let country = city_db(CitySchema::GeoLite2Country, &city).unwrap();
        std::fs::write(p("country.mmdb"), country).unwrap();
        std::fs::write(
            p("flat.mmdb"),
            city_db(CitySchema::FlatCity, &city).unwrap(),
        )
        .unwrap();
        std::fs::write(p("asn.mmdb"), asn_db(&asn_records()).unwrap()).unwrap();
        Setup {
            capture: p("geo.pcapng"),
            geoip: p("city.mmdb"),
            country: p("country.mmdb"),
            flat: p("flat.mmdb"),
            asn: p("asn.mmdb"),
            _dir: dir,
        }
    }

    /// `analyze --format json` of the scenario with `extra` flags.
    fn report(&self, extra: &[&str]) -> Value {
        let (code, r) = analyze_json(&[&self.capture], extra);
        assert_eq!(code, 0, "{extra:?}");
        r
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The vendor-less contacts of a host.
fn unattributed<'a>(r: &'a Value, host: &str) -> Vec<&'a Value> {
    r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["ip"] == host)
        .flat_map(|h| h["contacts"].as_array().unwrap())
        .filter(|c| c["vendor"].is_null())
        .collect()
}

fn hosts(r: &Value) -> Vec<String> {
    r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn unknown_periodic_contact_to_moscow_is_reported_with_vendor_null() {
    let t = Setup::new();
    let r = t.report(&["--geoip", s(&t.geoip), "--asn", s(&t.asn)]);
    let c = unattributed(&r, "10.30.0.5");
    assert_eq!(c.len(), 1, "{r:#}");
    let c = c[0];
    assert!(c["vendor_name"].is_null());
    assert_eq!(strings(&c["evidence"]), ["geo"]);
    assert_eq!(c["connections"], 12);
    assert!(
        c["first_seen"]
            .as_str()
            .unwrap()
            .starts_with("2017-09-13T10:00:3")
    );
    assert!(c.as_object().unwrap().contains_key("beacon"));
    let server = &c["servers"][0];
    assert_eq!(server["ip"], "203.0.113.77");
    assert_eq!(server["country"], "RU");
    assert_eq!(server["city"], "Moscow");
    assert_eq!(server["asn"], 64500);
    assert_eq!(server["org"], "Example Moscow Hosting");
    assert_eq!(server["watched"], true);
    assert_eq!(server["watch_rule"], "RU/Moscow");
    // The summary counts it apart from the vendors.
    let g = &r["summary"]["geo"];
    // 10.30.0.5, .8, .9 and 2001:db8:30::5 (Saint Petersburg is not Moscow).
    assert_eq!(g["watched_contacts"], 4, "{g:#}");
    assert_eq!(g["geoip"][0]["database_type"], "GeoIP2-City");
    assert_eq!(g["asn"][0]["database_type"], "GeoLite2-ASN");
    assert_eq!(g["geoip"][0]["built"], "2026-11-01T00:00:00Z");
    assert_eq!(
        strings(&g["watch"]),
        ["RU/Moscow", "55.7558,37.6173,50km", "tz:Europe/Moscow"]
    );
    assert_eq!(g["lookup_errors"], 0);
    // 12 beacons to one server: one database search, 11 cache hits.
    assert!(g["cache_hits"].as_u64().unwrap() >= 11, "{g:#}");
    assert!(r["summary"]["hosts_per_vendor"].get("null").is_none());
    // The beacon carried no server name; 10.30.0.8's connection carried
    // one that no feed lists, and its vendor-less contact keeps it.
    assert_eq!(c["names"].as_array().map_or(0, Vec::len), 0, "{c}");
    let named = unattributed(&r, "10.30.0.8");
    assert_eq!(named.len(), 1, "{r:#}");
    assert_eq!(
        strings(&named[0]["names"]),
        [phonehome_synth::geo::UNLISTED_NAME]
    );
}

#[test]
fn a_server_in_a_vendor_as_is_asn_evidence() {
    let t = Setup::new();
    let r = t.report(&["--geoip", s(&t.geoip), "--asn", s(&t.asn)]);
    let c = contact(&r, "10.30.0.6", "kaspersky").expect("AS200107 server");
    assert_eq!(strings(&c["evidence"]), ["asn"]);
    assert_eq!(c["connections"], 1);
    let server = &c["servers"][0];
    assert_eq!(server["ip"], "198.51.100.201");
    assert_eq!(server["asn"], 200107);
    assert_eq!(server["org"], "Kaspersky Lab AO");
    assert_eq!(server["country"], "NL");
    assert_eq!(server["watched"], false);
    assert!(
        c["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "asn" && r["value"] == "200107"),
        "{c:#}"
    );
    // Without the ASN database the same conversation is nobody's.
    let r = t.report(&["--geoip", s(&t.geoip)]);
    assert!(contact(&r, "10.30.0.6", "kaspersky").is_none());
    assert!(!hosts(&r).contains(&"10.30.0.6".to_string()));
}

#[test]
fn default_watch_covers_moscow_by_city_radius_and_time_zone() {
    let t = Setup::new();
    let r = t.report(&["--geoip", s(&t.geoip)]);
    let rule = |host: &str| {
        let c = unattributed(&r, host);
        assert_eq!(c.len(), 1, "{host}: {r:#}");
        c[0]["servers"][0]["watch_rule"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(rule("10.30.0.5"), "RU/Moscow");
    assert_eq!(rule("10.30.0.8"), "55.7558,37.6173,50km");
    assert_eq!(rule("10.30.0.9"), "tz:Europe/Moscow");
    assert_eq!(rule("2001:db8:30::5"), "RU/Moscow");
    let ips = hosts(&r);
    for not in ["10.30.0.7", "10.30.0.10"] {
        assert!(!ips.contains(&not.to_string()), "{not}: {ips:?}");
    }
    // Without an ASN database, servers have no AS fields at all.
    let server = &unattributed(&r, "10.30.0.5")[0]["servers"][0];
    assert!(server.get("asn").is_none() && server.get("org").is_none());
}

#[test]
fn a_vendor_contact_in_a_watched_place_says_so_and_is_not_doubled() {
    let t = Setup::new();
    let r = t.report(&["--geoip", s(&t.geoip)]);
    let c = contact(&r, "10.30.0.11", "kaspersky").expect("ds.kaspersky.com");
    assert_eq!(strings(&c["evidence"]), ["sni"]);
    assert_eq!(c["servers"][0]["watched"], true);
    assert!(unattributed(&r, "10.30.0.11").is_empty(), "{r:#}");
}

#[test]
fn watch_by_country_city_and_radius() {
    let t = Setup::new();
    let g = s(&t.geoip);
    let spb = "10.30.0.10";
    for spec in ["RU", "ru/saint petersburg", "59.94,30.32,20km"] {
        let r = t.report(&["--geoip", g, "--watch-geo", spec, "--no-default-watch"]);
        let c = unattributed(&r, spb);
        assert_eq!(c.len(), 1, "{spec}: {r:#}");
        assert_eq!(c[0]["servers"][0]["city"], "Saint Petersburg");
        let moscow = !unattributed(&r, "10.30.0.5").is_empty();
        assert_eq!(
            moscow,
            spec == "RU",
            "{spec}: Moscow watched only by country"
        );
        assert_eq!(strings(&r["summary"]["geo"]["watch"]).len(), 1);
    }
    // Rules add to the default watch.
    let r = t.report(&["--geoip", g, "--watch-geo", "DE/Berlin"]);
    for host in ["10.30.0.5", "10.30.0.7"] {
        assert_eq!(unattributed(&r, host).len(), 1, "{host}");
    }
    // No watch at all: only feed evidence is reported.
    let r = t.report(&["--geoip", g, "--no-default-watch"]);
    assert_eq!(hosts(&r), ["10.30.0.11"]);
    assert_eq!(r["summary"]["geo"]["watched_contacts"], 0);
}

#[test]
fn country_and_flat_city_databases() {
    let t = Setup::new();
    // A country database knows no city: Moscow by default finds nothing,
    // the country rule finds every Russian server.
    let r = t.report(&["--geoip", s(&t.country)]);
    assert!(unattributed(&r, "10.30.0.5").is_empty());
    let r = t.report(&["--geoip", s(&t.country), "--watch-geo", "RU"]);
    for host in ["10.30.0.5", "10.30.0.8", "10.30.0.9", "10.30.0.10"] {
        assert_eq!(unattributed(&r, host).len(), 1, "{host}");
    }
    let server = &unattributed(&r, "10.30.0.5")[0]["servers"][0];
    assert_eq!(server["country"], "RU");
    assert!(server.get("city").is_none());
    // The flat ip-location-db schema: same places for IPv4, IPv6 unknown.
    // It has no accuracy radius, so coordinates without a city (as in its
    // GeoLite2 conversion's country-level records) are not trusted.
    let r = t.report(&["--geoip", s(&t.flat)]);
    assert_eq!(
        r["summary"]["geo"]["geoip"][0]["database_type"],
        "city ipv4"
    );
    for host in ["10.30.0.5", "10.30.0.9"] {
        assert_eq!(unattributed(&r, host).len(), 1, "{host}: {r:#}");
    }
    assert_eq!(
        unattributed(&r, "10.30.0.5")[0]["servers"][0]["city"],
        "Moscow"
    );
    for host in ["10.30.0.8", "2001:db8:30::5", "10.30.0.10"] {
        assert!(unattributed(&r, host).is_empty(), "{host}");
    }
    // Several files: the first that knows an address answers (here the
    // flat IPv4 file, then the GeoIP2 file for IPv6 and what flat lacks).
    let r = t.report(&["--geoip", s(&t.flat), "--geoip", s(&t.geoip)]);
    assert_eq!(r["summary"]["geo"]["geoip"].as_array().unwrap().len(), 2);
    assert_eq!(unattributed(&r, "2001:db8:30::5").len(), 1);
    assert!(
        unattributed(&r, "10.30.0.8").is_empty(),
        "flat answered first"
    );
}

#[test]
fn without_databases_nothing_changes() {
    let t = Setup::new();
    let r = t.report(&[]);
    assert_eq!(hosts(&r), ["10.30.0.11"]);
    assert!(r["summary"].get("geo").is_none());
    let server = &contact(&r, "10.30.0.11", "kaspersky").unwrap()["servers"][0];
    assert_eq!(
        server.as_object().unwrap().len(),
        1,
        "only the address: {server}"
    );
}

#[test]
fn demo_servers_are_enriched() {
    let t = Setup::new();
    let demo = capture("demo.pcapng");
    let (code, r) = analyze_json(&[&demo], &["--geoip", s(&t.geoip), "--asn", s(&t.asn)]);
    assert_eq!(code, 0);
    let c = contact(&r, "10.20.0.5", "kaspersky").unwrap();
    assert_eq!(server_ips(c), ["77.74.178.11", "93.159.228.2"]);
    for server in c["servers"].as_array().unwrap() {
        assert_eq!(server["country"], "RU");
        assert_eq!(server["city"], "Moscow");
        assert_eq!(server["asn"], 200107);
        assert_eq!(server["org"], "Kaspersky Lab AO");
        assert_eq!(server["watched"], true);
    }
    let ev = strings(&c["evidence"]);
    assert!(ev.contains(&"asn".to_string()), "{ev:?}");
    // Decoys stay decoys: their servers are not in a watched place.
    assert_eq!(r["summary"]["hosts_reported"], 9);
    // The table shows the places.
    let out = run(&[
        "analyze",
        "-q",
        "--geoip",
        s(&t.geoip),
        "--asn",
        s(&t.asn),
        s(&demo),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("77.74.178.11 (RU Moscow AS200107,"), "{text}");
}

#[test]
fn the_table_marks_unknown_vendors() {
    let t = Setup::new();
    let out = run(&["analyze", "-q", "--geoip", s(&t.geoip), s(&t.capture)]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("10.30.0.5 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("unknown") && line.contains("geo"), "{line}");
    assert!(text.contains("203.0.113.77 (RU Moscow, watched)"), "{text}");
    for l in text.lines() {
        assert!(l.chars().count() <= 100, "too wide: {l:?}");
    }
}

#[test]
fn bad_databases_stop_the_run_with_the_file_named() {
    let t = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"this is not a MaxMind database").unwrap();
    let truncated = dir.path().join("truncated.mmdb");
    let city = std::fs::read(&t.geoip).unwrap();
    std::fs::write(&truncated, &city[..city.len() / 2]).unwrap();
    let maxmind = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/maxmind");
    let broken_tree = maxmind.join("GeoIP2-City-Test-Invalid-Node-Count.mmdb");
    let cases: [(&str, &Path, &str); 6] = [
        ("--geoip", &junk, "not a valid MaxMind DB"),
        ("--geoip", &truncated, "not a valid MaxMind DB"),
        ("--geoip", &broken_tree, "not a valid MaxMind DB"),
        ("--geoip", &t.asn, "belongs to --asn"),
        ("--asn", &t.geoip, "belongs to --geoip"),
        (
            "--asn",
            Path::new("/nonexistent/GeoLite2-ASN.mmdb"),
            "No such file",
        ),
    ];
    for (flag, file, why) in cases {
        let out = run(&["analyze", "-q", flag, s(file), s(&t.capture)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{flag} {}: {err}",
            file.display()
        );
        assert!(out.stdout.is_empty(), "no report");
        assert!(err.contains(s(file)), "names the file: {err}");
        assert!(err.contains(flag) && err.contains(why), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A bad watch rule is a usage error.
    let out = run(&[
        "analyze",
        "--geoip",
        s(&t.geoip),
        "--watch-geo",
        "Moscow",
        s(&t.capture),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("two-letter country code"));
}

#[test]
fn maxmind_test_databases_enrich_a_capture() {
    // MaxMind's own test files (tests/data/maxmind): no address of the
    // scenario is in them, so nothing is placed and nothing is watched, but
    // the run works and the summary names them.
    let t = Setup::new();
    let maxmind = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/maxmind");
    let r = t.report(&[
        "--geoip",
        s(&maxmind.join("GeoLite2-City-Test.mmdb")),
        "--asn",
        s(&maxmind.join("GeoLite2-ASN-Test.mmdb")),
    ]);
    assert_eq!(
        r["summary"]["geo"]["geoip"][0]["database_type"],
        "GeoLite2-City"
    );
    assert_eq!(hosts(&r), ["10.30.0.11"]);
    let server = &contact(&r, "10.30.0.11", "kaspersky").unwrap()["servers"][0];
    assert_eq!(server["watched"], false);
    assert!(server.get("country").is_none());
}

/// A real database: `PHONEHOME_GEOIP_DB` / `PHONEHOME_ASN_DB`, else the
/// usual geoipupdate locations.
fn real_db(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/share/GeoIP",
        "/var/lib/GeoIP",
        "/usr/local/share/GeoIP",
    ]
    .iter()
    .flat_map(|d| names.iter().map(move |n| Path::new(d).join(n)))
    .find(|p| p.is_file())
}

#[test]
fn real_databases_when_installed() {
    let city = real_db(
        "PHONEHOME_GEOIP_DB",
        &[
            "GeoLite2-City.mmdb",
            "GeoIP2-City.mmdb",
            "dbip-city-lite.mmdb",
        ],
    );
    let asn = real_db(
        "PHONEHOME_ASN_DB",
        &["GeoLite2-ASN.mmdb", "GeoIP2-ISP.mmdb"],
    );
    if city.is_none() && asn.is_none() {
        eprintln!(
            "SKIPPED real_databases_when_installed: no GeoIP database \
             (set PHONEHOME_GEOIP_DB / PHONEHOME_ASN_DB, or install GeoLite2 \
             with geoipupdate into /usr/share/GeoIP)"
        );
        return;
    }
    let t = Setup::new();
    let demo = capture("demo.pcapng");
    let mut args: Vec<String> = Vec::new();
    if let Some(c) = &city {
        args.extend(["--geoip".into(), c.display().to_string()]);
    }
    if let Some(a) = &asn {
        args.extend(["--asn".into(), a.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = analyze_json(&[&demo, &t.capture], &args);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["geo"]["lookup_errors"], 0);
    // Kaspersky's own range 77.74.176.0/21 is in Russia (AS200107) in every
    // database we know of.
    let c = contact(&r, "10.20.0.5", "kaspersky").unwrap();
    let ksn = c["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == "77.74.178.11")
        .unwrap();
    if city.is_some() {
        assert_eq!(ksn["country"], "RU", "{ksn}");
        assert!(ksn["watched"].is_boolean());
    }
    if asn.is_some() {
        assert_eq!(ksn["asn"], 200107, "{ksn}");
    }
    // Documentation addresses are in no real database.
    let s = &unattributed(&r, "10.30.0.5");
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn one_thread_and_several_give_the_same_geo_report() {
    let t = Setup::new();
    let demo = capture("demo.pcapng");
    let dbs = ["--geoip", s(&t.geoip), "--asn", s(&t.asn)];
    let run_with = |threads: &str| {
        let mut args = dbs.to_vec();
        args.extend(["--threads", threads]);
        let (code, r) = analyze_json(&[&demo, &t.capture], &args);
        assert_eq!(code, 0);
        r
    };
    let one = run_with("1");
    let three = run_with("3");
    assert_eq!(one["hosts"], three["hosts"]);
    let (g1, g3) = (&one["summary"]["geo"], &three["summary"]["geo"]);
    assert_eq!(g1["lookups"], g3["lookups"]);
    assert_eq!(g1["watched_contacts"], g3["watched_contacts"]);
    assert_eq!(g1["watched_contacts"], 4);
    // The 12 connections' start times are kept for the beacon analysis.
    let c = unattributed(&one, "10.30.0.5")[0];
    assert_eq!(c["connection_times"].as_array().unwrap().len(), 12, "{c:#}");
}

/// DNS over UDP is tracked as a conversation only when the resolver itself
/// is evidence (a vendor's range or AS, a watched place); every other
/// exchange is read message by message and counted apart, with the same
/// findings.
#[test]
fn dns_exchanges_are_tracked_only_with_resolvers_that_are_evidence() {
    use phonehome_synth::session::{CaptureBuilder, Link, SECOND, dns_lookup};
    let t = Setup::new();
    let t0 = 1_700_000_000 * SECOND;
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
    let sa = |x: &str| x.parse::<std::net::SocketAddr>().expect("socket address");
    let mut lookup = |i: u64, client: &str, resolver: &str, name: &str| {
        let client = sa(&format!("{client}:{}", 40_000 + i));
        dns_lookup(
            &mut cb,
            t0 + i * SECOND,
            client,
            sa(resolver),
            i as u16,
            name,
            &[],
        );
    };
    // 10.40.0.5 and its internal resolver: nothing to report, no flow.
    for i in 0..3 {
        lookup(i, "10.40.0.5", "10.40.0.2:53", "www.example.org");
    }
    // 10.40.0.6 and a resolver in Moscow (watched): two conversations.
    lookup(10, "10.40.0.6", "203.0.113.100:53", "www.example.org");
    lookup(11, "10.40.0.6", "203.0.113.100:53", "www.example.org");
    // 10.40.0.7 and a resolver in Kaspersky's AS (Amsterdam).
    lookup(20, "10.40.0.7", "198.51.100.202:53", "www.example.org");
    // 10.40.0.9 and a resolver in a Kaspersky range (a `cidr` rule).
    lookup(30, "10.40.0.9", "77.74.178.53:53", "www.example.org");
    // 10.40.0.8 asks for a vendor name by multicast DNS: no host's evidence.
    lookup(40, "10.40.0.8", "224.0.0.251:5353", "ds.kaspersky.com");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("resolvers.pcapng");
    cb.write_pcapng(&file).expect("write");

    let (g, asn) = (s(&t.geoip), s(&t.asn));
    let (code, r) = analyze_json(&[&file], &["--geoip", g, "--asn", asn]);
    assert_eq!(code, 0);
    let sum = &r["summary"];
    assert_eq!(sum["dns_messages"], 16);
    assert_eq!(sum["flows"], 4, "{sum:#}");
    assert_eq!(sum["dns_queries_without_flow"], 4, "{sum:#}");
    let watched = unattributed(&r, "10.40.0.6");
    assert_eq!(watched.len(), 1, "{r:#}");
    assert_eq!(watched[0]["connections"], 2);
    assert_eq!(server_ips(watched[0]), ["203.0.113.100"]);
    let c = contact(&r, "10.40.0.7", "kaspersky").expect("resolver in AS200107");
    assert_eq!(strings(&c["evidence"]), ["asn"]);
    let c = contact(&r, "10.40.0.9", "kaspersky").expect("resolver in a range");
    assert_eq!(strings(&c["evidence"]), ["cidr", "asn"]);
    let reported = hosts(&r);
    assert!(!reported.contains(&"10.40.0.5".to_string()), "{reported:?}");
    assert!(!reported.contains(&"10.40.0.8".to_string()), "{reported:?}");

    // Without the databases only the range's resolver is evidence.
    let (code, r) = analyze_json(&[&file], &[]);
    assert_eq!(code, 0);
    assert_eq!(r["summary"]["flows"], 1);
    assert_eq!(r["summary"]["dns_queries_without_flow"], 7);
    assert_eq!(hosts(&r), ["10.40.0.9"]);
    let c = contact(&r, "10.40.0.9", "kaspersky").expect("resolver in a range");
    assert_eq!(strings(&c["evidence"]), ["cidr"]);
}
