//! The disk spool of one sink: alerts that could not be delivered yet.
//!
//! `NAME.spool` is append-only; each record is `u32 length (LE) | u32
//! CRC-32 of the payload (LE) | payload` where the payload is the alert's
//! JSON. `NAME.ack` holds the byte offset up to which records were
//! delivered (written to a temporary file and renamed, so it is either the
//! old or the new value). When everything is acknowledged the spool is
//! truncated to zero; when the acknowledged prefix is large it is compacted.
//!
//! Corruption (a bad length, a CRC mismatch, a payload that is not an
//! alert, a torn final record, an ack offset beyond the end) is reported
//! with the file and offset and the spool is truncated there: records before
//! it are kept, nothing stops.

use super::model::Alert;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest record accepted (an alert is a few KiB; anything larger is
/// corruption).
pub const MAX_RECORD: u32 = 1 << 20;

/// Compact when the acknowledged prefix exceeds this many bytes.
const COMPACT_AT: u64 = 1 << 20;

/// Spool failures (the disk, not the content: content problems are
/// reported as [`Spool::warnings`] and repaired).
#[derive(Debug, Error)]
pub enum SpoolError {
    /// Reading or writing the spool files failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The spool is at its size cap.
    #[error("spool {0} is full")]
    Full(PathBuf),
}

/// One sink's spool.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    ack_path: PathBuf,
    file: File,
    /// File length (end of the last valid record).
    len: u64,
    /// Offset up to which records are delivered.
    acked: u64,
    /// Offset of the next record to hand out (`acked <= cursor <= len`).
    cursor: u64,
    max_bytes: u64,
    /// Added to physical offsets to give the offsets handed out by
    /// [`Spool::read_next`], so that they stay valid across truncation and
    /// compaction.
    base: u64,
    /// Problems found and repaired (for the operator), drained by the caller.
    pub warnings: Vec<String>,
}

impl Spool {
    /// Opens (or creates) `DIR/NAME.spool`, validates every pending record,
    /// and repairs corruption (with a warning).
    pub fn open(dir: &Path, name: &str, max_bytes: u64) -> Result<Spool, SpoolError> {
        let path = dir.join(format!("{name}.spool"));
        let ack_path = dir.join(format!("{name}.ack"));
        let io_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| SpoolError::Io { path: p, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        let mut spool = Spool {
            path,
            ack_path,
            file,
            len,
            acked: 0,
            cursor: 0,
            max_bytes,
            base: 0,
            warnings: Vec::new(),
        };
        let acked = match fs::read_to_string(&spool.ack_path) {
            Ok(t) => match t.trim().parse::<u64>() {
                Ok(a) if a <= len => a,
                _ => {
                    spool.warnings.push(format!(
                        "{}: bad acknowledged offset {:?} (spool is {len} bytes); resending the whole spool",
                        spool.ack_path.display(),
                        t.trim()
                    ));
                    0
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&spool.ack_path)(e)),
        };
        spool.acked = acked;
        spool.cursor = acked;
        // Validate what is pending: a corrupt record truncates the spool.
        let mut at = acked;
        while at < spool.len {
            match spool.read_at(at)? {
                Some((_, next)) => at = next,
                None => break,
            }
        }
        Ok(spool)
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.len - self.acked
    }

    /// True when records wait to be handed out.
    pub fn has_unread(&self) -> bool {
        self.cursor < self.len
    }

    fn io(&self, source: io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends an alert.
    pub fn append(&mut self, alert: &Alert) -> Result<(), SpoolError> {
        let payload = serde_json::to_vec(alert).map_err(|e| self.io(io::Error::other(e)))?;
        let n = u32::try_from(payload.len())
            .ok()
            .filter(|n| *n <= MAX_RECORD)
            .ok_or_else(|| self.io(io::Error::other("alert too large for the spool")))?;
        if self.len + 8 + u64::from(n) > self.max_bytes {
            return Err(SpoolError::Full(self.path.clone()));
        }
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&n.to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        self.file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&rec))
            .map_err(|e| self.io(e))?;
        self.len += rec.len() as u64;
        Ok(())
    }

