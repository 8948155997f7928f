//! Inputs (folders, gzip, stdin, several files as one timeline), formats,
//! `--internal`, `--events`, the feeds subcommands and exit codes.

use crate::util::{analyze_json, capture, contact, events, run};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn the_table_fits_100_columns_and_names_every_host() {
    let out = run(&[
        "analyze",
        "-q",
        &capture("demo.pcapng").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines().filter(|l| !l.starts_with("input error")) {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
    for host in ["10.20.0.5", "10.20.0.9", "2001:db8:20::15"] {
        assert!(text.contains(host), "{host} missing");
    }
    assert!(text.contains("9 host(s) phoning home"));
}

#[test]
fn internal_networks_restrict_the_report() {
    let demo = capture("demo.pcapng");
    let (_, all) = analyze_json(&[&demo], &[]);
    let (_, v6) = analyze_json(&[&demo], &["--internal", "2001:db8::/32"]);
    assert!(all["hosts"].as_array().unwrap().len() > 1);
    let ips: Vec<_> = v6["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].clone())
        .collect();
    assert_eq!(ips, ["2001:db8:20::15"]);
}

#[test]
fn gzip_folder_and_stdin_inputs_give_the_same_report() {
    let demo = capture("demo.pcapng");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("sub/demo.pcapng.gz");
    std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
    let bytes = std::fs::read(&demo).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&bytes).unwrap();
    enc.finish().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a capture").unwrap();
    let (_, plain) = analyze_json(&[&demo], &[]);
    let (code, folder) = analyze_json(&[dir.path()], &[]);
    assert_eq!(code, 0, "the text file in the folder is skipped");
    assert_eq!(plain["hosts"], folder["hosts"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_phonehome"))
        .args(["analyze", "--format", "json", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&gz).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plain["hosts"], stdin["hosts"]);
}

#[test]
fn several_files_are_one_timeline() {
    // Split the demo into two pcap files by time; the merged analysis must
    // equal the single-file one, including passive DNS across the files.
    let cb = phonehome_synth::demo::build();
    let mut records = cb.records().to_vec();
    records.sort_by_key(|(ts, _)| *ts);
    let half = records.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    for (name, part) in [
        ("b.pcapng", &records[..half]),
        ("a.pcapng", &records[half..]),
    ] {
        let mut w = phonehome_synth::pcapfile::PcapNgWriter::new(
            std::fs::File::create(dir.path().join(name)).unwrap(),
            phonehome_synth::pcapfile::Endian::Little,
        )
        .unwrap();
        let iface = w.add_interface(1, 262_144, None).unwrap();
        for (ts, frame) in part {
            w.write_packet(iface, *ts, frame).unwrap();
        }
    }
    let (_, one) = analyze_json(&[&capture("demo.pcapng")], &[]);
    let (_, two) = analyze_json(&[dir.path()], &[]);
    assert_eq!(one["hosts"], two["hosts"]);
    assert_eq!(two["summary"]["files"], 2);
    assert_eq!(one["summary"]["packets"], two["summary"]["packets"]);
}

#[test]
fn events_are_a_lossless_json_lines_record() {
    let evs = events(&capture("demo.pcapng"), &[]);
    let kinds = |k: &str| evs.iter().filter(|e| e["kind"] == k).count();
    assert_eq!(kinds("dns_query"), 35);
    assert!(kinds("dns_answer") >= 34);
    assert_eq!(kinds("http_host"), 3);
    assert_eq!(kinds("http_response"), 3);
    let split = evs
        .iter()
        .find(|e| e["kind"] == "tls_sni" && e["name"] == "www.wikipedia.org")
        .expect("split ClientHello");
    assert!(split["vendor"].is_null(), "decoy not attributed");
    let drweb = evs
        .iter()
        .find(|e| e["kind"] == "http_host" && e["name"] == "update.drweb.com")
        .unwrap();
    assert_eq!(
        drweb["user_agent"],
        "DrWebUpdate-7.00.10.02091 (windows: 6.1.7601)"
    );
    assert_eq!(drweb["vendor"], "drweb");
    // Lines from different workers interleave; the earliest is the first
    // DNS query of the demo.
    let ts = evs.iter().filter_map(|e| e["ts"].as_str()).min().unwrap();
    assert!(
        ts.starts_with("2017-09-13T10:00:") && ts.ends_with('Z'),
        "{ts}"
    );
}

#[test]
fn feeds_check_reports_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        "[vendor]\nid = \"acme\"\nname = \"Acme\"\n\n[[rule]]\ncidr = \"10.0.0.1/8\"\npurpose = \"update\"\nconfidence = \"vendor\"\nsource = \"https://example.com\"\n",
    )
    .unwrap();
    let out = run(&["feeds", "check", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("acme.toml:6:8: \"10.0.0.1/8\" has host bits set"),
        "{text}"
    );
    let ok = run(&[
        "feeds",
        "check",
        &crate::util::root().join("feeds").display().to_string(),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn a_feed_folder_adds_vendors_and_a_broken_one_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lab.toml"),
        "[vendor]\nid = \"lab\"\nname = \"Lab\"\n\n[[rule]]\nexact = \"www.example.com\"\npurpose = \"other\"\nconfidence = \"community\"\nsource = \"https://example.com\"\n",
    )
    .unwrap();
    let feeds = dir.path().display().to_string();
    let (code, r) = analyze_json(&[&capture("demo.pcapng")], &["--feeds", &feeds]);
    assert_eq!(code, 0);
    assert!(
        contact(&r, "10.20.0.12", "lab").is_some(),
        "the decoy host now matches the lab feed"
    );
    let list = run(&["feeds", "list", "--feeds", &feeds]);
    assert!(String::from_utf8(list.stdout).unwrap().contains("lab "));
    std::fs::write(dir.path().join("lab.toml"), "[vendor]\nid = \"lab\"\n").unwrap();
    let out = run(&[
        "analyze",
        "--feeds",
        &feeds,
        &capture("demo.pcapng").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lab.toml:1:1: vendor.name is missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        run(&["analyze", "--format", "xml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["analyze", "/nonexistent/file.pcap"]).status.code(),
        Some(1)
    );
}
