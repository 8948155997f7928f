//! A read window over a capture file's bytes: the whole file memory-mapped, or a
//! bounded buffer refilled from a stream (gzip, stdin).
//!
//! The container parsers ask for "at least `n` bytes from the current position",
//! look at them through [`Window::bytes`], and then [`Window::consume`] what they
//! used. For a mapped file this is free; for a stream the buffer is compacted and
//! refilled, and never grows beyond the largest record the parser accepts plus
//! one refill chunk, so memory stays bounded whatever the input claims.

use memmap2::Mmap;
use std::io::{self, Read};

/// Bytes read from a stream in one refill call.
const REFILL_CHUNK: usize = 256 * 1024;

/// The bytes of one capture file, seen from a moving position.
pub(crate) enum Window {
    /// A regular file mapped into memory: every byte is always available.
    Mapped { map: Mmap, pos: usize },
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
    pub(crate) fn mapped(map: Mmap) -> Self {
        Window::Mapped { map, pos: 0 }
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
    pub(crate) fn fill(&mut self, need: usize) -> io::Result<usize> {
        match self {
            Window::Mapped { map, pos } => Ok(map.len().saturating_sub(*pos)),
            Window::Stream {
                reader,
                buf,
                start,
                end,
                eof,
                ..
            } => {
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
        }
    }

    /// The bytes available from the current position (see [`Window::fill`]).
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Window::Mapped { map, pos } => map.get(*pos..).unwrap_or(&[]),
            Window::Stream {
                buf, start, end, ..
            } => buf.get(*start..*end).unwrap_or(&[]),
        }
    }

    /// Moves the position forward by `n` bytes (at most the available ones).
    pub(crate) fn consume(&mut self, n: usize) {
        match self {
            Window::Mapped { map, pos } => *pos = (*pos + n).min(map.len()),
            Window::Stream {
                start, end, offset, ..
            } => {
                let n = n.min(*end - *start);
                *start += n;
                *offset += n as u64;
            }
        }
    }
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
}
