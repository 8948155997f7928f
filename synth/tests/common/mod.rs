//! tshark, shared by the synth crate's cross-checks.

use std::path::Path;
use std::process::Command;

/// Where Debian installs tshark.
pub const TSHARK: &str = "/usr/bin/tshark";

/// Reassembly on (as phonehome does) and every checksum verified.
pub const OPTS: &[&str] = &[
    "-o",
    "tcp.desegment_tcp_streams:TRUE",
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
    "-o",
    "tls.desegment_ssl_records:TRUE",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
];

/// Tab-separated `-T fields` rows for the frames matching `filter`.
pub fn fields(file: &Path, names: &[&str], filter: &str) -> Vec<Vec<String>> {
    let mut cmd = Command::new(TSHARK);
    cmd.arg("-r").arg(file).args(OPTS).args(["-T", "fields"]);
    for n in names {
        cmd.args(["-e", n]);
    }
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}
