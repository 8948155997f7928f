//! Alert sinks: where alerts go (`--alerts SPEC`) and the transports that
//! take them there. Every sink implements [`Sink`]; the delivery threads
//! ([`super::delivery`]) drive them, so a sink may block (connect, write,
//! wait for a reply) without ever slowing packet processing.
//!
//! | spec | transport | confirmation |
//! |---|---|---|
//! | `jsonl:FILE`, `jsonl:-` | ECS JSON, one per line, appended | written and flushed |
//! | `syslog+udp://H:P` | RFC 5424, one per datagram (RFC 5426) | none (fire and forget) |
//! | `syslog+tcp://H:P` | RFC 5424, octet counting (RFC 6587 3.4.1) | graceful close / time |
//! | `syslog+tls://H:P` | RFC 5424, octet counting over TLS (RFC 5425; rustls) | as TCP |
//! | `cef+udp://H:P`, `cef+tcp://H:P` | CEF inside RFC 5424 | as above |
//! | `redis://H:P/KEY` | `XADD KEY * id ID kind KIND alert JSON` | the stream entry id |
//!
//! TCP syslog has no application acknowledgement, so an alert sent on a
//! stream is *unconfirmed* until the connection is seen healthy some time
//! later ([`Sink::check`]) or a graceful close proves that the receiver read
//! everything ([`Sink::finish`]); after a broken connection the delivery
//! thread resends the unconfirmed alerts (at-least-once; the stable id lets
//! the SIEM drop the duplicates).

use super::format;
use super::model::Alert;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Connect timeout per address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Write and reply timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest reply line accepted from Redis.
const MAX_REPLY_LINE: usize = 4096;

/// A malformed `--alerts` spec.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad alert sink {spec:?}: {why}")]
pub struct SpecError {
    /// The spec given.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

/// A delivery failure (the alert stays queued and is retried).
#[derive(Debug, Error)]
pub enum SinkError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("connection closed by the receiver")]
    Closed,
    /// The receiver answered with an error.
    #[error("receiver refused the alert: {0}")]
    Refused(String),
    /// The receiver's reply made no sense.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// Failed before anything of this alert was written (connecting, or the
    /// connection was found closed): resending it cannot duplicate it.
    #[error("{0}")]
    Unsent(Box<SinkError>),
}

impl SinkError {
    /// Marks an error that happened before the alert was written.
    pub fn unsent(e: impl Into<SinkError>) -> SinkError {
        SinkError::Unsent(Box::new(e.into()))
    }

    /// True when the alert may have reached the receiver before the error
    /// (so sending it again may duplicate it).
    pub fn maybe_sent(&self) -> bool {
        !matches!(self, SinkError::Unsent(_))
    }
}

/// Message format on a syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogBody {
    /// RFC 5424 with structured data and the ECS document as MSG.
    Rfc5424,
    /// RFC 5424 header with a CEF line as MSG.
    Cef,
}

/// Syslog transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram (RFC 5426).
    Udp,
    /// Octet-counted stream (RFC 6587).
    Tcp,
    /// Octet-counted stream over TLS (RFC 5425).
    Tls,
}

/// A parsed `--alerts` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// `jsonl:FILE` (`None` = standard output).
    Jsonl(Option<PathBuf>),
    /// `syslog+udp|tcp|tls://HOST:PORT`, `cef+udp|tcp://HOST:PORT`.
    Syslog {
        /// Message format.
        body: SyslogBody,
        /// Transport.
        transport: Transport,
        /// `HOST:PORT`.
        addr: String,
    },
    /// `redis://HOST:PORT/KEY`.
    Redis {
        /// `HOST:PORT`.
        addr: String,
        /// Stream key.
        key: String,
    },
}

