//! Passive DNS: which name a client was given for an address, remembered
//! from DNS answers seen on the wire, so that a later connection to the bare
//! address (no SNI, no Host header) is still attributed to the name.
//!
//! Only answers whose name (or a CNAME in their chain) matches a feed are
//! kept. Entries are per (address, client): the client that resolved the name is
//! the one expected to connect. A lookup prefers the same client's entry and
//! falls back to another client's answer received over UDP (a forwarder may
//! resolve on the client's behalf; answers over TCP are not shared, as the
//! parallel pipeline cannot share them deterministically). Entries live for the answer's TTL (clamped to
//! [[`MIN_TTL`], [`MAX_TTL`]]) plus a grace period, since clients keep using
//! addresses after the TTL. The table has a hard cap; the oldest entries go
//! first. At most [`PER_ADDRESS`] clients are remembered per address.

use crate::capture::Timestamp;
use crate::feeds::RuleId;
use foldhash::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

/// Shortest lifetime given to an answer (seconds).
pub const MIN_TTL: i64 = 60;
/// Longest lifetime given to an answer (seconds).
pub const MAX_TTL: i64 = 86_400;
/// Clients remembered per address.
pub const PER_ADDRESS: usize = 4;

/// Limits of the passive DNS table.
#[derive(Debug, Clone, Copy)]
pub struct PdnsLimits {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Seconds an entry outlives its TTL.
    pub grace_secs: i64,
}

impl Default for PdnsLimits {
    fn default() -> Self {
        PdnsLimits {
            max_entries: 500_000,
            grace_secs: 3600,
        }
    }
}

/// What an address was resolved from.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The name asked for (or the CNAME in the chain that matched a feed).
    pub name: Arc<str>,
    /// The feed rule that name matches, if any.
    pub rule: Option<RuleId>,
    /// Whether other clients may fall back to it: answers that came over
    /// UDP, which every worker of the pipeline learns (answers over TCP stay
    /// with the worker that reassembled them, so only their client uses them).
    pub shared: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    client: IpAddr,
    resolution: Resolution,
    seen: Timestamp,
    expires: Timestamp,
}

/// The passive DNS table.
#[derive(Debug, Default)]
pub struct PassiveDns {
    limits: PdnsLimits,
    by_addr: HashMap<IpAddr, Vec<Entry>>,
    entries: usize,
    order: VecDeque<(IpAddr, IpAddr, Timestamp)>,
    /// Entries dropped to respect the cap.
    pub evicted: u64,
}

impl PassiveDns {
    /// Translates the rule ids of every entry to new feeds (SIGHUP).
    pub fn remap(&mut self, remap: &crate::feeds::Remap) {
        for e in self.by_addr.values_mut().flatten() {
            e.resolution.rule = e.resolution.rule.and_then(|r| remap.rule(r));
        }
    }

    /// An empty table with the given limits.
    pub fn new(limits: PdnsLimits) -> Self {
        PassiveDns {
            limits,
            ..Default::default()
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Remembers that `client` was told `addr` for `resolution`.
    pub fn insert(
        &mut self,
        now: Timestamp,
        client: IpAddr,
        addr: IpAddr,
        ttl: u32,
        resolution: Resolution,
    ) {
        let life = i64::from(ttl).clamp(MIN_TTL, MAX_TTL) + self.limits.grace_secs;
        let expires = now.plus_secs(life);
        let list = self.by_addr.entry(addr).or_default();
        if let Some(e) = list.iter_mut().find(|e| e.client == client) {
            e.resolution = resolution;
            e.seen = now;
            e.expires = expires;
        } else {
            if list.len() >= PER_ADDRESS
                && let Some(oldest) = list
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.seen)
                    .map(|(i, _)| i)
            {
                list.swap_remove(oldest);
                self.entries -= 1;
            }
            list.push(Entry {
                client,
                resolution,
                seen: now,
                expires,
            });
            self.entries += 1;
        }
        self.order.push_back((addr, client, now));
        self.shrink();
    }

    /// Drops the oldest entries while over the cap (and stale order marks).
    fn shrink(&mut self) {
        while self.entries > self.limits.max_entries
            || self.order.len() > 2 * self.limits.max_entries.max(1)
        {
            let Some((addr, client, seen)) = self.order.pop_front() else {
                break;
            };
            let Some(list) = self.by_addr.get_mut(&addr) else {
                continue;
            };
            let Some(i) = list
                .iter()
                .position(|e| e.client == client && e.seen == seen)
            else {
                continue;
            };
            if self.entries > self.limits.max_entries {
                list.swap_remove(i);
                self.entries -= 1;
                self.evicted += 1;
                if list.is_empty() {
                    self.by_addr.remove(&addr);
                }
            } else {
                // Over the order-queue bound only: keep the entry, re-mark it.
                self.order.push_back((addr, client, seen));
                break;
            }
        }
    }

    /// What `client` (or, failing that, anyone, from a shared answer)
    /// resolved `addr` from, if the answer is still valid at `now`.
    pub fn lookup(&self, now: Timestamp, client: IpAddr, addr: IpAddr) -> Option<&Resolution> {
        let list = self.by_addr.get(&addr)?;
        let live = |e: &&Entry| e.expires >= now && e.seen <= now;
        list.iter()
            .filter(live)
            .find(|e| e.client == client)
            .or_else(|| {
                list.iter()
                    .filter(live)
                    .filter(|e| e.resolution.shared)
                    .max_by_key(|e| e.seen)
            })
            .map(|e| &e.resolution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str) -> Resolution {
        Resolution {
            name: name.into(),
            rule: None,
            shared: true,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefers_the_same_client_and_expires_after_ttl_and_grace() {
        let mut p = PassiveDns::new(PdnsLimits {
            max_entries: 100,
            grace_secs: 10,
        });
        let t0 = Timestamp(0);
        p.insert(t0, ip("10.0.0.1"), ip("1.2.3.4"), 300, res("a.example"));
        p.insert(
            t0.plus_secs(5),
            ip("10.0.0.2"),
            ip("1.2.3.4"),
            300,
            res("b.example"),
        );
        let now = t0.plus_secs(100);
        assert_eq!(
            &*p.lookup(now, ip("10.0.0.1"), ip("1.2.3.4")).unwrap().name,
            "a.example"
        );
        assert_eq!(
            &*p.lookup(now, ip("10.0.0.9"), ip("1.2.3.4")).unwrap().name,
            "b.example",
            "most recent other client"
        );
        let after_a = p.lookup(t0.plus_secs(311), ip("10.0.0.1"), ip("1.2.3.4"));
        assert_eq!(
            after_a.map(|r| &*r.name),
            Some("b.example"),
            "a expired at 310, b lives to 315"
        );
        assert!(
            p.lookup(t0.plus_secs(400), ip("10.0.0.1"), ip("1.2.3.4"))
                .is_none()
        );
    }

    #[test]
    fn the_cap_holds_under_a_flood_of_answers() {
        let mut p = PassiveDns::new(PdnsLimits {
            max_entries: 1000,
            grace_secs: 0,
        });
        for i in 0..100_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            p.insert(Timestamp(i64::from(i)), ip("10.0.0.1"), addr, 60, res("x"));
            assert!(p.len() <= 1000);
        }
        assert_eq!(p.evicted, 99_000);
        let last = IpAddr::from(99_999u32.to_be_bytes());
        assert!(p.lookup(Timestamp(100_000), ip("10.0.0.1"), last).is_some());
    }
}
