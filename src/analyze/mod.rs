//! Offline analysis: many capture files in, one report out. Wires the
//! capture timeline to an [`Engine`], shows progress, and assembles the
//! [`Report`] — including the files that could not be read to the end, whose
//! earlier packets stay in the results.

mod engine;

pub use engine::{Counters, Engine, Limits};

use crate::capture::{Timeline, find_captures};
use crate::feeds::Intel;
use crate::hosts::EventSink;
use crate::output::report::InputError;
use crate::output::time::rfc3339;
use crate::output::{Report, Summary};
use ipnet::IpNet;
use std::path::PathBuf;
use std::sync::Arc;

/// What to analyse and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Files and folders.
    pub inputs: Vec<PathBuf>,
    /// Only clients inside these networks are hosts (all when empty).
    pub internal: Vec<IpNet>,
    /// Caps and timeouts.
    pub limits: Limits,
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// Why an analysis could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// An input path does not exist or cannot be listed.
    #[error("{path}: {source}")]
    Input {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The inputs hold no capture files.
    #[error("no capture files found in the given inputs")]
    NoCaptures,
}

/// Packets between progress-bar updates.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Runs an offline analysis. Unreadable or damaged files do not stop it:
/// they are listed in the report's `summary.input_errors`.
pub fn run(
    intel: Arc<Intel>,
    opts: &Options,
    events: &mut dyn EventSink,
) -> Result<Report, AnalyzeError> {
    let files = find_captures(&opts.inputs)
        .map_err(|(path, source)| AnalyzeError::Input { path, source })?;
    if files.is_empty() {
        return Err(AnalyzeError::NoCaptures);
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = progress_bar(opts.progress, total_bytes);
    let file_count = files.len();
    let mut timeline = Timeline::new(files);
    let mut engine = Engine::new(Arc::clone(&intel), opts.internal.clone(), &opts.limits);
    let started = std::time::Instant::now();
    let mut n = 0u64;
    while let Some(frame) = timeline.next_frame() {
        engine.process(&frame, &mut *events);
        n += 1;
        if n.is_multiple_of(PROGRESS_EVERY)
            && let Some(pb) = &progress
        {
            pb.set_position(timeline.bytes_read());
            let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("{:.0} pkt/s", rate));
        }
    }
    engine.finish(&mut *events);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let summary = summarize(&engine, &timeline, file_count);
    Ok(Report::new(summary, &engine.analysis.hosts, &intel))
}

fn progress_bar(enabled: bool, total: u64) -> Option<indicatif::ProgressBar> {
    if !enabled || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    Some(pb)
}

fn summarize(engine: &Engine, timeline: &Timeline, files: usize) -> Summary {
    let c = &engine.counters;
    let flows = engine.flow_stats();
    let defrag = engine.defrag_stats();
    let a = &engine.analysis.stats;
    Summary {
        files,
        packets: c.packets,
        bytes: c.bytes,
        first_packet: c.first.map(rfc3339),
        last_packet: c.last.map(rfc3339),
        duration_s: match (c.first, c.last) {
            (Some(f), Some(l)) => l.secs_since(f),
            _ => 0.0,
        },
        malformed_packets: c.malformed,
        truncated_packets: c.truncated,
        non_ip_frames: c.non_ip,
        unsupported_link_frames: c.unsupported_link.clone(),
        ip_fragments: defrag.fragments,
        reassembled_datagrams: defrag.reassembled,
        fragments_dropped: defrag.dropped + defrag.rejected,
        flows: flows.created,
        flows_refused: flows.refused,
        streams_abandoned: engine.streams_abandoned(),
        dns_messages: a.dns_messages,
        tls_client_hellos: a.client_hellos,
        http_requests: a.http_requests,
        http_responses: a.http_responses,
        pdns_evicted: engine.analysis.pdns.evicted,
        input_errors: timeline
            .failures()
            .iter()
            .map(|f| InputError {
                file: f.path.display().to_string(),
                offset: f.error.offset(),
                error: f.error.to_string(),
                frames_read: f.frames_read,
            })
            .collect(),
        ..Summary::default()
    }
}