impl FromStr for SinkSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let err = |why: &str| SpecError {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        if let Some(path) = spec.strip_prefix("jsonl:") {
            return match path {
                "" => Err(err("jsonl needs a file name or -")),
                "-" => Ok(SinkSpec::Jsonl(None)),
                p => Ok(SinkSpec::Jsonl(Some(PathBuf::from(p)))),
            };
        }
        let (scheme, rest) = spec
            .split_once("://")
            .ok_or_else(|| err("expected jsonl:FILE or SCHEME://HOST:PORT"))?;
        let check_addr = |a: &str| -> Result<String, SpecError> {
            let (host, port) = a
                .rsplit_once(':')
                .ok_or_else(|| err("expected HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(err("expected HOST:PORT with a port from 1 to 65535"));
            }
            Ok(a.to_string())
        };
        let syslog = |body, transport| -> Result<SinkSpec, SpecError> {
            if rest.contains('/') {
                return Err(err("syslog and CEF sinks take HOST:PORT only"));
            }
            Ok(SinkSpec::Syslog {
                body,
                transport,
                addr: check_addr(rest)?,
            })
        };
        match scheme {
            "syslog+udp" => syslog(SyslogBody::Rfc5424, Transport::Udp),
            "syslog+tcp" => syslog(SyslogBody::Rfc5424, Transport::Tcp),
            "syslog+tls" => syslog(SyslogBody::Rfc5424, Transport::Tls),
            "cef+udp" => syslog(SyslogBody::Cef, Transport::Udp),
            "cef+tcp" => syslog(SyslogBody::Cef, Transport::Tcp),
            "redis" => {
                let (addr, key) = rest
                    .split_once('/')
                    .ok_or_else(|| err("expected redis://HOST:PORT/KEY"))?;
                if key.is_empty() || key.contains(char::is_whitespace) {
                    return Err(err("the stream key must be non-empty, without spaces"));
                }
                Ok(SinkSpec::Redis {
                    addr: check_addr(addr)?,
                    key: key.to_string(),
                })
            }
            _ => Err(err(
                "unknown scheme (jsonl:, syslog+udp://, syslog+tcp://, syslog+tls://, cef+udp://, cef+tcp://, redis://)",
            )),
        }
    }
}

impl std::fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkSpec::Jsonl(None) => write!(f, "jsonl:-"),
            SinkSpec::Jsonl(Some(p)) => write!(f, "jsonl:{}", p.display()),
            SinkSpec::Syslog {
                body,
                transport,
                addr,
            } => {
                let b = match body {
                    SyslogBody::Rfc5424 => "syslog",
                    SyslogBody::Cef => "cef",
                };
                let t = match transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                };
                write!(f, "{b}+{t}://{addr}")
            }
            SinkSpec::Redis { addr, key } => write!(f, "redis://{addr}/{key}"),
        }
    }
}

impl SinkSpec {
    /// A file-name-safe name for the sink's spool.
    pub fn spool_name(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// Builds the sink (nothing is connected yet: connections are made on
    /// first use, by the delivery thread).
    pub fn build(&self, opts: &SinkOptions) -> Result<Box<dyn Sink>, SpecError> {
        Ok(match self {
            SinkSpec::Jsonl(path) => Box::new(JsonlSink {
                path: path.clone(),
                out: None,
            }),
            SinkSpec::Syslog {
                body,
                transport: Transport::Tls,
                addr,
            } => Box::new(
                super::tls::TlsSink::new(addr, *body, opts.ca_file.as_deref()).map_err(|why| {
                    SpecError {
                        spec: self.to_string(),
                        why,
                    }
                })?,
            ),
            SinkSpec::Syslog {
                body,
                transport: Transport::Udp,
                addr,
            } => Box::new(UdpSink {
                addr: addr.clone(),
                body: *body,
                sock: None,
            }),
            SinkSpec::Syslog { body, addr, .. } => Box::new(TcpSink {
                addr: addr.clone(),
                body: *body,
                conn: None,
            }),
            SinkSpec::Redis { addr, key } => Box::new(RedisSink {
                addr: addr.clone(),
                key: key.clone(),
                conn: None,
            }),
        })
    }
}

/// Settings shared by the sinks.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// CA certificates (PEM) that `syslog+tls` trusts; default: the system
    /// store (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: Option<PathBuf>,
}

/// One `--alerts` value: a SIEM sink (a spec with a scheme, or `jsonl:`),
/// or a plain FILE (`-`: standard output) for the raw JSON Lines alerts
/// that `live` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertsTarget {
    /// A SIEM sink.
    Siem(SinkSpec),
    /// A plain file.
    Raw(PathBuf),
}

