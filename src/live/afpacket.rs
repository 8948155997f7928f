//! AF_PACKET capture with a TPACKET_V3 memory-mapped ring, joined to a
//! PACKET_FANOUT group (hash mode with the defrag flag).
//!
//! The kernel writes packets into blocks of a ring shared with us; a block
//! is handed over whole (when full, or when its retire timeout passes on a
//! quiet link) and given back after its packets are read, so there is no
//! system call per packet and no copy but the kernel's. The BPF filter is
//! compiled by libpcap and attached to the socket before it is bound, so no
//! unfiltered packet reaches the ring. With the defrag flag the kernel
//! reassembles IP fragments before fanout, so a datagram's fragments are
//! never split between sockets.
//!
//! Layouts are those of `linux/if_packet.h` (TPACKET_V3). All `unsafe` is in
//! this file and each block says why it is sound.

#![allow(unsafe_code)]

use super::source::{Source, SourceStats};
use super::sys;
use crate::capture::{Frame, Timestamp};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const TPACKET_V3: libc::c_int = 2;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const ETH_P_ALL: u16 = 0x0003;
/// Offset of `block_status` in `tpacket_block_desc` (after version and
/// offset_to_priv).
const BLOCK_STATUS: usize = 8;
/// Size of `tpacket3_hdr`.
const PKT_HDR: usize = 48;
/// Block retire timeout: a block is handed over at most this long after its
/// first packet, so a quiet link still delivers promptly.
pub const RETIRE_MS: u32 = 10;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    kind: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

/// How to open a ring.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Interface name.
    pub iface: String,
    /// Ring size in MiB (1 MiB blocks).
    pub ring_mib: usize,
    /// Bytes of each packet kept.
    pub snaplen: usize,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Compiled classic BPF filter, if any.
    pub filter: Option<Vec<libc::sock_filter>>,
    /// Fanout group id (shared by the sockets of one interface).
    pub fanout_group: u16,
}

/// One AF_PACKET socket and its mapped ring.
pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
    current: usize,
    linktype: u32,
    snaplen: usize,
    name: String,
    vlan_buf: Vec<u8>,
    stats: SourceStats,
}

// SAFETY: the ring mapping is owned by this value alone (no other Rust
// reference to it exists) and is only touched through &mut self, so moving
// it to the capture thread is sound.
unsafe impl Send for Ring {}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `val` points to a live T of `len` bytes for the call, as the
    // option expects (each caller passes the kernel's struct layout).
    let rc =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (val as *const T).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// LINKTYPE for the interface's hardware type (ARPHRD from sysfs).
fn linktype_of(iface: &str) -> io::Result<u32> {
    let t = std::fs::read_to_string(format!("/sys/class/net/{iface}/type"))?;
    match t.trim().parse::<u32>() {
        // Ethernet, loopback: frames start with an Ethernet header.
        Ok(1) | Ok(772) => Ok(1),
        // No link header (tun, WireGuard): raw IP.
        Ok(65534) => Ok(101),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{iface}: hardware type {other} is not supported by afpacket; use --method pcap"
            ),
        )),
        Err(_) => Err(io::Error::from(io::ErrorKind::InvalidData)),
    }
}

