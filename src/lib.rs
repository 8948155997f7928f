//! phonehome finds the machines on a network that talk to anti-virus and EDR
//! vendors — Kaspersky first — from packet captures, and says since when, how
//! often and on what evidence.
//!
//! The crate is a pipeline of stages, one module each, data flowing one way:
//!
//! 1. [`capture`] reads pcap/pcapng files (plain or gzip) as one timeline of
//!    borrowed frames.
//! 2. [`decode`] slices a frame into VLAN, IP and TCP/UDP layers, opens
//!    tunnels and reassembles IP fragments.
//! 3. [`flow`] groups packets into conversations, decides who the client is,
//!    and reassembles TCP streams.
//! 4. [`protocols`] parses DNS, TLS ClientHellos and HTTP heads.
//! 5. [`feeds`] knows each vendor's names, ranges and fingerprints;
//!    [`geo`] places servers (country, city, ASN) and knows the watched
//!    places.
//! 6. [`hosts`] attributes conversations to vendors (with passive DNS for
//!    bare addresses) and keeps per-host contact records; each contact owns
//!    [`beacons`] state that says whether the host contacts it on a clock.
//! 7. [`output`] writes the report (table or JSON) and the event log.
//! 8. [`alerts`] turns report snapshots into SIEM alerts and delivers them
//!    (JSON Lines, syslog, CEF, Redis streams) through a disk spool.
//!
//! [`analyze`] wires the stages together for offline analysis, on one thread
//! or through the [`pipeline`]: a dispatcher shards packets by host to N
//! worker threads that each own a share of every stage's state, and their
//! results are merged. [`live`] feeds the same workers from network
//! interfaces (AF_PACKET rings, libpcap, or AF_XDP with the `afxdp` feature)
//! and raises [`alerts`]. `unsafe` code is allowed only in `live`'s
//! `afpacket`, `afxdp` and `sys` modules, in `capture`'s memory map and in
//! [`prefetch`] (cache hints).
//!
//! Promises: no stage panics on any input; every buffer that input can grow
//! has a documented cap; the per-packet path borrows packet bytes and does
//! not allocate once its reusable buffers are warm.

// Unsafe code is denied everywhere and forbidden (no `allow` can lift it) in
// every module but `capture`, whose `window` holds the one memory map,
// `prefetch` (cache hints) and `live` (sockets and rings).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[forbid(unsafe_code)]
pub mod alerts;
#[forbid(unsafe_code)]
pub mod analyze;
#[forbid(unsafe_code)]
pub mod beacons;
#[forbid(unsafe_code)]
pub mod bytes;
pub mod capture;
#[forbid(unsafe_code)]
pub mod cli;
#[forbid(unsafe_code)]
pub mod decode;
#[forbid(unsafe_code)]
pub mod feeds;
#[forbid(unsafe_code)]
pub mod flow;
#[forbid(unsafe_code)]
pub mod geo;
#[forbid(unsafe_code)]
pub mod hosts;
pub mod live;
#[forbid(unsafe_code)]
pub mod output;
#[forbid(unsafe_code)]
pub mod pipeline;
pub mod prefetch;
#[forbid(unsafe_code)]
pub mod protocols;
