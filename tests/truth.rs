//! Every capture in `captures/corpus` (82 real files from the test suites of
//! Suricata, Zeek, tcpdump, nDPI, Arkime, PcapPlusPlus and pcap-parser) is
//! analysed with `--events`, and the DNS questions, DNS answers (A/AAAA
//! addresses per owner name), TLS server names, QUIC server names (tshark
//! decrypts the Initial packets itself) and HTTP Host headers are
//! compared — as multisets of (src, dst, sport, dport, name[, addresses]) —
//! with tshark 4.0's dissection stored beside each file
//! (`NAME.truth.json`, options in `captures/corpus/README.md`).
//!
//! Deliberate differences, excluded from the comparison:
//! - `gquic_sni`: Google QUIC Q0xx CHLO messages are not TLS and not read
//!   (T051, Google QUIC with TLS, is).
//! - Files tshark itself refuses (`packets: 0`) have empty truth; phonehome
//!   must report them as input errors (checked in `damaged`).

use crate::util::{events, root};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

type Key = (String, String, u64, u64, String, Vec<String>);
type Bag = BTreeMap<Key, usize>;

const KINDS: [&str; 5] = [
    "dns_queries",
    "dns_answers",
    "tls_sni",
    "quic_sni",
    "http_host",
];

fn key(e: &Value, name: &str, addrs: Vec<String>) -> Key {
    (
        e["src"].as_str().unwrap_or("").to_string(),
        e["dst"].as_str().unwrap_or("").to_string(),
        e["sport"].as_u64().unwrap_or(0),
        e["dport"].as_u64().unwrap_or(0),
        name.to_string(),
        addrs,
    )
}

/// Our events, bagged per truth list.
fn ours(evs: &[Value]) -> BTreeMap<&'static str, Bag> {
    let mut out: BTreeMap<&'static str, Bag> = BTreeMap::new();
    for e in evs {
        let name = e["name"].as_str();
        match (e["kind"].as_str(), name) {
            (Some("dns_query"), Some(n)) => {
                *out.entry("dns_queries")
                    .or_default()
                    .entry(key(e, n, vec![]))
                    .or_default() += 1
            }
            (Some("tls_sni"), Some(n)) => {
                *out.entry("tls_sni")
                    .or_default()
                    .entry(key(e, n, vec![]))
                    .or_default() += 1
            }
            (Some("quic_sni"), Some(n)) => {
                *out.entry("quic_sni")
                    .or_default()
                    .entry(key(e, n, vec![]))
                    .or_default() += 1
            }
            (Some("http_host"), Some(n)) => {
                *out.entry("http_host")
                    .or_default()
                    .entry(key(e, n, vec![]))
                    .or_default() += 1
            }
            (Some("dns_answer"), _) => {
                // Group A/AAAA data by owner name, in wire order, as tshark does.
                let mut owners: Vec<(String, Vec<String>)> = Vec::new();
                for a in e["answers"].as_array().into_iter().flatten() {
                    if !matches!(a["type"].as_str(), Some("A") | Some("AAAA")) {
                        continue;
                    }
                    let owner = a["name"].as_str().unwrap_or("").to_string();
                    let data = a["data"].as_str().unwrap_or("").to_string();
                    match owners.iter_mut().find(|(o, _)| *o == owner) {
                        Some((_, v)) => v.push(data),
                        None => owners.push((owner, vec![data])),
                    }
                }
                for (owner, addrs) in owners {
                    *out.entry("dns_answers")
                        .or_default()
                        .entry(key(e, &owner, addrs))
                        .or_default() += 1;
                }
            }
            _ => {}
        }
    }
    out
}

/// tshark's lists, bagged the same way.
fn theirs(truth: &Value) -> BTreeMap<&'static str, Bag> {
    let mut out: BTreeMap<&'static str, Bag> = BTreeMap::new();
    for kind in KINDS {
        for e in truth[kind].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or("");
            let addrs = e["addrs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            *out.entry(kind)
                .or_default()
                .entry(key(e, name, addrs))
                .or_default() += 1;
        }
    }
    out
}

fn size(b: &Bag) -> usize {
    b.values().sum()
}

fn common(a: &Bag, b: &Bag) -> usize {
    a.iter()
        .map(|(k, n)| (*n).min(b.get(k).copied().unwrap_or(0)))
        .sum()
}

#[test]
fn extraction_agrees_with_tshark_on_every_real_capture() {
    let dir = root().join("captures/corpus");
    let mut truths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("captures/corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    truths.sort();
    assert_eq!(truths.len(), 82, "the corpus has 82 captures");
    let mut totals: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    for t in &truths {
        let capture = PathBuf::from(t.to_string_lossy().trim_end_matches(".truth.json"));
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(t).expect("truth")).expect("truth JSON");
        let (mine, theirs) = (ours(&events(&capture, &[])), theirs(&truth));
        for kind in KINDS {
            let empty = Bag::new();
            let (m, th) = (
                mine.get(kind).unwrap_or(&empty),
                theirs.get(kind).unwrap_or(&empty),
            );
            let agree = common(m, th);
            let tot = totals.entry(kind).or_default();
            tot.0 += agree;
            tot.1 += size(th);
            tot.2 += size(m);
            if agree != size(th) || agree != size(m) {
                let missing: Vec<_> = th
                    .keys()
                    .filter(|k| m.get(*k).copied().unwrap_or(0) < th[*k])
                    .take(3)
                    .collect();
                let extra: Vec<_> = m
                    .keys()
                    .filter(|k| th.get(*k).copied().unwrap_or(0) < m[*k])
                    .take(3)
                    .collect();
                problems.push(format!(
                    "{}: {kind}: {agree} agree, tshark {} ours {}; missing {missing:?}; extra {extra:?}",
                    capture.file_name().unwrap_or_default().to_string_lossy(),
                    size(th),
                    size(m)
                ));
            }
        }
    }
    println!("agreement with tshark over {} captures:", truths.len());
    for (kind, (agree, theirs, ours)) in &totals {
        println!("  {kind:<12} {agree}/{theirs} (phonehome extracted {ours})");
    }
    assert!(
        problems.is_empty(),
        "disagreements:\n{}",
        problems.join("\n")
    );
    // The corpus must exercise every kind, or the comparison proves nothing
    // (QUIC: 16 hellos in 12 files — v1, v2, drafts 23-29, T051, Retry,
    // 0-RTT, CRYPTO over several Initials and out of order).
    for kind in KINDS {
        let least = if kind == "quic_sni" { 15 } else { 50 };
        assert!(
            totals[kind].1 > least,
            "{kind}: only {} items in the truth",
            totals[kind].1
        );
    }
}
