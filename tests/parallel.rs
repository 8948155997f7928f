//! One thread and N threads give the same report and the same set of event
//! lines: sharding by host keeps each host's conversations, DNS answers and
//! contacts on one worker, and the merge is exact. And the report is the
//! same whether event lines are written or not (without them, work done
//! only for events is skipped, such as parsing DNS messages that name no
//! rule).

use crate::util::{capture, root};
use phonehome::analyze::{self, Options};
use phonehome::feeds::{self, Intel};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A `Write` whose bytes the test reads back after the run.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON report and the sorted event lines of one run.
fn analyze(intel: &Arc<Intel>, inputs: &[PathBuf], threads: usize) -> (String, Vec<String>) {
    let opts = Options {
        inputs: inputs.to_vec(),
        threads,
        ..Options::default()
    };
    let events = Shared::default();
    let out = analyze::run(Arc::clone(intel), &opts, Some(Box::new(events.clone())))
        .expect("analysis runs");
    let written = out
        .events
        .expect("events requested")
        .expect("events written");
    let text = String::from_utf8(events.0.lock().expect("lock").clone()).expect("UTF-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len() as u64, written);
    lines.sort();
    let report = serde_json::to_string_pretty(&out.report).expect("report serialises");
    (report, lines)
}

fn intel() -> Arc<Intel> {
    Arc::new(Intel::new(feeds::load(None).expect("built-in feeds load")))
}

fn assert_same(intel: &Arc<Intel>, inputs: &[PathBuf], threads: usize) {
    let (r1, e1) = analyze(intel, inputs, 1);
    let (rn, en) = analyze(intel, inputs, threads);
    assert_eq!(
        r1, rn,
        "report differs with {threads} threads on {inputs:?}"
    );
    assert_eq!(e1, en, "events differ with {threads} threads on {inputs:?}");
}

#[test]
fn the_demo_reports_the_same_with_one_and_with_two_four_and_eight_threads() {
    let intel = intel();
    let demo = vec![capture("demo.pcapng")];
    let (report, events) = analyze(&intel, &demo, 1);
    assert!(
        report.contains("10.20.0.5"),
        "the demo has hosts to compare"
    );
    assert!(!events.is_empty());
    // 2 and 4: the reading thread analyses a share itself; 8: it only
    // dispatches (pipeline::reader_shares).
    for threads in [2, 4, 8] {
        assert_same(&intel, &demo, threads);
    }
}

#[test]
fn every_shared_capture_reports_the_same_with_one_and_three_threads() {
    let intel = intel();
    let dir = root().join("captures/corpus");
    let files = corpus();
    assert!(files.len() >= 80, "{} captures", files.len());
    for f in &files {
        assert_same(&intel, std::slice::from_ref(f), 3);
    }
    // And all of them as one timeline, hosts from many files interleaved.
    assert_same(&intel, &[dir], 2);
}

/// The JSON report of a run that writes no event lines.
fn report_without_events(intel: &Arc<Intel>, inputs: &[PathBuf], threads: usize) -> String {
    let opts = Options {
        inputs: inputs.to_vec(),
        threads,
        ..Options::default()
    };
    let out = analyze::run(Arc::clone(intel), &opts, None).expect("analysis runs");
    assert!(out.events.is_none());
    serde_json::to_string_pretty(&out.report).expect("report serialises")
}

#[test]
fn the_report_is_the_same_with_and_without_event_lines() {
    let intel = intel();
    let mut files = corpus();
    files.push(capture("demo.pcapng"));
    let mut dns = 0;
    for f in &files {
        let (with, _) = analyze(&intel, std::slice::from_ref(f), 1);
        let without = report_without_events(&intel, std::slice::from_ref(f), 1);
        assert_eq!(with, without, "report differs without events on {f:?}");
        // With threads and no events, the reading thread counts DNS
        // messages that name no rule itself.
        let three = report_without_events(&intel, std::slice::from_ref(f), 3);
        assert_eq!(
            with, three,
            "report differs on three threads without events on {f:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(&without).expect("JSON");
        dns += summary["summary"]["dns_messages"].as_u64().unwrap_or(0);
    }
    assert!(dns > 500, "{dns} DNS messages compared");
    let dir = root().join("captures/corpus");
    assert_eq!(
        analyze(&intel, std::slice::from_ref(&dir), 2).0,
        report_without_events(&intel, &[dir], 2),
        "report differs without events with two threads"
    );
}

/// The shared captures (`captures/corpus`), sorted.
fn corpus() -> Vec<PathBuf> {
    let dir = root().join("captures/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.to_string_lossy().ends_with(".json") && !is_text(p))
        .collect();
    files.sort();
    files
}

fn is_text(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("md") | Some("txt")
    )
}
