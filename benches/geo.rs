//! GeoIP/ASN lookups, in nanoseconds per server address: the verdict
//! attribution asks for at the start of every conversation, straight from
//! the databases (uncached) and through the per-engine cache (the common
//! case: servers recur), and the full description the report builds once
//! per server.
//!
//! Databases: the scenario's small GeoIP2-City and GeoLite2-ASN files
//! (`phonehome_synth::geo`), written to memory; with `PHONEHOME_GEOIP_DB`
//! (and optionally `PHONEHOME_ASN_DB`) set, also a real database, probed
//! with addresses spread over the IPv4 space.
//!
//! Run: `cargo bench --bench geo`.

use criterion::{Criterion, criterion_group, criterion_main};
use phonehome::geo::{Database, Geo, GeoCache, Watch};
use phonehome_synth::geo::{asn_records, city_records};
use phonehome_synth::mmdb::{CitySchema, asn_db, city_db};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn synthetic() -> Geo {
    let city = city_db(CitySchema::GeoIp2City, &city_records()).expect("city db");
    let asn = asn_db(&asn_records()).expect("asn db");
    Geo::new(
        vec![Database::from_bytes(city, Path::new("city.mmdb")).expect("city")],
        vec![Database::from_bytes(asn, Path::new("asn.mmdb")).expect("asn")],
        Watch::moscow(),
    )
}

fn real() -> Option<Geo> {
    let city = std::env::var_os("PHONEHOME_GEOIP_DB").map(PathBuf::from)?;
    let asn = std::env::var_os("PHONEHOME_ASN_DB").map(PathBuf::from);
    Some(Geo::new(
        vec![Database::open_location(&city).expect("PHONEHOME_GEOIP_DB")],
        asn.iter()
            .map(|p| Database::open_asn(p).expect("PHONEHOME_ASN_DB"))
            .collect(),
        Watch::moscow(),
    ))
}

/// 4096 public-looking IPv4 addresses spread over the space.
fn spread() -> Vec<IpAddr> {
    (0..4096u32)
        .map(|i| IpAddr::from((i.wrapping_mul(2_654_435_761) | 0x0100_0000).to_be_bytes()))
        .collect()
}

fn bench(c: &mut Criterion, name: &str, geo: &Geo, addrs: &[IpAddr]) {
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % addrs.len();
        addrs[i]
    };
    c.bench_function(&format!("geo/{name}/verdict_uncached"), |b| {
        b.iter(|| black_box(geo.verdict(black_box(next()))))
    });
    let mut cache = GeoCache::default();
    for a in addrs {
        cache.verdict(geo, *a);
    }
    c.bench_function(&format!("geo/{name}/verdict_cached"), |b| {
        b.iter(|| black_box(cache.verdict(geo, black_box(next()))))
    });
    c.bench_function(&format!("geo/{name}/describe"), |b| {
        b.iter(|| black_box(geo.describe(black_box(next()))))
    });
}

fn benches(c: &mut Criterion) {
    let scenario: Vec<IpAddr> = [
        "203.0.113.77",
        "198.51.100.201",
        "192.0.2.70",
        "192.0.2.100",
        "77.74.178.11",
        "2001:db8:77::1",
        "10.1.2.3",
        "8.8.8.8",
    ]
    .iter()
    .map(|s| s.parse().expect("address"))
    .collect();
    bench(c, "synthetic", &synthetic(), &scenario);
    if let Some(geo) = real() {
        bench(c, "real", &geo, &spread());
    }
}

criterion_group!(geo, benches);
criterion_main!(geo);
