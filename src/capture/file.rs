//! One capture file: format detection by magic number, memory map or gzip
//! stream, and a cursor over its frames. Also finds the captures inside
//! directories.

use super::pcap::{self, Located, PcapHeader};
use super::pcapng::{self, PcapNgState};
use super::window::Window;
use super::{CaptureError, Frame};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The container format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// libpcap "classic" format.
    Pcap,
    /// pcapng.
    PcapNg,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

enum Parser {
    Pcap(PcapHeader),
    PcapNg(PcapNgState),
}

/// An open capture file positioned on a frame (after [`CaptureFile::advance`]).
pub struct CaptureFile {
    path: PathBuf,
    format: Format,
    compressed: bool,
    window: Window,
    parser: Parser,
    current: Option<Located>,
    /// Bytes of the file on disk consumed so far, for gzip streams.
    disk_read: Option<Arc<AtomicU64>>,
    frames: u64,
}

/// Counts the bytes a reader hands out (compressed bytes, for progress).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl CaptureFile {
    /// Opens a capture, detecting pcap, pcapng and gzip by their magic
    /// numbers. `-` reads standard input.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let (window, compressed, disk_read) = if path == Path::new("-") {
            let (w, gz) = Self::stream_window(Box::new(io::stdin()))?;
            (w, gz, None)
        } else {
            let file = File::open(path).map_err(CaptureError::Open)?;
            let mut magic = [0u8; 2];
            let n = (&file).read(&mut magic).map_err(CaptureError::Open)?;
            let is_regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            if n == 2 && magic == GZIP_MAGIC || !is_regular {
                let file = File::open(path).map_err(CaptureError::Open)?;
                let count = Arc::new(AtomicU64::new(0));
                let counted = Counting {
                    inner: file,
                    count: Arc::clone(&count),
                };
                let (w, gz) = Self::stream_window(Box::new(counted))?;
                (w, gz, Some(count))
            } else {
                (
                    Window::map_file(&file).map_err(CaptureError::Open)?,
                    false,
                    None,
                )
            }
        };
        Self::from_window(path.to_path_buf(), window, compressed, disk_read)
    }

    /// Builds a capture over an in-memory byte stream (tests, fuzzing).
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let (window, compressed) = Self::stream_window(reader)?;
        Self::from_window(PathBuf::from(name), window, compressed, None)
    }

    /// Wraps a byte stream in a window, decompressing it when it is gzip.
    fn stream_window(reader: Box<dyn Read + Send>) -> Result<(Window, bool), CaptureError> {
        let mut buffered = BufReader::with_capacity(64 * 1024, reader);
        let head = buffered.fill_buf().map_err(CaptureError::Open)?;
        if head.starts_with(&GZIP_MAGIC) {
            Ok((
                Window::stream(Box::new(MultiGzDecoder::new(buffered))),
                true,
            ))
        } else {
            Ok((Window::stream(Box::new(buffered)), false))
        }
    }

    fn from_window(
        path: PathBuf,
        mut window: Window,
        compressed: bool,
        disk_read: Option<Arc<AtomicU64>>,
    ) -> Result<Self, CaptureError> {
        let have = window
            .fill(4)
            .map_err(|source| CaptureError::Read { offset: 0, source })?;
        let mut magic = [0u8; 4];
        if have >= 4 {
            magic.copy_from_slice(&window.bytes()[..4]);
        }
        let (format, parser) = if have >= 4 && pcap::is_magic(magic) {
            (Format::Pcap, Parser::Pcap(pcap::read_header(&mut window)?))
        } else if have >= 4 && pcapng::is_magic(magic) {
            (Format::PcapNg, Parser::PcapNg(PcapNgState::default()))
        } else {
            return Err(CaptureError::UnknownFormat {
                magic: window.bytes().iter().take(4).copied().collect(),
            });
        };
        Ok(CaptureFile {
            path,
            format,
            compressed,
            window,
            parser,
            current: None,
            disk_read,
            frames: 0,
        })
    }

    /// Moves to the next frame. `Ok(false)` at the end of the file; after an
    /// error the file should not be read further.
    #[inline]
    pub fn advance(&mut self) -> Result<bool, CaptureError> {
        if let Some(done) = self.current.take() {
            self.window.consume(done.consume);
        }
        self.current = match &mut self.parser {
            Parser::Pcap(h) => pcap::next_record(&mut self.window, h)?,
            Parser::PcapNg(st) => st.next_record(&mut self.window)?,
        };
        if self.current.is_some() {
            self.frames += 1;
        }
        Ok(self.current.is_some())
    }

    /// The frame the cursor is on, if any.
    #[inline]
    pub fn frame(&self) -> Option<Frame<'_>> {
        let loc = self.current.as_ref()?;
        Some(Frame {
            ts: loc.ts,
            linktype: loc.linktype,
            data: self.window.bytes().get(loc.data.clone())?,
            orig_len: loc.orig_len,
            mapped: self.window.shared(),
        })
    }

    /// The path given to [`CaptureFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the file is gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of the file on disk consumed so far (for progress reporting).
    pub fn disk_offset(&self) -> u64 {
        match &self.disk_read {
            Some(c) => c.load(Ordering::Relaxed),
            None => self.window.offset(),
        }
    }
}

/// Whether a file starts like a capture (pcap, pcapng, or gzip of either).
fn looks_like_capture(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    if head[..2] == GZIP_MAGIC {
        let Ok(f) = File::open(path) else {
            return false;
        };
        let mut inner = [0u8; 4];
        return MultiGzDecoder::new(f).read_exact(&mut inner).is_ok()
            && (pcap::is_magic(inner) || pcapng::is_magic(inner));
    }
    pcap::is_magic(head) || pcapng::is_magic(head)
}

/// Expands the command-line inputs: files are kept as given (a file that is
/// not a capture is reported when it is opened); directories are walked
/// recursively, in name order, keeping files whose magic number is a capture's
/// and skipping hidden entries.
pub fn find_captures(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, (PathBuf, io::Error)> {
    let mut out = Vec::new();
    for input in inputs {
        if input == Path::new("-") {
            out.push(input.clone());
            continue;
        }
        let meta = std::fs::metadata(input).map_err(|e| (input.clone(), e))?;
        if meta.is_dir() {
            walk(input, &mut out)?;
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), (PathBuf, io::Error)> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| (dir.to_path_buf(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() && looks_like_capture(&p) {
            out.push(p);
        }
    }
    Ok(())
}