    /// Reads the record at `at`: the alert and the offset after it, or None
    /// at the end or after truncating a corrupt tail.
    fn read_at(&mut self, at: u64) -> Result<Option<(Alert, u64)>, SpoolError> {
        if at >= self.len {
            return Ok(None);
        }
        let mut head = [0u8; 8];
        let problem = (|| -> Result<Result<(Alert, u64), String>, io::Error> {
            if self.len - at < 8 {
                return Ok(Err(format!("torn record header ({} bytes)", self.len - at)));
            }
            self.file.seek(SeekFrom::Start(at))?;
            self.file.read_exact(&mut head)?;
            let [a, b, c, d, e, f, g, h] = head;
            let n = u32::from_le_bytes([a, b, c, d]);
            let crc = u32::from_le_bytes([e, f, g, h]);
            if n > MAX_RECORD {
                return Ok(Err(format!("record length {n} exceeds {MAX_RECORD}")));
            }
            if self.len - at - 8 < u64::from(n) {
                return Ok(Err(format!(
                    "torn record: {n} bytes announced, {} present",
                    self.len - at - 8
                )));
            }
            let mut payload = vec![0u8; n as usize];
            self.file.read_exact(&mut payload)?;
            if crc32fast::hash(&payload) != crc {
                return Ok(Err("CRC mismatch".into()));
            }
            match serde_json::from_slice::<Alert>(&payload) {
                Ok(a) => Ok(Ok((a, at + 8 + u64::from(n)))),
                Err(e) => Ok(Err(format!("record is not an alert: {e}"))),
            }
        })()
        .map_err(|e| self.io(e))?;
        match problem {
            Ok(r) => Ok(Some(r)),
            Err(why) => {
                self.warnings.push(format!(
                    "{}: corrupt record at offset {at}: {why}; dropping the {} bytes from there",
                    self.path.display(),
                    self.len - at
                ));
                self.file.set_len(at).map_err(|e| self.io(e))?;
                self.len = at;
                self.cursor = self.cursor.min(at);
                Ok(None)
            }
        }
    }

    /// Hands out the next unread record and the offset to acknowledge once
    /// it is delivered.
    pub fn read_next(&mut self) -> Result<Option<(Alert, u64)>, SpoolError> {
        match self.read_at(self.cursor)? {
            Some((a, end)) => {
                self.cursor = end;
                Ok(Some((a, end + self.base)))
            }
            None => Ok(None),
        }
    }

    /// Marks every record before `end` as delivered; empties or compacts the
    /// spool when worthwhile.
    pub fn ack(&mut self, end: u64) -> Result<(), SpoolError> {
        let end = end.saturating_sub(self.base);
        if end <= self.acked {
            return Ok(());
        }
        self.acked = end.min(self.len);
        if self.acked == self.len {
            self.file.set_len(0).map_err(|e| self.io(e))?;
            self.base += self.len;
            self.len = 0;
            self.acked = 0;
            self.cursor = 0;
        } else if self.acked > COMPACT_AT && self.acked * 2 > self.len {
            self.compact()?;
        }
        self.write_ack()
    }

