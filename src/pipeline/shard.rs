//! Sharding: which worker a packet goes to.
//!
//! Workers must never share state, yet attribution needs all of a host's
//! traffic in one place: passive DNS is per client (the answer a host got
//! names the server it connects to next), and a host's contacts and beacon
//! timing span many connections. So packets are sharded by *host* — the
//! internal or client side of the conversation — not by 5-tuple. The choice
//! uses only the packet's addresses and ports, and is the same for both
//! directions, so a whole conversation lands on one worker:
//!
//! 1. with `--internal`, the side inside those networks, if only one is;
//! 2. else the private (RFC 1918, CGNAT, ULA, link-local) side, if only one is;
//! 3. else the client judged by ports: the side on a service port (below
//!    1024, or a known service port) is the server; between two ordinary
//!    ports the higher (ephemeral) one is the client;
//! 4. else (same ports) the lower address.
//!
//! Fragments carry no ports, so the dispatcher reassembles them before it
//! shards. The hash is seeded per run, so an attacker cannot aim a flood at
//! one worker. When the guess disagrees with the engine's own initiator
//! (e.g. a conversation between two ephemeral ports picked up mid-way), the
//! host's records end up on two workers and are merged at the end; only
//! passive DNS links across the two can be missed.

use ipnet::IpNet;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Ports above 1023 on which servers commonly listen (proxies, alternative
/// HTTP/TLS, management agents such as Kaspersky Security Center). Sorted
/// (binary search).
const SERVICE_PORTS: [u16; 18] = [
    1080, 1194, 1433, 1521, 3128, 3306, 3389, 5222, 5432, 5900, 8000, 8008, 8080, 8443, 8888,
    13000, 13111, 14000,
];

/// Picks a worker for each packet.
#[derive(Debug, Clone)]
pub struct Sharder {
    internal: Vec<IpNet>,
    workers: usize,
    /// With unequal shares: the upper end (exclusive, in the high 32 bits
    /// of the host's hash) of each worker's range; empty when all are equal.
    bounds: Vec<u64>,
    hasher: foldhash::fast::RandomState,
}

/// Whether `a` is in a private range (RFC 1918, CGNAT, link-local, ULA),
/// computed without branches on the address (every packet asks this twice,
/// and the mix of ranges is not predictable).
fn private(a: &IpAddr) -> bool {
    match *a {
        IpAddr::V4(v) => {
            let x = u32::from(v);
            (x >> 24 == 10) // 10.0.0.0/8
                | (x >> 20 == 0xac1) // 172.16.0.0/12
                | (x >> 16 == 0xc0a8) // 192.168.0.0/16
                | (x >> 16 == 0xa9fe) // 169.254.0.0/16
                | (x >> 22 == 0x191) // 100.64.0.0/10
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            ((s & 0xfe00) == 0xfc00) | ((s & 0xffc0) == 0xfe80)
        }
    }
}

/// Ports at or above 1024 in [`SERVICE_PORTS`], one bit each.
static SERVICE_BITS: [u64; 1024] = {
    let mut bits = [0u64; 1024];
    let mut i = 0;
    while i < SERVICE_PORTS.len() {
        let p = SERVICE_PORTS[i] as usize;
        // `service_rank` counts on it (a port below 1024 is already rank 0).
        assert!(p >= 1024, "SERVICE_PORTS lists only ports above 1023");
        bits[p / 64] |= 1 << (p % 64);
        i += 1;
    }
    bits
};

/// How much a port looks like a server's: lower is more (0 below 1024,
/// 1 for a [`SERVICE_PORTS`] entry, else 2).
fn service_rank(port: u16) -> u8 {
    let p = usize::from(port);
    let listed = SERVICE_BITS.get(p / 64).map_or(0, |w| (w >> (p % 64)) & 1) as u8;
    2 - 2 * u8::from(port < 1024) - listed
}

/// How much an endpoint looks like the host side, as one number ordered
/// like the rules 2 and 3 of the module's list: private beats public, then
/// a client-like port (by [`service_rank`]) beats a service port, then the
/// higher port wins.
fn host_key(addr: &IpAddr, port: u16) -> u32 {
    u32::from(private(addr)) << 18 | u32::from(service_rank(port)) << 16 | u32::from(port)
}

impl Sharder {
    /// A sharder over `workers` workers (at least one).
    pub fn new(internal: Vec<IpNet>, workers: usize) -> Self {
        Sharder {
            internal,
            workers: workers.max(1),
            bounds: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// A sharder giving worker `i` a part of the hosts proportional to
    /// `shares[i]` (at least one worker; a zero share gets no host).
    pub fn with_shares(internal: Vec<IpNet>, shares: &[u32]) -> Self {
        let mut s = Sharder::new(internal, shares.len());
        let total: u64 = shares.iter().map(|&x| u64::from(x)).sum::<u64>().max(1);
        let mut acc = 0u64;
        s.bounds = shares
            .iter()
            .map(|&x| {
                acc += u64::from(x);
                (acc << 32) / total
            })
            .collect();
        s
    }

    /// The host side of a conversation between `a` and `b` (address, port).
    pub fn host_side(&self, a: (IpAddr, u16), b: (IpAddr, u16)) -> IpAddr {
        if self.a_is_host(&a, &b) { a.0 } else { b.0 }
    }

    /// Whether `a` is the host side of a conversation between `a` and `b`
    /// (by reference, answered with a flag: this runs for every packet, and
    /// moving addresses in and out cost more than the tests themselves).
    #[inline]
    fn a_is_host(&self, a: &(IpAddr, u16), b: &(IpAddr, u16)) -> bool {
        if !self.internal.is_empty() {
            let inside = |x: &IpAddr| self.internal.iter().any(|n| n.contains(x));
            let (ia, ib) = (inside(&a.0), inside(&b.0));
            if ia != ib {
                return ia;
            }
        }
        let (ka, kb) = (host_key(&a.0, a.1), host_key(&b.0, b.1));
        if ka != kb {
            return ka > kb;
        }
        a.0 <= b.0
    }

    /// The worker of a conversation between `a` and `b`.
    #[inline]
    pub fn worker(&self, a: (IpAddr, u16), b: (IpAddr, u16)) -> usize {
        let host = if self.a_is_host(&a, &b) { &a.0 } else { &b.0 };
        self.worker_of_bits(crate::flow::addr_bits(*host))
    }

    /// The worker that owns host `ip`.
    pub fn worker_of_host(&self, ip: IpAddr) -> usize {
        self.worker_of_bits(crate::flow::addr_bits(ip))
    }

    /// The worker that owns the host with address bits `bits`
    /// ([`crate::flow::addr_bits`]).
    #[inline]
    fn worker_of_bits(&self, bits: u128) -> usize {
        let h = self.hasher.hash_one(bits);
        if !self.bounds.is_empty() {
            let x = h >> 32;
            return self
                .bounds
                .partition_point(|&b| b <= x)
                .min(self.workers - 1);
        }
        // Multiply-shift: uses the high bits, no division.
        ((u128::from(h) * self.workers as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> (IpAddr, u16) {
        (s.parse().unwrap(), port)
    }

    #[test]
    fn the_private_ranges_and_service_ranks_match_their_definitions() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        for port in 0..=u16::MAX {
            let want = if port < 1024 {
                0
            } else if SERVICE_PORTS.binary_search(&port).is_ok() {
                1
            } else {
                2
            };
            assert_eq!(service_rank(port), want, "port {port}");
        }
        // Every range is a whole number of /16s: the first and last address
        // of each /16 cover every answer.
        let reference = |v: Ipv4Addr| {
            let o = v.octets();
            v.is_private() || v.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        };
        for top in 0..=u32::from(u16::MAX) {
            for low in [0, 0xffff] {
                let v = Ipv4Addr::from(top << 16 | low);
                assert_eq!(private(&IpAddr::V4(v)), reference(v), "{v}");
            }
        }
        for first in 0..=u16::MAX {
            let v = Ipv6Addr::new(first, 0, 0, 0, 0, 0, 0, 1);
            let want = (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80;
            assert_eq!(private(&IpAddr::V6(v)), want, "{v}");
        }
    }

    #[test]
    fn both_directions_pick_the_same_side() {
        let s = Sharder::new(Vec::new(), 8);
        let cases = [
            (ep("10.0.0.5", 50000), ep("8.8.8.8", 53)),
            (ep("1.2.3.4", 443), ep("5.6.7.8", 61000)),
            (ep("10.0.0.5", 1050), ep("10.0.0.1", 3128)),
            (ep("1.2.3.4", 5000), ep("5.6.7.8", 5000)),
            (ep("fd00::1", 40000), ep("2001:db8::1", 443)),
        ];
        for (a, b) in cases {
            assert_eq!(s.host_side(a, b), s.host_side(b, a), "{a:?} {b:?}");
            assert_eq!(s.worker(a, b), s.worker(b, a));
        }
    }

    #[test]
    fn the_host_is_the_internal_then_private_then_ephemeral_side() {
        let internal = vec!["192.0.2.0/24".parse().unwrap()];
        let s = Sharder::new(internal, 4);
        let ip = |x: &str| x.parse::<IpAddr>().unwrap();
        assert_eq!(
            s.host_side(ep("198.51.100.1", 443), ep("192.0.2.9", 50000)),
            ip("192.0.2.9")
        );
        let s = Sharder::new(Vec::new(), 4);
        // An internal resolver: the asking client is the host.
        assert_eq!(
            s.host_side(ep("192.168.1.1", 53), ep("192.168.1.20", 40000)),
            ip("192.168.1.20")
        );
        // A private client with a low ephemeral port still beats a public server.
        assert_eq!(
            s.host_side(ep("10.1.1.1", 1030), ep("203.0.113.5", 8080)),
            ip("10.1.1.1")
        );
        // Two public addresses: the proxy port marks the server.
        assert_eq!(
            s.host_side(ep("203.0.113.9", 1050), ep("203.0.113.5", 3128)),
            ip("203.0.113.9")
        );
        assert_eq!(
            s.host_side(ep("100.64.3.3", 443), ep("203.0.113.5", 443)),
            ip("100.64.3.3")
        );
    }

    #[test]
    fn unequal_shares_split_hosts_in_proportion() {
        let s = Sharder::with_shares(Vec::new(), &[3, 1, 0, 4]);
        let mut seen = [0usize; 4];
        for i in 0..8000u32 {
            let a = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            seen[s.worker((a, 40000), ep("8.8.8.8", 53))] += 1;
        }
        assert_eq!(seen[2], 0, "{seen:?}");
        for (n, want) in [(seen[0], 3000), (seen[1], 1000), (seen[3], 4000)] {
            assert!(n.abs_diff(want) < want / 8, "{seen:?}");
        }
    }

    #[test]
    fn hosts_spread_over_all_workers() {
        let s = Sharder::new(Vec::new(), 4);
        let mut seen = [0usize; 4];
        for i in 0..4000u32 {
            let a = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            seen[s.worker((a, 40000), ep("8.8.8.8", 53))] += 1;
        }
        for n in seen {
            assert!((800..1200).contains(&n), "{seen:?}");
        }
    }
}
