//! Command-line flags, as parsed by clap: raw values and their help text, no
//! I/O. `main` turns them into validated options.

use crate::geo::WatchRule;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use std::path::PathBuf;

/// Finds the hosts that phone home to anti-virus and EDR vendors.
#[derive(Debug, Parser)]
#[command(name = "phonehome", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse capture files (pcap, pcapng, gzip-compressed or not) and report
    /// which hosts contact which vendors.
    Analyze(AnalyzeArgs),
    /// Inspect and validate vendor feeds.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Capture from network interfaces and report continuously: alerts as
    /// JSON Lines, a summary report every --report-every and on exit
    /// (SIGINT/SIGTERM); SIGHUP reloads the feeds.
    Live(LiveArgs),
}

/// Live capture methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureMethod {
    /// AF_PACKET with TPACKET_V3 rings and PACKET_FANOUT (Linux).
    Afpacket,
    /// libpcap (portable).
    Pcap,
    /// AF_XDP, one socket per receive queue (Linux; a binary built with
    /// `--features afxdp`). Captured frames do not reach the host's stack.
    Afxdp,
}

/// XDP attach modes (`--method afxdp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native (driver) mode, else generic (skb) mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Skb,
}

/// Flags of `live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (repeat for several).
    #[arg(short, long = "interface", value_name = "IFACE", required = true)]
    pub interfaces: Vec<String>,

    /// Capture filter (tcpdump syntax), applied in the kernel.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,

    /// Capture method.
    #[arg(long, value_enum, default_value_t = CaptureMethod::Afpacket)]
    pub method: CaptureMethod,

    /// How `--method afxdp` attaches its XDP program.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,

    /// Worker threads (default: one per core). Packets are sharded by host.
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,

    /// AF_PACKET sockets per interface, each read by its own thread (one
    /// PACKET_FANOUT group). More than one can reorder a host's packets
    /// across connections (README, "Live capture").
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub capture_threads: usize,

    /// Bytes kept of each packet.
    #[arg(long, value_name = "N", default_value_t = 65535)]
    pub snaplen: usize,

    /// Do not put the interfaces in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Kernel capture memory per interface, MiB (AF_PACKET ring, libpcap
    /// buffer, or AF_XDP UMEM split between the receive queues).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub ring_mib: usize,

    /// Seconds between summary reports.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub report_every: u64,

    /// Write each summary report to FILE (atomically replaced) instead of
    /// standard error.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Also write each summary as a self-contained HTML page to FILE
    /// (atomically replaced).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Keep per-host history in FILE: loaded at start, saved atomically at
    /// each summary and on exit.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Forget a host's contact with a vendor after this many idle seconds.
    #[arg(long, value_name = "SECS", default_value_t = 90 * 86_400)]
    pub host_idle: u64,

    /// When started as root, run as USER once the capture sockets are open.
    /// All capabilities are dropped in every case (also when started as
    /// another user with CAP_NET_RAW given by setcap); `--user ''` stays
    /// root, without capabilities.
    #[arg(long, value_name = "USER", default_value = "nobody")]
    pub user: String,

    /// Stop after SECS seconds (as SIGTERM would).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Only report clients inside these networks (comma-separated CIDRs).
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub internal: Vec<IpNet>,

    /// Load extra feed files from DIR (reloaded on SIGHUP).
    #[arg(long, value_name = "DIR")]
    pub feeds: Option<PathBuf>,

    /// Memory caps and timeouts.
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: LimitArgs,

    /// Serve Prometheus metrics on ADDR (`GET /metrics`; e.g.
    /// 127.0.0.1:9469), refreshed at every summary.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,

    /// Alerts: raw JSON Lines to FILE (default standard output), and SIEM
    /// sinks fed from each summary report.
    #[command(flatten, next_help_heading = "Alerts")]
    pub alerts: AlertArgs,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people (fits 100 columns).
    Table,
    /// One JSON document (schema in README).
    Json,
}

