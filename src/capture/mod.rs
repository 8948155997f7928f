//! Capture: turns capture files into a stream of timestamped link-layer frames.
//!
//! This stage owns everything about files: finding captures in directories,
//! recognising pcap / pcapng / gzip by their magic numbers (never by extension),
//! reading records zero-copy from a memory map or through a bounded stream
//! buffer, and merging several files into one timeline ([`Timeline`]).
//!
//! Promises: a frame's bytes are borrowed from the reader and never copied; a
//! record length claimed by the file is checked against [`MAX_RECORD_LEN`]
//! before any byte is read; a damaged file yields a [`CaptureError`] naming the
//! byte offset, after which that file stops and every frame read before it
//! stays delivered.

#[forbid(unsafe_code)]
mod error;
#[forbid(unsafe_code)]
mod file;
#[forbid(unsafe_code)]
mod pcap;
#[forbid(unsafe_code)]
mod pcapng;
#[forbid(unsafe_code)]
mod timeline;
/// The only module allowed `unsafe` (the memory map; see its SAFETY note).
mod window;

pub use error::CaptureError;
pub use file::{CaptureFile, Format, find_captures};
pub use timeline::{InputFailure, Timeline};
pub(crate) use window::KEEP_BEHIND;
pub use window::SharedMap;

/// The largest packet record accepted (4 MiB). Real snap lengths stop at
/// 262 144 bytes; GRO/BIG TCP frames stay below 512 KiB. Anything larger is
/// treated as corruption instead of being buffered.
pub const MAX_RECORD_LEN: usize = 4 * 1024 * 1024;

/// The largest non-packet pcapng block accepted (16 MiB), e.g. a name
/// resolution block. Larger claims are treated as corruption.
pub const MAX_BLOCK_LEN: usize = 16 * 1024 * 1024;

/// Link-layer header types (tcpdump.org LINKTYPE_* values) that decode knows.
pub mod linktype {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3.
    pub const ETHERNET: u32 = 1;
    /// Raw IP on OpenBSD (DLT_RAW there).
    pub const RAW_OPENBSD: u32 = 12;
    /// Raw IP (DLT_RAW on some systems).
    pub const RAW_14: u32 = 14;
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux netfilter NFLOG messages.
    pub const NFLOG: u32 = 239;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// A point in time: nanoseconds since the Unix epoch (UTC).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and nanoseconds, saturating on overflow
    /// (hostile files may hold any value).
    pub fn from_parts(secs: i64, nanos: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Seconds as a float, for interval arithmetic.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self - earlier`, in seconds (negative when `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / 1e9
    }

    /// This timestamp moved by `secs` seconds (saturating).
    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1_000_000_000)))
    }
}

/// One captured frame, borrowed from its reader until the next frame is read.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// When the frame was captured.
    pub ts: Timestamp,
    /// The LINKTYPE_* value of the interface it was captured on.
    pub linktype: u32,
    /// The captured bytes (possibly cut short by the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// The mapped file `data` lies in, if it was read from one: other
    /// threads may then refer to its bytes instead of copying them.
    pub mapped: Option<&'a SharedMap>,
}

/// Reads a `u16` in the file's byte order (0 past the end: callers check
/// lengths first; this only keeps a missed check from panicking).
pub(crate) fn rd16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    match (crate::bytes::be16(b, at), crate::bytes::le16(b, at)) {
        (Some(v), _) if big_endian => v,
        (_, Some(v)) if !big_endian => v,
        _ => 0,
    }
}

/// Reads a `u32` in the file's byte order (0 past the end, as [`rd16`]).
pub(crate) fn rd32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    match crate::bytes::be32(b, at) {
        Some(v) if big_endian => v,
        Some(v) => v.swap_bytes(),
        None => 0,
    }
}
