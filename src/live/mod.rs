//! Live capture: the same analysis as `analyze` (the pipeline's workers and
//! their engines), fed from network interfaces, running until stopped.
//!
//! ```text
//!  iface ─ socket 0 ─ capture thread: Dispatcher ─┐   (try_send: a full
//!        ─ socket 1 ─ capture thread: Dispatcher ─┼─> worker queues ─> Workers ─> alerts
//!  (PACKET_FANOUT group per interface)            ┘    queue drops    (Engine)     report, state
//!  main thread: signals, ticks, snapshots → summary report / state file
//! ```
//!
//! Each capture thread owns one source ([`afpacket::Ring`],
//! [`pcap::PcapSource`], or an AF_XDP socket per receive queue with the
//! `afxdp` feature) and one [`Dispatcher`], which shards by host into
//! the shared worker queues and never blocks: a full queue costs the batch
//! (counted per worker). The main thread drops privileges once the sources
//! are open, then ticks the workers with wall time (idle conversations end
//! on a quiet link; contacts idle longer than `host_idle` are forgotten),
//! takes snapshots for the periodic summary report and state file, reloads
//! the feeds on SIGHUP, and on SIGINT/SIGTERM stops the capture threads,
//! lets the workers finish every conversation, and writes the final report.

pub mod afpacket;
#[cfg(feature = "afxdp")]
pub mod afxdp;
pub mod pcap;
pub mod source;
pub mod state;
pub mod sys;

use crate::alerts::AlertSink;
use crate::analyze::{EngineStats, Limits, summary_of};
use crate::capture::Timestamp;
use crate::feeds::{self, Intel};
use crate::hosts::HostTable;
use crate::output::report::CaptureSummary;
use crate::output::time::rfc3339;
use crate::output::{Report, table};
use crate::pipeline::{Dispatched, Dispatcher, Overflow, Workers};
use ipnet::IpNet;
use source::{Source, SourceStats};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Capture methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// AF_PACKET, TPACKET_V3 ring, PACKET_FANOUT (Linux).
    AfPacket,
    /// libpcap.
    Pcap,
    /// AF_XDP, one socket per receive queue (cargo feature `afxdp`).
    AfXdp,
}

/// How the AF_XDP method attaches its XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode, else generic (skb) mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Skb,
}

impl Method {
    /// The name used in flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AfPacket => "afpacket",
            Method::Pcap => "pcap",
            Method::AfXdp => "afxdp",
        }
    }
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The table of `analyze`.
    Table,
    /// The JSON report of `analyze`.
    Json,
}

/// How to capture and what to write.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interfaces.
    pub interfaces: Vec<String>,
    /// BPF filter expression (applied in the kernel; by afxdp in user space).
    pub bpf: Option<String>,
    /// Capture method.
    pub method: Method,
    /// Worker threads.
    pub threads: usize,
    /// Capture sockets (threads) per interface (afpacket fanout group size).
    pub capture_threads: usize,
    /// Bytes kept per packet.
    pub snaplen: usize,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Kernel ring/buffer per socket, MiB.
    pub ring_mib: usize,
    /// Only clients inside these networks are hosts (all when empty).
    pub internal: Vec<IpNet>,
    /// Caps and timeouts.
    pub limits: Limits,
    /// Contacts idle this long are forgotten.
    pub host_idle: Duration,
    /// Time between summary reports.
    pub report_every: Duration,
    /// Where the report goes (atomically replaced); stderr without it.
    pub report: Option<PathBuf>,
    /// A self-contained HTML page of each summary (atomically replaced).
    pub html: Option<PathBuf>,
    /// Its format.
    pub format: ReportFormat,
    /// Host history file (loaded at start, saved at each summary and on exit).
    pub state: Option<PathBuf>,
    /// As root, switch to this user after opening the sockets (`None`: stay
    /// the same user). Capabilities are dropped in every case.
    pub user: Option<String>,
    /// Extra feeds folder (reloaded on SIGHUP with the built-in feeds).
    pub feeds_dir: Option<PathBuf>,
    /// Stop by itself after this long (tests, benchmarks).
    pub duration: Option<Duration>,
    /// XDP attach mode (afxdp).
    pub xdp_mode: XdpMode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interfaces: Vec::new(),
            bpf: None,
            method: Method::AfPacket,
            threads: 1,
            capture_threads: 1,
            snaplen: 65535,
            promisc: true,
            ring_mib: 64,
            internal: Vec::new(),
            limits: Limits::default(),
            host_idle: Duration::from_secs(90 * 86_400),
            report_every: Duration::from_secs(300),
            report: None,
            html: None,
            format: ReportFormat::Table,
            state: None,
            user: Some("nobody".into()),
            feeds_dir: None,
            duration: None,
            xdp_mode: XdpMode::Auto,
        }
    }
}

