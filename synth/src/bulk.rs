//! Large, realistic benchmark captures, written fast: `gen-bulk` writes a
//! gigabyte in seconds.
//!
//! The traffic of an office network seen at its uplink, as a classic
//! Ethernet pcap (µs timestamps, strictly ordered): tens of thousands of
//! internal hosts (10.16.0.0/12 and fd00:10::/32, a fifth of them IPv6; some
//! subnets behind 802.1Q tags, some behind QinQ), talking to servers in the
//! benchmarking range 198.18.0.0/15 and in 2001:db8::/32 (address space no
//! vendor feed names). The mix, by conversation:
//!
//! | kind | share | what |
//! |---|---|---|
//! | DNS over UDP | 59 % | A/AAAA to the site resolver, answers pointing at the name's server; 5 % NXDOMAIN |
//! | TLS | 18 % | handshake, ClientHello (a third post-quantum sized, ~1.8 KB, over 2 segments; some others cut at an odd byte), server flight as TLS records, ACKs, FIN |
//! | HTTP/1.1 | 5 % | request with Host and User-Agent, response with Content-Length, a third keep-alive with a second request |
//! | QUIC-looking UDP 443 | 4 % | long-header Initial/Handshake datagrams (valid header, random protected bytes), then short-header traffic |
//! | NTP | 5 % | client/server pair |
//! | bulk TCP | 3 % | downloads or uploads of heavy-tailed size on high ports |
//! | refused TCP | 4 % | SYN answered by RST |
//! | DNS over TCP | 2 % | length-prefixed query (prefix and message sometimes in separate segments) and answer |
//!
//! Sizes of responses, downloads and QUIC transfers follow a Pareto law
//! whose scale is steered while writing so that the file reaches `size`
//! bytes with about `flows` conversations, spread over `span_secs` of
//! simulated time. A few hosts beacon to Kaspersky names ([`beacons`]):
//! every 300 s ± 10 % a DNS lookup followed by a TLS connection whose SNI is
//! that name.
//!
//! Speed: application payloads (DNS messages, ClientHellos, HTTP requests)
//! are built once per name with this crate's builders; per packet only the
//! link, IP and TCP/UDP headers are written, into one reused buffer, with the
//! checksums summed 32 bits at a time. Nothing is allocated per packet. The
//! same seed and parameters give the same bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::{self, Answer, DnsMessage};
use crate::http;
use crate::packet::{
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP, TPID_8021AD, TPID_8021Q,
};
use crate::pcapfile::LINKTYPE_ETHERNET;
use crate::rng::Rng;
use crate::tls::{self, ClientHelloSpec};

/// First timestamp of a bulk capture: 2026-01-05T09:00:00Z.
pub const START_SECS: u64 = 1_767_603_600;
/// Beacon period of the beaconing hosts.
pub const BEACON_PERIOD_SECS: u64 = 300;
/// Fewest internal hosts (the beaconing hosts need distinct slots).
pub const MIN_HOSTS: u32 = 40;
/// Benign server names (and servers) in the name table.
const NAMES: usize = 4096;
/// TCP maximum segment size (no TCP options on data segments).
const MSS: u32 = 1460;
/// Bytes of random payload to slice bodies from.
const RAW_POOL: usize = 1 << 20;
/// Bytes of back-to-back TLS application-data records to slice server flights from.
const TLS_POOL: usize = 4 << 20;
/// Largest single flow payload (download or upload).
const MAX_FLOW_BYTES: f64 = 32e6;
/// Snap length written in the file header.
const SNAPLEN: u32 = 65535;
const NANOS: u64 = 1_000_000_000;
const MICRO: u64 = 1_000;
const MILLI: u64 = 1_000_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// Stop starting conversations once this many bytes are planned (the file
    /// ends within a few kilobytes of it, plus conversations in flight).
    pub size: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Internal hosts (at least 40).
    pub hosts: u32,
    /// Conversations to aim for (payload sizes are steered to fit `size`).
    pub flows: u64,
    /// Simulated time the conversations start over.
    pub span_secs: u64,
}

impl BulkConfig {
    /// Defaults for a file of `size` bytes: 30 000 hosts, one conversation
    /// per 1100 bytes (about a million for 1 GiB; the handshakes, hellos and
    /// DNS alone take ~950 bytes a conversation), one simulated hour, seed 1.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            seed: 1,
            hosts: 30_000,
            flows: (size / 1100).max(100),
            span_secs: 3600,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct BulkStats {
    /// File bytes, headers included.
    pub bytes: u64,
    /// Packet records.
    pub packets: u64,
    /// Conversations (distinct 5-tuples) started.
    pub flows: u64,
    /// Internal hosts with at least one conversation.
    pub hosts: u64,
    /// Packets over IPv6.
    pub ipv6_packets: u64,
    /// Packets with at least one VLAN tag.
    pub tagged_packets: u64,
    /// Conversations per kind, in [`KIND_NAMES`] order.
    pub kinds: [u64; KIND_NAMES.len()],
    /// Simulated seconds from the first to the last packet.
    pub duration_secs: f64,
}

/// Names of the conversation kinds counted in [`BulkStats::kinds`].
pub const KIND_NAMES: [&str; 9] = [
    "dns", "dns_tcp", "tls", "http", "quic", "ntp", "bulk", "refused", "beacon",
];

/// A host that phones home periodically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The internal host.
    pub host: IpAddr,
    /// The name it looks up and sends as SNI.
    pub name: &'static str,
    /// The address the name resolves to.
    pub server: IpAddr,
}

/// The Kaspersky names the beaconing hosts use, with their servers (inside
/// Kaspersky's announced ranges).
const BEACON_NAMES: [(&str, IpAddr); 4] = [
    (
        "ksn-file-geo.kaspersky-labs.com",
        IpAddr::V4(Ipv4Addr::new(77, 74, 178, 11)),
    ),
    (
        "dnl-01.geo.kaspersky.com",
        IpAddr::V4(Ipv4Addr::new(93, 159, 228, 20)),
    ),
    (
        "ds.kaspersky.com",
        IpAddr::V4(Ipv4Addr::new(93, 159, 228, 2)),
    ),
    (
        "ksn-url-geo.kaspersky-labs.com",
        IpAddr::V6(Ipv6Addr::new(0x2a03, 0x2480, 0x8010, 0, 0, 0, 0, 0x11)),
    ),
];

/// The beaconing hosts of a capture made with `cfg` (three IPv4, one IPv6).
pub fn beacons(cfg: &BulkConfig) -> Vec<Beacon> {
    let hosts = cfg.hosts.max(MIN_HOSTS);
    BEACON_NAMES
        .iter()
        .enumerate()
        .map(|(k, &(name, server))| {
            let h = beacon_host_index(hosts, k, server.is_ipv6());
            Beacon {
                host: host_ip(h),
                name,
                server,
            }
        })
        .collect()
}

