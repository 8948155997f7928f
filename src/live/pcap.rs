//! libpcap capture (the `pcap` crate): the portable method, and the fallback
//! where AF_PACKET rings are not available.
//!
//! Settings follow what was measured here (`../shared/deps.md` §4–5): not
//! immediate mode (it switches libpcap to TPACKET_V2 slots and lost 54 % of
//! the packets at 90 kpps), a large kernel buffer, and a non-blocking handle
//! polled with a timeout, because libpcap's own read timeout never fires on
//! an idle link (a quiet interface would block shutdown).

use super::source::{Source, SourceStats};
use super::sys;
use crate::capture::{Frame, Timestamp};
use std::io;
use std::os::fd::AsRawFd;

/// Packets handled per dispatch call at most.
const DISPATCH: usize = 4096;

/// One libpcap handle.
pub struct PcapSource {
    cap: pcap::Capture<pcap::Active>,
    name: String,
    linktype: u32,
    nanos: bool,
    snaplen: usize,
}

fn err(iface: &str, what: &str, e: pcap::Error) -> io::Error {
    io::Error::other(format!("{iface}: {what}: {e}"))
}

impl PcapSource {
    /// Opens `iface` with libpcap.
    pub fn open(
        iface: &str,
        snaplen: usize,
        promisc: bool,
        buffer_mib: usize,
        filter: Option<&str>,
    ) -> io::Result<PcapSource> {
        let open = |precision| {
            pcap::Capture::from_device(iface)
                .map_err(|e| err(iface, "no such device", e))?
                .promisc(promisc)
                .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
                .buffer_size(i32::try_from(buffer_mib.saturating_mul(1 << 20)).unwrap_or(i32::MAX))
                .timeout(100)
                .precision(precision)
                .open()
                .map_err(|e| err(iface, "cannot open (needs CAP_NET_RAW)", e))
        };
        let (cap, nanos) = match open(pcap::Precision::Nano) {
            Ok(c) => (c, true),
            Err(_) => (open(pcap::Precision::Micro)?, false),
        };
        let mut cap = cap
            .setnonblock()
            .map_err(|e| err(iface, "non-blocking mode", e))?;
        if let Some(f) = filter {
            cap.filter(f, true)
                .map_err(|e| err(iface, "BPF filter", e))?;
        }
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(0);
        Ok(PcapSource {
            cap,
            name: iface.to_string(),
            linktype,
            nanos,
            snaplen,
        })
    }
}

impl Source for PcapSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_batch(&mut self, timeout_ms: i32, f: &mut dyn FnMut(&Frame<'_>)) -> io::Result<usize> {
        let (linktype, nanos, snaplen) = (self.linktype, self.nanos, self.snaplen);
        let mut handle = |p: pcap::Packet<'_>| {
            // time_t and suseconds_t are i64 on 64-bit Linux, narrower elsewhere.
            #[allow(clippy::useless_conversion)]
            let (sec, sub) = (
                i64::from(p.header.ts.tv_sec),
                i64::from(p.header.ts.tv_usec),
            );
            let ts = Timestamp::from_parts(sec, if nanos { sub } else { sub.saturating_mul(1000) });
            let data = p.data.get(..snaplen.min(p.data.len())).unwrap_or(p.data);
            f(&Frame {
                ts,
                linktype,
                data,
                orig_len: p.header.len,
                mapped: None,
            });
        };
        let n = self
            .cap
            .dispatch(Some(DISPATCH), &mut handle)
            .map_err(|e| io::Error::other(format!("{}: {e}", self.name)))?;
        if n > 0 {
            return Ok(n);
        }
        if !sys::wait_readable(self.cap.as_raw_fd(), timeout_ms)? {
            return Ok(0);
        }
        self.cap
            .dispatch(Some(DISPATCH), handle)
            .map_err(|e| io::Error::other(format!("{}: {e}", self.name)))
    }

    fn stats(&mut self) -> SourceStats {
        match self.cap.stats() {
            Ok(s) => SourceStats {
                received: u64::from(s.received),
                kernel_drops: u64::from(s.dropped),
            },
            Err(_) => SourceStats::default(),
        }
    }
}

/// Compiles `expr` for `linktype` with libpcap (the afpacket method attaches
/// the result to its sockets).
pub fn compile(expr: &str, linktype: u32) -> io::Result<pcap::BpfProgram> {
    let dead = pcap::Capture::dead(pcap::Linktype(linktype as i32))
        .map_err(|e| io::Error::other(format!("libpcap: {e}")))?;
    dead.compile(expr, true).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("BPF filter {expr:?}: {e}"),
        )
    })
}
