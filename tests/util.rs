use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `captures/`.
pub fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(args)
        .output()
        .expect("run phonehome")
}

/// Runs `analyze --format json -q` on `inputs` (plus `extra` flags) and
/// returns the exit code and the parsed report.
pub fn analyze_json(inputs: &[&Path], extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["analyze", "--format", "json", "-q"];
    args.extend_from_slice(extra);
    let paths: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = run(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// Runs `analyze` with `--events` into a temporary file and returns the
/// events (one JSON value per line).
pub fn events(input: &Path, extra: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ev = dir.path().join("events.jsonl");
    let mut args = vec!["analyze", "-q", "-o", "/dev/null", "--events"];
    let ev_s = ev.display().to_string();
    args.push(&ev_s);
    args.extend_from_slice(extra);
    let input_s = input.display().to_string();
    args.push(&input_s);
    let out = run(&args);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1) | Some(3)),
        "analyze failed on {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&ev)
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line is JSON"))
        .collect()
}

/// The contact of `host` with `vendor` in a JSON report.
pub fn contact<'a>(report: &'a Value, host: &str, vendor: &str) -> Option<&'a Value> {
    report["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["ip"] == host)?["contacts"]
        .as_array()?
        .iter()
        .find(|c| c["vendor"] == vendor)
}

/// A JSON array of strings as a vector.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The server addresses of a contact (`servers[].ip`).
pub fn server_ips(contact: &Value) -> Vec<String> {
    contact["servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