impl Ring {
    /// Opens a socket on `cfg.iface`, maps its ring, attaches the filter,
    /// binds it, and joins the fanout group.
    pub fn open(cfg: &RingConfig) -> io::Result<Ring> {
        let ctx = |e: io::Error, what: &str| {
            io::Error::new(e.kind(), format!("{}: {what}: {e}", cfg.iface))
        };
        let ifindex = sys::ifindex(&cfg.iface).map_err(|e| ctx(e, "no such interface"))?;
        let linktype = linktype_of(&cfg.iface)?;
        // Protocol 0: nothing is queued before the socket is bound, which is
        // after the filter is attached.
        // SAFETY: socket takes integers only.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                "cannot open an AF_PACKET socket (needs CAP_NET_RAW)",
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| ctx(e, "TPACKET_V3"))?;
        let block_size: usize = 1 << 20;
        let block_nr = cfg.ring_mib.clamp(2, 4096);
        let frame_size: usize = 2048;
        let req = TpacketReq3 {
            block_size: block_size as u32,
            block_nr: block_nr as u32,
            frame_size: frame_size as u32,
            frame_nr: (block_size / frame_size * block_nr) as u32,
            retire_blk_tov: RETIRE_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(&fd, SOL_PACKET, PACKET_RX_RING, &req).map_err(|e| ctx(e, "ring"))?;
        let map_len = block_size * block_nr;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the length is the ring's; the mapping is released in Drop.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(ctx(io::Error::last_os_error(), "mmap of the ring"));
        }
        let ring = Ring {
            fd,
            map: map.cast(),
            map_len,
            block_size,
            block_nr,
            current: 0,
            linktype,
            snaplen: cfg.snaplen.max(64),
            name: cfg.iface.clone(),
            vlan_buf: Vec::new(),
            stats: SourceStats::default(),
        };
        if let Some(prog) = &cfg.filter {
            let fprog = libc::sock_fprog {
                len: u16::try_from(prog.len())
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
                filter: prog.as_ptr().cast_mut(),
            };
            setsockopt(&ring.fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
                .map_err(|e| ctx(e, "attaching the BPF filter"))?;
        }
        // SAFETY: a zeroed sockaddr_ll is valid; the fields set are plain
        // integers; the pointer and length describe it for the call.
        let rc = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_ALL.to_be();
            sll.sll_ifindex = ifindex;
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(ctx(io::Error::last_os_error(), "bind"));
        }
        if cfg.promisc {
            let mreq = PacketMreq {
                ifindex,
                kind: PACKET_MR_PROMISC,
                alen: 0,
                address: [0; 8],
            };
            setsockopt(&ring.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| ctx(e, "promiscuous mode"))?;
        }
        let fanout: u32 =
            u32::from(cfg.fanout_group) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        setsockopt(&ring.fd, SOL_PACKET, PACKET_FANOUT, &fanout).map_err(|e| ctx(e, "fanout"))?;
        Ok(ring)
    }

    /// The status word of block `i`.
    fn status_ptr(&self, i: usize) -> *mut u32 {
        // SAFETY: i < block_nr, so the offset stays inside the mapping, and
        // block descriptors start at block boundaries (aligned for u32).
        unsafe {
            self.map
                .add(i * self.block_size + BLOCK_STATUS)
                .cast::<u32>()
        }
    }

    fn block_ready(&self, i: usize) -> bool {
        // SAFETY: the status word is inside the mapping (status_ptr); the
        // kernel writes it concurrently, hence the volatile read, and the
        // acquire fence orders our reads of the block after it.
        let s = unsafe { std::ptr::read_volatile(self.status_ptr(i)) };
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        s & TP_STATUS_USER != 0
    }

    fn release(&self, i: usize) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        // SAFETY: as in block_ready; writing TP_STATUS_KERNEL hands the
        // block back, after which we no longer read it.
        unsafe { std::ptr::write_volatile(self.status_ptr(i), TP_STATUS_KERNEL) };
    }

    /// Reads the packets of block `i` (owned by us: status USER).
    fn read_block(&mut self, i: usize, f: &mut dyn FnMut(&Frame<'_>)) -> usize {
        // SAFETY: the block lies inside the mapping; while its status is
        // USER the kernel does not write to it, so a shared slice over it is
        // sound until release().
        let block: &[u8] = unsafe {
            std::slice::from_raw_parts(self.map.add(i * self.block_size), self.block_size)
        };
        let u32_at = |off: usize| -> Option<u32> {
            let b = block.get(off..off.checked_add(4)?)?;
            Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let u16_at = |off: usize| -> Option<u16> {
            let b = block.get(off..off.checked_add(2)?)?;
            Some(u16::from_ne_bytes([b[0], b[1]]))
        };
        let num = u32_at(12).unwrap_or(0);
        let mut off = u32_at(16).unwrap_or(0) as usize;
        let mut n = 0;
        for _ in 0..num {
            let (Some(next), Some(sec), Some(nsec), Some(snap), Some(len), Some(status), Some(mac)) = (
                u32_at(off),
                u32_at(off + 4),
                u32_at(off + 8),
                u32_at(off + 12),
                u32_at(off + 16),
                u32_at(off + 20),
                u16_at(off + 24),
            ) else {
                break;
            };
            if off + PKT_HDR > block.len() {
                break;
            }
            let start = off + usize::from(mac);
            let keep = (snap as usize).min(self.snaplen);
            let Some(data) = block.get(start..start.saturating_add(keep)) else {
                break;
            };
            let ts = Timestamp::from_parts(i64::from(sec), i64::from(nsec));
            if status & TP_STATUS_VLAN_VALID != 0 && self.linktype == 1 && data.len() >= 12 {
                // The kernel took the VLAN tag out of the frame (offload);
                // put it back where it was.
                let tci = u32_at(off + 32).unwrap_or(0) as u16;
                let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    u16_at(off + 36).unwrap_or(0x8100)
                } else {
                    0x8100
                };
                let mut buf = std::mem::take(&mut self.vlan_buf);
                buf.clear();
                buf.extend_from_slice(data.get(..12).unwrap_or_default());
                buf.extend_from_slice(&tpid.to_be_bytes());
                buf.extend_from_slice(&tci.to_be_bytes());
                buf.extend_from_slice(data.get(12..).unwrap_or_default());
                f(&Frame {
                    ts,
                    linktype: self.linktype,
                    data: &buf,
                    orig_len: len.saturating_add(4),
                    mapped: None,
                });
                self.vlan_buf = buf;
            } else {
                f(&Frame {
                    ts,
                    linktype: self.linktype,
                    data,
                    orig_len: len,
                    mapped: None,
                });
            }
            n += 1;
            if next == 0 {
                break;
            }
            off += next as usize;
        }
        n
    }
}

