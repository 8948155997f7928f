//! The pcapng format (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html>):
//! sections (each with its own byte order) of blocks; interface description
//! blocks give each interface its link type and timestamp resolution; packets
//! come in enhanced, simple or (obsolete) packet blocks. Other blocks are
//! skipped. Several interfaces with different link types in one file are
//! normal (e.g. `tcpdump -i any` merged with an Ethernet capture).

use super::pcap::Located;
use super::window::Window;
use super::{CaptureError, MAX_BLOCK_LEN, MAX_RECORD_LEN, Timestamp, rd16, rd32};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const OPB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Option codes inside an interface description block.
const OPT_END: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// At most this many interfaces per section (each costs a few bytes).
const MAX_INTERFACES: usize = 65_536;

/// Whether the four bytes start a pcapng file.
pub(crate) fn is_magic(b: [u8; 4]) -> bool {
    u32::from_le_bytes(b) == SHB
}

/// Timestamp unit of an interface.
#[derive(Debug, Clone, Copy)]
enum Resolution {
    /// 10^-n seconds.
    Decimal(u8),
    /// 2^-n seconds.
    Binary(u8),
}

impl Resolution {
    fn from_option(v: u8) -> Self {
        if v & 0x80 == 0 {
            Resolution::Decimal(v)
        } else {
            Resolution::Binary(v & 0x7f)
        }
    }

    fn to_nanos(self, units: u64) -> i64 {
        let nanos: u128 = match self {
            Resolution::Decimal(n) if n <= 9 => u128::from(units) * 10u128.pow(u32::from(9 - n)),
            Resolution::Decimal(n) if n - 9 < 30 => {
                u128::from(units) / 10u128.pow(u32::from(n - 9))
            }
            Resolution::Decimal(_) => 0,
            Resolution::Binary(n) => (u128::from(units) * 1_000_000_000) >> n.min(127),
        };
        i64::try_from(nanos).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    resolution: Resolution,
    offset_secs: i64,
}

/// Per-file state: the current section's byte order and interfaces.
#[derive(Debug, Default)]
pub(crate) struct PcapNgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp: they get the last one seen.
    last_ts: Timestamp,
}

fn fill(w: &mut Window, need: usize) -> Result<usize, CaptureError> {
    let offset = w.offset();
    w.fill(need)
        .map_err(|source| CaptureError::Read { offset, source })
}

