//! `gen-geo DIR` writes the GeoIP/ASN scenario (see `phonehome_synth::geo`)
//! into DIR: `geo.pcapng` and the test databases `city.mmdb` (GeoIP2-City
//! layout), `country.mmdb` (GeoLite2-Country), `flat-city.mmdb`
//! (ip-location-db `city ipv4`) and `asn.mmdb` (GeoLite2-ASN).

use phonehome_synth::geo::{asn_records, city_records, write_capture};
use phonehome_synth::mmdb::{CitySchema, asn_db, city_db};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_capture(dir.join("geo.pcapng"))?;
    let city = city_records();
    for (name, schema) in [
        ("city.mmdb", CitySchema::GeoIp2City),
        ("country.mmdb", CitySchema::GeoLite2Country),
        ("flat-city.mmdb", CitySchema::FlatCity),
    ] {
        std::fs::write(dir.join(name), city_db(schema, &city)?)?;
    }
    std::fs::write(dir.join("asn.mmdb"), asn_db(&asn_records())?)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-geo DIR");
        return ExitCode::from(2);
    };
    match write_all(&dir) {
        Ok(()) => {
            println!(
                "wrote geo.pcapng, city.mmdb, country.mmdb, flat-city.mmdb, asn.mmdb in {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gen-geo: cannot write into {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}