fn beacon_host_index(hosts: u32, k: usize, v6: bool) -> u32 {
    let h = (u64::from(hosts) * (2 * k as u64 + 1) / 8) as u32;
    let base = h - h % 5;
    if v6 { base + 4 } else { base + 1 }
}

/// Every fifth host is IPv6-only.
fn host_is_v6(h: u32) -> bool {
    h % 5 == 4
}

/// Hosts per subnet (and VLAN).
const SUBNET_HOSTS: u32 = 64;

/// Host `h` of subnet s = h / 64: 10.(16 + s/256).(s%256).(2..=65), or fd00:10:s::n.
fn host_ip(h: u32) -> IpAddr {
    let (subnet, n) = (h / SUBNET_HOSTS, h % SUBNET_HOSTS + 2);
    if host_is_v6(h) {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x10,
            subnet as u16,
            0,
            0,
            0,
            0,
            n as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            10,
            16 + (subnet >> 8) as u8,
            subnet as u8,
            n as u8,
        ))
    }
}

/// VLAN tags of a host's subnet: 60 % untagged, 30 % 802.1Q, 10 % QinQ.
fn host_vlans(h: u32) -> Vlans {
    let subnet = h / SUBNET_HOSTS;
    let vid = 100 + (subnet % 3000) as u16;
    match subnet % 10 {
        1 | 4 | 6 => Vlans {
            n: 1,
            ids: [vid, 0],
        },
        2 => Vlans {
            n: 2,
            ids: [3000 + (subnet % 4) as u16, vid],
        },
        _ => Vlans { n: 0, ids: [0, 0] },
    }
}

fn host_mac(h: u32) -> [u8; 6] {
    let b = h.to_be_bytes();
    [0x02, 0x10, b[0], b[1], b[2], b[3]]
}

const GATEWAY_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x01];
const RESOLVER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 16, 0, 1));
const RESOLVER_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0x53));

/// Server of benign name `i`: 198.18.i/16 or 2001:db8:1:i::1.
fn name_server(i: usize, v6: bool) -> IpAddr {
    let i = i as u16;
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, i, 0, 0, 0, 1))
    } else {
        let [a, b] = i.to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(198, 18, a, b))
    }
}

/// A nameless server (bulk transfers, QUIC, NTP): 198.19.x.y or 2001:db8:2:x::y.
fn anon_server(r: u64, v6: bool) -> IpAddr {
    let x = r as u16;
    let y = (r >> 16) as u16 | 1;
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, x, 0, 0, 0, y))
    } else {
        let [a, b] = x.to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(198, 19, a, b | 1))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Vlans {
    n: u8,
    ids: [u16; 2],
}

/// Conversation kinds (index into [`KIND_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dns = 0,
    DnsTcp = 1,
    Tls = 2,
    Http = 3,
    Quic = 4,
    Ntp = 5,
    Bulk = 6,
    Refused = 7,
}

/// Where a message's bytes come from after its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Raw,
    Tls,
}

/// The first bytes of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    None,
    /// A prebuilt template.
    Tpl(u32),
    /// `HTTP/1.1 200 OK` headers for a body of the message's body length.
    HttpResp(u8),
}

/// One application message: a prefix, then `body_len` bytes from a pool at `body_at`.
#[derive(Debug, Clone, Copy)]
struct Msg {
    prefix: Prefix,
    prefix_len: u32,
    body: Body,
    body_at: u32,
    body_len: u32,
}

impl Msg {
    const EMPTY: Msg = Msg {
        prefix: Prefix::None,
        prefix_len: 0,
        body: Body::Raw,
        body_at: 0,
        body_len: 0,
    };