impl FromStr for AlertsTarget {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s.starts_with("jsonl:") || s.contains("://") {
            s.parse().map(AlertsTarget::Siem)
        } else if s.is_empty() {
            Err(SpecError {
                spec: s.to_string(),
                why: "empty".into(),
            })
        } else {
            Ok(AlertsTarget::Raw(PathBuf::from(s)))
        }
    }
}

/// How far a sent alert is known to have got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The receiver has it (file written, Redis replied, or no
    /// confirmation is possible: UDP).
    Confirmed,
    /// Handed to a stream; confirmed later by [`Sink::check`] or
    /// [`Sink::finish`].
    Unconfirmed,
}

/// A destination for alerts, driven by one delivery thread.
pub trait Sink: Send {
    /// Sends one alert, connecting first if needed.
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError>;
    /// Checks that nothing sent so far was lost (the stream is still open).
    fn check(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Ends the session so that everything sent is confirmed: for streams,
    /// half-closes and waits for the receiver to close its side (it has then
    /// read everything). Ok means every unconfirmed alert is confirmed.
    fn finish(&mut self, _timeout: Duration) -> Result<(), SinkError> {
        Ok(())
    }
    /// Drops the connection after an error (the next send reconnects).
    fn reset(&mut self) {}
}

/// Connects to the first address of `addr` that answers.
pub(crate) fn connect(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Is the stream still open? A receiver that closed (FIN) or reset it is
/// reported; a syslog receiver never sends data.
fn peek_alive(s: &TcpStream) -> Result<(), SinkError> {
    s.set_nonblocking(true)?;
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false)?;
    match r {
        Ok(0) => Err(SinkError::Closed),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Half-closes `s` and waits for the receiver's close.
pub(crate) fn graceful_close(s: &mut TcpStream, timeout: Duration) -> Result<(), SinkError> {
    s.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "receiver did not close").into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `jsonl:` — ECS documents appended to a file or standard output.
struct JsonlSink {
    path: Option<PathBuf>,
    out: Option<Box<dyn Write + Send>>,
}

impl Sink for JsonlSink {
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError> {
        if self.out.is_none() {
            self.out = Some(match &self.path {
                None => Box::new(io::stdout()),
                Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
            });
        }
        let mut line = format::ecs_line(alert);
        line.push('\n');
        let out = self.out.as_mut().ok_or(SinkError::Closed)?;
        out.write_all(line.as_bytes())?;
        out.flush()?;
        Ok(Sent::Confirmed)
    }

    fn reset(&mut self) {
        self.out = None;
    }
}

pub(crate) fn syslog_message(body: SyslogBody, alert: &Alert) -> String {
    match body {
        SyslogBody::Rfc5424 => format::syslog_line(alert),
        SyslogBody::Cef => format::cef_syslog_line(alert),
    }
}

/// `syslog+udp://`, `cef+udp://` — one message per datagram.
struct UdpSink {
    addr: String,
    body: SyslogBody,
    sock: Option<UdpSocket>,
}

impl Sink for UdpSink {
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError> {
        if self.sock.is_none() {
            let target = self
                .addr
                .to_socket_addrs()
                .map_err(SinkError::unsent)?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
            let bind = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(bind).map_err(SinkError::unsent)?;
            // Connected, so an ICMP port unreachable surfaces as an error on
            // a later send (the alert is then retried).
            s.connect(target).map_err(SinkError::unsent)?;
            self.sock = Some(s);
        }
        let msg = syslog_message(self.body, alert);
        let s = self.sock.as_ref().ok_or(SinkError::Closed)?;
        s.send(msg.as_bytes())?;
        Ok(Sent::Confirmed)
    }

    fn reset(&mut self) {
        self.sock = None;
    }
}

/// `syslog+tcp://`, `cef+tcp://` — octet-counted frames on a stream.
struct TcpSink {
    addr: String,
    body: SyslogBody,
    conn: Option<TcpStream>,
}

impl Sink for TcpSink {
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError> {
        if let Some(c) = &self.conn {
            peek_alive(c).map_err(SinkError::unsent)?;
        } else {
            self.conn = Some(connect(&self.addr).map_err(SinkError::unsent)?);
        }
        let msg = syslog_message(self.body, alert);
        let frame = format!("{} {msg}", msg.len());
        let c = self.conn.as_mut().ok_or(SinkError::Closed)?;
        c.write_all(frame.as_bytes())?;
        Ok(Sent::Unconfirmed)
    }

    fn check(&mut self) -> Result<(), SinkError> {
        match &self.conn {
            Some(c) => peek_alive(c),
            None => Ok(()),
        }
    }

    fn finish(&mut self, timeout: Duration) -> Result<(), SinkError> {
        match self.conn.take() {
            Some(mut c) => graceful_close(&mut c, timeout),
            None => Ok(()),
        }
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

/// `redis://HOST:PORT/KEY` — XADD to a stream, one reply per alert.
struct RedisSink {
    addr: String,
    key: String,
    conn: Option<BufReader<TcpStream>>,
}

/// Encodes a command as a RESP array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one CRLF-terminated line of at most [`MAX_REPLY_LINE`] bytes.
fn read_line(r: &mut BufReader<TcpStream>) -> Result<String, SinkError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_REPLY_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(SinkError::Closed);
    }
    if !line.ends_with(b"\r\n") {
        return Err(SinkError::Protocol("reply line too long or cut".into()));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

impl Sink for RedisSink {
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(
                connect(&self.addr).map_err(SinkError::unsent)?,
            ));
        }
        let doc = format::ecs_line(alert);
        let cmd = resp_command(&[
            b"XADD",
            self.key.as_bytes(),
            b"*",
            b"id",
            alert.id.as_bytes(),
            b"kind",
            alert.kind.as_str().as_bytes(),
            b"alert",
            doc.as_bytes(),
        ]);
        let c = self.conn.as_mut().ok_or(SinkError::Closed)?;
        c.get_mut().write_all(&cmd)?;
        let line = read_line(c)?;
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: usize = line
                    .get(1..)
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n <= MAX_REPLY_LINE)
                    .ok_or_else(|| SinkError::Protocol(line.clone()))?;
                let mut id = vec![0u8; n + 2];
                c.read_exact(&mut id)?;
                Ok(Sent::Confirmed)
            }
            Some(b'-') => Err(SinkError::Refused(line)),
            _ => Err(SinkError::Protocol(line)),
        }
    }

    fn check(&mut self) -> Result<(), SinkError> {
        match &self.conn {
            Some(c) => peek_alive(c.get_ref()),
            None => Ok(()),
        }
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "jsonl:-",
            "jsonl:/tmp/a.jsonl",
            "syslog+udp://127.0.0.1:514",
            "syslog+tcp://siem.example:6514",
            "syslog+tls://[::1]:6514",
            "cef+udp://10.0.0.1:514",
            "cef+tcp://10.0.0.1:514",
            "redis://127.0.0.1:6379/phonehome",
        ] {
            let spec: SinkSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "redis://127.0.0.1:6379/a"
                .parse::<SinkSpec>()
                .unwrap()
                .spool_name(),
            "redis___127.0.0.1_6379_a"
        );
        for bad in [
            "jsonl:",
            "syslog://x:1",
            "syslog+tcp://x",
            "syslog+tcp://x:0",
            "syslog+tcp://:514",
            "syslog+tcp://x:70000",
            "syslog+udp://x:1/path",
            "redis://x:1",
            "redis://x:1/",
            "file.jsonl",
        ] {
            assert!(bad.parse::<SinkSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn alerts_targets_tell_files_from_sinks() {
        let t = |s: &str| s.parse::<AlertsTarget>();
        assert_eq!(t("a.jsonl"), Ok(AlertsTarget::Raw("a.jsonl".into())));
        assert_eq!(t("-"), Ok(AlertsTarget::Raw("-".into())));
        assert!(matches!(t("jsonl:a"), Ok(AlertsTarget::Siem(_))));
        assert!(matches!(t("redis://h:1/k"), Ok(AlertsTarget::Siem(_))));
        assert!(t("smtp://h:25").is_err());
        assert!(t("").is_err());
    }

    #[test]
    fn resp_encoding() {
        assert_eq!(
            resp_command(&[b"XADD", b"k", b"*", b"f", b"v\r\n"]),
            b"*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$1\r\nf\r\n$3\r\nv\r\n\r\n"
        );
    }
}
