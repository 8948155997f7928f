//! ClientHello fingerprints on the real captures: the JA3 of every
//! ClientHello phonehome reports (`tls_sni` and `quic_sni` events) equals
//! tshark's `tls.handshake.ja3` for the same conversation, over TCP and
//! QUIC alike. (tshark 4.0 has no JA4; JA4 is checked against FoxIO's
//! published example in the unit tests of `src/protocols/fingerprint.rs`.)
//! Skips with a message when tshark is absent.

use crate::util::{events, root};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const TSHARK: &str = "/usr/bin/tshark";

type Key = (String, u64, String, u64, String);

fn bag(items: impl Iterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut b = BTreeMap::new();
    for k in items {
        *b.entry(k).or_default() += 1;
    }
    b
}

fn tshark_ja3(file: &Path) -> BTreeMap<Key, usize> {
    let out = Command::new(TSHARK)
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(["-o", "tcp.desegment_tcp_streams:TRUE"])
        .args(["-o", "tcp.reassemble_out_of_order:TRUE"])
        .args(["-o", "tls.desegment_ssl_records:TRUE"])
        .args([
            "-Y",
            "tls.handshake.type == 1",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
        ])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
        ])
        .args([
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.dstport",
        ])
        .args(["-e", "tls.handshake.ja3"])
        .output()
        .expect("tshark runs");
    bag(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let pick = |a: usize, b: usize| {
                let (x, y) = (
                    f.get(a).copied().unwrap_or(""),
                    f.get(b).copied().unwrap_or(""),
                );
                if x.is_empty() { y } else { x }.to_string()
            };
            let ja3 = f.get(8).copied().unwrap_or("");
            (!ja3.is_empty()).then(|| {
                (
                    pick(0, 1),
                    pick(2, 3).parse().unwrap_or(0),
                    pick(4, 5),
                    pick(6, 7).parse().unwrap_or(0),
                    ja3.to_string(),
                )
            })
        }))
}

fn ours(evs: &[Value]) -> BTreeMap<Key, usize> {
    bag(evs
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("tls_sni" | "quic_sni")))
        .map(|e| {
            (
                e["src"].as_str().unwrap_or("").into(),
                e["sport"].as_u64().unwrap_or(0),
                e["dst"].as_str().unwrap_or("").into(),
                e["dport"].as_u64().unwrap_or(0),
                e["ja3"].as_str().unwrap_or("").into(),
            )
        }))
}

#[test]
fn ja3_agrees_with_tshark_on_every_real_client_hello() {
    if !Path::new(TSHARK).exists() {
        eprintln!("skipping: {TSHARK} is not installed");
        return;
    }
    // The captures whose truth has a TLS or QUIC server name.
    let dir = root().join("captures/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("captures/corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .filter(|t| {
            let truth: Value =
                serde_json::from_str(&std::fs::read_to_string(t).unwrap_or_default())
                    .unwrap_or_default();
            ["tls_sni", "quic_sni"]
                .iter()
                .any(|k| truth[k].as_array().is_some_and(|a| !a.is_empty()))
        })
        .map(|t| PathBuf::from(t.to_string_lossy().trim_end_matches(".truth.json")))
        .collect();
    files.sort();
    assert!(files.len() > 20, "{} captures with hellos", files.len());
    let (mut agree, mut total) = (0, 0);
    let mut problems = Vec::new();
    for f in &files {
        let (mine, theirs) = (ours(&events(f, &[])), tshark_ja3(f));
        total += theirs.values().sum::<usize>();
        agree += theirs
            .iter()
            .map(|(k, n)| (*n).min(mine.get(k).copied().unwrap_or(0)))
            .sum::<usize>();
        if mine != theirs {
            problems.push(format!(
                "{}: tshark {theirs:?}\n  ours {mine:?}",
                f.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    println!("JA3 agreement with tshark: {agree}/{total} ClientHellos");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(total > 80, "only {total} hellos compared");
}

/// A feed listing a JA4 fingerprint attributes every ClientHello with it to
/// the vendor, whatever server it calls (FoxIO's published Chrome hello,
/// whose JA4 is `t13d1516h2_8daaf6152771_e5627efa2ab1`).
#[test]
fn a_feed_ja4_is_evidence_for_the_host() {
    use phonehome_synth::session::{CaptureBuilder, Link, SECOND, TcpConn};
    let dir = tempfile::tempdir().expect("tempdir");
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).expect("mkdir");
    std::fs::write(
        feeds.join("acme.toml"),
        "[vendor]\nid = \"acme\"\nname = \"Acme\"\n\n[[rule]]\n\
         ja4 = \"t13d1516h2_8daaf6152771_e5627efa2ab1\"\npurpose = \"telemetry\"\n\
         confidence = \"community\"\nsource = \"https://github.com/FoxIO-LLC/ja4\"\n",
    )
    .expect("feed");
    let hello = include_bytes!("../src/protocols/testdata/chrome-client-hello.bin");
    let mut cb = CaptureBuilder::new(Link::Ethernet { vlans: vec![] });
    let t0 = 1_700_000_000 * SECOND;
    let mut conn = TcpConn::new(
        "10.9.0.5:51000".parse().expect("addr"),
        "198.51.100.7:443".parse().expect("addr"),
        1000,
        2000,
    );
    let t = conn.handshake(&mut cb, t0);
    conn.client_send(&mut cb, t, hello);
    let file = dir.path().join("chrome.pcapng");
    cb.write_pcapng(&file).expect("write");

    let feeds_arg = feeds.display().to_string();
    let evs = events(&file, &["--feeds", &feeds_arg]);
    let tls: Vec<&Value> = evs.iter().filter(|e| e["kind"] == "tls_sni").collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(tls[0]["ja4"], "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert_eq!(tls[0]["vendor"], "acme");
    assert_eq!(tls[0]["name"], "content-autofill.googleapis.com");

    let (code, report) = crate::util::analyze_json(&[&file], &["--feeds", &feeds_arg]);
    assert_eq!(code, 0);
    let c = crate::util::contact(&report, "10.9.0.5", "acme").expect("the host is reported");
    assert_eq!(crate::util::strings(&c["evidence"]), ["ja4"]);
    assert_eq!(c["connections"], 1);
    // Without the feed, the same capture names no vendor.
    let (_, report) = crate::util::analyze_json(&[&file], &[]);
    assert_eq!(report["summary"]["hosts_reported"], 0);
}
