//! A read window over a capture file's bytes: the whole file memory-mapped, or a
//! bounded buffer refilled from a stream (gzip, stdin).
//!
//! The container parsers ask for "at least `n` bytes from the current position",
//! look at them through [`Window::bytes`], and then [`Window::consume`] what they
//! used. For a mapped file this is free; for a stream the buffer is compacted and
//! refilled, and never grows beyond the largest record the parser accepts plus
//! one refill chunk, so memory stays bounded whatever the input claims.
//!
//! A mapped file is read once, front to back: the kernel is told so (read
//! ahead) and asked for huge pages (a file read from disk is then cached
//! and mapped in 2 MiB pieces), and the pages behind the position are
//! dropped from the process every [`RELEASE_EVERY`] bytes, in whole huge
//! pages, so a 100 GB capture does not count as 100 GB of resident memory
//! (the pages stay in the page cache).
//!
//! This module holds the capture stage's only `unsafe` code: mapping the file
//! ([`Window::map_file`]) and dropping pages behind the position
//! ([`release`]); `lib.rs` lists the few other places allowed `unsafe`,
//! and every other module is compiled with `forbid(unsafe_code)`.

use memmap2::Mmap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes read from a stream in one refill call.
const REFILL_CHUNK: usize = 256 * 1024;

/// A mapped file's pages behind the position are released in steps this big.
pub(crate) const RELEASE_EVERY: usize = 64 * 1024 * 1024;

/// Pages this close behind the position are kept: the frame handed out
/// last lies there (a record is at most 4 MiB), and so do the frames other
/// threads still read through a [`SharedMap`] (the pipeline bounds how far
/// behind they may lag by this).
pub(crate) const KEEP_BEHIND: usize = 8 * 1024 * 1024;

/// A mapped file's page tables are filled ahead of the position in steps
/// this big (MADV_POPULATE_READ, Linux 5.14+): one call maps 4 MiB of
/// cached pages, where touching them would take one page fault per few
/// pages (measured: page faults were 5 % of the analysis's CPU time).
const POPULATE_CHUNK: usize = 4 * 1024 * 1024;

/// A mapped file's bytes are loaded into the CPU cache this far ahead of
/// the position (a few records), so reading a record header does not wait
/// for memory: the hardware prefetcher stops at each 4 KiB page, where the
/// next record's first read would otherwise miss (measured: 40 % of the
/// record reader's time sat on that one load).
const CACHE_AHEAD: usize = 2048;

/// Alignment of the ranges released (a multiple of every Linux page size,
/// and the size of a huge page: releasing part of one would split its
/// mapping into 4 KiB entries).
const PAGE: usize = 2 * 1024 * 1024;

/// A memory-mapped capture file, shared with the threads that still read
/// frames out of it (the pipeline's workers get offsets into it instead of
/// copies). The mapping lives until the last clone is dropped.
#[derive(Clone, Debug)]
pub struct SharedMap(Arc<MapShare>);

#[derive(Debug)]
struct MapShare {
    map: Mmap,
    /// The reader dropped the pages before this offset from the process.
    released: AtomicUsize,
}

impl SharedMap {
    fn new(map: Mmap) -> Self {
        SharedMap(Arc::new(MapShare {
            map,
            released: AtomicUsize::new(0),
        }))
    }

    fn map(&self) -> &Mmap {
        &self.0.map
    }

    /// A map of a temporary file holding `bytes`.
    #[cfg(test)]
    pub(crate) fn for_test(bytes: &[u8]) -> Self {
        use std::io::Write;
        let mut f = tempfile::tempfile().expect("temporary file");
        f.write_all(bytes).expect("write");
        #[allow(unsafe_code)]
        // SAFETY: a private temporary file nobody else can truncate.
        let map = unsafe { Mmap::map(&f).expect("map") };
        Self::new(map)
    }

    /// Where `part` lies in the map, if it lies wholly inside it.
    pub fn locate(&self, part: &[u8]) -> Option<Range<usize>> {
        let start = (part.as_ptr() as usize).checked_sub(self.map().as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= self.map().len()).then_some(start..end)
    }

    /// The bytes at `range`, if it lies inside the map.
    pub fn get(&self, range: Range<usize>) -> Option<&[u8]> {
        self.map().get(range)
    }

    /// Whether both are the same mapping.
    pub fn same(&self, other: &SharedMap) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Drops again the pages of `range` that lie behind the part the
    /// reader released: a thread that read them after the reader passed
    /// faulted them back in, and without this they would stay resident
    /// until the file is closed.
    pub fn release_behind(&self, range: Range<usize>) {
        let line = self.0.released.load(Ordering::Acquire);
        if range.start < line {
            let from = range.start / PAGE * PAGE;
            let to = range.end.div_ceil(PAGE).saturating_mul(PAGE).min(line);
            release(self.map(), from, to);
        }
    }
}