/// Walks the options of a block body, calling `f(code, value)` for each.
/// Fails when an option claims more bytes than the block holds.
fn for_each_option(
    opts: &[u8],
    be: bool,
    block_offset: u64,
    what: &'static str,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), CaptureError> {
    let mut at = 0usize;
    while at + 4 <= opts.len() {
        let code = rd16(opts, at, be);
        let len = usize::from(rd16(opts, at + 2, be));
        if code == OPT_END {
            return Ok(());
        }
        let value = opts.get(at + 4..at + 4 + len).ok_or_else(|| {
            CaptureError::corrupt(
                what,
                block_offset,
                format!(
                    "option {code} of length {len} runs past the end of the block ({} bytes left)",
                    opts.len() - at - 4
                ),
            )
        })?;
        f(code, value);
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(())
}

impl PcapNgState {
    /// Locates the next packet, skipping non-packet blocks; `None` at a clean
    /// end of file.
    pub(crate) fn next_record(&mut self, w: &mut Window) -> Result<Option<Located>, CaptureError> {
        loop {
            let have = fill(w, 12)?;
            if have == 0 {
                return Ok(None);
            }
            let offset = w.offset();
            if have < 12 {
                return Err(CaptureError::Truncated {
                    what: "pcapng block header",
                    offset,
                    need: 12,
                    have: have as u64,
                });
            }
            let b = w.bytes();
            let block_type = rd32(b, 0, self.big_endian);
            if block_type == SHB {
                // The byte-order magic decides how to read this block's length.
                self.big_endian = match rd32(b, 8, false) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    m => {
                        return Err(CaptureError::corrupt(
                            "pcapng section header",
                            offset,
                            format!(
                                "byte-order magic {m:#010x} is neither 0x1a2b3c4d nor its swap"
                            ),
                        ));
                    }
                };
            } else if offset == 0 {
                return Err(CaptureError::corrupt(
                    "pcapng file",
                    0,
                    "the file does not start with a section header block",
                ));
            }
            let be = self.big_endian;
            let total = rd32(w.bytes(), 4, be) as usize;
            let limit = if matches!(block_type, EPB | SPB | OPB) {
                MAX_RECORD_LEN + 64
            } else {
                MAX_BLOCK_LEN
            };
            if total < 12 || !total.is_multiple_of(4) || total > limit {
                return Err(CaptureError::corrupt(
                    "pcapng block",
                    offset,
                    format!(
                        "block type {block_type:#x} claims length {total} (must be a multiple of 4 between 12 and {limit})"
                    ),
                ));
            }
            let have = fill(w, total)?;
            if have < total {
                return Err(CaptureError::Truncated {
                    what: "pcapng block",
                    offset,
                    need: total as u64,
                    have: have as u64,
                });
            }
            let block = w.bytes().get(..total).unwrap_or(&[]);
            if rd32(block, total - 4, be) as usize != total {
                return Err(CaptureError::corrupt(
                    "pcapng block",
                    offset,
                    format!(
                        "trailing length {} differs from leading length {total}",
                        rd32(block, total - 4, be)
                    ),
                ));
            }
            let body = block.get(8..total - 4).unwrap_or(&[]);
            let found = match block_type {
                SHB => {
                    self.section_header(body, offset)?;
                    None
                }
                IDB => {
                    self.interface(body, offset)?;
                    None
                }
                EPB => self.packet(body, offset, false)?,
                OPB => self.packet(body, offset, true)?,
                SPB => self.simple_packet(body, offset)?,
                _ => None,
            };
            match found {
                Some(mut loc) => {
                    // Make the data range relative to the window start.
                    loc.data = loc.data.start + 8..loc.data.end + 8;
                    loc.consume = total;
                    return Ok(Some(loc));
                }
                None => w.consume(total),
            }
        }
    }

    fn section_header(&mut self, body: &[u8], offset: u64) -> Result<(), CaptureError> {
        let be = self.big_endian;
        let major = rd16(body, 4, be);
        if major != 1 || body.len() < 16 {
            return Err(CaptureError::corrupt(
                "pcapng section header",
                offset,
                format!("unsupported version {major}.{}", rd16(body, 6, be)),
            ));
        }
        for_each_option(&body[16..], be, offset, "pcapng section header", |_, _| {})?;
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, body: &[u8], offset: u64) -> Result<(), CaptureError> {
        let be = self.big_endian;
        if body.len() < 8 {
            return Err(CaptureError::corrupt(
                "pcapng interface description",
                offset,
                "body shorter than 8 bytes",
            ));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(CaptureError::corrupt(
                "pcapng interface description",
                offset,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        let mut iface = Interface {
            linktype: u32::from(rd16(body, 0, be)),
            snaplen: rd32(body, 4, be),
            resolution: Resolution::Decimal(6),
            offset_secs: 0,
        };
        for_each_option(
            &body[8..],
            be,
            offset,
            "pcapng interface description",
            |code, v| match (code, v) {
                (IF_TSRESOL, [r, ..]) => iface.resolution = Resolution::from_option(*r),
                (IF_TSOFFSET, [a, b, c, d, e, f, g, h, ..]) => {
                    let bytes = [*a, *b, *c, *d, *e, *f, *g, *h];
                    iface.offset_secs = if be {
                        i64::from_be_bytes(bytes)
                    } else {
                        i64::from_le_bytes(bytes)
                    };
                }
                _ => {}
            },
        )?;
        self.interfaces.push(iface);
        Ok(())
    }

    fn iface(&self, id: u32, offset: u64) -> Result<&Interface, CaptureError> {
        self.interfaces.get(id as usize).ok_or_else(|| {
            CaptureError::corrupt(
                "pcapng packet block",
                offset,
                format!(
                    "interface {id} was never described ({} interfaces known)",
                    self.interfaces.len()
                ),
            )
        })
    }

    fn timed_packet(
        &mut self,
        body: &[u8],
        offset: u64,
        if_id: u32,
        ts_words: (u32, u32),
        data_at: usize,
    ) -> Result<Option<Located>, CaptureError> {
        let be = self.big_endian;
        let caplen = rd32(body, data_at - 8, be) as usize;
        let orig_len = rd32(body, data_at - 4, be);
        let (resolution, offset_secs, linktype) = {
            let i = self.iface(if_id, offset)?;
            (i.resolution, i.offset_secs, i.linktype)
        };
        if data_at + caplen > body.len() {
            return Err(CaptureError::corrupt(
                "pcapng packet block",
                offset,
                format!(
                    "captured length {caplen} runs past the block ({} bytes of data)",
                    body.len().saturating_sub(data_at)
                ),
            ));
        }
        let units = (u64::from(ts_words.0) << 32) | u64::from(ts_words.1);
        let ts = Timestamp::from_parts(offset_secs, resolution.to_nanos(units));
        self.last_ts = ts;
        Ok(Some(Located {
            ts,
            linktype,
            data: data_at..data_at + caplen,
            orig_len,
            consume: 0,
        }))
    }

    /// An enhanced (6) or obsolete (2) packet block: both hold an
    /// interface id (32 or 16 bits), a 64-bit timestamp, the captured and
    /// original lengths, then the data at byte 20.
    fn packet(
        &mut self,
        body: &[u8],
        offset: u64,
        obsolete: bool,
    ) -> Result<Option<Located>, CaptureError> {
        let be = self.big_endian;
        if body.len() < 20 {
            return Err(CaptureError::corrupt(
                "pcapng packet block",
                offset,
                "body shorter than 20 bytes",
            ));
        }
        let if_id = if obsolete {
            u32::from(rd16(body, 0, be))
        } else {
            rd32(body, 0, be)
        };
        let ts = (rd32(body, 4, be), rd32(body, 8, be));
        self.timed_packet(body, offset, if_id, ts, 20)
    }

    fn simple_packet(&mut self, body: &[u8], offset: u64) -> Result<Option<Located>, CaptureError> {
        let be = self.big_endian;
        let iface = self.iface(0, offset)?;
        let orig_len = rd32(body, 0, be);
        let room = body.len().saturating_sub(4);
        let mut caplen = (orig_len as usize).min(room);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(Some(Located {
            ts: self.last_ts,
            linktype: iface.linktype,
            data: 4..4 + caplen,
            orig_len,
            consume: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_convert_to_nanoseconds() {
        assert_eq!(Resolution::Decimal(6).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(Resolution::Decimal(9).to_nanos(7), 7);
        assert_eq!(Resolution::Decimal(12).to_nanos(7_000), 7);
        assert_eq!(Resolution::Binary(10).to_nanos(1024), 1_000_000_000);
        assert_eq!(Resolution::Decimal(127).to_nanos(u64::MAX), 0);
        assert_eq!(Resolution::Decimal(0).to_nanos(u64::MAX), i64::MAX);
    }
}
