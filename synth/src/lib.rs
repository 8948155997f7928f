//! Byte-exact packet and capture-file crafting for phonehome.
//!
//! This crate only ever *writes files*; it never opens a socket or sends a
//! packet. It exists so that tests, the demo capture (`gen-demo`) and the
//! benchmark generator can produce captures that real dissectors (tshark)
//! accept without complaint: every IPv4 header checksum, TCP/UDP checksum
//! (over the IPv4 or IPv6 pseudo-header) and length field is correct.
//!
//! Layers, bottom up:
//! - [`pcapfile`]: classic pcap and pcapng writers;
//! - [`packet`]: link-layer frames, IPv4/IPv6 (fragments, extension headers), TCP/UDP;
//! - [`dns`], [`tls`], [`http`]: application payloads;
//! - [`quic`]: protected QUIC Initial packets, Version Negotiation, Retry;
//! - [`session`]: whole conversations (TCP handshakes, segmentation, DNS lookups);
//! - [`demo`]: the deterministic demo scenario written by the `gen-demo` binary;
//! - [`day`]: a simulated day of agent beacons, visits and browser bursts;
//! - [`mmdb`]: small MaxMind DB files (GeoIP2 City/Country, ip-location-db
//!   flat city, GeoLite2-ASN) for the GeoIP/ASN tests;
//! - [`geo`]: the GeoIP/ASN scenario (a capture and the database records
//!   that place its servers);
//! - [`bulk`]: large realistic benchmark captures written by the `gen-bulk` binary;
//! - [`flood`]: table-exhausting floods with one Kaspersky client inside (`gen-flood`).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod bulk;
pub mod day;
pub mod demo;
pub mod dns;
pub mod flood;
pub mod geo;
pub mod http;
pub mod mmdb;
pub mod packet;
pub mod pcapfile;
pub mod quic;
pub mod rng;
pub mod session;
pub mod tls;
