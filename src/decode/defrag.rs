//! Bounded reassembly of IPv4 and IPv6 fragments.
//!
//! Datagrams in progress are keyed by (source, destination, identification,
//! protocol). Overlapping data keeps the bytes that arrived first (the BSD
//! policy; Linux differs only for exact duplicates, which are harmless here).
//! Hard caps: [`DefragLimits`] bounds the datagrams in flight, their total
//! bytes and their age; the oldest datagram is dropped to make room, so a
//! flood of fragments that never complete costs a fixed amount of memory.

use super::{Fragment, LinkInfo};
use crate::capture::Timestamp;
use foldhash::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Largest reassembled datagram: the IPv4 and IPv6 (non-jumbo) limit.
const MAX_DATAGRAM: u32 = 65_535;

/// At most this many fragments per datagram (a real one has a handful;
/// the cap bounds the per-datagram bookkeeping).
const MAX_FRAGMENTS: usize = 64;

/// Limits of the reassembler.
#[derive(Debug, Clone, Copy)]
pub struct DefragLimits {
    /// Datagrams reassembled at once.
    pub max_datagrams: usize,
    /// Bytes buffered across all of them.
    pub max_bytes: usize,
    /// A datagram not completed within this many seconds is dropped
    /// (Linux's ipfrag_time default is 30).
    pub timeout_secs: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 4096,
            max_bytes: 32 * 1024 * 1024,
            timeout_secs: 30,
        }
    }
}

/// Counters of the reassembler.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped incomplete (timeout or to make room).
    pub dropped: u64,
    /// Fragments rejected (beyond 64 KiB, too many pieces, inconsistent end).
    pub rejected: u64,
}

impl DefragStats {
    /// Adds another reassembler's counters to these.
    pub fn merge(&mut self, o: &DefragStats) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.dropped += o.dropped;
        self.rejected += o.rejected;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Datagram {
    first_seen: Timestamp,
    link: LinkInfo,
    data: Vec<u8>,
    /// Received byte ranges, sorted and disjoint.
    have: Vec<(u32, u32)>,
    /// Total length, once the last fragment has arrived.
    total: Option<u32>,
}

impl Datagram {
    fn complete(&self) -> bool {
        matches!((self.total, self.have.as_slice()), (Some(t), [(0, end)]) if *end == t)
    }

    /// Copies the parts of `[start, end)` not yet received; returns the bytes added.
    fn insert(&mut self, start: u32, payload: &[u8]) -> usize {
        let end = start + payload.len() as u32;
        if self.data.len() < end as usize {
            self.data.resize(end as usize, 0);
        }
        let mut added = 0;
        let mut cursor = start;
        let mut gaps: [(u32, u32); MAX_FRAGMENTS + 1] = [(0, 0); MAX_FRAGMENTS + 1];
        let mut n = 0;
        for &(s, e) in &self.have {
            if e <= cursor || s >= end {
                continue;
            }
            if s > cursor && n < gaps.len() {
                gaps[n] = (cursor, s);
                n += 1;
            }
            cursor = cursor.max(e);
        }
        if cursor < end && n < gaps.len() {
            gaps[n] = (cursor, end);
            n += 1;
        }
        for &(s, e) in &gaps[..n] {
            let (from, to) = ((s - start) as usize, (e - start) as usize);
            if let (Some(dst), Some(src)) = (
                self.data.get_mut(s as usize..e as usize),
                payload.get(from..to),
            ) {
                dst.copy_from_slice(src);
                added += to - from;
            }
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
        added
    }
}

/// A reassembled datagram, borrowed from the reassembler until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Reassembled<'a> {
    /// VLAN/MAC of the first fragment.
    pub link: LinkInfo,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol.
    pub proto: u8,
    /// The whole upper-layer payload.
    pub payload: &'a [u8],
}

/// The fragment reassembler.
#[derive(Debug, Default)]
pub struct Defragmenter {
    limits: DefragLimits,
    table: HashMap<Key, Datagram>,
    /// Keys in arrival order, for eviction of the oldest.
    order: VecDeque<(Key, Timestamp)>,
    bytes: usize,
    done: Vec<u8>,
    stats: DefragStats,
}

impl Defragmenter {
    /// A reassembler with the given limits.
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            limits,
            ..Default::default()
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DefragStats {
        self.stats
    }

    /// Datagrams currently being reassembled.
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    fn remove(&mut self, key: &Key) -> Option<Datagram> {
        let d = self.table.remove(key)?;
        self.bytes -= d.data.capacity();
        Some(d)
    }

