//! Damaged input: every malformed capture of the corpus is read without a
//! panic; broken files are named with their byte offset; what was read
//! before the damage stays in the report.

use crate::util::{analyze_json, capture, root};

#[test]
fn files_tshark_refuses_are_input_errors_with_offsets() {
    let bad = root().join("captures/corpus/libpcap__pcap-invalid-version-1.pcap");
    let (code, r) = analyze_json(&[&bad, &capture("demo.pcapng")], &[]);
    assert_eq!(code, 3, "partial result");
    let errors = r["summary"]["input_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["offset"], 4);
    assert!(errors[0]["error"].as_str().unwrap().contains("version 1.4"));
    assert_eq!(
        r["summary"]["hosts_reported"], 9,
        "the good file is still analysed"
    );
    let shb = root().join("captures/corpus/libpcap__shb-option-too-long.pcapng");
    let (code, r) = analyze_json(&[&shb], &[]);
    assert_eq!(code, 1, "nothing could be read");
    assert!(r.is_null() || r["summary"]["packets"] == 0);
}

#[test]
fn a_truncated_file_keeps_what_came_before_the_cut() {
    let full = std::fs::read(capture("demo.pcapng")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcapng");
    // Cut in the middle of the last third: the early hosts are all before it.
    std::fs::write(&cut, &full[..full.len() * 2 / 3 + 5]).unwrap();
    let (code, r) = analyze_json(&[&cut], &[]);
    assert_eq!(code, 3);
    let err = &r["summary"]["input_errors"][0];
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("file ends inside pcapng block"),
        "{err}"
    );
    assert!(err["offset"].as_u64().unwrap() > 0);
    assert!(err["frames_read"].as_u64().unwrap() > 100);
    assert!(
        crate::util::contact(&r, "10.20.0.6", "kaspersky").is_some(),
        "results before the cut are kept"
    );
}

#[test]
fn every_corpus_file_and_every_prefix_of_a_few_is_survived() {
    // All 82 files in one run (one timeline), then every truncation of small
    // files: no panic, no hang, an exit code that says what happened.
    let (code, r) = analyze_json(&[&root().join("captures/corpus")], &[]);
    assert_eq!(code, 3, "two corpus files are unreadable by design");
    assert_eq!(r["summary"]["input_errors"].as_array().unwrap().len(), 2);
    assert!(r["summary"]["malformed_packets"].as_u64().unwrap() > 0);
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "tcpdump__dns-zlip-1.pcap",
        "ndpi__dns.pcap",
        "arkime__tls-split-client-hello.pcap",
    ] {
        let bytes = std::fs::read(root().join("captures/corpus").join(name)).unwrap();
        let step = (bytes.len() / 97).max(1);
        for n in (0..bytes.len()).step_by(step) {
            let p = dir.path().join(format!("{n}.pcap"));
            std::fs::write(&p, &bytes[..n]).unwrap();
            let out = crate::util::run(&[
                "analyze",
                "-q",
                "--format",
                "json",
                &p.display().to_string(),
            ]);
            assert!(
                matches!(out.status.code(), Some(0) | Some(1) | Some(3)),
                "{name} cut at {n}: {out:?}"
            );
        }
    }
}