    fn len(&self) -> u32 {
        self.prefix_len + self.body_len
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Syn,
    SynAck,
    Ack,
    Req,
    Resp,
    FinC,
    FinS,
    LastAck,
    Rst,
    /// UDP request (DNS, NTP) or a QUIC datagram number.
    Udp(u8),
    /// QUIC short-header transfer.
    QuicData,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    kind: Kind,
    host: u32,
    client: IpAddr,
    server: IpAddr,
    vlans: Vlans,
    sport: u16,
    dport: u16,
    cseq: u32,
    sseq: u32,
    ident: u16,
    step: Step,
    req: Msg,
    resp: Msg,
    /// Requests after the current one (HTTP keep-alive).
    again: u8,
    /// Bytes sent of the current message.
    off: u32,
    /// Size of the first segment of the request (0: MSS segments).
    split: u32,
    /// Segments not yet acknowledged by the receiver.
    unacked: u8,
    ack_due: bool,
    rtt: u64,
    gap: u64,
    /// DNS: template of the response; QUIC: datagrams left.
    aux: u32,
    /// Bytes this conversation is still expected to write.
    plan_left: u64,
    dns_id: u16,
    conn_id: u64,
}

/// Prebuilt payloads.
struct Tables {
    tpl: Vec<Vec<u8>>,
    raw: Vec<u8>,
    tls: Vec<u8>,
    /// Offsets where a TLS record starts in `tls` (and its end).
    tls_bounds: Vec<u32>,
    stub: u32,
    ntp_q: u32,
    ntp_r: u32,
}

/// Template slots per name.
const T_QA: usize = 0;
const T_QAAAA: usize = 1;
const T_RA: usize = 2;
const T_RAAAA: usize = 3;
const T_NX: usize = 4;
const T_TCPQ: usize = 5;
const T_TCPR: usize = 6;
const T_HELLO: usize = 7;
const T_HTTP: usize = 8;
const T_PER_NAME: usize = 9;

const WORDS: [&str; 16] = [
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "tailspin",
    "wingtip",
    "litware",
    "proseware",
    "woodgrove",
    "lucerne",
    "margies",
    "relecloud",
    "alpineski",
    "coho",
    "treyresearch",
    "wideworld",
];
const HOSTS: [&str; 8] = [
    "www", "api", "cdn", "static", "img", "login", "mail", "assets",
];
const TLDS: [&str; 5] = ["com", "net", "org", "io", "example"];
const PATHS: [&str; 6] = [
    "/",
    "/index.html",
    "/api/v2/status",
    "/static/app.js",
    "/images/logo.png",
    "/feed.xml",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Microsoft-CryptoAPI/10.0",
    "curl/8.5.0",
];
/// Types tshark does not dissect further (the bodies are random bytes).
const CONTENT_TYPES: [&str; 4] = [
    "text/html; charset=utf-8",
    "application/javascript",
    "application/octet-stream",
    "application/vnd.ms-cab-compressed",
];

impl Tables {
    fn build(seed: u64) -> Tables {
        let mut rng = Rng::new(seed ^ 0x7461_626c_6573);
        let mut names: Vec<String> = (0..NAMES)
            .map(|i| {
                format!(
                    "{}{}.{}{}.{}",
                    HOSTS[i % HOSTS.len()],
                    i / 512,
                    WORDS[(i / HOSTS.len()) % WORDS.len()],
                    i % 61,
                    TLDS[i % TLDS.len()]
                )
            })
            .collect();
        names.extend(BEACON_NAMES.iter().map(|(n, _)| n.to_string()));
        let mut tpl = Vec::with_capacity(names.len() * T_PER_NAME + 3);
        for (i, name) in names.iter().enumerate() {
            let (a4, a6) = match BEACON_NAMES.get(i.wrapping_sub(NAMES)) {
                Some(&(_, IpAddr::V4(a))) => (a, Ipv6Addr::UNSPECIFIED),
                Some(&(_, IpAddr::V6(a))) => (Ipv4Addr::UNSPECIFIED, a),
                None => match (name_server(i, false), name_server(i, true)) {
                    (IpAddr::V4(a), IpAddr::V6(b)) => (a, b),
                    _ => (Ipv4Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED),
                },
            };
            let ttl = [60, 300, 3600][i % 3];
            let r_a = DnsMessage::response(0, name, dns::TYPE_A, &[Answer::a(name, a4, ttl)]);
            tpl.push(DnsMessage::query(0, name, dns::TYPE_A));
            tpl.push(DnsMessage::query(0, name, dns::TYPE_AAAA));
            tpl.push(r_a.clone());
            tpl.push(DnsMessage::response(
                0,
                name,
                dns::TYPE_AAAA,
                &[Answer::aaaa(name, a6, ttl)],
            ));
            tpl.push(DnsMessage::nxdomain(0, name, dns::TYPE_A));
            tpl.push(dns::tcp_framed(&DnsMessage::query(
                (i as u16) ^ 0x5a5a,
                name,
                dns::TYPE_A,
            )));
            let mut r_tcp = r_a;
            r_tcp[..2].copy_from_slice(&((i as u16) ^ 0x5a5a).to_be_bytes());
            tpl.push(dns::tcp_framed(&r_tcp));
            let spec = match i % 6 {
                0 | 3 => ClientHelloSpec {
                    target_len: Some(1800 + i % 64),
                    ..ClientHelloSpec::browser(name)
                },
                1 | 4 => ClientHelloSpec::browser(name),
                _ => ClientHelloSpec::with_sni(name),
            };
            tpl.push(tls::records(
                &tls::client_hello(&spec),
                tls::MAX_RECORD_PAYLOAD,
            ));
            tpl.push(http::request(
                "GET",
                PATHS[i % PATHS.len()],
                Some(name),
                Some(AGENTS[i % AGENTS.len()]),
                &[("Accept", "*/*"), ("Connection", "keep-alive")],
            ));
        }
        let stub = tpl.len() as u32;
        tpl.push(tls::server_hello_stub());
        let ntp_q = tpl.len() as u32;
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23; // v4, client
        ntp[40..48].copy_from_slice(&rng.next_u64().to_be_bytes());
        tpl.push(ntp.clone());
        let ntp_r = tpl.len() as u32;
        ntp[0] = 0x24; // v4, server
        ntp[1] = 2;
        ntp[12..16].copy_from_slice(&[198, 51, 100, 1]);
        ntp[16..48].copy_from_slice(&rng.bytes(32));
        tpl.push(ntp);

        // Random pools get MSS bytes of slack so any slice stays contiguous.
        let raw = fill_random(&mut rng, RAW_POOL + 64 * 1024);
        let mut tls_pool = Vec::with_capacity(TLS_POOL + 20_000);
        let mut tls_bounds = vec![0u32];
        while tls_pool.len() < TLS_POOL {
            let len = if rng.below(8) == 0 {
                16_401
            } else {
                30 + rng.below(1400) as usize
            };
            tls_pool.extend([23, 3, 3]);
            tls_pool.extend((len as u16).to_be_bytes());
            let at = (rng.below(RAW_POOL as u64)) as usize;
            tls_pool.extend_from_slice(&raw[at..at + len.min(64 * 1024)]);
            tls_bounds.push(tls_pool.len() as u32);
        }
        Tables {
            tpl,
            raw,
            tls: tls_pool,
            tls_bounds,
            stub,
            ntp_q,
            ntp_r,
        }
    }

    fn tpl_of(&self, name: usize, slot: usize) -> u32 {
        (name * T_PER_NAME + slot) as u32
    }

    fn tpl(&self, i: u32) -> &[u8] {
        self.tpl.get(i as usize).map_or(&[], Vec::as_slice)
    }