    /// Drops datagrams older than the timeout, and the oldest ones while the
    /// table is over its limits.
    fn evict(&mut self, now: Timestamp, room_for: usize) {
        while let Some(&(key, seen)) = self.order.front() {
            let current = self.table.get(&key).map(|d| d.first_seen);
            if current != Some(seen) {
                self.order.pop_front();
                continue;
            }
            let expired = now.secs_since(seen) > self.limits.timeout_secs as f64;
            let full = self.table.len() >= self.limits.max_datagrams
                || self.bytes + room_for > self.limits.max_bytes;
            if !(expired || full) {
                break;
            }
            self.order.pop_front();
            self.remove(&key);
            self.stats.dropped += 1;
        }
    }

    /// Adds a fragment. When it completes its datagram, returns the datagram.
    pub fn push(&mut self, now: Timestamp, f: &Fragment<'_>) -> Option<Reassembled<'_>> {
        self.stats.fragments += 1;
        let key = Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
        };
        let end = u64::from(f.offset) + f.payload.len() as u64;
        if end > u64::from(MAX_DATAGRAM) {
            self.stats.rejected += 1;
            return None;
        }
        let end = end as u32;
        if !self.table.contains_key(&key) {
            self.evict(now, end as usize);
            if self.table.len() >= self.limits.max_datagrams
                || self.bytes + end as usize > self.limits.max_bytes
            {
                self.stats.rejected += 1;
                return None;
            }
            self.table.insert(
                key,
                Datagram {
                    first_seen: now,
                    link: f.link,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                },
            );
            self.order.push_back((key, now));
        }
        let d = self.table.get_mut(&key)?;
        let consistent = match (d.total, f.more) {
            (Some(t), _) if end > t => false,
            (Some(t), false) => t == end,
            _ => true,
        };
        if !consistent || d.have.len() >= MAX_FRAGMENTS {
            self.stats.rejected += 1;
            self.remove(&key);
            return None;
        }
        if !f.more {
            d.total = Some(end);
        }
        let before = d.data.capacity();
        d.insert(f.offset, f.payload);
        let grown = d.data.capacity() - before;
        self.bytes += grown;
        if !d.complete() {
            return None;
        }
        let d = self.remove(&key)?;
        self.stats.reassembled += 1;
        self.done = d.data;
        Some(Reassembled {
            link: d.link,
            src: key.src,
            dst: key.dst,
            proto: key.proto,
            payload: &self.done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn frag(offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            link: LinkInfo::default(),
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 7,
            proto: 17,
            offset,
            more,
            payload,
        }
    }

    #[test]
    fn reassembles_out_of_order_and_keeps_first_bytes_on_overlap() {
        let t = Timestamp(0);
        let mut d2 = Defragmenter::new(DefragLimits::default());
        assert!(d2.push(t, &frag(8, true, b"XXXXXXXX")).is_none());
        assert!(d2.push(t, &frag(16, false, b"CCCC")).is_none());
        let r = d2
            .push(t, &frag(0, true, b"AAAAAAAABBBBBBBB"))
            .expect("complete");
        assert_eq!(r.payload, b"AAAAAAAAXXXXXXXXCCCC");
    }

    #[test]
    fn incomplete_datagrams_are_bounded_and_expire() {
        let limits = DefragLimits {
            max_datagrams: 10,
            max_bytes: 1 << 20,
            timeout_secs: 30,
        };
        let mut d = Defragmenter::new(limits);
        for i in 0..1000u32 {
            let mut f = frag(0, true, &[0u8; 64]);
            f.id = i;
            assert!(d.push(Timestamp(0), &f).is_none());
            assert!(d.in_flight() <= 10);
        }
        assert_eq!(d.stats().dropped, 990);
        let mut late = frag(0, true, &[0u8; 8]);
        late.id = 5000;
        d.push(Timestamp(31_000_000_000), &late);
        assert_eq!(d.in_flight(), 1, "every older datagram timed out");
    }

    #[test]
    fn rejects_datagrams_beyond_64k_and_inconsistent_ends() {
        let mut d = Defragmenter::new(DefragLimits::default());
        assert!(
            d.push(Timestamp(0), &frag(65_528, false, &[0u8; 16]))
                .is_none()
        );
        assert_eq!(d.stats().rejected, 1);
        assert!(d.push(Timestamp(0), &frag(0, false, &[0u8; 8])).is_some());
        assert!(d.push(Timestamp(0), &frag(8, false, &[0u8; 8])).is_none());
        assert!(d.push(Timestamp(0), &frag(24, false, &[0u8; 8])).is_none());
        assert_eq!(
            d.stats().rejected,
            2,
            "a second, different end is inconsistent"
        );
    }
}
