//! The `--events` log: JSON Lines, one object per extracted item, in the
//! order the items were completed. Field names are documented in README
//! ("Event log"); every value from the wire arrives here already escaped.

use super::time::rfc3339_micros;
use crate::hosts::{Event, EventKind, EventSink};
use crate::protocols::dns::{AnswerData, rtype};
use crate::protocols::tls::ClientHello;
use serde::Serialize;
use std::io::{self, Write};
use std::net::IpAddr;

#[derive(Serialize)]
struct Answer<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    kind: &'static str,
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qtype: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answers: Option<Vec<Answer<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alpn: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ech: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quic_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
}

fn type_name(t: u16) -> String {
    match t {
        rtype::A => "A".into(),
        rtype::AAAA => "AAAA".into(),
        rtype::CNAME => "CNAME".into(),
        other => format!("TYPE{other}"),
    }
}

/// The fields of a ClientHello event (TLS or QUIC).
fn hello_fields<'a>(line: &mut Line<'a>, sni: Option<&'a str>, hello: &ClientHello<'_>) {
    line.name = sni;
    line.ech = Some(hello.ech);
    let mut alpn = Vec::new();
    for p in hello.alpn_protocols() {
        let mut s = String::new();
        crate::protocols::escape_name(p, &mut s);
        alpn.push(s);
    }
    line.alpn = Some(alpn);
}

/// Writes events as JSON Lines. The first write error stops the log and is
/// kept for [`EventLog::finish`], so a full disk does not stop the analysis.
pub struct EventLog<W: Write> {
    out: W,
    error: Option<io::Error>,
    /// Events written.
    pub written: u64,
}

impl<W: Write> EventLog<W> {
    /// A log writing to `out` (buffer it).
    pub fn new(out: W) -> Self {
        EventLog {
            out,
            error: None,
            written: 0,
        }
    }

    /// The output (e.g. to take the lines written to a buffer so far).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes and reports the first write error, if any.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

impl<W: Write> EventSink for EventLog<W> {
    fn event(&mut self, e: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        let mut line = Line {
            ts: rfc3339_micros(e.ts),
            src: e.src,
            dst: e.dst,
            sport: e.sport,
            dport: e.dport,
            transport: e.transport.as_str(),
            vlan: e.vlan,
            kind: "",
            name: None,
            qtype: None,
            rcode: None,
            answers: None,
            alpn: None,
            ech: None,
            quic_version: None,
            ja3: None,
            ja4: None,
            method: None,
            path: None,
            user_agent: None,
            status: None,
            content_type: None,
            vendor: e.matched.map(|(v, _)| v.id.as_str()),
            purpose: e.purpose().map(|p| p.as_str()),
            rule: e
                .matched
                .map(|(_, r)| format!("{} {}", r.kind.key(), r.value)),
        };
        match e.kind {
            EventKind::DnsQuery { name, qtype } => {
                line.kind = "dns_query";
                line.name = Some(name);
                line.qtype = Some(qtype);
            }
            EventKind::DnsAnswer { msg } => {
                line.kind = "dns_answer";
                line.name = msg.qname();
                line.qtype = msg.questions.first().map(|q| q.qtype);
                line.rcode = Some(msg.rcode);
                line.answers = Some(
                    msg.answers
                        .iter()
                        .map(|a| Answer {
                            name: msg.text(&a.name),
                            rtype: type_name(a.rtype),
                            ttl: a.ttl,
                            data: match &a.data {
                                AnswerData::Addr(ip) => Some(ip.to_string()),
                                AnswerData::Cname(t) => Some(msg.text(t).to_string()),
                                AnswerData::Other => None,
                            },
                        })
                        .collect(),
                );
            }
            EventKind::TlsClientHello {
                sni,
                hello,
                ja3,
                ja4,
            } => {
                line.kind = "tls_sni";
                hello_fields(&mut line, sni, hello);
                (line.ja3, line.ja4) = (Some(ja3), Some(ja4));
            }
            EventKind::QuicClientHello {
                sni,
                hello,
                version,
                ja3,
                ja4,
            } => {
                line.kind = "quic_sni";
                line.quic_version = Some(version.name());
                hello_fields(&mut line, sni, hello);
                (line.ja3, line.ja4) = (Some(ja3), Some(ja4));
            }
            EventKind::HttpRequest {
                host,
                method,
                path,
                user_agent,
            } => {
                line.kind = "http_host";
                line.name = host;
                line.method = Some(method);
                line.path = Some(path);
                line.user_agent = user_agent;
            }
            EventKind::HttpResponse {
                status,
                content_type,
            } => {
                line.kind = "http_response";
                line.status = Some(status);
                line.content_type = content_type;
            }
        }
        let result = serde_json::to_writer(&mut self.out, &line)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match result {
            Ok(()) => self.written += 1,
            Err(err) => self.error = Some(err),
        }
    }
}
