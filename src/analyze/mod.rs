//! Offline analysis: many capture files in, one report out. Wires the
//! capture timeline to an [`Engine`], shows progress, and assembles the
//! [`Report`] — including the files that could not be read to the end, whose
//! earlier packets stay in the results.

mod engine;

pub use engine::{
    Counters, DnsDatagram, Engine, EngineStats, Limits, carries_dns_answer, dns_message,
};

use crate::alerts::AlertSink;
use crate::capture::{Timeline, find_captures};
use crate::feeds::Intel;
use crate::hosts::{EventSink, HostTable, NoEvents};
use crate::output::EventLog;
use crate::output::report::{GeoSummary, InputError};
use crate::output::time::rfc3339;
use crate::output::{Report, Summary};
use crate::pipeline::{Merged, Pipeline};
use ipnet::IpNet;
use std::io::{self, Write};
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
    /// Worker threads (1: everything on the calling thread).
    pub threads: usize,
}

/// What an analysis produced.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Event lines written, or the first error writing them (with events).
    pub events: Option<io::Result<u64>>,
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
    /// A worker thread could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(#[source] io::Error),
}

/// Packets between progress-bar updates.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Runs an offline analysis. Unreadable or damaged files do not stop it:
/// they are listed in the report's `summary.input_errors`. With `events`,
/// every extracted record is written there as a JSON line.
pub fn run(
    intel: Arc<Intel>,
    opts: &Options,
    events: Option<Box<dyn Write + Send>>,
) -> Result<Outcome, AnalyzeError> {
    run_with_alerts(intel, opts, events, None).map(|(o, _)| o)
}

/// [`run`], also raising first-contact alerts into `alerts` (as `live`
/// does); returns the alerts written, or the first error writing them.
pub fn run_with_alerts(
    intel: Arc<Intel>,
    opts: &Options,
    events: Option<Box<dyn Write + Send>>,
    alerts: Option<Box<dyn AlertSink>>,
) -> Result<(Outcome, Option<io::Result<u64>>), AnalyzeError> {
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
    let mut progress = Progress::new(opts.progress, total_bytes);
    let file_count = files.len();
    let mut timeline = Timeline::new(files);
    let merged = if opts.threads <= 1 {
        one_thread(&intel, opts, &mut timeline, events, alerts, &mut progress)
    } else {
        let mut pipeline = Pipeline::with_alerts(
            Arc::clone(&intel),
            opts.internal.clone(),
            &opts.limits,
            opts.threads,
            events,
            alerts,
        )
        .map_err(AnalyzeError::Threads)?;
        while let Some(frame) = timeline.next_frame() {
            pipeline.push(&frame);
            progress.tick(&timeline);
        }
        pipeline.finish()
    };
    progress.done();
    let mut summary = summarize(&merged.stats, &timeline, file_count);
    if intel.geo.is_enabled() {
        summary.geo = Some(GeoSummary::new(&intel.geo, &merged.stats.geo));
    }
    Ok((
        Outcome {
            report: Report::new(summary, &merged.hosts, &intel),
            events: merged.events,
        },
        merged.alerts,
    ))
}

/// The whole analysis on the calling thread: one engine, no dispatch.
fn one_thread(
    intel: &Arc<Intel>,
    opts: &Options,
    timeline: &mut Timeline,
    events: Option<Box<dyn Write + Send>>,
    mut alerts: Option<Box<dyn AlertSink>>,
    progress: &mut Progress,
) -> Merged {
    let mut engine = Engine::new(Arc::clone(intel), opts.internal.clone(), &opts.limits);
    let mut log = events.map(EventLog::new);
    let mut none = NoEvents;
    let sink: &mut dyn EventSink = match log.as_mut() {
        Some(l) => l,
        None => &mut none,
    };
    engine.analysis.hosts.watch_new(alerts.is_some());
    let mut raised = AlertsRaised::default();
    while let Some(frame) = timeline.next_frame() {
        engine.process(&frame, &mut *sink);
        if engine.analysis.hosts.has_new() {
            raised.raise(&mut engine, alerts.as_deref_mut());
        }
        progress.tick(timeline);
    }
    engine.finish(sink);
    raised.raise(&mut engine, alerts.as_deref_mut());
    let alerts = alerts.map(|mut a| match (raised.error.take(), a.flush()) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(raised.written),
    });
    let (stats, hosts): (EngineStats, HostTable) = engine.into_results();
    Merged {
        stats,
        hosts,
        events: log.map(EventLog::finish),
        alerts,
    }
}

/// First-contact alerts on the single-thread path (the pipeline's workers
/// raise them the same way).
#[derive(Default)]
struct AlertsRaised {
    pairs: Vec<(std::net::IpAddr, crate::feeds::VendorId)>,
    ready: Vec<crate::alerts::Alert>,
    written: u64,
    error: Option<io::Error>,
}

impl AlertsRaised {
    fn raise(&mut self, engine: &mut Engine, sink: Option<&mut (dyn AlertSink + '_)>) {
        let Some(sink) = sink else {
            return;
        };
        let intel = Arc::clone(engine.analysis.intel());
        crate::alerts::collect_new(
            &mut engine.analysis.hosts,
            &intel,
            &mut self.pairs,
            &mut self.ready,
        );
        for a in self.ready.drain(..) {
            if self.error.is_none() {
                match sink.alert(&a) {
                    Ok(()) => self.written += 1,
                    Err(e) => self.error = Some(e),
                }
            }
        }
    }
}

/// The progress bar, updated every [`PROGRESS_EVERY`] frames.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    frames: u64,
    started: std::time::Instant,
}

impl Progress {
    fn new(enabled: bool, total: u64) -> Self {
        Progress {
            bar: progress_bar(enabled, total),
            frames: 0,
            started: std::time::Instant::now(),
        }
    }

    /// Counts a frame: one increment and one test per frame (inlined into
    /// the read loop), the bar's update out of line.
    #[inline(always)]
    fn tick(&mut self, timeline: &Timeline) {
        self.frames += 1;
        if self.frames.is_multiple_of(PROGRESS_EVERY) {
            self.show(timeline);
        }
    }

    #[cold]
    #[inline(never)]
    fn show(&self, timeline: &Timeline) {
        if let Some(pb) = &self.bar {
            pb.set_position(timeline.bytes_read());
            let rate = self.frames as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("{rate:.0} pkt/s"));
        }
    }

    fn done(self) {
        if let Some(pb) = self.bar {
            pb.finish_and_clear();
        }
    }
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

fn summarize(stats: &EngineStats, timeline: &Timeline, files: usize) -> Summary {
    Summary {
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
        ..summary_of(stats, files)
    }
}

/// The report summary of the engine counters (files and input errors aside,
/// which only offline analysis has).
pub fn summary_of(stats: &EngineStats, files: usize) -> Summary {
    let c = &stats.counters;
    let flows = &stats.flows;
    let defrag = &stats.defrag;
    let a = &stats.analysis;
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
        flows_evicted: flows.evicted_early,
        streams_abandoned: stats.streams_abandoned,
        dns_messages: a.dns_messages,
        dns_anomalies: a.dns_anomalies,
        dns_queries_without_flow: a.dns_queries_without_flow,
        tls_client_hellos: a.client_hellos,
        quic_client_hellos: a.quic_client_hellos,
        http_requests: a.http_requests,
        http_responses: a.http_responses,
        pdns_evicted: stats.pdns_evicted,
        ..Summary::default()
    }
}
