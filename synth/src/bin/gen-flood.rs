//! `gen-flood OUTPUT [DIVISOR]` writes the flood capture of
//! `phonehome_synth::flood` (full size: 1M SYNs, 100k random names, 100k
//! incomplete ClientHellos and datagrams, 100k hosts, one Kaspersky client);
//! every count is divided by DIVISOR when given.

#![forbid(unsafe_code)]

use phonehome_synth::flood::{FloodSpec, write_flood};
use std::io::BufWriter;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: gen-flood OUTPUT [DIVISOR]");
        return ExitCode::from(2);
    };
    let div = args
        .next()
        .and_then(|d| d.to_str().and_then(|d| d.parse().ok()))
        .unwrap_or(1);
    let spec = FloodSpec::full().scaled(div);
    let written = std::fs::File::create(&path)
        .and_then(|f| write_flood(BufWriter::with_capacity(1 << 20, f), &spec));
    match written {
        Ok(s) => {
            println!(
                "wrote {} ({} frames, {} bytes)",
                path.display(),
                s.packets,
                s.bytes
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gen-flood: cannot write {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
