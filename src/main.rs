//! The `phonehome` binary: parses flags, runs a subcommand, and turns errors
//! into messages and exit codes (documented in README, "Exit codes"):
//! 0 success; 1 nothing could be analysed (bad feeds or GeoIP/ASN database,
//! no readable input, unwritable output); 2 bad command line; 3 the report was written but some
//! input files were damaged or unreadable (listed in the report).

#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use phonehome::alerts::{self, AlertPipeline, AlertSink, DeliveryConfig, JsonLines, TrackerConfig};
use phonehome::analyze::{self, Limits, Options};
use phonehome::cli::{
    AlertArgs, AnalyzeArgs, CaptureMethod, Cli, Command, FeedsCommand, Format, GeoArgs, LiveArgs,
    XdpModeArg,
};
use phonehome::decode::defrag::DefragLimits;
use phonehome::feeds::{self, Intel};
use phonehome::flow::FlowLimits;
use phonehome::geo::{Database, Geo, Watch};
use phonehome::hosts::HostLimits;
use phonehome::hosts::pdns::PdnsLimits;
use phonehome::output::{html, table};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit status when the report is complete but some inputs were damaged.
const EXIT_PARTIAL: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed pipe (`phonehome ... | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("phonehome: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Analyze(args) => analyze_cmd(args),
        Command::Feeds(FeedsCommand::Check { dir }) => feeds_check(&dir),
        Command::Feeds(FeedsCommand::List { feeds, rules }) => feeds_list(feeds.as_deref(), rules),
        Command::Live(args) => live_cmd(args),
    }
}

fn live_cmd(args: LiveArgs) -> Result<u8> {
    use phonehome::live::{self, Method, ReportFormat};
    use std::time::Duration;
    let intel = live::load_intel(args.feeds.as_deref()).context("cannot load the feeds")?;
    let opts = live::Options {
        interfaces: args.interfaces.clone(),
        bpf: args.bpf.clone(),
        method: match args.method {
            CaptureMethod::Afpacket => Method::AfPacket,
            CaptureMethod::Pcap => Method::Pcap,
            CaptureMethod::Afxdp => Method::AfXdp,
        },
        xdp_mode: match args.xdp_mode {
            XdpModeArg::Auto => live::XdpMode::Auto,
            XdpModeArg::Native => live::XdpMode::Native,
            XdpModeArg::Skb => live::XdpMode::Skb,
        },
        threads: default_threads(args.threads),
        capture_threads: args.capture_threads.max(1),
        snaplen: args.snaplen.max(64),
        promisc: !args.no_promisc,
        ring_mib: args.ring_mib.max(2),
        internal: args.internal.clone(),
        limits: limits(&args.limits),
        host_idle: Duration::from_secs(args.host_idle.max(1)),
        report_every: Duration::from_secs(args.report_every.max(1)),
        report: args.report.clone(),
        html: args.html.clone(),
        format: match args.format {
            Format::Table => ReportFormat::Table,
            Format::Json => ReportFormat::Json,
        },
        state: args.state.clone(),
        user: Some(args.user.clone()).filter(|u| !u.is_empty()),
        feeds_dir: args.feeds.clone(),
        duration: args.duration.map(Duration::from_secs),
    };
    // Opened before privileges are dropped.
    let sink: Box<dyn AlertSink> = match args.alerts.raw_file() {
        Some(p) => Box::new(JsonLines::new(BufWriter::new(create(p)?))),
        None => Box::new(JsonLines::new(io::stdout())),
    };
    // SIEM sinks: their alerts come from each summary report (first contact,
    // beacon confirmed, reminders), spooled when a sink is down.
    let mut siem = start_alerts(&args.alerts)?;
    // Bound before privileges are dropped (a port below 1024 needs them).
    let metrics = std::sync::Arc::new(alerts::metrics::Metrics::default());
    let _server = match &args.metrics {
        Some(addr) => {
            if let Some(p) = &siem {
                metrics.register_sinks(p.delivery.stats());
            }
            let server = alerts::metrics::MetricsServer::start(addr, metrics.clone())
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            eprintln!(
                "phonehome live: metrics on http://{}/metrics",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };
    let mut on_report = |report: &phonehome::output::Report, kind: live::ReportKind| {
        if kind == live::ReportKind::Restored {
            // Known before the restart: alerted then, not again.
            if let Some(p) = siem.as_mut() {
                p.prime(report);
            }
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        let s = &report.summary;
        metrics.packets.store(s.packets, Relaxed);
        metrics.bytes.store(s.bytes, Relaxed);
        if let Some(c) = &s.capture {
            let queue: u64 = c.queue_drops.iter().sum();
            metrics
                .drops
                .store(c.kernel_drops + c.interface_drops + queue, Relaxed);
        }
        if let Some(p) = siem.as_mut() {
            let raised = p.observe(report) as u64;
            metrics.alerts_raised.fetch_add(raised, Relaxed);
        }
    };
    let mut err = io::stderr();
    let outcome = live::run(intel, &opts, sink, &mut on_report, &mut err)?;
    if let Some(p) = siem {
        close_alerts(p, Duration::from_secs(args.alerts.alerts_timeout));
    }
    if let Some(result) = outcome.alerts {
        result.context("cannot write alerts")?;
    }
    Ok(0)
}

fn default_threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
        .max(1)
}

fn limits(a: &phonehome::cli::LimitArgs) -> Limits {
    Limits {
        flows: FlowLimits {
            max_flows: a.max_flows.max(1),
            tcp_idle_secs: a.tcp_timeout.max(1),
            udp_idle_secs: a.udp_timeout.max(1),
            ..FlowLimits::default()
        },
        defrag: DefragLimits {
            max_datagrams: a.max_fragmented,
            ..DefragLimits::default()
        },
        pdns: PdnsLimits {
            max_entries: a.pdns_entries,
            grace_secs: a.pdns_grace.max(0),
        },
        hosts: HostLimits {
            max_hosts: a.max_hosts,
        },
        stream_memory: a.stream_memory_mib.saturating_mul(1024 * 1024),
    }
}

/// Opens the GeoIP/ASN databases and builds the watch list.
fn geo(a: &GeoArgs) -> Result<Geo> {
    let location = a
        .geoip
        .iter()
        .map(|p| Database::open_location(p).context("cannot use the --geoip database"))
        .collect::<Result<Vec<_>>>()?;
    let asn = a
        .asn
        .iter()
        .map(|p| Database::open_asn(p).context("cannot use the --asn database"))
        .collect::<Result<Vec<_>>>()?;
    let mut watch = if a.no_default_watch {
        Watch::none()
    } else {
        Watch::moscow()
    };
    for r in &a.watch_geo {
        watch.push(r.clone());
    }
    Ok(Geo::new(location, asn, watch))
}

/// Opens an output file, or standard output for `-`.
fn create(path: &Path) -> Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdout()));
    }
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(f))
}

fn analyze_cmd(args: AnalyzeArgs) -> Result<u8> {
    let feeds = feeds::load(args.feeds.as_deref()).context("cannot load the feeds")?;
    let intel = Arc::new(Intel::new(feeds).with_geo(geo(&args.geo)?));
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let opts = Options {
        inputs: args.inputs.clone(),
        internal: args.internal.clone(),
        limits: limits(&args.limits),
        progress: !args.quiet,
        threads: threads.max(1),
    };
    let events = match &args.events {
        Some(p) => Some(Box::new(BufWriter::with_capacity(1 << 20, create(p)?)) as Box<_>),
        None => None,
    };
    // Started first, so alerts spooled by an earlier run go out meanwhile.
    let siem = start_alerts(&args.alerts)?;
    let alerts = match args.alerts.raw_file() {
        Some(p) => Some(Box::new(JsonLines::new(BufWriter::new(create(p)?))) as Box<dyn AlertSink>),
        None => None,
    };
    let (outcome, alerts) = analyze::run_with_alerts(intel, &opts, events, alerts)?;
    if let Some(result) = alerts {
        result.context("cannot write alerts")?;
    }
    if let Some(result) = outcome.events {
        result.with_context(|| {
            format!(
                "cannot write events to {}",
                args.events.as_deref().unwrap_or(Path::new("-")).display()
            )
        })?;
    }
    let report = outcome.report;
    if let Some(p) = &args.html {
        html::write(&report, p)?;
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::with_capacity(1 << 20, create(p)?)),
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    match args.format {
        Format::Table => out.write_all(table::render(&report).as_bytes())?,
        // Streamed: the JSON of a million hosts is never held in memory
        // next to the report it is made from (measured by benches/flood.sh).
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    drop(out);
    if let Some(siem) = siem {
        finish_alerts(siem, &report, args.alerts.alerts_timeout);
    }
    for e in &report.summary.input_errors {
        eprintln!(
            "phonehome: {}: {} ({} frames read before it are included)",
            e.file, e.error, e.frames_read
        );
    }
    if report.summary.packets == 0 && !report.summary.input_errors.is_empty() {
        bail!("no input could be read");
    }
    Ok(if report.summary.input_errors.is_empty() {
        0
    } else {
        EXIT_PARTIAL
    })
}

/// Starts alert delivery when `--alerts` is given.
fn start_alerts(a: &AlertArgs) -> Result<Option<AlertPipeline>> {
    let sinks = a.siem_sinks();
    if sinks.is_empty() {
        if a.spool.is_some() {
            eprintln!("phonehome: --spool has no effect without --alerts");
        }
        return Ok(None);
    }
    let tracker = TrackerConfig {
        sensor: a.sensor.clone().unwrap_or_else(alerts::default_sensor),
        remind_every_s: i64::try_from(a.remind_every.as_secs()).unwrap_or(i64::MAX),
        suppress_s: i64::try_from(a.suppress.as_secs()).unwrap_or(i64::MAX),
        max_keys: alerts::tracker::MAX_KEYS,
    };
    let delivery = DeliveryConfig {
        queue: a.alerts_queue,
        spool_dir: a.spool.clone(),
        spool_max_bytes: a.spool_max_mib.saturating_mul(1 << 20),
        sink_options: alerts::sink::SinkOptions {
            ca_file: a.syslog_ca.clone(),
        },
        ..DeliveryConfig::default()
    };
    let p =
        AlertPipeline::start(&sinks, tracker, &delivery).context("cannot start alert delivery")?;
    Ok(Some(p))
}

/// Raises the report's alerts, delivers them (or spools them) and says
/// on stderr what could not be delivered.
fn finish_alerts(mut p: AlertPipeline, report: &phonehome::output::Report, timeout_s: u64) {
    p.observe(report);
    close_alerts(p, Duration::from_secs(timeout_s));
}

/// Ends alert delivery, saying on stderr what could not be delivered.
fn close_alerts(p: AlertPipeline, timeout: Duration) {
    for r in p.close(timeout) {
        if r.spool_bytes_left > 0 || r.lost > 0 {
            eprintln!(
                "phonehome: alerts: {}: {} delivered, {} bytes left in the spool, {} lost{}",
                r.name,
                r.delivered,
                r.spool_bytes_left,
                r.lost,
                r.last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
        }
    }
}

fn feeds_check(dir: &Path) -> Result<u8> {
    match feeds::check_dir(dir) {
        Ok(f) => {
            println!(
                "{}: {} vendor(s), {} rule(s), no problems",
                dir.display(),
                f.vendors.len(),
                f.rules.len()
            );
            Ok(0)
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!(
                "phonehome: {} problem(s) in {}",
                errors.0.len(),
                dir.display()
            );
            Ok(1)
        }
    }
}

fn feeds_list(extra: Option<&Path>, rules: bool) -> Result<u8> {
    let f = feeds::load(extra).context("cannot load the feeds")?;
    let mut out = io::stdout().lock();
    for (i, v) in f.vendors.iter().enumerate() {
        let mine: Vec<_> = f
            .rules
            .iter()
            .filter(|r| usize::from(r.vendor) == i)
            .collect();
        writeln!(
            out,
            "{:<20} {:<28} {:>4} rules  {}",
            v.id,
            v.name,
            mine.len(),
            v.origin
        )?;
        if rules {
            for r in mine {
                writeln!(
                    out,
                    "    {:<18} {:<45} {:<10} {:<9} {}",
                    r.kind.key(),
                    r.value,
                    r.purpose.as_str(),
                    format!("{:?}", r.confidence).to_lowercase(),
                    r.origin
                )?;
            }
        }
    }
    Ok(0)
}