impl Source for Ring {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_batch(&mut self, timeout_ms: i32, f: &mut dyn FnMut(&Frame<'_>)) -> io::Result<usize> {
        let mut n = 0;
        let mut waited = false;
        // At most a quarter of the ring per call, so the caller gets to
        // flush and publish statistics under load too.
        let mut blocks = 0;
        while blocks < (self.block_nr / 4).max(1) {
            let i = self.current;
            if !self.block_ready(i) {
                if n > 0 || waited {
                    break;
                }
                waited = true;
                if !sys::wait_readable(self.fd.as_raw_fd(), timeout_ms)? {
                    break;
                }
                continue;
            }
            n += self.read_block(i, f);
            self.release(i);
            self.current = (i + 1) % self.block_nr;
            blocks += 1;
        }
        Ok(n)
    }

    fn stats(&mut self) -> SourceStats {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` is writable for `len` bytes, the size of the kernel's
        // tpacket_stats_v3; the kernel writes at most `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            // The kernel resets its counters on each read; tp_packets
            // already includes the drops.
            self.stats.received += u64::from(st.packets);
            self.stats.kernel_drops += u64::from(st.drops);
        }
        self.stats
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in open(); no slice over
        // it outlives &mut self.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// Turns libpcap's compiled program into the kernel's `sock_filter`s (the
/// two share the classic BPF layout; the `pcap` crate shows each
/// instruction as "code jt jf k").
pub fn sock_filter(prog: &pcap::BpfProgram) -> io::Result<Vec<libc::sock_filter>> {
    prog.get_instructions()
        .iter()
        .map(|ins| {
            let text = ins.to_string();
            let mut it = text.split_ascii_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(Ok(code)), Some(Ok(jt)), Some(Ok(jf)), Some(Ok(k))) => {
                    Ok(libc::sock_filter {
                        code: u16::try_from(code)
                            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?,
                        jt: u8::try_from(jt)
                            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?,
                        jf: u8::try_from(jf)
                            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?,
                        k: u32::try_from(k)
                            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?,
                    })
                }
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("BPF instruction {text:?}"),
                )),
            }
        })
        .collect()
}