/// Why live capture could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A capture source could not be opened or failed.
    #[error("capture: {0}")]
    Capture(#[source] io::Error),
    /// Threads could not be started.
    #[error("cannot start threads: {0}")]
    Threads(#[source] io::Error),
    /// Dropping privileges failed (the sensor refuses to parse as root).
    #[error("cannot drop privileges: {0}")]
    Privileges(#[source] io::Error),
    /// The state file is unusable.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// Signal handlers could not be installed.
    #[error("signals: {0}")]
    Signals(#[source] io::Error),
}

/// What a finished live run produced.
pub struct Outcome {
    /// The final report.
    pub report: Report,
    /// Alerts written, or the first error writing them.
    pub alerts: Option<io::Result<u64>>,
    /// Who the sensor ran as after dropping privileges.
    pub dropped: Option<sys::Dropped>,
}

/// What capture threads publish for the summaries.
#[derive(Default)]
struct Published {
    sources: Vec<SourceStats>,
    dispatched: Vec<Dispatched>,
    /// Each source's last word ([`Source::describe`] at exit).
    described: Vec<Option<String>>,
}

/// Packets between statistics updates of a capture thread, at most.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// Partly filled batches are sent after this long.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// Time between ticks to the workers.
const TICK_EVERY: Duration = Duration::from_secs(1);

fn wall_now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

/// Reads `/sys/class/net/IFACE/statistics/rx_dropped`.
fn rx_dropped(iface: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/rx_dropped"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Opens every capture source.
fn open_sources(opts: &Options) -> io::Result<Vec<Box<dyn Source>>> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for (k, iface) in opts.interfaces.iter().enumerate() {
        match opts.method {
            Method::Pcap => out.push(Box::new(pcap::PcapSource::open(
                iface,
                opts.snaplen,
                opts.promisc,
                opts.ring_mib,
                opts.bpf.as_deref(),
            )?)),
            Method::AfPacket => {
                let filter = match &opts.bpf {
                    // Interfaces without a link header (tun) compile for raw IP.
                    Some(expr) => {
                        let lt = std::fs::read_to_string(format!("/sys/class/net/{iface}/type"))
                            .ok()
                            .filter(|t| t.trim() == "65534")
                            .map_or(1, |_| 101);
                        let prog = pcap::compile(expr, lt)?;
                        Some(afpacket::sock_filter(&prog)?)
                    }
                    None => None,
                };
                let group = ((std::process::id() as usize).wrapping_mul(31) + k + 1) as u16;
                let cfg = afpacket::RingConfig {
                    iface: iface.clone(),
                    ring_mib: opts.ring_mib / opts.capture_threads.max(1),
                    snaplen: opts.snaplen,
                    promisc: opts.promisc,
                    filter,
                    fanout_group: group,
                };
                for _ in 0..opts.capture_threads.max(1) {
                    out.push(Box::new(afpacket::Ring::open(&cfg)?));
                }
            }
            #[cfg(feature = "afxdp")]
            Method::AfXdp => {
                let cfg = afxdp::XdpConfig {
                    iface: iface.clone(),
                    umem_mib: opts.ring_mib,
                    snaplen: opts.snaplen,
                    promisc: opts.promisc,
                    bpf: opts.bpf.clone(),
                    mode: opts.xdp_mode,
                };
                for s in afxdp::open(&cfg)? {
                    out.push(Box::new(s));
                }
            }
            #[cfg(not(feature = "afxdp"))]
            Method::AfXdp => {
                let _ = k;
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "--method afxdp: this binary was built without AF_XDP support \
                     (rebuild with `cargo build --release --features afxdp`)",
                ));
            }
        }
    }
    Ok(out)
}

/// One capture thread: source → dispatcher, until `stop`.
fn capture_loop(
    mut src: Box<dyn Source>,
    mut d: Dispatcher,
    stop: Arc<AtomicBool>,
    published: Arc<Mutex<Published>>,
    index: usize,
) -> (Dispatched, Option<io::Error>) {
    let mut last_flush = Instant::now();
    let mut last_publish = Instant::now();
    let mut error = None;
    let publish = |src: &mut Box<dyn Source>, d: &Dispatcher| {
        let s = src.stats();
        if let Ok(mut p) = published.lock() {
            if let Some(slot) = p.sources.get_mut(index) {
                *slot = s;
            }
            if let Some(slot) = p.dispatched.get_mut(index) {
                *slot = d.dispatched();
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        match src.next_batch(100, &mut |f| d.push(f)) {
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            d.flush();
            last_flush = Instant::now();
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            publish(&mut src, &d);
            last_publish = Instant::now();
        }
    }
    // Read what the kernel already delivered (and a block about to be
    // retired), so a stop right after the last packet still sees it.
    if error.is_none() {
        for _ in 0..64 {
            match src.next_batch(2 * afpacket::RETIRE_MS as i32, &mut |f| d.push(f)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
    }
    publish(&mut src, &d);
    let last = src.describe();
    if let Ok(mut p) = published.lock()
        && let Some(slot) = p.described.get_mut(index)
    {
        *slot = last;
    }
    (d.finish(), error)
}

/// Loads the feeds as at start (built-in plus `dir`).
pub fn load_intel(dir: Option<&std::path::Path>) -> Result<Intel, feeds::FeedErrors> {
    feeds::load(dir).map(Intel::new)
}

struct Sensor<'a> {
    opts: &'a Options,
    intel: Arc<Intel>,
    started: Timestamp,
    started_at: Instant,
    if_drops_at_start: Vec<u64>,
    published: Arc<Mutex<Published>>,
}

impl Sensor<'_> {
    fn capture_summary(&self, workers_drops: Vec<u64>) -> CaptureSummary {
        let (received, kernel_drops) = self
            .published
            .lock()
            .map(|p| {
                p.sources
                    .iter()
                    .fold((0, 0), |(r, k), s| (r + s.received, k + s.kernel_drops))
            })
            .unwrap_or_default();
        let interface_drops = self
            .opts
            .interfaces
            .iter()
            .zip(&self.if_drops_at_start)
            .map(|(i, start)| rx_dropped(i).saturating_sub(*start))
            .sum();
        CaptureSummary {
            method: self.opts.method.as_str().into(),
            interfaces: self.opts.interfaces.clone(),
            started: rfc3339(self.started),
            running_s: self.started_at.elapsed().as_secs_f64(),
            received,
            kernel_drops,
            interface_drops,
            queue_drops: workers_drops,
        }
    }

    fn report(&self, stats: &EngineStats, hosts: &HostTable, capture: CaptureSummary) -> Report {
        let mut summary = summary_of(stats, 0);
        summary.capture = Some(capture);
        Report::new(summary, hosts, &self.intel)
    }

    fn write_report(&self, report: &Report, err: &mut dyn Write) {
        let text = match self.opts.format {
            ReportFormat::Table => table::render(report),
            ReportFormat::Json => match serde_json::to_string_pretty(report) {
                Ok(t) => t + "\n",
                Err(e) => format!("{e}\n"),
            },
        };
        let c = report.summary.capture.as_ref();
        let _ = writeln!(
            err,
            "phonehome live: {} received, {} kernel drops, {} interface drops, queue drops {:?}; {} packets analysed, {} hosts",
            c.map_or(0, |c| c.received),
            c.map_or(0, |c| c.kernel_drops),
            c.map_or(0, |c| c.interface_drops),
            c.map_or(&[][..], |c| &c.queue_drops[..]),
            report.summary.packets,
            report.summary.hosts_reported,
        );
        if let Some(path) = &self.opts.html
            && let Err(e) = crate::output::html::write(report, path)
        {
            let _ = writeln!(err, "phonehome live: {e}");
        }
        match &self.opts.report {
            Some(path) => {
                if let Err(e) = state::write_atomic(path, text.as_bytes()) {
                    let _ = writeln!(err, "phonehome live: cannot write {}: {e}", path.display());
                }
            }
            None => {
                let _ = err.write_all(text.as_bytes());
            }
        }
    }

    fn save_state(&self, hosts: &HostTable, err: &mut dyn Write) {
        if let Some(path) = &self.opts.state
            && let Err(e) = state::save(path, hosts, &self.intel, wall_now())
        {
            let _ = writeln!(err, "phonehome live: {e}");
        }
    }

    /// A summary while running: snapshot, merge, report, state.
    fn summary(
        &self,
        workers: &Workers,
        on_report: &mut dyn FnMut(&Report, ReportKind),
        err: &mut dyn Write,
    ) {
        let mut stats = EngineStats::default();
        let mut hosts = HostTable::new(self.opts.limits.hosts);
        if let Ok(p) = self.published.lock() {
            for d in &p.dispatched {
                stats.counters.merge(&d.counters);
                stats.defrag.merge(&d.defrag);
                stats.analysis.merge(&d.analysis);
                if let Some((first, last)) = d.window {
                    hosts.observe(first);
                    hosts.observe(last);
                }
            }
        }
        for s in workers.snapshot() {
            stats.merge(&s.stats);
            hosts.merge(s.hosts);
        }
        let report = self.report(&stats, &hosts, self.capture_summary(workers.queue_drops()));
        self.write_report(&report, err);
        on_report(&report, ReportKind::Summary);
        self.save_state(&hosts, err);
    }
}

/// What a report handed to `run`'s `on_report` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The history loaded from `--state`, before any packet: everything in
    /// it was reported (and alerted) before the restart.
    Restored,
    /// A periodic summary.
    Summary,
    /// The report at exit.
    Final,
}

/// Runs live capture until SIGINT/SIGTERM (or `duration`). Alerts go to
/// `alerts`; summaries and messages to `err`.
pub fn run(
    intel: Intel,
    opts: &Options,
    alerts: Box<dyn AlertSink>,
    on_report: &mut dyn FnMut(&Report, ReportKind),
    err: &mut dyn Write,
) -> Result<Outcome, LiveError> {
    let mut intel = Arc::new(intel);
    sys::install_signal_handlers().map_err(LiveError::Signals)?;
    let history = match &opts.state {
        Some(p) => Some(state::load(p, &intel)?),
        None => None,
    };
    // Open everything that needs privileges, then give them up before the
    // first packet is parsed (the workers start after the drop).
    let mut sources = open_sources(opts).map_err(LiveError::Capture)?;
    for line in sources.iter_mut().filter_map(|s| s.describe()) {
        let _ = writeln!(err, "phonehome live: {line}");
    }
    let d = sys::drop_privileges(opts.user.as_deref()).map_err(LiveError::Privileges)?;
    let _ = writeln!(
        err,
        "phonehome live: running as {}, effective capabilities {:016x}",
        d.user.as_deref().unwrap_or("the starting user"),
        d.cap_eff
    );
    let dropped = Some(d);
    let workers = Workers::start_with_depth(
        Arc::clone(&intel),
        opts.internal.clone(),
        &opts.limits,
        opts.threads,
        sources.len(),
        crate::pipeline::LIVE_QUEUE_DEPTH,
        None,
        Some(alerts),
    )
    .map_err(LiveError::Threads)?;
    if let Some(h) = history {
        if h.unknown_vendors > 0 {
            let _ = writeln!(
                err,
                "phonehome live: state: {} contact(s) of vendors no longer in the feeds were skipped",
                h.unknown_vendors
            );
        }
        workers.seed(h.hosts);
        // The history as a report, before any packet: what was reported
        // (and alerted) before the restart.
        let mut hosts = HostTable::new(opts.limits.hosts);
        for s in workers.snapshot() {
            hosts.merge(s.hosts);
        }
        let restored = Report::new(crate::output::report::Summary::default(), &hosts, &intel);
        on_report(&restored, ReportKind::Restored);
    }
    let mut sensor = Sensor {
        opts,
        intel: Arc::clone(&intel),
        started: wall_now(),
        started_at: Instant::now(),
        if_drops_at_start: opts.interfaces.iter().map(|i| rx_dropped(i)).collect(),
        published: Arc::new(Mutex::new(Published {
            sources: vec![SourceStats::default(); sources.len()],
            dispatched: vec![Dispatched::default(); sources.len()],
            described: vec![None; sources.len()],
        })),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<JoinHandle<(Dispatched, Option<io::Error>)>> = Vec::new();
    for (i, src) in sources.into_iter().enumerate() {
        let d = workers.dispatcher(Overflow::Drop);
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&sensor.published));
        let h = std::thread::Builder::new()
            .name(format!("phonehome-capture-{i}"))
            .spawn(move || capture_loop(src, d, stop, published, i))
            .map_err(LiveError::Threads)?;
        threads.push(h);
    }
    let _ = writeln!(
        err,
        "phonehome live: capturing on {} with {} ({} socket(s), {} worker(s))",
        opts.interfaces.join(", "),
        opts.method.as_str(),
        threads.len(),
        workers.len()
    );
    let mut last_tick = Instant::now();
    let mut last_report = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if sys::stop_requested()
            || opts
                .duration
                .is_some_and(|d| sensor.started_at.elapsed() >= d)
            || threads.iter().any(JoinHandle::is_finished)
        {
            break;
        }
        if sys::take_reload() {
            match load_intel(opts.feeds_dir.as_deref()) {
                Ok(new) => {
                    let (v, r) = (new.feeds.vendors.len(), new.feeds.rules.len());
                    intel = Arc::new(new);
                    workers.reload(&intel);
                    sensor.intel = Arc::clone(&intel);
                    let _ = writeln!(
                        err,
                        "phonehome live: feeds reloaded: {v} vendor(s), {r} rule(s)"
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "phonehome live: feeds NOT reloaded, keeping the old ones: {e}"
                    );
                }
            }
        }
        if last_tick.elapsed() >= TICK_EVERY {
            let now = wall_now();
            let idle = i64::try_from(opts.host_idle.as_secs()).unwrap_or(i64::MAX);
            workers.tick(now, Some(now.plus_secs(-idle)));
            last_tick = Instant::now();
        }
        if last_report.elapsed() >= opts.report_every {
            sensor.summary(&workers, &mut *on_report, err);
            last_report = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut dispatched = Vec::new();
    let mut failure = None;
    for h in threads {
        match h.join() {
            Ok((d, e)) => {
                dispatched.push(d);
                if failure.is_none() {
                    failure = e;
                }
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    if let Ok(p) = sensor.published.lock() {
        for line in p.described.iter().flatten() {
            let _ = writeln!(err, "phonehome live: {line}");
        }
    }
    let queue_drops = workers.queue_drops();
    let capture = sensor.capture_summary(queue_drops);
    let merged = workers.finish(&dispatched);
    let report = sensor.report(&merged.stats, &merged.hosts, capture);
    sensor.write_report(&report, err);
    on_report(&report, ReportKind::Final);
    sensor.save_state(&merged.hosts, err);
    if let Some(e) = failure {
        return Err(LiveError::Capture(e));
    }
    Ok(Outcome {
        report,
        alerts: merged.alerts,
        dropped,
    })
}
