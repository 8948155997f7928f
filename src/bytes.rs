//! Panic-free reads of big-endian integers from untrusted byte slices, and a
//! cursor for length-prefixed formats (DNS, TLS, QUIC). Every getter returns
//! `None` instead of indexing past the end.

/// Reads a big-endian `u16` at `at`.
#[inline]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads a big-endian `u32` at `at`.
#[inline]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a little-endian `u16` at `at`.
#[inline]
pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a byte at `at`.
#[inline]
pub fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

/// A forward-only reader over a borrowed buffer (the pattern of quiche's
/// `octets`): each call consumes bytes or returns `None`, never panics.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        let v = be16(self.buf, self.pos)?;
        self.pos += 2;
        Some(v)
    }

    /// Reads a big-endian 24-bit integer.
    pub fn u24(&mut self) -> Option<u32> {
        let s = self.buf.get(self.pos..self.pos + 3)?;
        self.pos += 3;
        Some(u32::from_be_bytes([0, s[0], s[1], s[2]]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        let v = be32(self.buf, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// Takes a vector prefixed by a one-byte length.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }

    /// Takes a vector prefixed by a two-byte length.
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    /// Reads a QUIC variable-length integer (RFC 9000 §16): the two high
    /// bits of the first byte give the length (1, 2, 4 or 8 bytes).
    pub fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.pos)?;
        let len = 1usize << (first >> 6);
        let s = self.buf.get(self.pos..self.pos.checked_add(len)?)?;
        let mut v = u64::from(first & 0x3f);
        for &b in s.iter().skip(1) {
            v = (v << 8) | u64::from(b);
        }
        self.pos += len;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let b = [1u8, 2, 3];
        assert_eq!(be16(&b, 1), Some(0x0203));
        assert_eq!(be16(&b, 2), None);
        assert_eq!(be32(&b, 0), None);
        assert_eq!(be16(&b, usize::MAX), None);
        let mut c = Cursor::new(&b);
        assert_eq!(c.vec8(), Some(&[2u8][..]));
        assert_eq!(c.u16(), None);
        assert_eq!(c.u8(), Some(3));
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn quic_varints_of_every_length() {
        // RFC 9000 §A.1 examples.
        for (bytes, value) in [
            (
                &[0xc2u8, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c][..],
                151_288_809_941_952_652u64,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d][..], 494_878_333),
            (&[0x7b, 0xbd][..], 15_293),
            (&[0x25][..], 37),
            (&[0x40, 0x25][..], 37),
        ] {
            let mut c = Cursor::new(bytes);
            assert_eq!(c.varint(), Some(value));
            assert_eq!(c.remaining(), 0);
        }
        assert_eq!(Cursor::new(&[0x9d, 0x7f, 0x3e]).varint(), None);
        assert_eq!(Cursor::new(&[]).varint(), None);
    }
}
