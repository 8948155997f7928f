//! Writers for classic libpcap files (micro/nanosecond, either byte order)
//! and pcapng files (SHB, IDB with `if_tsresol`, EPB, SPB), plus an optional
//! gzip helper.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// BSD loopback (4-byte address family, host byte order).
pub const LINKTYPE_NULL: u32 = 0;
/// Ethernet II (with optional 802.1Q/802.1ad tags).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IP: the packet starts with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
/// Linux "cooked" capture v1 (16-byte header).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Raw IPv4 only.
pub const LINKTYPE_IPV4: u32 = 228;
/// Raw IPv6 only.
pub const LINKTYPE_IPV6: u32 = 229;
/// Linux "cooked" capture v2 (20-byte header).
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Timestamp precision of a classic pcap file (selects the magic number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsPrecision {
    /// Microseconds, magic `0xa1b2c3d4`.
    #[default]
    Micro,
    /// Nanoseconds, magic `0xa1b23c4d`.
    Nano,
}

/// Byte order of the written file (readers detect it from the magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endian {
    /// Little-endian (what x86 capture hosts write).
    #[default]
    Little,
    /// Big-endian.
    Big,
}

impl Endian {
    /// Encodes `v` in this byte order.
    pub fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Encodes `v` in this byte order.
    pub fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Length of `data` after applying `snaplen` (0 means "no limit").
fn captured_len(data: &[u8], snaplen: u32) -> usize {
    match usize::try_from(snaplen) {
        Ok(0) | Err(_) => data.len(),
        Ok(limit) => data.len().min(limit),
    }
}

/// Writer for classic libpcap files.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    precision: TsPrecision,
    endian: Endian,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header (version 2.4, thiszone 0, sigfigs 0).
    pub fn new(
        mut w: W,
        linktype: u32,
        snaplen: u32,
        precision: TsPrecision,
        endian: Endian,
    ) -> io::Result<Self> {
        let magic = match precision {
            TsPrecision::Micro => 0xa1b2_c3d4,
            TsPrecision::Nano => 0xa1b2_3c4d,
        };
        let mut hdr = Vec::with_capacity(24);
        hdr.extend(endian.u32(magic));
        hdr.extend(endian.u16(2));
        hdr.extend(endian.u16(4));
        hdr.extend(endian.u32(0));
        hdr.extend(endian.u32(0));
        hdr.extend(endian.u32(snaplen));
        hdr.extend(endian.u32(linktype));
        w.write_all(&hdr)?;
        Ok(Self {
            w,
            snaplen,
            precision,
            endian,
        })
    }

    /// Writes one record; `orig_len` is `data.len()`. Data longer than the
    /// snaplen (when non-zero) is cut to the snaplen.
    pub fn write_packet(&mut self, ts_nanos: u64, data: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_packet_truncated(ts_nanos, data, orig_len)
    }

    /// Writes one record claiming the wire length was `orig_len` (use this to
    /// imitate a short snaplen). Fails with `InvalidInput` if the seconds do
    /// not fit the 32-bit field.
    pub fn write_packet_truncated(
        &mut self,
        ts_nanos: u64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let secs = u32::try_from(ts_nanos / NANOS_PER_SEC)
            .map_err(|_| invalid("timestamp beyond the 32-bit pcap range"))?;
        let nanos = (ts_nanos % NANOS_PER_SEC) as u32;
        let frac = match self.precision {
            TsPrecision::Micro => nanos / 1000,
            TsPrecision::Nano => nanos,
        };
        let cap = captured_len(data, self.snaplen);
        let mut hdr = Vec::with_capacity(16);
        hdr.extend(self.endian.u32(secs));
        hdr.extend(self.endian.u32(frac));
        hdr.extend(self.endian.u32(cap as u32));
        hdr.extend(self.endian.u32(orig_len));
        self.w.write_all(&hdr)?;
        self.w.write_all(&data[..cap])
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    snaplen: u32,
    tsresol: u8,
}

/// Writer for pcapng files: one section, any number of interfaces.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: W,
    endian: Endian,
    ifaces: Vec<Iface>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes a Section Header Block (version 1.0, unknown section length).
    pub fn new(w: W, endian: Endian) -> io::Result<Self> {
        let mut this = Self {
            w,
            endian,
            ifaces: Vec::new(),
        };
        let mut body = Vec::with_capacity(16);
        body.extend(endian.u32(0x1A2B_3C4D));
        body.extend(endian.u16(1));
        body.extend(endian.u16(0));
        body.extend([0xff; 8]);
        this.block(0x0A0D_0D0A, &body)?;
        Ok(this)
    }

