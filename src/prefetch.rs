//! Memory prefetch hints: start loading data the caller will read soon, so
//! that several cache misses overlap instead of each stalling the core in
//! turn (a flow table of a million conversations does not fit in any cache).
//! A hint never faults, changes no value and is a no-op where the CPU has no
//! such instruction; this module is the one place it is issued.

/// Starts loading `slice[i]` (every cache line of it) into the cache; does
/// nothing if `i` is out of bounds.
#[inline(always)]
pub fn element<T>(slice: &[T], i: usize) {
    lines(slice, i, usize::MAX);
}

/// Starts loading the first `n` cache lines of `slice[i]` (at most all of
/// it); does nothing if `i` is out of bounds.
#[inline(always)]
pub fn lines<T>(slice: &[T], i: usize, n: usize) {
    if let Some(e) = slice.get(i) {
        let start = std::ptr::from_ref(e).cast::<u8>();
        let end = std::mem::size_of::<T>().max(1).min(n.saturating_mul(64));
        let mut off = 0;
        while off < end {
            line(start.wrapping_add(off));
            off += 64;
        }
    }
}

/// Starts loading every cache line of `bytes`.
#[inline(always)]
pub fn bytes(bytes: &[u8]) {
    let mut off = 0;
    while off < bytes.len() {
        line(bytes.as_ptr().wrapping_add(off));
        off += 64;
    }
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not fault on any address, reads
    // no value into the program and writes nothing. `p` lies inside a live
    // slice element besides.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
