//! A bounded, direct-mapped cache of per-server verdicts (ASN and watch),
//! so that the database is searched once per server and not once per
//! conversation: the same few servers carry most conversations.
//!
//! One slot per hash bucket, overwritten on collision: memory is fixed
//! ([`CACHE_SLOTS`] × ~40 bytes, allocated on first use), a hit costs one
//! hash and one comparison and allocates nothing. The hash is seeded, since
//! server addresses are chosen by whoever sends the packets; a collision
//! only costs a lookup.

use super::{Geo, Verdict};
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Slots in the cache (a power of two): ≈ 2.5 MB.
pub const CACHE_SLOTS: usize = 1 << 16;

/// Counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Verdicts asked for.
    pub lookups: u64,
    /// Answered from the cache.
    pub hits: u64,
    /// Database records that could not be decoded (treated as unknown).
    pub errors: u64,
}

impl CacheStats {
    /// Adds another engine's counters.
    pub fn merge(&mut self, other: &CacheStats) {
        self.lookups += other.lookups;
        self.hits += other.hits;
        self.errors += other.errors;
    }
}

/// The cache; one per engine (worker), not shared.
#[derive(Debug)]
pub struct GeoCache {
    slots: Vec<Option<(IpAddr, Verdict)>>,
    mask: usize,
    hasher: foldhash::fast::RandomState,
    /// Counters.
    pub stats: CacheStats,
}

impl Default for GeoCache {
    fn default() -> Self {
        Self::with_slots(CACHE_SLOTS)
    }
}

impl GeoCache {
    /// A cache of `slots` entries (rounded up to a power of two, at least 1).
    pub fn with_slots(slots: usize) -> Self {
        let n = slots.max(1).next_power_of_two();
        GeoCache {
            slots: Vec::new(),
            mask: n - 1,
            hasher: foldhash::fast::RandomState::default(),
            stats: CacheStats::default(),
        }
    }

    /// The verdict for `ip`, from the cache or the databases.
    pub fn verdict(&mut self, geo: &Geo, ip: IpAddr) -> Verdict {
        self.stats.lookups += 1;
        if self.slots.is_empty() {
            self.slots = vec![None; self.mask + 1];
        }
        let i = (self.hasher.hash_one(ip) as usize) & self.mask;
        if let Some(Some((k, v))) = self.slots.get(i)
            && *k == ip
        {
            self.stats.hits += 1;
            return *v;
        }
        let v = geo.verdict(ip);
        if v.error {
            self.stats.errors += 1;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((ip, v));
        }
        v
    }
}
