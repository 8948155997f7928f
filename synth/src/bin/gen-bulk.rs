//! `gen-bulk --out FILE --size 1G [--seed N] [--hosts N] [--flows N] [--span SECS]`
//! writes a large realistic benchmark capture (see `phonehome_synth::bulk`)
//! and prints what it holds and how fast it was written. It only writes the
//! file; nothing is sent anywhere.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use phonehome_synth::bulk::{self, BulkConfig, KIND_NAMES};

const USAGE: &str =
    "usage: gen-bulk --out FILE --size SIZE [--seed N] [--hosts N] [--flows N] [--span SECS]
  SIZE takes K/M/G suffixes (powers of 1024); defaults: 30000 hosts,
  one conversation per 1100 bytes, a span of 3600 s, seed 1";

fn parse_args() -> Result<(PathBuf, BulkConfig), String> {
    let mut out = None;
    let mut size = None;
    let (mut seed, mut hosts, mut flows, mut span) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--out" | "-o" => out = Some(PathBuf::from(&value)),
            "--size" => {
                size = Some(bulk::parse_size(&value).ok_or(format!("bad size {value}"))?);
            }
            "--seed" => seed = Some(number()?),
            "--hosts" => hosts = Some(number()?),
            "--flows" => flows = Some(number()?),
            "--span" => span = Some(number()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let out = out.ok_or("--out is required")?;
    let mut cfg = BulkConfig::new(size.ok_or("--size is required")?);
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.hosts = hosts.map_or(cfg.hosts, |h| u32::try_from(h).unwrap_or(u32::MAX));
    cfg.flows = flows.unwrap_or(cfg.flows);
    cfg.span_secs = span.unwrap_or(cfg.span_secs);
    Ok((out, cfg))
}

fn main() -> ExitCode {
    let (path, cfg) = match parse_args() {
        Ok(v) => v,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("gen-bulk: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = File::create(&path)
        .map(|f| BufWriter::with_capacity(8 << 20, f))
        .and_then(|w| bulk::generate(&cfg, w));
    let stats = match result {
        Ok(s) => s,
        Err(err) => {
            eprintln!("gen-bulk: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let kinds: Vec<String> = KIND_NAMES
        .iter()
        .zip(stats.kinds)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    // Printing is best effort (stdout may be a closed pipe).
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "wrote {}: {} bytes, {} packets, {} flows, {} hosts, {:.0} s simulated",
        path.display(),
        stats.bytes,
        stats.packets,
        stats.flows,
        stats.hosts,
        stats.duration_secs
    );
    let _ = writeln!(
        o,
        "ipv6 packets {:.1} %, vlan-tagged packets {:.1} %; flows: {}",
        100.0 * stats.ipv6_packets as f64 / stats.packets.max(1) as f64,
        100.0 * stats.tagged_packets as f64 / stats.packets.max(1) as f64,
        kinds.join(", ")
    );
    for b in bulk::beacons(&cfg) {
        let _ = writeln!(
            o,
            "beacon: {} -> {} ({}) every {} s",
            b.host,
            b.name,
            b.server,
            bulk::BEACON_PERIOD_SECS
        );
    }
    let _ = writeln!(
        o,
        "speed: {:.2} s, {:.1} MB/s, {:.2} GB/min",
        secs,
        stats.bytes as f64 / secs / 1e6,
        stats.bytes as f64 / secs * 60.0 / 1e9
    );
    ExitCode::SUCCESS
}
