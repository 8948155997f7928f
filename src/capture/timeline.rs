//! Several capture files read as one timeline: a k-way merge on frame
//! timestamps. Files are opened lazily, when the merge reaches their first
//! timestamp, so a folder of a thousand hourly captures keeps only the
//! overlapping few open at once.

use super::file::CaptureFile;
use super::{CaptureError, Frame, Timestamp};
use std::path::PathBuf;

/// A file that could not be read to its end.
#[derive(Debug)]
pub struct InputFailure {
    /// The file.
    pub path: PathBuf,
    /// Why it stopped (with the byte offset).
    pub error: CaptureError,
    /// Frames delivered from it before the failure (they stay analysed).
    pub frames_read: u64,
}

/// A file waiting to be opened, known by its first frame's timestamp.
struct Pending {
    path: PathBuf,
    first_ts: Timestamp,
}

/// Merges frames from many files in timestamp order.
pub struct Timeline {
    /// Not yet opened, sorted by first timestamp, latest first (popped from the end).
    pending: Vec<Pending>,
    /// Open files, each positioned on its next frame.
    active: Vec<CaptureFile>,
    /// Index into `active` of the file whose frame was handed out last.
    last: Option<usize>,
    failures: Vec<InputFailure>,
    files_read: usize,
    /// Disk bytes consumed by files that are finished.
    done_bytes: u64,
}

impl Timeline {
    /// Probes every file (opening it and reading its first frame) and prepares
    /// the merge. Files that fail the probe are recorded as failures.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let mut tl = Timeline {
            pending: Vec::new(),
            active: Vec::new(),
            last: None,
            failures: Vec::new(),
            files_read: 0,
            done_bytes: 0,
        };
        if paths.len() == 1 || paths.iter().any(|p| p.as_os_str() == "-") {
            // Nothing to merge (or stdin, which cannot be opened twice): open now.
            for path in paths {
                tl.admit(path);
            }
            return tl;
        }
        for path in paths {
            match Self::probe(&path) {
                Ok(Some(first_ts)) => tl.pending.push(Pending { path, first_ts }),
                Ok(None) => tl.files_read += 1,
                Err(error) => tl.fail(path, error, 0),
            }
        }
        tl.pending.sort_by(|a, b| {
            b.first_ts
                .cmp(&a.first_ts)
                .then_with(|| b.path.cmp(&a.path))
        });
        tl
    }

    fn probe(path: &std::path::Path) -> Result<Option<Timestamp>, CaptureError> {
        let mut f = CaptureFile::open(path)?;
        Ok(if f.advance()? {
            f.frame().map(|fr| fr.ts)
        } else {
            None
        })
    }

    fn fail(&mut self, path: PathBuf, error: CaptureError, frames_read: u64) {
        self.failures.push(InputFailure {
            path,
            error,
            frames_read,
        });
    }

    /// Opens a file and positions it on its first frame.
    fn admit(&mut self, path: PathBuf) {
        match CaptureFile::open(&path) {
            Ok(mut f) => match f.advance() {
                Ok(true) => self.active.push(f),
                Ok(false) => self.retire_file(f),
                Err(e) => {
                    self.done_bytes += f.disk_offset();
                    self.files_read += 1;
                    self.fail(path, e, 0);
                }
            },
            Err(e) => self.fail(path, e, 0),
        }
    }

    fn retire_file(&mut self, f: CaptureFile) {
        self.done_bytes += f.disk_offset();
        self.files_read += 1;
    }

    /// The next frame in timestamp order across all files, or `None` when
    /// every file is exhausted or failed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if let Some(i) = self.last.take() {
            let advanced = self.active.get_mut(i).map(|f| f.advance());
            match advanced {
                Some(Ok(true)) | None => {}
                Some(Ok(false)) => {
                    let f = self.active.swap_remove(i);
                    self.retire_file(f);
                }
                Some(Err(e)) => {
                    let f = self.active.swap_remove(i);
                    // The failed advance delivered no frame: every frame
                    // counted was handed out.
                    let frames = f.frames();
                    let path = f.path().to_path_buf();
                    self.retire_file(f);
                    self.fail(path, e, frames);
                }
            }
        }
        if self.pending.is_empty() && self.active.len() == 1 {
            // One file left: nothing to merge.
            self.last = Some(0);
            return self.active.first().and_then(|f| f.frame());
        }
        loop {
            let earliest = self.earliest();
            let admit = match (self.pending.last(), earliest) {
                (Some(p), Some((_, ts))) => p.first_ts <= ts,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !admit {
                break;
            }
            if let Some(p) = self.pending.pop() {
                self.admit(p.path);
            }
        }
        let (i, _) = self.earliest()?;
        self.last = Some(i);
        self.active.get(i).and_then(|f| f.frame())
    }

    fn earliest(&self) -> Option<(usize, Timestamp)> {
        self.active
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.frame().map(|fr| (i, fr.ts)))
            .min_by_key(|&(_, ts)| ts)
    }

    /// Files that stopped early, with their errors.
    pub fn failures(&self) -> &[InputFailure] {
        &self.failures
    }

    /// Files read to their end or to a failure so far.
    pub fn files_read(&self) -> usize {
        self.files_read
    }

    /// Disk bytes consumed so far across all files.
    pub fn bytes_read(&self) -> u64 {
        self.done_bytes + self.active.iter().map(|f| f.disk_offset()).sum::<u64>()
    }
}
