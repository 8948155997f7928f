//! Events: one record per item a parser extracted (a DNS question or answer,
//! a ClientHello over TCP or QUIC, an HTTP request or response), with the
//! conversation it came
//! from and the vendor it was attributed to. They borrow everything; the
//! output stage decides how to write them.

use crate::capture::Timestamp;
use crate::feeds::{Purpose, Rule, Vendor};
use crate::protocols::{dns::DnsMessage, tls::ClientHello};
use std::net::IpAddr;

/// Transport of the conversation an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Copy)]
pub enum EventKind<'a> {
    /// One question of a DNS query.
    DnsQuery {
        /// The name asked for.
        name: &'a str,
        /// QTYPE.
        qtype: u16,
    },
    /// A DNS response with its answers.
    DnsAnswer {
        /// The whole parsed message.
        msg: &'a DnsMessage,
    },
    /// A TLS ClientHello.
    TlsClientHello {
        /// The server name, escaped, if present.
        sni: Option<&'a str>,
        /// The parsed hello (ALPN, ECH).
        hello: &'a ClientHello<'a>,
        /// Its JA3 fingerprint.
        ja3: &'a str,
        /// Its JA4 fingerprint.
        ja4: &'a str,
    },
    /// A ClientHello carried in QUIC Initial packets.
    QuicClientHello {
        /// The server name, escaped, if present.
        sni: Option<&'a str>,
        /// The parsed hello (ALPN, ECH).
        hello: &'a ClientHello<'a>,
        /// The QUIC version.
        version: crate::protocols::quic::Version,
        /// Its JA3 fingerprint.
        ja3: &'a str,
        /// Its JA4 fingerprint.
        ja4: &'a str,
    },
    /// An HTTP request.
    HttpRequest {
        /// Host header, escaped.
        host: Option<&'a str>,
        /// Method.
        method: &'a str,
        /// Request target.
        path: &'a str,
        /// User-Agent, escaped.
        user_agent: Option<&'a str>,
    },
    /// An HTTP response.
    HttpResponse {
        /// Status code.
        status: u16,
        /// Media type, normalised.
        content_type: Option<&'a str>,
    },
}

/// One extracted item and its context.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Capture time of the packet that completed the item.
    pub ts: Timestamp,
    /// Sender of that packet.
    pub src: IpAddr,
    /// Its receiver.
    pub dst: IpAddr,
    /// Sender's port.
    pub sport: u16,
    /// Receiver's port.
    pub dport: u16,
    /// Transport.
    pub transport: Transport,
    /// VLAN of the conversation's client.
    pub vlan: Option<u16>,
    /// What was extracted.
    pub kind: EventKind<'a>,
    /// The vendor rule it matched, if any.
    pub matched: Option<(&'a Vendor, &'a Rule)>,
}

impl Event<'_> {
    /// The purpose of the matched rule.
    pub fn purpose(&self) -> Option<Purpose> {
        self.matched.map(|(_, r)| r.purpose)
    }
}

/// Receives events.
pub trait EventSink {
    /// Handles one event.
    fn event(&mut self, e: &Event<'_>);

    /// Whether events are kept at all (work done only for events, such as
    /// fingerprints no feed asks for, is skipped when not).
    fn wants_events(&self) -> bool {
        true
    }
}

/// A sink that drops every event (no `--events`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&mut self, _: &Event<'_>) {}

    fn wants_events(&self) -> bool {
        false
    }
}