    /// Writes an Interface Description Block and returns its interface id.
    /// `tsresol` becomes the `if_tsresol` option (e.g. `Some(9)` for ns);
    /// `None` means the default of microseconds.
    pub fn add_interface(
        &mut self,
        linktype: u16,
        snaplen: u32,
        tsresol: Option<u8>,
    ) -> io::Result<u32> {
        let mut body = Vec::with_capacity(20);
        body.extend(self.endian.u16(linktype));
        body.extend([0, 0]);
        body.extend(self.endian.u32(snaplen));
        if let Some(res) = tsresol {
            body.extend(self.endian.u16(9));
            body.extend(self.endian.u16(1));
            body.extend([res, 0, 0, 0]);
            body.extend([0, 0, 0, 0]); // opt_endofopt
        }
        self.block(1, &body)?;
        let id = u32::try_from(self.ifaces.len()).map_err(|_| invalid("too many interfaces"))?;
        self.ifaces.push(Iface {
            snaplen,
            tsresol: tsresol.unwrap_or(6),
        });
        Ok(id)
    }

    /// Writes an Enhanced Packet Block on interface `iface` (the timestamp is
    /// converted to that interface's resolution). Data longer than the
    /// interface snaplen (when non-zero) is cut. Unknown interface ids fail
    /// with `InvalidInput`.
    pub fn write_packet(&mut self, iface: u32, ts_nanos: u64, data: &[u8]) -> io::Result<()> {
        let info = *usize::try_from(iface)
            .ok()
            .and_then(|i| self.ifaces.get(i))
            .ok_or_else(|| invalid("unknown pcapng interface id"))?;
        let units = ts_units(ts_nanos, info.tsresol);
        let cap = captured_len(data, info.snaplen);
        let mut body = Vec::with_capacity(20 + cap + 3);
        body.extend(self.endian.u32(iface));
        body.extend(self.endian.u32((units >> 32) as u32));
        body.extend(self.endian.u32(units as u32));
        body.extend(self.endian.u32(cap as u32));
        body.extend(
            self.endian
                .u32(u32::try_from(data.len()).unwrap_or(u32::MAX)),
        );
        body.extend_from_slice(&data[..cap]);
        self.block(6, &body)
    }

    /// Writes a Simple Packet Block (implicitly interface 0, no timestamp).
    /// Fails with `InvalidInput` if no interface has been added yet.
    pub fn write_simple_packet(&mut self, data: &[u8]) -> io::Result<()> {
        let info = *self
            .ifaces
            .first()
            .ok_or_else(|| invalid("SPB needs an interface"))?;
        let cap = captured_len(data, info.snaplen);
        let mut body = Vec::with_capacity(4 + cap + 3);
        body.extend(
            self.endian
                .u32(u32::try_from(data.len()).unwrap_or(u32::MAX)),
        );
        body.extend_from_slice(&data[..cap]);
        self.block(3, &body)
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Writes a generic block: type, total length, body padded to 4, length.
    fn block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let pad = (4 - body.len() % 4) % 4;
        let total = u32::try_from(12 + body.len() + pad).map_err(|_| invalid("block too large"))?;
        let mut out = Vec::with_capacity(total as usize);
        out.extend(self.endian.u32(block_type));
        out.extend(self.endian.u32(total));
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(0, pad));
        out.extend(self.endian.u32(total));
        self.w.write_all(&out)
    }
}

/// Converts nanoseconds to `if_tsresol` units (10^-n, or 2^-n when the high
/// bit is set), saturating at `u64::MAX`.
fn ts_units(ts_nanos: u64, tsresol: u8) -> u64 {
    let ts = u128::from(ts_nanos);
    let exp = u32::from(tsresol & 0x7f);
    let units = if tsresol & 0x80 != 0 {
        if exp <= 64 {
            (ts << exp) / u128::from(NANOS_PER_SEC)
        } else {
            u128::MAX
        }
    } else if exp <= 9 {
        ts / 10u128.pow(9 - exp)
    } else {
        10u128
            .checked_pow(exp - 9)
            .map_or(u128::MAX, |m| ts.saturating_mul(m))
    };
    u64::try_from(units).unwrap_or(u64::MAX)
}