    /// A run of whole TLS records from the pool of about `want` bytes:
    /// (offset, length).
    fn tls_run(&self, rng: &mut Rng, want: u64) -> (u32, u32) {
        let bounds = &self.tls_bounds;
        let last = bounds.len() - 1;
        let first = rng.below(last as u64 / 2) as usize;
        let start = bounds[first];
        let target = (u64::from(start) + want).min(u64::from(bounds[last])) as u32;
        // The record boundary nearest to the target.
        let end_i = match bounds.binary_search(&target) {
            Ok(i) => i,
            Err(i) => {
                let below = bounds.get(i - 1).copied().unwrap_or(0);
                let above = bounds.get(i).copied().unwrap_or(u32::MAX);
                if target - below < above - target {
                    i - 1
                } else {
                    i
                }
            }
        }
        .clamp(first, last);
        (start, bounds[end_i] - start)
    }
}

fn fill_random(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend(rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

/// The packet writer: one reused frame buffer and the output.
struct Out<W: Write> {
    w: W,
    buf: Vec<u8>,
    stats: BulkStats,
    first_ts: Option<u64>,
    last_ts: u64,
}

#[derive(Debug, Clone, Copy)]
enum L4 {
    Tcp { seq: u32, ack: u32, flags: u8 },
    Udp,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Sum of `data` as big-endian 16-bit words (odd byte padded), 32 bits at a time.
fn sum_words(data: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += (v >> 32) + (v & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for w in &mut rest {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = rest.remainder() {
        sum += u64::from(*b) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn addr_sum(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => sum_words(&a.octets()),
        IpAddr::V6(a) => sum_words(&a.octets()),
    }
}

impl<W: Write> Out<W> {
    /// Writes one frame of `f`: `payload` is `a` then `b`; when `id` is set
    /// it replaces the first two payload bytes (DNS message id).
    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        ts: u64,
        f: &Flow,
        from_client: bool,
        l4: L4,
        a: &[u8],
        b: &[u8],
        id: Option<u16>,
    ) -> io::Result<()> {
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(&[0; 16]);
        let (src, dst, sport, dport) = if from_client {
            (f.client, f.server, f.sport, f.dport)
        } else {
            (f.server, f.client, f.dport, f.sport)
        };
        let host_mac = host_mac(f.host);
        if from_client {
            buf.extend_from_slice(&GATEWAY_MAC);
            buf.extend_from_slice(&host_mac);
        } else {
            buf.extend_from_slice(&host_mac);
            buf.extend_from_slice(&GATEWAY_MAC);
        }
        let tags = &f.vlans.ids[..usize::from(f.vlans.n)];
        for (i, vid) in tags.iter().enumerate() {
            let tpid = if i == 0 && tags.len() > 1 {
                TPID_8021AD
            } else {
                TPID_8021Q
            };
            buf.extend_from_slice(&tpid.to_be_bytes());
            buf.extend_from_slice(&vid.to_be_bytes());
        }
        let (proto, l4_hdr) = match l4 {
            L4::Tcp { flags, .. } if flags & SYN != 0 => (IPPROTO_TCP, 24),
            L4::Tcp { .. } => (IPPROTO_TCP, 20),
            L4::Udp => (IPPROTO_UDP, 8),
        };
        let l4_len = l4_hdr + a.len() + b.len();
        let ip_at = buf.len() + 2;
        let v6 = src.is_ipv6();
        buf.extend_from_slice(&if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 }.to_be_bytes());
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = (20 + l4_len) as u16;
                let df = if proto == IPPROTO_TCP { 0x40 } else { 0 };
                buf.extend_from_slice(&[0x45, 0]);
                buf.extend_from_slice(&total.to_be_bytes());
                buf.extend_from_slice(&f.ident.to_be_bytes());
                buf.extend_from_slice(&[df, 0, if from_client { 128 } else { 52 }, proto, 0, 0]);
                buf.extend_from_slice(&s.octets());
                buf.extend_from_slice(&d.octets());
                let c = fold(sum_words(&buf[ip_at..ip_at + 20]));
                buf[ip_at + 10..ip_at + 12].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                let (s, d) = (v6_of(src), v6_of(dst));
                buf.extend_from_slice(&[0x60, 0, 0, 0]);
                buf.extend_from_slice(&(l4_len as u16).to_be_bytes());
                buf.extend_from_slice(&[proto, if from_client { 64 } else { 54 }]);
                buf.extend_from_slice(&s.octets());
                buf.extend_from_slice(&d.octets());
            }
        }
        let l4_at = buf.len();
        buf.extend_from_slice(&sport.to_be_bytes());
        buf.extend_from_slice(&dport.to_be_bytes());
        match l4 {
            L4::Tcp { seq, ack, flags } => {
                buf.extend_from_slice(&seq.to_be_bytes());
                buf.extend_from_slice(&ack.to_be_bytes());
                let hl = ((l4_hdr / 4) as u8) << 4;
                let window: u16 = 64240;
                buf.extend_from_slice(&[hl, flags]);
                buf.extend_from_slice(&window.to_be_bytes());
                buf.extend_from_slice(&[0, 0, 0, 0]);
                if flags & SYN != 0 {
                    buf.extend_from_slice(&[2, 4, 0x05, 0xb4]);
                }
            }
            L4::Udp => {
                buf.extend_from_slice(&(l4_len as u16).to_be_bytes());
                buf.extend_from_slice(&[0, 0]);
            }
        }
        let pay_at = buf.len();
        buf.extend_from_slice(a);
        buf.extend_from_slice(b);
        if let Some(id) = id
            && let Some(p) = buf.get_mut(pay_at..pay_at + 2)
        {
            p.copy_from_slice(&id.to_be_bytes());
        }
        let pseudo = addr_sum(src) + addr_sum(dst) + u64::from(proto) + l4_len as u64;
        let mut c = fold(pseudo + sum_words(&buf[l4_at..]));
        let csum_at = l4_at + if proto == IPPROTO_TCP { 16 } else { 6 };
        if proto == IPPROTO_UDP && c == 0 {
            c = 0xffff;
        }
        buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        // Frames arriving from outside carry the Ethernet minimum padding.
        if !from_client && buf.len() < 16 + 60 {
            buf.resize(16 + 60, 0);
        }
        let frame_len = (buf.len() - 16) as u32;
        let secs = (ts / NANOS) as u32;
        let usecs = ((ts % NANOS) / MICRO) as u32;
        buf[0..4].copy_from_slice(&secs.to_le_bytes());
        buf[4..8].copy_from_slice(&usecs.to_le_bytes());
        buf[8..12].copy_from_slice(&frame_len.to_le_bytes());
        buf[12..16].copy_from_slice(&frame_len.to_le_bytes());
        self.w.write_all(buf)?;
        let s = &mut self.stats;
        s.bytes += buf.len() as u64;
        s.packets += 1;
        s.ipv6_packets += u64::from(v6);
        s.tagged_packets += u64::from(f.vlans.n > 0);
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        Ok(())
    }
}

fn v6_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The bytes `[off, off + n)` of `msg` as two slices (prefix part, body part).
fn msg_slices<'a>(
    t: &'a Tables,
    scratch: &'a mut Vec<u8>,
    msg: &Msg,
    off: u32,
    n: u32,
) -> (&'a [u8], &'a [u8]) {
    let (off, end) = (off as usize, (off + n) as usize);
    let plen = msg.prefix_len as usize;
    let prefix: &[u8] = match msg.prefix {
        Prefix::None => &[],
        Prefix::Tpl(i) => t.tpl(i),
        Prefix::HttpResp(ct) => {
            render_http_head(scratch, ct, msg.body_len);
            scratch
        }
    };
    let a = prefix.get(off.min(plen)..end.min(plen)).unwrap_or(&[]);
    let (bo, be) = (off.max(plen) - plen, end.max(plen) - plen);
    let pool: &[u8] = match msg.body {
        Body::Raw => &t.raw,
        Body::Tls => &t.tls,
    };
    let at = msg.body_at as usize;
    let b = if be > bo {
        // Raw bodies wrap around the pool; TLS runs were chosen inside it.
        let start = match msg.body {
            Body::Raw => (at + bo) % RAW_POOL,
            Body::Tls => at + bo,
        };
        pool.get(start..start + (be - bo)).unwrap_or(&[])
    } else {
        &[]
    };
    (a, b)
}

fn render_http_head(scratch: &mut Vec<u8>, ct: u8, body_len: u32) {
    scratch.clear();
    let ct = CONTENT_TYPES[usize::from(ct) % CONTENT_TYPES.len()];
    // Writing to a Vec cannot fail.
    let _ = write!(
        scratch,
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: {ct}\r\nContent-Length: {body_len}\r\n\r\n"
    );
}

/// Pareto(alpha 1.2) sample with minimum `xm`, capped.
fn pareto(rng: &mut Rng, xm: f64, cap: f64) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (xm / (1.0 - u).max(1e-12).powf(1.0 / 1.2)).min(cap)
}

/// Exponential sample with mean `mean`.
fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    -(1.0 - u).max(1e-12).ln() * mean
}

