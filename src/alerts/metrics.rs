//! `--metrics ADDR`: Prometheus text exposition (format 0.0.4) of the
//! capture counters and the alert delivery counters, served by a tiny HTTP
//! responder on a std::net listener (one thread, one request per
//! connection, bounded request size and time).

use super::delivery::SinkStats;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head read.
const MAX_REQUEST: usize = 8192;

/// The counters exposed. Capture counters are set by the capture loop;
/// sinks are registered once delivery starts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Packets received.
    pub packets: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Packets dropped (kernel or interface).
    pub drops: AtomicU64,
    /// Alerts raised by the tracker.
    pub alerts_raised: AtomicU64,
    sinks: Mutex<Vec<Arc<SinkStats>>>,
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Adds the counters of the delivery sinks.
    pub fn register_sinks(&self, stats: Vec<Arc<SinkStats>>) {
        self.sinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(stats);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut single = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        single(
            "phonehome_packets_total",
            "counter",
            "Packets received.",
            self.packets.load(Relaxed),
        );
        single(
            "phonehome_bytes_total",
            "counter",
            "Bytes received.",
            self.bytes.load(Relaxed),
        );
        single(
            "phonehome_drops_total",
            "counter",
            "Packets dropped before analysis.",
            self.drops.load(Relaxed),
        );
        single(
            "phonehome_alerts_raised_total",
            "counter",
            "Alerts raised.",
            self.alerts_raised.load(Relaxed),
        );
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        type Get = fn(&SinkStats) -> u64;
        let families: [(&str, &str, &str, Get); 8] = [
            (
                "phonehome_alerts_delivered_total",
                "counter",
                "Alerts confirmed delivered, by sink.",
                |s| s.delivered.load(Relaxed),
            ),
            (
                "phonehome_alerts_resent_total",
                "counter",
                "Alerts sent again after a broken connection, by sink.",
                |s| s.resent.load(Relaxed),
            ),
            (
                "phonehome_alerts_spooled_total",
                "counter",
                "Alerts written to the disk spool, by sink.",
                |s| s.spooled.load(Relaxed),
            ),
            (
                "phonehome_alerts_dropped_total",
                "counter",
                "Alerts lost, by sink.",
                |s| s.dropped.load(Relaxed),
            ),
            (
                "phonehome_alert_failures_total",
                "counter",
                "Failed delivery attempts, by sink.",
                |s| s.failures.load(Relaxed),
            ),
            (
                "phonehome_alert_queue_depth",
                "gauge",
                "Alerts waiting in memory, by sink.",
                |s| s.queue_depth.load(Relaxed),
            ),
            (
                "phonehome_alert_spool_bytes",
                "gauge",
                "Undelivered bytes in the spool, by sink.",
                |s| s.spool_bytes.load(Relaxed),
            ),
            (
                "phonehome_alert_sink_up",
                "gauge",
                "1 while the sink delivers without errors.",
                |s| u64::from(s.up.load(Relaxed)),
            ),
        ];
        for (name, kind, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in sinks.iter() {
                let _ = writeln!(out, "{name}{{sink=\"{}\"}} {}", label(&s.name), get(s));
            }
        }
        out
    }
}

/// A running `/metrics` endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `GET /metrics` from `metrics`.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !stop2.load(Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let _ = serve(conn, &metrics);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request.
fn serve(mut conn: TcpStream, metrics: &Metrics) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, body, ctype) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            metrics.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (Some(b"GET"), _) => ("404 Not Found", "try /metrics\n".into(), "text/plain"),
        _ => ("405 Method Not Allowed", String::new(), "text/plain"),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes())?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn serves_the_text_exposition() {
        let m = Arc::new(Metrics::default());
        m.packets.store(456, Relaxed);
        m.bytes.store(63393, Relaxed);
        let s = Arc::new(SinkStats {
            name: "syslog+tcp://127.0.0.1:514".into(),
            ..SinkStats::default()
        });
        s.delivered.store(9, Relaxed);
        s.spool_bytes.store(1234, Relaxed);
        m.register_sinks(vec![s.clone()]);
        let server = MetricsServer::start("127.0.0.1:0", m.clone()).unwrap();
        let resp = get(server.local_addr(), "/metrics");
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"));
        assert!(head.contains("text/plain; version=0.0.4"));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        // Every sample line is `name{labels} value`, and every family has
        // HELP and TYPE before its samples.
        let mut typed = std::collections::HashSet::new();
        for l in body.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if l.starts_with('#') {
                continue;
            }
            let (name, value) = l.rsplit_once(' ').unwrap();
            let family = name.split('{').next().unwrap();
            assert!(typed.contains(family), "{l}");
            value.parse::<f64>().unwrap();
        }
        assert!(body.contains("\nphonehome_packets_total 456\n"));
        assert!(body.contains(
            "\nphonehome_alerts_delivered_total{sink=\"syslog+tcp://127.0.0.1:514\"} 9\n"
        ));
        assert!(
            body.contains(
                "phonehome_alert_spool_bytes{sink=\"syslog+tcp://127.0.0.1:514\"} 1234\n"
            )
        );
        // Counters move between scrapes.
        s.delivered.store(10, Relaxed);
        assert!(get(server.local_addr(), "/metrics").contains("} 10\n"));
        assert!(get(server.local_addr(), "/nope").starts_with("HTTP/1.1 404"));
    }
}