/// Writes `bytes` gzip-compressed to `path` (e.g. `capture.pcap.gz`).
pub fn write_gzip(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let file = File::create(path)?;
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn pcap_header_and_record_bytes() {
        let mut w = PcapWriter::new(
            Vec::new(),
            LINKTYPE_ETHERNET,
            65535,
            TsPrecision::Micro,
            Endian::Little,
        )
        .unwrap();
        w.write_packet(1_500_000_001_234_567_891, &[1, 2, 3])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(&b[..8], &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        assert_eq!(le32(&b, 16), 65535);
        assert_eq!(le32(&b, 20), 1);
        assert_eq!(le32(&b, 24), 1_500_000_001);
        assert_eq!(le32(&b, 28), 234_567);
        assert_eq!((le32(&b, 32), le32(&b, 36)), (3, 3));
        assert_eq!(&b[40..], &[1, 2, 3]);
    }

    #[test]
    fn pcap_big_endian_nano_and_truncation() {
        let mut w =
            PcapWriter::new(Vec::new(), LINKTYPE_RAW, 2, TsPrecision::Nano, Endian::Big).unwrap();
        w.write_packet(5, &[9, 8, 7]).unwrap();
        w.write_packet_truncated(6, &[1], 100).unwrap();
        let b = w.into_inner();
        assert_eq!(&b[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
        assert_eq!(&b[20..24], &101u32.to_be_bytes());
        assert_eq!(&b[28..40], &[0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(&b[40..42], &[9, 8]);
        assert_eq!(&b[50..58], &[0, 0, 0, 1, 0, 0, 0, 100]);
        assert!(w_err_on_huge_ts());
    }

    fn w_err_on_huge_ts() -> bool {
        let mut w = PcapWriter::new(Vec::new(), 1, 0, TsPrecision::Micro, Endian::Little).unwrap();
        w.write_packet(u64::MAX, &[]).is_err()
    }

    /// Walks the blocks, checking both length fields agree and are 4-aligned.
    fn walk_blocks(b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let (ty, len) = (le32(b, at), le32(b, at + 4) as usize);
            assert_eq!(len % 4, 0);
            assert_eq!(le32(b, at + len - 4) as usize, len, "trailing length");
            out.push((ty, b[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        assert_eq!(at, b.len());
        out
    }

    #[test]
    fn pcapng_blocks() {
        let mut w = PcapNgWriter::new(Vec::new(), Endian::Little).unwrap();
        assert_eq!(w.add_interface(1, 0, None).unwrap(), 0);
        assert_eq!(w.add_interface(101, 4, Some(9)).unwrap(), 1);
        w.write_packet(0, 3_000_001_500, &[1, 2, 3, 4, 5]).unwrap();
        w.write_packet(1, 7, &[1, 2, 3, 4, 5]).unwrap();
        w.write_simple_packet(&[0xaa]).unwrap();
        assert!(w.write_packet(2, 0, &[]).is_err());
        let blocks = walk_blocks(&w.into_inner());
        let types: Vec<u32> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(types, [0x0A0D_0D0A, 1, 1, 6, 6, 3]);
        assert_eq!(&blocks[0].1[..4], &[0x4d, 0x3c, 0x2b, 0x1a]);
        assert_eq!(blocks[1].1.len(), 8);
        assert_eq!(&blocks[2].1[8..12], &[9, 0, 1, 0]);
        // EPB on the µs interface: 3_000_001 µs, 5 bytes padded to 8.
        let epb = &blocks[3].1;
        assert_eq!((le32(epb, 4), le32(epb, 8)), (0, 3_000_001));
        assert_eq!((le32(epb, 12), le32(epb, 16), epb.len()), (5, 5, 28));
        // EPB on the ns interface with snaplen 4.
        let epb = &blocks[4].1;
        assert_eq!((le32(epb, 8), le32(epb, 12), le32(epb, 16)), (7, 4, 5));
        assert_eq!(blocks[5].1, [1, 0, 0, 0, 0xaa, 0, 0, 0]);
    }

    #[test]
    fn spb_without_interface_fails() {
        let mut w = PcapNgWriter::new(Vec::new(), Endian::Big).unwrap();
        assert!(w.write_simple_packet(&[1]).is_err());
        assert_eq!(&w.into_inner()[8..12], &[0x1a, 0x2b, 0x3c, 0x4d]);
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ts_units(1_234_567_890, 6), 1_234_567);
        assert_eq!(ts_units(1_234_567_890, 9), 1_234_567_890);
        assert_eq!(ts_units(5, 12), 5000);
        assert_eq!(ts_units(1_000_000_000, 0x80 | 10), 1024);
        assert_eq!(ts_units(u64::MAX, 0x7f), u64::MAX);
        assert_eq!(ts_units(u64::MAX, 0xff), u64::MAX);
    }

    #[test]
    fn gzip_round_trip() {
        let path = std::env::temp_dir().join(format!("synth-gz-{}.gz", std::process::id()));
        write_gzip(&path, b"hello pcap").unwrap();
        let raw = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut out = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        assert_eq!(out, "hello pcap");
    }
}