struct Gen<W: Write> {
    t: Tables,
    out: Out<W>,
    scratch: Vec<u8>,
    rng: Rng,
    flows: Vec<Flow>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    hosts: u32,
    seen: Vec<u64>,
    /// Payload sizes are multiplied by this, steered towards the target.
    scale: f64,
    /// Bytes the conversations in flight are still expected to write.
    pending: u64,
}

/// Writes a bulk capture (classic pcap, Ethernet, µs) to `w` and returns
/// what it holds. Wrap files in a large `BufWriter`.
pub fn generate<W: Write>(cfg: &BulkConfig, mut w: W) -> io::Result<BulkStats> {
    let mut hdr = Vec::with_capacity(24);
    hdr.extend(0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend(2u16.to_le_bytes());
    hdr.extend(4u16.to_le_bytes());
    hdr.extend([0; 8]);
    hdr.extend(SNAPLEN.to_le_bytes());
    hdr.extend(LINKTYPE_ETHERNET.to_le_bytes());
    w.write_all(&hdr)?;
    let hosts = cfg.hosts.max(MIN_HOSTS);
    let mut g = Gen {
        t: Tables::build(cfg.seed),
        out: Out {
            w,
            buf: Vec::with_capacity(70_000),
            stats: BulkStats {
                bytes: 24,
                ..BulkStats::default()
            },
            first_ts: None,
            last_ts: 0,
        },
        scratch: Vec::with_capacity(256),
        rng: Rng::new(cfg.seed),
        flows: Vec::new(),
        free: Vec::new(),
        heap: BinaryHeap::new(),
        hosts,
        seen: vec![0; hosts as usize / 64 + 1],
        scale: 1.0,
        pending: 0,
    };
    g.run(cfg)?;
    g.out.w.flush()?;
    let mut stats = g.out.stats;
    stats.hosts = g.seen.iter().map(|w| u64::from(w.count_ones())).sum();
    stats.duration_secs = g.out.last_ts.saturating_sub(g.out.first_ts.unwrap_or(0)) as f64 / 1e9;
    Ok(stats)
}

impl<W: Write> Gen<W> {
    fn run(&mut self, cfg: &BulkConfig) -> io::Result<()> {
        let start = START_SECS * NANOS;
        let flows = cfg.flows.max(1);
        let mean_gap = (cfg.span_secs.max(1) * NANOS) as f64 / flows as f64;
        let target_per_flow = cfg.size as f64 / flows as f64;
        let beacons = beacons(cfg);
        let mut next_beacon: Vec<u64> = beacons
            .iter()
            .map(|_| start + self.rng.below(BEACON_PERIOD_SECS * NANOS))
            .collect();
        let mut next_arrival = start;
        let mut started = 0u64;
        let mut open = true;
        loop {
            if open {
                let (bi, bt) = next_beacon
                    .iter()
                    .enumerate()
                    .min_by_key(|&(_, t)| *t)
                    .map_or((0, u64::MAX), |(i, t)| (i, *t));
                let arrival = next_arrival.min(bt);
                if self.heap.peek().is_none_or(|r| arrival <= r.0.0) {
                    if bt <= next_arrival {
                        self.beacon(
                            bt,
                            &beacons[bi],
                            beacon_host_index(self.hosts, bi, beacons[bi].server.is_ipv6()),
                        );
                        let period = BEACON_PERIOD_SECS * NANOS;
                        next_beacon[bi] = bt + period - period / 10 + self.rng.below(period / 5);
                    } else {
                        self.arrival(next_arrival);
                        started += 1;
                        next_arrival += exponential(&mut self.rng, mean_gap) as u64 + 1;
                        if started.is_multiple_of(32) {
                            // Written bytes plus what the conversations in flight
                            // still plan: the steering works on real sizes.
                            let so_far = (self.out.stats.bytes + self.pending) as f64;
                            let ratio = target_per_flow * started as f64 / so_far;
                            self.scale = (self.scale * ratio.powf(0.3)).clamp(1e-3, 1e3);
                        }
                    }
                    open = self.out.stats.bytes + self.pending < cfg.size;
                    continue;
                }
            }
            let Some(Reverse((ts, slot))) = self.heap.pop() else {
                break;
            };
            match self.step(slot, ts)? {
                Some(next) => self.heap.push(Reverse((next.max(ts), slot))),
                None => self.free.push(slot),
            }
        }
        Ok(())
    }

    fn pick_host(&mut self) -> u32 {
        let u = self.rng.below(1 << 20) as f64 / (1 << 20) as f64;
        // 70 % spread evenly, 30 % concentrated on busy hosts.
        let h = if self.rng.below(10) < 7 {
            self.rng.below(u64::from(self.hosts)) as u32
        } else {
            (f64::from(self.hosts) * u * u * u) as u32
        };
        h.min(self.hosts - 1)
    }

    fn pick_name(&mut self) -> usize {
        let u = self.rng.below(1 << 20) as f64 / (1 << 20) as f64;
        ((NAMES as f64 * u * u) as usize).min(NAMES - 1)
    }

    fn base_flow(&mut self, kind: Kind, host: u32, server: IpAddr, dport: u16) -> Flow {
        self.seen[host as usize / 64] |= 1 << (host % 64);
        self.out.stats.flows += 1;
        self.out.stats.kinds[kind as usize] += 1;
        let r = self.rng.next_u64();
        Flow {
            kind,
            host,
            client: host_ip(host),
            server,
            vlans: host_vlans(host),
            sport: 49152 + (r % 16000) as u16,
            dport,
            cseq: (r >> 16) as u32,
            sseq: (r >> 24) as u32 ^ 0x9e37_79b9,
            ident: (r >> 40) as u16,
            step: Step::Syn,
            req: Msg::EMPTY,
            resp: Msg::EMPTY,
            again: 0,
            off: 0,
            split: 0,
            unacked: 0,
            ack_due: false,
            rtt: (1 + self.rng.below(80)) * MILLI + self.rng.below(MILLI),
            gap: 20 * MICRO + self.rng.below(400 * MICRO),
            aux: 0,
            plan_left: 0,
            dns_id: (r >> 48) as u16,
            conn_id: self.rng.next_u64(),
        }
    }

    fn tpl_msg(&self, i: u32) -> Msg {
        Msg {
            prefix: Prefix::Tpl(i),
            prefix_len: self.t.tpl(i).len() as u32,
            ..Msg::EMPTY
        }
    }

    fn raw_msg(&mut self, len: u64) -> Msg {
        Msg {
            body_at: self.rng.below(RAW_POOL as u64) as u32,
            body_len: len as u32,
            ..Msg::EMPTY
        }
    }

    /// Expected file bytes of `packets` packets carrying `payload` bytes.
    fn charge(&mut self, f: &mut Flow, packets: u64, payload: u64) {
        let per =
            16 + 14 + 4 * u64::from(f.vlans.n) + if f.client.is_ipv6() { 40 } else { 20 } + 22;
        let plan = packets * per + payload;
        self.pending += plan;
        f.plan_left = plan;
    }

    fn push(&mut self, ts: u64, f: Flow) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.flows[s as usize] = f;
                s
            }
            None => {
                self.flows.push(f);
                (self.flows.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((ts, slot)));
    }

    fn dns_flow(&mut self, ts: u64, host: u32, name: usize, nx: bool) {
        let v6 = host_is_v6(host);
        let resolver = if v6 { RESOLVER_V6 } else { RESOLVER_V4 };
        let mut f = self.base_flow(Kind::Dns, host, resolver, 53);
        let (q, r) = match (v6, nx) {
            (_, true) => (T_QA, T_NX),
            (false, false) => (T_QA, T_RA),
            (true, false) => (T_QAAAA, T_RAAAA),
        };
        f.req = self.tpl_msg(self.t.tpl_of(name, q));
        f.aux = self.t.tpl_of(name, r);
        f.step = Step::Udp(0);
        f.rtt = 200 * MICRO + self.rng.below(20 * MILLI);
        let bytes = f.req.len() + self.t.tpl(f.aux).len() as u32;
        self.charge(&mut f, 2, u64::from(bytes));
        self.push(ts, f);
    }

    fn tls_flow(&mut self, ts: u64, host: u32, name: usize, server: IpAddr, beacon: bool) {
        let mut f = self.base_flow(Kind::Tls, host, server, 443);
        if beacon {
            self.out.stats.kinds[Kind::Tls as usize] -= 1;
            self.out.stats.kinds[8] += 1;
        }
        f.req = self.tpl_msg(self.t.tpl_of(name, T_HELLO));
        // Some small hellos are cut at an odd byte too.
        if f.req.len() <= MSS && self.rng.below(8) == 0 {
            f.split = 40 + self.rng.below(u64::from(f.req.len() - 60)) as u32;
        }
        let want = if beacon {
            3000.0
        } else {
            pareto(&mut self.rng, 1500.0 * self.scale, MAX_FLOW_BYTES)
        };
        let (at, len) = self.t.tls_run(&mut self.rng, want as u64);
        let stub = self.t.stub;
        f.resp = Msg {
            body: Body::Tls,
            body_at: at,
            body_len: len,
            ..self.tpl_msg(stub)
        };
        let segs = u64::from(f.req.len().div_ceil(MSS) + f.resp.len().div_ceil(MSS));
        let payload = u64::from(f.req.len() + f.resp.len());
        self.charge(&mut f, 6 + segs * 3 / 2, payload);
        self.push(ts, f);
    }

    fn arrival(&mut self, ts: u64) {
        let host = self.pick_host();
        let v6 = host_is_v6(host);
        let roll = self.rng.below(100);
        match roll {
            0..59 => {
                let name = self.pick_name();
                let nx = self.rng.below(20) == 0;
                self.dns_flow(ts, host, name, nx);
            }
            59..77 => {
                let name = self.pick_name();
                self.tls_flow(ts, host, name, name_server(name, v6), false);
            }
            77..82 => {
                let name = self.pick_name();
                let mut f = self.base_flow(Kind::Http, host, name_server(name, v6), 80);
                f.req = self.tpl_msg(self.t.tpl_of(name, T_HTTP));
                f.again = u8::from(self.rng.below(3) == 0);
                let body = pareto(&mut self.rng, 300.0 * self.scale, MAX_FLOW_BYTES) as u32;
                let ct = (name % CONTENT_TYPES.len()) as u8;
                render_http_head(&mut self.scratch, ct, body);
                f.resp = Msg {
                    prefix: Prefix::HttpResp(ct),
                    prefix_len: self.scratch.len() as u32,
                    body_at: self.rng.below(RAW_POOL as u64) as u32,
                    body_len: body,
                    body: Body::Raw,
                };
                let n = 1 + u64::from(f.again);
                let segs = n * u64::from(f.req.len().div_ceil(MSS) + f.resp.len().div_ceil(MSS));
                let payload = n * u64::from(f.req.len() + f.resp.len());
                self.charge(&mut f, 6 + segs * 3 / 2, payload);
                self.push(ts, f);
            }
            82..86 => {
                let server = anon_server(self.rng.next_u64(), v6);
                let mut f = self.base_flow(Kind::Quic, host, server, 443);
                f.step = Step::Udp(0);
                f.aux = pareto(&mut self.rng, 2.0 * self.scale, 25_000.0) as u32;
                f.rtt = 5 * MILLI + self.rng.below(60 * MILLI);
                f.gap = 30 * MICRO + self.rng.below(200 * MICRO);
                let n = 4 + u64::from(f.aux);
                self.charge(&mut f, 4 + n * 3 / 2, 4 * 1252 + n * 1200);
                self.push(ts, f);
            }
            86..91 => {
                let server = anon_server(self.rng.next_u64() & 0xff, v6);
                let mut f = self.base_flow(Kind::Ntp, host, server, 123);
                f.sport = 123;
                f.step = Step::Udp(0);
                f.req = self.tpl_msg(self.t.ntp_q);
                f.aux = self.t.ntp_r;
                self.charge(&mut f, 2, 96);
                self.push(ts, f);
            }
            91..94 => {
                let server = anon_server(self.rng.next_u64(), v6);
                let port = 20_000 + self.rng.below(40_000) as u16;
                let mut f = self.base_flow(Kind::Bulk, host, server, port);
                let big = pareto(&mut self.rng, 20_000.0 * self.scale, MAX_FLOW_BYTES) as u64;
                let small = 40 + self.rng.below(400);
                let (up, down) = if self.rng.below(4) == 0 {
                    (big, small)
                } else {
                    (small, big)
                };
                f.req = self.raw_msg(up);
                f.resp = self.raw_msg(down);
                f.gap = 10 * MICRO + self.rng.below(100 * MICRO);
                let segs = (up + down).div_ceil(u64::from(MSS));
                self.charge(&mut f, 6 + segs * 3 / 2, up + down);
                self.push(ts, f);
            }
            94..98 => {
                let server = anon_server(self.rng.next_u64(), v6);
                let port = [22, 445, 3389, 8080, 25][self.rng.below(5) as usize];
                let mut f = self.base_flow(Kind::Refused, host, server, port);
                self.charge(&mut f, 2, 0);
                self.push(ts, f);
            }
            _ => {
                let name = self.pick_name();
                let resolver = if v6 { RESOLVER_V6 } else { RESOLVER_V4 };
                let mut f = self.base_flow(Kind::DnsTcp, host, resolver, 53);
                f.req = self.tpl_msg(self.t.tpl_of(name, T_TCPQ));
                f.resp = self.tpl_msg(self.t.tpl_of(name, T_TCPR));
                if self.rng.below(2) == 0 {
                    f.split = 2;
                }
                f.rtt = 200 * MICRO + self.rng.below(5 * MILLI);
                let payload = u64::from(f.req.len() + f.resp.len());
                self.charge(&mut f, 9, payload);
                self.push(ts, f);
            }
        }
    }

    fn beacon(&mut self, ts: u64, b: &Beacon, host: u32) {
        let name = NAMES
            + BEACON_NAMES
                .iter()
                .position(|(n, _)| *n == b.name)
                .unwrap_or(0);
        self.dns_flow(ts, host, name, false);
        self.out.stats.kinds[Kind::Dns as usize] -= 1;
        self.out.stats.kinds[8] += 1;
        let after = 2 * MILLI + self.rng.below(30 * MILLI);
        self.tls_flow(ts + after, host, name, b.server, true);
    }

    /// Writes the next packet of flow `slot` at `ts`; returns when its next
    /// packet is due, or `None` when the conversation is over.
    fn step(&mut self, slot: u32, ts: u64) -> io::Result<Option<u64>> {
        let Some(mut f) = self.flows.get(slot as usize).copied() else {
            return Ok(None);
        };
        let before = self.out.stats.bytes;
        let next = match f.kind {
            Kind::Dns | Kind::Ntp => self.step_udp(&mut f, ts)?,
            Kind::Quic => self.step_quic(&mut f, ts)?,
            _ => self.step_tcp(&mut f, ts)?,
        };
        let done = match next {
            Some(_) => (self.out.stats.bytes - before).min(f.plan_left),
            None => f.plan_left,
        };
        f.plan_left -= done;
        self.pending -= done;
        f.ident = f.ident.wrapping_add(1);
        if let Some(slot) = self.flows.get_mut(slot as usize) {
            *slot = f;
        }
        Ok(next)
    }

    fn step_udp(&mut self, f: &mut Flow, ts: u64) -> io::Result<Option<u64>> {
        let id = (f.kind == Kind::Dns).then_some(f.dns_id);
        if f.step == Step::Udp(0) {
            let (a, b) = msg_slices(&self.t, &mut self.scratch, &f.req, 0, f.req.len());
            self.out.packet(ts, f, true, L4::Udp, a, b, id)?;
            f.step = Step::Udp(1);
            Ok(Some(ts + f.rtt))
        } else {
            let r = self.t.tpl(f.aux);
            self.out.packet(ts, f, false, L4::Udp, r, &[], id)?;
            Ok(None)
        }
    }

    /// QUIC-looking exchange: client Initial, server Initial + Handshake,
    /// client Handshake, then short-header data (client ACKs every second).
    fn step_quic(&mut self, f: &mut Flow, ts: u64) -> io::Result<Option<u64>> {
        let (from_client, long_type, size, next) = match f.step {
            Step::Udp(0) => (true, Some(0u8), 1252, ts + f.rtt),
            Step::Udp(1) => (false, Some(0), 1252, ts + 40 * MICRO),
            Step::Udp(2) => (
                false,
                Some(2),
                300 + (f.conn_id % 900) as usize,
                ts + f.rtt / 4,
            ),
            Step::Udp(_) => (true, Some(2), 90, ts + 2 * f.gap),
            _ if f.ack_due => (true, None, 40 + (f.conn_id % 20) as usize, ts + f.gap),
            _ => (false, None, 1200 + (f.conn_id % 52) as usize, ts + f.gap),
        };
        let s = &mut self.scratch;
        s.clear();
        let (dcid, scid) = if from_client {
            (f.conn_id, f.conn_id.rotate_left(17))
        } else {
            (f.conn_id.rotate_left(17), f.conn_id)
        };
        let pn_at = match long_type {
            Some(ty) => {
                s.push(0xc3 | (ty << 4));
                s.extend_from_slice(&1u32.to_be_bytes());
                s.push(8);
                s.extend_from_slice(&dcid.to_be_bytes());
                s.push(8);
                s.extend_from_slice(&scid.to_be_bytes());
                if ty == 0 {
                    s.push(0); // token length
                }
                let rest = size.saturating_sub(s.len() + 2) as u16;
                s.extend_from_slice(&(0x4000 | rest).to_be_bytes());
                s.len()
            }
            None => {
                s.push(0x43);
                s.extend_from_slice(&dcid.to_be_bytes());
                s.len()
            }
        };
        s.extend_from_slice(&(f.cseq.wrapping_add(f.sseq)).to_be_bytes());
        let body = size.saturating_sub(s.len());
        let at = (f.conn_id as usize ^ pn_at ^ f.off as usize) % RAW_POOL;
        let b = self.t.raw.get(at..at + body).unwrap_or(&[]);
        self.out
            .packet(ts, f, from_client, L4::Udp, &self.scratch, b, None)?;
        f.cseq = f.cseq.wrapping_add(1);
        f.off = f.off.wrapping_add(977);
        match f.step {
            Step::Udp(n @ 0..=2) => f.step = Step::Udp(n + 1),
            Step::Udp(_) => f.step = Step::QuicData,
            _ if f.ack_due => {
                f.ack_due = false;
                if f.aux == 0 {
                    return Ok(None);
                }
            }
            _ => {
                f.aux = f.aux.saturating_sub(1);
                f.unacked += 1;
                if f.unacked == 2 || f.aux == 0 {
                    f.unacked = 0;
                    f.ack_due = true;
                }
            }
        }
        Ok(Some(next))
    }

    fn step_tcp(&mut self, f: &mut Flow, ts: u64) -> io::Result<Option<u64>> {
        let tcp = |seq, ack, flags| L4::Tcp { seq, ack, flags };
        let o = &mut self.out;
        let next = match f.step {
            Step::Syn => {
                o.packet(ts, f, true, tcp(f.cseq, 0, SYN), &[], &[], None)?;
                f.cseq = f.cseq.wrapping_add(1);
                f.step = if f.kind == Kind::Refused {
                    Step::Rst
                } else {
                    Step::SynAck
                };
                ts + f.rtt
            }
            Step::Rst => {
                o.packet(ts, f, false, tcp(0, f.cseq, RST | ACK), &[], &[], None)?;
                return Ok(None);
            }
            Step::SynAck => {
                o.packet(ts, f, false, tcp(f.sseq, f.cseq, SYN | ACK), &[], &[], None)?;
                f.sseq = f.sseq.wrapping_add(1);
                f.step = Step::Ack;
                ts + 30 * MICRO
            }
            Step::Ack => {
                o.packet(ts, f, true, tcp(f.cseq, f.sseq, ACK), &[], &[], None)?;
                f.step = Step::Req;
                ts + 50 * MICRO + self.rng.below(MILLI)
            }
            Step::Req | Step::Resp => return self.data(f, ts),
            Step::FinC => {
                o.packet(ts, f, true, tcp(f.cseq, f.sseq, FIN | ACK), &[], &[], None)?;
                f.cseq = f.cseq.wrapping_add(1);
                f.step = Step::FinS;
                ts + f.rtt
            }
            Step::FinS => {
                o.packet(ts, f, false, tcp(f.sseq, f.cseq, FIN | ACK), &[], &[], None)?;
                f.sseq = f.sseq.wrapping_add(1);
                f.step = Step::LastAck;
                ts + 20 * MICRO
            }
            Step::LastAck => {
                o.packet(ts, f, true, tcp(f.cseq, f.sseq, ACK), &[], &[], None)?;
                return Ok(None);
            }
            Step::Udp(_) | Step::QuicData => return Ok(None),
        };
        Ok(Some(next))
    }

    /// One packet of the request or response phase: a data segment, or the
    /// receiver's ACK after every second segment (and after the response).
    fn data(&mut self, f: &mut Flow, ts: u64) -> io::Result<Option<u64>> {
        let from_client = f.step == Step::Req;
        if f.ack_due {
            f.ack_due = false;
            let (seq, ack) = if from_client {
                (f.sseq, f.cseq)
            } else {
                (f.cseq, f.sseq)
            };
            self.out.packet(
                ts,
                f,
                !from_client,
                L4::Tcp {
                    seq,
                    ack,
                    flags: ACK,
                },
                &[],
                &[],
                None,
            )?;
            if from_client || f.off < f.resp.len() {
                return Ok(Some(ts + f.gap));
            }
            return Ok(Some(self.after_response(f, ts)));
        }
        let msg = if from_client { f.req } else { f.resp };
        let rem = msg.len() - f.off;
        let n = if f.off == 0 && f.split > 0 && f.split < rem {
            f.split
        } else {
            rem.min(MSS)
        };
        let last = n == rem;
        let (a, b) = msg_slices(&self.t, &mut self.scratch, &msg, f.off, n);
        let (seq, ack) = if from_client {
            (f.cseq, f.sseq)
        } else {
            (f.sseq, f.cseq)
        };
        let flags = if last { PSH | ACK } else { ACK };
        self.out
            .packet(ts, f, from_client, L4::Tcp { seq, ack, flags }, a, b, None)?;
        if from_client {
            f.cseq = f.cseq.wrapping_add(n);
        } else {
            f.sseq = f.sseq.wrapping_add(n);
        }
        f.off += n;
        f.unacked += 1;
        if f.unacked == 2 || (last && !from_client) {
            f.unacked = 0;
            f.ack_due = true;
        }
        if !last {
            return Ok(Some(ts + f.gap));
        }
        f.off = 0;
        if from_client {
            // The response's first segment acknowledges the request.
            f.ack_due = false;
            f.unacked = 0;
            f.step = Step::Resp;
            let think = 100 * MICRO + self.rng.below(10 * MILLI);
            return Ok(Some(ts + f.rtt + think));
        }
        f.off = f.resp.len();
        Ok(Some(ts + 40 * MICRO))
    }

    /// After the response is acknowledged: another request or the close.
    fn after_response(&mut self, f: &mut Flow, ts: u64) -> u64 {
        f.off = 0;
        if f.again > 0 {
            f.again -= 1;
            f.step = Step::Req;
            ts + 5 * MILLI + self.rng.below(200 * MILLI)
        } else {
            f.step = Step::FinC;
            ts + MILLI + self.rng.below(100 * MILLI)
        }
    }
}

