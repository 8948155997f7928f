//! The classic libpcap file format: a 24-byte file header, then records of a
//! 16-byte header (seconds, micro- or nanoseconds, captured and original
//! length) and the frame bytes. Both byte orders, micro- and nanosecond
//! magic numbers, and the "modified" (Kuznetzov) variant with 24-byte record
//! headers are read.

use super::window::Window;
use super::{CaptureError, MAX_RECORD_LEN, Timestamp, rd32};

/// Length of the file header.
const FILE_HEADER_LEN: usize = 24;

/// Magic numbers as read little-endian from the first four bytes.
const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// Whether the four bytes start a pcap file (either byte order).
pub(crate) fn is_magic(b: [u8; 4]) -> bool {
    [MAGIC_MICRO, MAGIC_NANO, MAGIC_MODIFIED]
        .iter()
        .any(|m| u32::from_le_bytes(b) == *m || u32::from_be_bytes(b) == *m)
}

/// What the file header says about every record.
#[derive(Debug, Clone)]
pub(crate) struct PcapHeader {
    big_endian: bool,
    nanos: bool,
    record_header_len: usize,
    /// LINKTYPE_* of every record.
    pub(crate) linktype: u32,
}

/// One record located in the window; its bytes are `window.bytes()[data]`.
pub(crate) struct Located {
    pub(crate) ts: Timestamp,
    pub(crate) linktype: u32,
    pub(crate) data: std::ops::Range<usize>,
    pub(crate) orig_len: u32,
    /// Bytes to consume once the frame has been used.
    pub(crate) consume: usize,
}

fn fill(w: &mut Window, need: usize) -> Result<usize, CaptureError> {
    let offset = w.offset();
    w.fill(need)
        .map_err(|source| CaptureError::Read { offset, source })
}

#[cold]
fn truncated(what: &'static str, w: &Window, need: usize, have: usize) -> CaptureError {
    CaptureError::Truncated {
        what,
        offset: w.offset(),
        need: need as u64,
        have: have as u64,
    }
}

/// Reads and checks the file header.
pub(crate) fn read_header(w: &mut Window) -> Result<PcapHeader, CaptureError> {
    let have = fill(w, FILE_HEADER_LEN)?;
    if have < FILE_HEADER_LEN {
        return Err(truncated("pcap file header", w, FILE_HEADER_LEN, have));
    }
    let b = w.bytes();
    let le = rd32(b, 0, false);
    let (big_endian, magic) = if [MAGIC_MICRO, MAGIC_NANO, MAGIC_MODIFIED].contains(&le) {
        (false, le)
    } else {
        (true, rd32(b, 0, true))
    };
    let major = (rd32(b, 4, big_endian) & 0xffff) as u16;
    let minor = (rd32(b, 4, big_endian) >> 16) as u16;
    let (major, minor) = if big_endian {
        // In big-endian files the two u16 fields come out swapped by the u32 read.
        (minor, major)
    } else {
        (major, minor)
    };
    if major != 2 {
        return Err(CaptureError::corrupt(
            "pcap file header",
            4,
            format!("unsupported pcap version {major}.{minor} (only 2.x exists in practice)"),
        ));
    }
    let linktype = rd32(b, 20, big_endian) & 0xffff;
    w.consume(FILE_HEADER_LEN);
    Ok(PcapHeader {
        big_endian,
        nanos: magic == MAGIC_NANO,
        record_header_len: if magic == MAGIC_MODIFIED { 24 } else { 16 },
        linktype,
    })
}

/// A record header claims more bytes than any record may have.
#[cold]
fn oversize(w: &Window, caplen: usize) -> CaptureError {
    CaptureError::corrupt(
        "pcap record header",
        w.offset(),
        format!("captured length {caplen} exceeds the {MAX_RECORD_LEN}-byte limit"),
    )
}

/// Locates the next record, or `None` at a clean end of file.
#[inline]
pub(crate) fn next_record(w: &mut Window, h: &PcapHeader) -> Result<Option<Located>, CaptureError> {
    let hl = h.record_header_len;
    let have = fill(w, hl)?;
    if have == 0 {
        return Ok(None);
    }
    if have < hl {
        return Err(truncated("pcap record header", w, hl, have));
    }
    // Every record header starts with the same four words (the modified
    // format appends two more, ignored).
    let Some(
        &[
            s0,
            s1,
            s2,
            s3,
            f0,
            f1,
            f2,
            f3,
            c0,
            c1,
            c2,
            c3,
            o0,
            o1,
            o2,
            o3,
        ],
    ) = w.bytes().first_chunk::<16>()
    else {
        return Err(truncated("pcap record header", w, hl, have));
    };
    let word = |b: [u8; 4]| {
        if h.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let secs = word([s0, s1, s2, s3]);
    let frac = word([f0, f1, f2, f3]);
    let caplen = word([c0, c1, c2, c3]) as usize;
    let orig_len = word([o0, o1, o2, o3]);
    if caplen > MAX_RECORD_LEN {
        return Err(oversize(w, caplen));
    }
    let total = hl + caplen;
    let have = fill(w, total)?;
    if have < total {
        return Err(truncated("pcap record", w, total, have));
    }
    let nanos = if h.nanos {
        i64::from(frac)
    } else {
        i64::from(frac) * 1000
    };
    Ok(Some(Located {
        ts: Timestamp::from_parts(i64::from(secs), nanos),
        linktype: h.linktype,
        data: hl..total,
        orig_len,
        consume: total,
    }))
}