/// The bytes of one capture file, seen from a moving position.
pub(crate) enum Window {
    /// A regular file mapped into memory: every byte is always available.
    Mapped {
        map: SharedMap,
        pos: usize,
        /// Bytes before this offset were released from the process.
        released: usize,
        /// Page tables are filled up to this offset.
        populated: usize,
        /// Bytes up to this offset were prefetched into the CPU cache.
        cached: usize,
    },
    /// A byte stream read through a bounded buffer.
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        /// File offset of `buf[start]`.
        offset: u64,
        eof: bool,
    },
}

impl Window {
    /// Maps a regular file read-only.
    #[allow(unsafe_code)]
    pub(crate) fn map_file(file: &File) -> io::Result<Self> {
        // SAFETY: `Mmap::map` is unsafe because the mapped bytes may change
        // underneath us, which Rust's `&[u8]` rules forbid. What makes it
        // sound here:
        // - The map is read-only (PROT_READ, MAP_SHARED: we never write
        //   through it) and lives inside this `Window`: every slice handed
        //   out borrows `&self`, so no reference outlives the map (the borrow
        //   checker enforces it; `CaptureFile::frame` ties frames to `&self`).
        // - Only the length seen at open time is mapped. A capture still being
        //   appended to (`tcpdump -w`) is safe: new bytes are simply not seen.
        // - The parsers never trust the bytes: a record that changes between
        //   two reads is just another malformed record (all reads are
        //   bounds-checked, none is cached as an invariant).
        // The one remaining hazard is another process *truncating* the file
        // while it is mapped (an in-place overwrite, `logrotate
        // copytruncate`): reading a page past the new end raises SIGBUS and
        // the process dies (no memory is corrupted). `CaptureFile::open`
        // only maps regular files (pipes, devices and gzip go through the
        // bounded stream window), and README's Limitations tell users not to
        // analyse a capture that is being truncated; `-` (standard input)
        // reads any file without a map.
        let map = unsafe { Mmap::map(file) }?;
        Ok(Self::mapped(map))
    }

    /// A window over a map (made by [`Window::map_file`], or by a test).
    pub(crate) fn mapped(map: Mmap) -> Self {
        // Only hints: reading works the same if the kernel ignores them.
        let _ = map.advise(memmap2::Advice::Sequential);
        // Pages read from disk through this map go into the page cache as
        // 2 MiB folios, which the kernel then maps one table entry each:
        // mapping and unmapping a GiB cached in 4 KiB pages took 0.2-0.3 s
        // of kernel time (10-15 % of a one-thread analysis), 0.02 s in huge
        // folios. A file already cached in small pages stays so.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        let populated = populate(&map, 0);
        Window::Mapped {
            map: SharedMap::new(map),
            pos: 0,
            released: 0,
            populated,
            cached: 0,
        }
    }

    pub(crate) fn stream(reader: Box<dyn Read + Send>) -> Self {
        Window::Stream {
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Offset in the (decompressed) file of the current position.
    pub(crate) fn offset(&self) -> u64 {
        match self {
            Window::Mapped { pos, .. } => *pos as u64,
            Window::Stream { offset, .. } => *offset,
        }
    }

    /// Makes at least `need` bytes available from the current position, unless
    /// the input ends first. Returns how many bytes are available (which is less
    /// than `need` only at the end of the input).
    #[inline]
    pub(crate) fn fill(&mut self, need: usize) -> io::Result<usize> {
        match self {
            Window::Mapped { map, pos, .. } => Ok(map.map().len().saturating_sub(*pos)),
            Window::Stream { .. } => self.refill(need),
        }
    }

    /// [`Window::fill`] for a stream (out of line: a mapped file, the
    /// common case, is one subtraction per record).
    #[inline(never)]
    fn refill(&mut self, need: usize) -> io::Result<usize> {
        let Window::Stream {
            reader,
            buf,
            start,
            end,
            eof,
            ..
        } = self
        else {
            return Ok(self.bytes().len());
        };
        while *end - *start < need && !*eof {
            if *start > 0 {
                buf.copy_within(*start..*end, 0);
                *end -= *start;
                *start = 0;
            }
            let want = need.max(REFILL_CHUNK);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match reader.read(&mut buf[*end..]) {
                Ok(0) => *eof = true,
                Ok(n) => *end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*end - *start)
    }

    /// The bytes available from the current position (see [`Window::fill`]).
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Window::Mapped { map, pos, .. } => map.map().get(*pos..).unwrap_or(&[]),
            Window::Stream {
                buf, start, end, ..
            } => buf.get(*start..*end).unwrap_or(&[]),
        }
    }

    /// The mapping, if the window is one (frames from it can be shared).
    pub(crate) fn shared(&self) -> Option<&SharedMap> {
        match self {
            Window::Mapped { map, .. } => Some(map),
            Window::Stream { .. } => None,
        }
    }

    /// Moves the position forward by `n` bytes (at most the available ones).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        match self {
            Window::Mapped {
                map,
                pos,
                released,
                populated,
                cached,
            } => {
                let bytes: &[u8] = map.map();
                *pos = (*pos + n).min(bytes.len());
                let ahead = pos.saturating_add(CACHE_AHEAD).min(bytes.len());
                if *cached < ahead {
                    let from = (*cached).max(*pos);
                    crate::prefetch::bytes(bytes.get(from..ahead).unwrap_or_default());
                    *cached = ahead;
                }
                if *pos + POPULATE_CHUNK / 2 >= *populated
                    || *pos >= *released + RELEASE_EVERY + KEEP_BEHIND
                {
                    self.map_ahead_and_release_behind();
                }
            }
            Window::Stream {
                start, end, offset, ..
            } => {
                let n = n.min(*end - *start);
                *start += n;
                *offset += n as u64;
            }
        }
    }

    /// [`Window::consume`]'s page work on a mapped file, every few MiB:
    /// fills the page tables ahead of the position and drops the pages
    /// far behind it.
    #[inline(never)]
    fn map_ahead_and_release_behind(&mut self) {
        let Window::Mapped {
            map,
            pos,
            released,
            populated,
            ..
        } = self
        else {
            return;
        };
        let share = &*map.0;
        if *pos + POPULATE_CHUNK / 2 >= *populated {
            *populated = populate(&share.map, *populated);
        }
        if *pos >= *released + RELEASE_EVERY + KEEP_BEHIND {
            let upto = (*pos - KEEP_BEHIND) / PAGE * PAGE;
            release(&share.map, *released, upto);
            *released = upto;
            share.released.store(upto, Ordering::Release);
        }
    }
}

