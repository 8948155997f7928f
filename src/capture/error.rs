//! Errors from reading capture files. Each one names the byte offset where the
//! file stopped making sense; the file name is added by the caller.

use std::io;
use thiserror::Error;

/// Why a capture file could not be read (further).
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened or mapped.
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    /// Reading failed part-way (I/O error or broken compression).
    #[error("read error at byte {offset}: {source}")]
    Read {
        /// Offset (in the decompressed stream) where reading failed.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The first bytes are not a known capture format.
    #[error("not a pcap or pcapng file (first bytes {magic:02x?})")]
    UnknownFormat {
        /// The first (up to four) bytes of the file.
        magic: Vec<u8>,
    },
    /// The file ends inside a header or record.
    #[error("file ends inside {what} at byte {offset}: {have} of {need} bytes present")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        need: u64,
        /// Bytes the file still has.
        have: u64,
    },
    /// A header or record holds impossible values.
    #[error("corrupt {what} at byte {offset}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
}

impl CaptureError {
    /// The byte offset the error refers to, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Open(_) | CaptureError::UnknownFormat { .. } => Some(0),
            CaptureError::Read { offset, .. }
            | CaptureError::Truncated { offset, .. }
            | CaptureError::Corrupt { offset, .. } => Some(*offset),
        }
    }

    pub(crate) fn corrupt(what: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        CaptureError::Corrupt {
            what,
            offset,
            detail: detail.into(),
        }
    }
}