/// Flags of `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files or folders (folders are searched recursively for
    /// captures, recognised by content). `-` reads standard input.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page to FILE
    /// (summary, sortable host table, timelines, servers' places; opens
    /// offline). Written atomically.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write every extracted item (DNS question/answer, TLS server name, HTTP
    /// request/response) as JSON Lines to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Only report clients inside these networks (comma-separated CIDRs).
    /// Without it, every client that contacts a vendor is reported.
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',')]
    pub internal: Vec<IpNet>,

    /// Load extra feed files from DIR (a vendor id already built in is replaced).
    #[arg(long, value_name = "DIR")]
    pub feeds: Option<PathBuf>,

    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,

    /// Worker threads (default: one per core). Packets are sharded by host;
    /// the report is the same for any number. 1 runs everything on one thread.
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,

    /// GeoIP and ASN databases, watched places.
    #[command(flatten, next_help_heading = "GeoIP and ASN")]
    pub geo: GeoArgs,

    /// Memory caps and timeouts.
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: LimitArgs,

    /// Alerts: raw JSON Lines (as `live` raises them) and SIEM sinks.
    #[command(flatten, next_help_heading = "Alerts")]
    pub alerts: AlertArgs,
}

/// GeoIP/ASN databases and watched places (README, "GeoIP and ASN").
#[derive(Debug, Args)]
pub struct GeoArgs {
    /// Location database (.mmdb): MaxMind GeoIP2/GeoLite2 City or Country,
    /// DB-IP, or ip-location-db city/country files. Servers in the report
    /// get their country and city; watched places are checked. Repeatable
    /// (e.g. separate IPv4 and IPv6 files): the first file that knows an
    /// address answers.
    #[arg(long, value_name = "FILE")]
    pub geoip: Vec<PathBuf>,

    /// ASN database (.mmdb): GeoLite2-ASN, GeoIP2-ISP, DB-IP or
    /// ip-location-db ASN files. Servers get their AS number and
    /// organisation; a vendor's AS number in the feeds is evidence `asn`.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub asn: Vec<PathBuf>,

    /// Also watch this place (repeatable): CC (country), CC/City, or
    /// LAT,LON,RADIUSkm. Conversations to watched places that no feed
    /// attributes are reported with vendor null. Moscow is always watched
    /// unless --no-default-watch.
    #[arg(long, value_name = "SPEC", value_parser = parse_watch, requires = "geoip")]
    pub watch_geo: Vec<WatchRule>,

    /// Do not watch Moscow by default.
    #[arg(long)]
    pub no_default_watch: bool,
}

fn parse_watch(s: &str) -> Result<WatchRule, String> {
    WatchRule::parse(s).map_err(|e| e.to_string())
}

/// Memory caps and timeouts (README, "Limits", gives each cap's cost).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Conversations tracked at once.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_flows: usize,
    /// Bytes all TCP streams may buffer together, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub stream_memory_mib: usize,
    /// IP datagrams reassembled at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_fragmented: usize,
    /// Passive DNS entries kept.
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    pub pdns_entries: usize,
    /// Seconds a DNS answer is trusted beyond its TTL.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub pdns_grace: i64,
    /// Hosts kept in the report.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_hosts: usize,
    /// Idle seconds after which a TCP connection ends.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub tcp_timeout: i64,
    /// Idle seconds after which a UDP conversation ends.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub udp_timeout: i64,
}

/// Alert flags, shared by `analyze` and `live` (README, "Alerts").
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Send alerts to SPEC (repeatable). A plain FILE (`-`: standard
    /// output) gets the first-contact and beacon alerts as JSON Lines, as
    /// `live` raises them; SIEM sinks get the report's alerts (README,
    /// "Alerts for a SIEM"): jsonl:FILE, jsonl:-, syslog+udp://HOST:PORT,
    /// syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT, cef+udp://HOST:PORT,
    /// cef+tcp://HOST:PORT, redis://HOST:PORT/KEY.
    #[arg(long = "alerts", value_name = "SPEC")]
    pub sinks: Vec<crate::alerts::sink::AlertsTarget>,
    /// Sensor name written into every alert and its id (default: host name).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Keep undelivered alerts in DIR (one spool per sink); they are sent
    /// on the next start.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Reminder period for hosts still phoning home, by capture time
    /// (seconds, or with a unit: 30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::alerts::parse_duration)]
    pub remind_every: std::time::Duration,
    /// No reminder for a host and vendor within this long (capture time)
    /// of another alert about them.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::alerts::parse_duration)]
    pub suppress: std::time::Duration,
    /// Seconds to keep trying to deliver at exit before spooling the rest.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub alerts_timeout: u64,
    /// Alerts kept in memory per sink before spilling to the spool.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub alerts_queue: usize,
    /// Spool size cap per sink, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub spool_max_mib: u64,
    /// CA certificates (PEM) that syslog+tls trusts (default: the system
    /// store).
    #[arg(long, value_name = "FILE")]
    pub syslog_ca: Option<PathBuf>,
}