/// Fills the page tables of the next [`POPULATE_CHUNK`] bytes of `map`
/// from `from` and returns where that chunk ends. Only a hint: on older
/// kernels (or any failure) the pages are faulted in on access as usual.
fn populate(map: &Mmap, from: usize) -> usize {
    let to = from.saturating_add(POPULATE_CHUNK).min(map.len());
    if to > from {
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::PopulateRead, from, to - from);
    }
    to
}

/// Drops the pages of `map[from..to]` from the process (not from the page
/// cache). Failure only leaves them resident.
#[allow(unsafe_code)]
fn release(map: &Mmap, from: usize, to: usize) {
    if to <= from || to > map.len() {
        return;
    }
    // SAFETY: the map is a read-only mapping of a regular file
    // (`Window::map_file`). MADV_DONTNEED on it only unmaps the pages; any later
    // access faults them back in from the file with the same contents, so no
    // reference into the range can observe a change (the file itself
    // changing under us is the general mmap caveat documented at
    // `map_file`). `from` is a multiple of PAGE and `to <= map.len()` is
    // checked above, so the range lies inside the map.
    let _ =
        unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call, to exercise refills.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.get(self.1), out.first_mut()) {
                (Some(b), Some(o)) => {
                    *o = *b;
                    self.1 += 1;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn stream_window_refills_and_tracks_offsets() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut w = Window::stream(Box::new(Trickle(data.clone(), 0)));
        assert_eq!(w.fill(10).unwrap(), 10);
        assert_eq!(&w.bytes()[..10], &data[..10]);
        w.consume(7);
        assert_eq!(w.offset(), 7);
        assert!(w.fill(500).unwrap() >= 500);
        assert_eq!(w.bytes()[0], data[7]);
        w.consume(490);
        assert_eq!(w.offset(), 497);
        assert_eq!(w.fill(600).unwrap(), 503, "only 503 bytes are left");
        assert_eq!(w.bytes(), &data[497..]);
    }

    #[test]
    fn a_mapped_file_releases_pages_behind_and_still_reads_them_back() {
        use std::io::Write;
        let len = RELEASE_EVERY + KEEP_BEHIND + 4 * 1024 * 1024;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a private temporary file nobody else can truncate.
        let map = unsafe { Mmap::map(&f).unwrap() };
        let mut w = Window::mapped(map);
        let step = 1024 * 1024;
        while w.fill(1).unwrap() > 0 {
            assert_eq!(w.bytes()[0], data[w.offset() as usize]);
            w.consume(step);
        }
        let Window::Mapped { map, released, .. } = &w else {
            panic!("mapped")
        };
        assert!(*released >= RELEASE_EVERY, "released {released}");
        assert_eq!(released % PAGE, 0);
        // Released pages fault back in with the file's bytes.
        assert_eq!(&map.map()[..4096], &data[..4096]);
        assert_eq!(map.map()[*released - 1], data[*released - 1]);
        let tail = &map.map()[*released - 10..*released];
        let at = map.locate(tail).unwrap();
        assert_eq!(at, *released - 10..*released);
        assert_eq!(map.get(at).unwrap(), &data[*released - 10..*released]);
        assert_eq!(map.locate(&data[..4]), None, "not in the map");
        // Another thread's late read faults a page back in; releasing it
        // again leaves the bytes readable.
        assert_eq!(map.get(100..104).unwrap(), &data[100..104]);
        map.release_behind(100..104);
        map.release_behind(*released - 10..*released + 10);
        assert_eq!(map.get(100..104).unwrap(), &data[100..104]);
    }
}