/// Parses a size such as `1G`, `500M`, `64K` or `12345` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'k' | 'K') => (&t[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&t[..i], 1 << 20),
        (i, 'g' | 'G') => (&t[..i], 1 << 30),
        (i, 't' | 'T') => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let value: f64 = num.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("77"), Some(77));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn checksum_matches_the_packet_builders() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for len in [0, 1, 2, 7, 8, 9, 100, 1001] {
            assert_eq!(
                fold(sum_words(&data[..len])),
                crate::packet::internet_checksum(&data[..len]),
                "length {len}"
            );
        }
    }

    #[test]
    fn deterministic_ordered_and_near_the_size() {
        let mut cfg = BulkConfig::new(400_000);
        cfg.hosts = 500;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let stats = generate(&cfg, &mut a).unwrap();
        generate(&cfg, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(stats.bytes, a.len() as u64);
        assert!(a.len() > 300_000 && a.len() < 600_000, "{}", a.len());
        cfg.seed = 2;
        let mut c = Vec::new();
        generate(&cfg, &mut c).unwrap();
        assert_ne!(a, c);
        // Records are time-ordered and lengths consistent.
        let (mut at, mut last, mut n) = (24, 0u64, 0);
        while at < a.len() {
            let r = |o: usize| u32::from_le_bytes(a[at + o..at + o + 4].try_into().unwrap());
            let ts = u64::from(r(0)) * 1_000_000 + u64::from(r(4));
            assert!(ts >= last);
            last = ts;
            at += 16 + r(8) as usize;
            n += 1;
        }
        assert_eq!((at, n), (a.len(), stats.packets));
        assert!(stats.kinds.iter().all(|&k| k > 0), "{:?}", stats.kinds);
        assert!(stats.ipv6_packets > 0 && stats.tagged_packets > 0);
    }
}