impl AlertArgs {
    /// The SIEM sinks among `--alerts`.
    pub fn siem_sinks(&self) -> Vec<crate::alerts::SinkSpec> {
        use crate::alerts::sink::AlertsTarget;
        self.sinks
            .iter()
            .filter_map(|t| match t {
                AlertsTarget::Siem(s) => Some(s.clone()),
                AlertsTarget::Raw(_) => None,
            })
            .collect()
    }

    /// The plain FILE among `--alerts` (the last one given), if any.
    pub fn raw_file(&self) -> Option<&std::path::Path> {
        use crate::alerts::sink::AlertsTarget;
        self.sinks.iter().rev().find_map(|t| match t {
            AlertsTarget::Raw(p) => Some(p.as_path()),
            AlertsTarget::Siem(_) => None,
        })
    }
}

/// `feeds` subcommands.
#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Validate the feed files of a folder; print each problem as
    /// file:line:column.
    Check {
        /// The folder.
        dir: PathBuf,
    },
    /// Print the vendors and rules loaded (built-in, plus --feeds).
    List {
        /// Also load DIR, as `analyze --feeds` does.
        #[arg(long, value_name = "DIR")]
        feeds: Option<PathBuf>,
        /// Print every rule, not just the vendors.
        #[arg(long)]
        rules: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("phonehome").chain(args.iter().copied()))
    }

    #[test]
    fn internal_takes_a_comma_separated_cidr_list() {
        let Command::Analyze(a) = parse(&[
            "analyze",
            "--internal",
            "10.0.0.0/8,2001:db8::/32",
            "x.pcap",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.internal.len(), 2);
        assert!(parse(&["analyze", "--internal", "10.0.0.0/33", "x.pcap"]).is_err());
    }

    #[test]
    fn analyze_needs_an_input_and_a_known_format() {
        assert!(parse(&["analyze"]).is_err());
        assert!(parse(&["analyze", "--format", "xml", "x"]).is_err());
        let Command::Analyze(a) = parse(&["analyze", "--format", "json", "a", "b"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.format, Format::Json);
        assert_eq!(a.inputs.len(), 2);
        assert_eq!(a.limits.max_flows, 1_000_000);
    }

    #[test]
    fn watch_geo_is_repeatable_checked_and_needs_a_database() {
        let Command::Analyze(a) = parse(&[
            "analyze",
            "--geoip",
            "city.mmdb",
            "--watch-geo",
            "RU",
            "--watch-geo",
            "RU/Moscow",
            "--watch-geo",
            "55.7558,37.6173,50km",
            "--no-default-watch",
            "x.pcap",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.geo.watch_geo.len(), 3);
        assert!(a.geo.no_default_watch);
        assert_eq!(a.geo.geoip, [std::path::Path::new("city.mmdb")]);
        let e = parse(&["analyze", "--geoip", "c.mmdb", "--watch-geo", "55,37", "x"]).unwrap_err();
        assert!(e.to_string().contains("LAT,LON,RADIUS"), "{e}");
        let e = parse(&["analyze", "--watch-geo", "RU", "x"]).unwrap_err();
        assert!(e.to_string().contains("--geoip"), "{e}");
        let Command::Analyze(a) = parse(&["analyze", "--asn", "asn.mmdb", "x"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(a.geo.geoip.is_empty() && a.geo.asn.len() == 1 && !a.geo.no_default_watch);
    }

    #[test]
    fn alert_flags() {
        let Command::Analyze(a) = parse(&[
            "analyze",
            "--alerts",
            "jsonl:-",
            "--alerts",
            "redis://127.0.0.1:6379/k",
            "--remind-every",
            "6h",
            "--sensor",
            "dmz",
            "x.pcap",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.alerts.sinks.len(), 2);
        assert_eq!(a.alerts.siem_sinks().len(), 2);
        assert_eq!(a.alerts.raw_file(), None);
        assert_eq!(a.alerts.remind_every.as_secs(), 6 * 3600);
        assert_eq!(a.alerts.suppress.as_secs(), 3600);
        assert_eq!(a.alerts.sensor.as_deref(), Some("dmz"));
        assert!(parse(&["analyze", "--alerts", "smtp://x:25", "x"]).is_err());
        assert!(parse(&["analyze", "--remind-every", "1w", "x"]).is_err());
    }

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
