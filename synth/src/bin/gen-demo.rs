//! `gen-demo [OUTPUT]` writes the deterministic demo capture (see
//! `phonehome_synth::demo`), by default to `captures/demo.pcapng` relative to
//! the current directory.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("captures/demo.pcapng"), PathBuf::from);
    match phonehome_synth::demo::write_demo(&path) {
        Ok((frames, bytes)) => {
            println!("wrote {} ({frames} frames, {bytes} bytes)", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gen-demo: cannot write {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