    /// Rewrites the unacknowledged records into a fresh file.
    fn compact(&mut self) -> Result<(), SpoolError> {
        let mut rest = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.acked))
            .and_then(|_| (&self.file).read_to_end(&mut rest))
            .map_err(|e| self.io(e))?;
        let tmp = self.path.with_extension("spool.tmp");
        let io_tmp = |e| SpoolError::Io {
            path: tmp.clone(),
            source: e,
        };
        fs::write(&tmp, &rest).map_err(io_tmp)?;
        // Write the new ack (0) first: a crash between the two renames
        // re-sends records (duplicates), never loses them.
        let shift = self.acked;
        self.acked = 0;
        self.write_ack()?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.len -= shift;
        self.cursor -= shift.min(self.cursor);
        self.base += shift;
        Ok(())
    }

    fn write_ack(&self) -> Result<(), SpoolError> {
        let tmp = self.ack_path.with_extension("ack.tmp");
        fs::write(&tmp, format!("{}\n", self.acked))
            .and_then(|_| fs::rename(&tmp, &self.ack_path))
            .map_err(|e| SpoolError::Io {
                path: self.ack_path.clone(),
                source: e,
            })
    }

    /// Forgets the handed-out position: the next [`read_next`](Self::read_next) starts
    /// again at the first unacknowledged record.
    pub fn rewind(&mut self) {
        self.cursor = self.acked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::format::tests::nasty_alert;

    fn alert(i: u32) -> Alert {
        let mut a = nasty_alert();
        a.id = format!("{i:032x}");
        a
    }

    #[test]
    fn append_read_ack_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        for i in 0..5 {
            s.append(&alert(i)).unwrap();
        }
        let (a0, e0) = s.read_next().unwrap().unwrap();
        let (a1, e1) = s.read_next().unwrap().unwrap();
        assert_eq!((a0.id, a1.id), (alert(0).id, alert(1).id));
        s.ack(e0).unwrap();
        drop(s);
        // Record 1 was handed out but not acknowledged: it comes back.
        let mut s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        assert!(s.warnings.is_empty());
        let ids: Vec<String> =
            std::iter::from_fn(|| s.read_next().unwrap().map(|(a, _)| a.id)).collect();
        assert_eq!(ids, (1..5).map(|i| alert(i).id).collect::<Vec<_>>());
        assert!(e1 > e0);
        let end = s.len + s.base;
        s.ack(end).unwrap();
        assert_eq!(fs::metadata(s.path()).unwrap().len(), 0, "emptied");
        assert_eq!(s.pending_bytes(), 0);
    }

    #[test]
    fn corruption_is_reported_with_offset_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        for i in 0..3 {
            s.append(&alert(i)).unwrap();
        }
        let (_, first_end) = s.read_next().unwrap().unwrap();
        drop(s);
        let path = dir.path().join("t.spool");
        let mut bytes = fs::read(&path).unwrap();
        // Flip a payload byte of the second record.
        let at = first_end as usize + 20;
        bytes[at] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let mut s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains(&format!(
                "corrupt record at offset {first_end}: CRC mismatch"
            )),
            "{:?}",
            s.warnings
        );
        assert!(s.warnings[0].contains("t.spool"));
        assert_eq!(fs::metadata(&path).unwrap().len(), first_end);
        assert_eq!(s.read_next().unwrap().unwrap().0.id, alert(0).id);
        assert!(s.read_next().unwrap().is_none());
        // A torn tail (crash during append) is repaired the same way.
        s.append(&alert(7)).unwrap();
        drop(s);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(first_end + 30).unwrap();
        let s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        assert!(s.warnings[0].contains("torn record"), "{:?}", s.warnings);
        // A nonsense ack offset resends everything.
        fs::write(dir.path().join("t.ack"), "999999\n").unwrap();
        let s = Spool::open(dir.path(), "t", 1 << 30).unwrap();
        assert!(s.warnings[0].contains("bad acknowledged offset"));
        assert_eq!(s.pending_bytes(), first_end);
    }

    #[test]
    fn cap_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "t", 5000).unwrap();
        let mut n = 0;
        while s.append(&alert(n)).is_ok() {
            n += 1;
        }
        assert!(n > 0 && s.len <= 5000);
        assert!(matches!(s.append(&alert(0)), Err(SpoolError::Full(_))));
        // Compaction keeps the order and the content of pending records.
        let mut s = Spool::open(dir.path(), "c", 1 << 30).unwrap();
        let mut ends = Vec::new();
        for i in 0..3000 {
            s.append(&alert(i)).unwrap();
        }
        for _ in 0..2000 {
            ends.push(s.read_next().unwrap().unwrap().1);
        }
        s.ack(*ends.last().unwrap()).unwrap();
        assert!(s.len < ends[1999] * 2, "compacted");
        let mut s = Spool::open(dir.path(), "c", 1 << 30).unwrap();
        assert!(s.warnings.is_empty());
        let ids: Vec<String> =
            std::iter::from_fn(|| s.read_next().unwrap().map(|(a, _)| a.id)).collect();
        assert_eq!(ids, (2000..3000).map(|i| alert(i).id).collect::<Vec<_>>());
    }
}
