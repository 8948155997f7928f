//! `syslog+tls://HOST:PORT`: RFC 5424 messages, octet-counted (RFC 5425
//! section 4.3), over TLS 1.2/1.3 with rustls (ring provider). The server
//! certificate is verified against `--syslog-ca FILE` (PEM) or the system
//! store, for the host name or IP address of the spec.

use super::model::Alert;
use super::sink::{Sent, Sink, SinkError, SyslogBody, connect, syslog_message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The system CA bundle on Debian.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS syslog connection (made on first use).
pub struct TlsSink {
    addr: String,
    body: SyslogBody,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    conn: Option<(ClientConnection, TcpStream)>,
}

impl TlsSink {
    /// Prepares the TLS client; fails on an unreadable CA file or an
    /// address that is not a valid server name.
    pub fn new(addr: &str, body: SyslogBody, ca_file: Option<&Path>) -> Result<TlsSink, String> {
        let ca = ca_file.unwrap_or(Path::new(SYSTEM_CA));
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cannot read CA file {}: {e}", ca.display()))?;
        for c in certs {
            let c = c.map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("no certificate in {}", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a server name: {e}"))?;
        Ok(TlsSink {
            addr: addr.to_string(),
            body,
            config: Arc::new(config),
            name,
            conn: None,
        })
    }
}

/// Writes out everything rustls has buffered.
fn flush_tls(conn: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

/// Reads whatever the server sent without waiting; Closed when it closed.
fn poll_closed(conn: &mut ClientConnection, sock: &mut TcpStream) -> Result<(), SinkError> {
    sock.set_nonblocking(true)?;
    let r = (|| loop {
        match conn.read_tls(sock) {
            Ok(0) => return Err(SinkError::Closed),
            Ok(_) => {
                let state = conn
                    .process_new_packets()
                    .map_err(|e| SinkError::Protocol(e.to_string()))?;
                if state.peer_has_closed() {
                    return Err(SinkError::Closed);
                }
                // Discard application data (a syslog server sends none).
                let mut sink = [0u8; 1024];
                while matches!(conn.reader().read(&mut sink), Ok(n) if n > 0) {}
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    })();
    sock.set_nonblocking(false)?;
    r
}

impl Sink for TlsSink {
    fn send(&mut self, alert: &Alert) -> Result<Sent, SinkError> {
        if let Some((conn, sock)) = self.conn.as_mut() {
            poll_closed(conn, sock).map_err(SinkError::unsent)?;
        } else {
            let sock = connect(&self.addr).map_err(SinkError::unsent)?;
            let conn = ClientConnection::new(self.config.clone(), self.name.clone())
                .map_err(|e| SinkError::Protocol(e.to_string()))?;
            self.conn = Some((conn, sock));
        }
        let (conn, sock) = self.conn.as_mut().ok_or(SinkError::Closed)?;
        // The handshake (certificate verification included) on first use.
        while conn.is_handshaking() {
            conn.complete_io(sock)?;
        }
        let msg = syslog_message(self.body, alert);
        let frame = format!("{} {msg}", msg.len());
        conn.writer().write_all(frame.as_bytes())?;
        flush_tls(conn, sock)?;
        Ok(Sent::Unconfirmed)
    }

    fn check(&mut self) -> Result<(), SinkError> {
        match self.conn.as_mut() {
            Some((conn, sock)) => poll_closed(conn, sock),
            None => Ok(()),
        }
    }

    fn finish(&mut self, timeout: Duration) -> Result<(), SinkError> {
        let Some((mut conn, mut sock)) = self.conn.take() else {
            return Ok(());
        };
        conn.send_close_notify();
        flush_tls(&mut conn, &mut sock)?;
        sock.shutdown(Shutdown::Write)?;
        // The receiver closes once it has read up to our close: everything
        // before it was received.
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(
                    io::Error::new(io::ErrorKind::TimedOut, "receiver did not close").into(),
                );
            }
            sock.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 4096];
            match sock.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}
