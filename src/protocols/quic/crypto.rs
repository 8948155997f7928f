//! The Initial CRYPTO stream: CRYPTO frames carry the TLS handshake at
//! explicit offsets, and clients spread the ClientHello over several frames,
//! packets and datagrams, in any order (Chrome shuffles its frames on
//! purpose; a post-quantum key share makes the hello too big for one
//! datagram). [`CryptoStream`] places each frame's bytes at its offset and
//! tracks which ranges are filled, until the ClientHello at offset 0 is
//! whole.
//!
//! Bounded: at most [`MAX_CRYPTO`] bytes of stream and [`MAX_RANGES`]
//! disjoint filled ranges; beyond that the stream fails.

use super::QuicError;
use crate::protocols::tls;

/// Highest stream offset accepted. A ClientHello is the first message of
/// the stream and is capped like one over TCP ([`tls::MAX_HELLO`]).
pub const MAX_CRYPTO: usize = tls::MAX_HELLO;
/// Disjoint filled ranges tracked (a hello cut into more pieces than this
/// is not followed).
pub const MAX_RANGES: usize = 64;

/// Where a CRYPTO stream stands.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The ClientHello is not complete yet.
    Need,
    /// The complete ClientHello handshake message (type, length, body).
    Complete(&'a [u8]),
    /// The stream does not start with a usable ClientHello.
    Fail(tls::HelloError),
}

/// A CRYPTO stream being reassembled.
#[derive(Debug, Clone, Default)]
pub struct CryptoStream {
    buf: Vec<u8>,
    /// Filled ranges `[start, end)`, sorted, disjoint and not touching.
    ranges: Vec<(u32, u32)>,
}

impl CryptoStream {
    /// Forgets everything (keeps the allocation).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ranges.clear();
    }

    /// Whether no byte has been received.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Bytes of memory held.
    pub fn memory(&self) -> usize {
        self.buf.capacity() + self.ranges.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// Places `data` at `offset`. Fails when the stream would pass
    /// [`MAX_CRYPTO`] or have more than [`MAX_RANGES`] holes.
    pub fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), QuicError> {
        if data.is_empty() {
            return Ok(());
        }
        let start = usize::try_from(offset).map_err(|_| QuicError::TooLarge)?;
        let end = start.checked_add(data.len()).ok_or(QuicError::TooLarge)?;
        if end > MAX_CRYPTO {
            return Err(QuicError::TooLarge);
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf
            .get_mut(start..end)
            .ok_or(QuicError::TooLarge)?
            .copy_from_slice(data);
        // MAX_CRYPTO fits in u32.
        let (mut s, mut e) = (start as u32, end as u32);
        // Merge with every range that overlaps or touches [s, e).
        let first = self.ranges.partition_point(|&(_, re)| re < s);
        let mut last = first;
        while let Some(&(rs, re)) = self.ranges.get(last) {
            if rs > e {
                break;
            }
            s = s.min(rs);
            e = e.max(re);
            last += 1;
        }
        self.ranges.splice(first..last, [(s, e)]);
        if self.ranges.len() > MAX_RANGES {
            return Err(QuicError::TooFragmented);
        }
        Ok(())
    }

    /// The contiguous bytes from offset 0.
    pub fn prefix(&self) -> &[u8] {
        match self.ranges.first() {
            Some(&(0, end)) => self.buf.get(..end as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Whether the stream holds a complete ClientHello at offset 0.
    pub fn hello(&self) -> Progress<'_> {
        let p = self.prefix();
        let [ty, a, b, c, ..] = *p else {
            return Progress::Need;
        };
        if ty != 1 {
            return Progress::Fail(tls::HelloError::NotClientHello);
        }
        let total = 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
        if total > MAX_CRYPTO {
            return Progress::Fail(tls::HelloError::TooLarge);
        }
        match p.get(..total) {
            Some(msg) => Progress::Complete(msg),
            None => Progress::Need,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_msg(len: usize) -> Vec<u8> {
        let mut m = vec![1, 0, (len >> 8) as u8, len as u8];
        m.extend((0..len).map(|i| i as u8));
        m
    }

    #[test]
    fn pieces_in_any_order_complete_the_hello_exactly_once_all_are_in() {
        let msg = hello_msg(1500);
        let cuts = [0, 7, 300, 301, 900, 1200, msg.len()];
        let pieces: Vec<(usize, &[u8])> =
            cuts.windows(2).map(|w| (w[0], &msg[w[0]..w[1]])).collect();
        // Every rotation and the reverse order.
        let mut orders: Vec<Vec<usize>> = (0..pieces.len())
            .map(|r| (0..pieces.len()).map(|i| (i + r) % pieces.len()).collect())
            .collect();
        orders.push((0..pieces.len()).rev().collect());
        for order in orders {
            let mut s = CryptoStream::default();
            for (n, &i) in order.iter().enumerate() {
                let (off, data) = pieces[i];
                s.insert(off as u64, data).unwrap();
                let done = n + 1 == order.len();
                match s.hello() {
                    Progress::Complete(m) => {
                        assert!(done, "complete too early: {order:?}");
                        assert_eq!(m, &msg[..]);
                    }
                    Progress::Need => assert!(!done, "incomplete: {order:?}"),
                    Progress::Fail(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(s.ranges.len(), 1);
        }
    }

    #[test]
    fn overlaps_duplicates_and_limits() {
        let msg = hello_msg(100);
        let mut s = CryptoStream::default();
        s.insert(10, &msg[10..60]).unwrap();
        s.insert(10, &msg[10..60]).unwrap();
        s.insert(50, &msg[50..104]).unwrap();
        assert!(matches!(s.hello(), Progress::Need));
        s.insert(0, &msg[0..20]).unwrap();
        assert!(matches!(s.hello(), Progress::Complete(m) if m == &msg[..]));
        assert_eq!(s.ranges, vec![(0, 104)]);

        let mut s = CryptoStream::default();
        assert_eq!(s.insert(MAX_CRYPTO as u64, b"x"), Err(QuicError::TooLarge));
        assert_eq!(s.insert(u64::MAX, b"x"), Err(QuicError::TooLarge));
        for i in 0..MAX_RANGES {
            s.insert((i * 2) as u64, b"x").unwrap();
        }
        assert_eq!(
            s.insert((MAX_RANGES * 2) as u64, b"x"),
            Err(QuicError::TooFragmented)
        );
        assert!(s.buf.capacity() <= MAX_CRYPTO);

        let mut s = CryptoStream::default();
        s.insert(0, &[2, 0, 0, 1, 0]).unwrap();
        assert!(matches!(
            s.hello(),
            Progress::Fail(tls::HelloError::NotClientHello)
        ));
        let mut s = CryptoStream::default();
        s.insert(0, &[1, 0xff, 0, 0]).unwrap();
        assert!(matches!(
            s.hello(),
            Progress::Fail(tls::HelloError::TooLarge)
        ));
    }
}
