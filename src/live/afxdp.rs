//! AF_XDP capture (cargo feature `afxdp`): one XDP socket per receive
//! queue of an interface, each with its own UMEM, fed by a tiny XDP program
//! that redirects every frame to the socket of its queue.
//!
//! Set-up, all before privileges are dropped: an `XSKMAP` is created with
//! `bpf(BPF_MAP_CREATE)`; a six-instruction XDP program, assembled here,
//! does `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)`
//! (frames of a queue without a socket go on to the stack); it is loaded
//! with `BPF_PROG_LOAD` and attached with `BPF_LINK_CREATE`, so the kernel
//! detaches it when the link's descriptor closes — at exit, also a crash.
//! Then, per queue, `socket(AF_XDP)`, a UMEM registered with
//! `XDP_UMEM_REG`, the fill, completion and RX rings sized and mapped, the
//! socket bound to the queue and put in the map. No C toolchain, libbpf or
//! libxdp is needed (README, "Capture methods and statistics").
//!
//! Receive: the kernel copies (or, on drivers that support it, DMAs) each
//! frame into a UMEM frame we gave it through the fill ring and posts a
//! descriptor on the RX ring; we lend the frame, then give the frame back
//! through the fill ring. Frames longer than one UMEM frame arrive as
//! several descriptors (`XDP_USE_SG`) and are gathered up to the snap
//! length. AF_XDP cannot run a classic BPF filter in the kernel, so the
//! `--bpf` program compiled by libpcap runs here, in user space, on each
//! frame (`pcap_offline_filter`). Redirected frames do not reach the
//! kernel's stack: this method is for a capture-only port (SPAN, TAP).
//!
//! Ring layouts are those of `linux/if_xdp.h`, `bpf_attr` those of
//! `linux/bpf.h`. All `unsafe` is in this file and each block says why it
//! is sound.

#![allow(unsafe_code)]

use super::XdpMode;
use super::source::{Source, SourceStats};
use super::sys;
use crate::capture::{Frame, Timestamp};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
const XDP_RX_RING: libc::c_int = 2;
const XDP_UMEM_REG: libc::c_int = 4;
const XDP_UMEM_FILL_RING: libc::c_int = 5;
const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
const XDP_STATISTICS: libc::c_int = 7;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
/// Bind flags.
const XDP_COPY: u16 = 1 << 1;
const XDP_USE_SG: u16 = 1 << 4;
/// Descriptor option: more of this packet follows in the next descriptor.
const XDP_PKT_CONTD: u32 = 1;
/// mmap page offsets of the rings.
const XDP_PGOFF_RX_RING: libc::off_t = 0;
const XDP_UMEM_PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
/// Attach flags.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// bpf(2) commands, map, program and attach types.
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
/// The program handles multi-buffer frames (it only looks at the queue
/// index), which lets native mode attach to a jumbo-MTU veth.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;
/// UMEM frame size (one page); the kernel keeps 256 bytes of headroom.
const FRAME: usize = 4096;
/// How long a woken reader lets frames gather before reading them (the
/// RX ring holds them: at 1 Mpps, 1,000 of its 16,384 entries by default).
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
/// Completion ring entries (transmit only; required to bind).
const COMPLETION_ENTRIES: u32 = 64;

#[repr(C)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
struct XdpStatistics {
    rx_dropped: u64,
    rx_invalid_descs: u64,
    tx_invalid_descs: u64,
    rx_ring_full: u64,
    rx_fill_ring_empty_descs: u64,
    tx_ring_empty_descs: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct XdpDesc {
    addr: u64,
    len: u32,
    options: u32,
}

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
struct MapUpdateAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    pad: [u64; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct BpfInsn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    #[cfg(target_endian = "little")]
    let regs = dst | (src << 4);
    #[cfg(target_endian = "big")]
    let regs = (dst << 4) | src;
    BpfInsn {
        code,
        regs,
        off,
        imm,
    }
}

/// `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
fn redirect_program(map_fd: i32) -> [BpfInsn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16): xdp_md.rx_queue_index
        insn(0x61, 2, 1, 16, 0),
        // r1 = the map (a 16-byte load of the map's descriptor)
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: the action when the queue has no socket
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // call bpf_redirect_map; its result is the program's
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(0x95, 0, 0, 0, 0),
    ]
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable bpf_attr prefix of the size
    // passed, laid out as the kernel's (repr(C), padding explicit and
    // zeroed); the kernel reads (and may write) at most that many bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// A new descriptor returned by bpf(2) (created close-on-exec).
fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(bpf(cmd, attr)?)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: bpf(2) returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

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

fn getsockopt<T: Default>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let mut val = T::default();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `val` is writable for `len` bytes; the kernel writes at most
    // `len` bytes of its struct, whose layout T mirrors (repr(C)).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(val)
}

/// A memory mapping, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes: of `fd` at `offset`, or anonymous memory.
    fn new(len: usize, fd: Option<&OwnedFd>, offset: libc::off_t) -> io::Result<Mapping> {
        let (flags, raw) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd.as_raw_fd()),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping at an address the kernel chooses; no
        // existing memory is affected; it is released in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                raw,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: p.cast(), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(); no reference
        // into it outlives its owner.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// One single-producer single-consumer ring shared with the kernel.
struct Ring {
    map: Mapping,
    producer: usize,
    consumer: usize,
    desc: usize,
    mask: u32,
}

impl Ring {
    fn map(
        fd: &OwnedFd,
        off: &RingOffset,
        entries: u32,
        entry: usize,
        pgoff: libc::off_t,
    ) -> io::Result<Ring> {
        let desc = usize::try_from(off.desc).map_err(|_| io::ErrorKind::InvalidData)?;
        let len = desc + entries as usize * entry;
        let ring = Ring {
            map: Mapping::new(len, Some(fd), pgoff)?,
            producer: usize::try_from(off.producer).map_err(|_| io::ErrorKind::InvalidData)?,
            consumer: usize::try_from(off.consumer).map_err(|_| io::ErrorKind::InvalidData)?,
            desc,
            mask: entries - 1,
        };
        if ring.producer + 4 > desc || ring.consumer + 4 > desc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "XDP ring offsets overlap the descriptors",
            ));
        }
        Ok(ring)
    }

    fn index(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is the producer or consumer offset the kernel gave
        // (checked to lie inside the mapping, before the descriptors); both
        // are u32-aligned words that the kernel accesses with
        // acquire/release, so an AtomicU32 view of them is sound for as
        // long as the mapping lives (tied to &self).
        unsafe { &*self.map.ptr.add(at).cast::<AtomicU32>() }
    }

    fn producer(&self) -> &AtomicU32 {
        self.index(self.producer)
    }

    fn consumer(&self) -> &AtomicU32 {
        self.index(self.consumer)
    }

    /// Pointer to the descriptor slot of ring position `i` (masked).
    fn slot<T>(&self, i: u32) -> *mut T {
        let n = (i & self.mask) as usize;
        // SAFETY: n <= mask < entries and the mapping holds `entries`
        // descriptors of size_of::<T>() after `desc` (Ring::map), whose
        // offset the kernel aligns for them.
        unsafe { self.map.ptr.add(self.desc + n * std::mem::size_of::<T>()) }.cast()
    }
}

/// What one interface's sockets share: the program, its attachment and
/// the map. Dropping it (with the last socket) detaches the program.
struct Attachment {
    _link: OwnedFd,
    _prog: OwnedFd,
    map: OwnedFd,
    /// An AF_PACKET socket holding promiscuous mode (undone on close).
    _promisc: Option<OwnedFd>,
    native: bool,
}

/// How to open an interface.
#[derive(Debug, Clone)]
pub struct XdpConfig {
    /// Interface name.
    pub iface: String,
    /// UMEM size per interface in MiB (split between its queues).
    pub umem_mib: usize,
    /// Bytes of each packet kept.
    pub snaplen: usize,
    /// Promiscuous mode.
    pub promisc: bool,
    /// BPF filter expression, run in user space.
    pub bpf: Option<String>,
    /// Native (driver) or generic (skb) XDP.
    pub mode: XdpMode,
}

/// One AF_XDP socket, bound to one receive queue, with its UMEM and rings.
pub struct XskSource {
    // Closed first: the kernel stops using the UMEM and rings.
    fd: OwnedFd,
    rx: Ring,
    fill: Ring,
    umem: Mapping,
    rx_cons: u32,
    fill_prod: u32,
    filter: Option<pcap::BpfProgram>,
    snaplen: usize,
    name: String,
    queue: u32,
    zerocopy: bool,
    /// Frames lent (after the filter).
    passed: u64,
    /// Frames the filter rejected.
    rejected: u64,
    /// A multi-buffer frame being gathered: its bytes (up to snaplen) and
    /// its full length.
    sg_buf: Vec<u8>,
    sg_len: Option<u32>,
    attach: Arc<Attachment>,
}

// SAFETY: the mappings are owned by this value alone (no other Rust
// reference to them exists) and only touched through &mut self (the
// atomics through &self, which is sound from any thread), so moving it to
// the capture thread is sound.
unsafe impl Send for XskSource {}

/// Receive queues of `iface` (sysfs `queues/rx-N`), at least one.
fn rx_queues(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX).max(1))
}

fn name16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(s.bytes().take(15)) {
        *o = b;
    }
    out
}

/// Loads the redirect program for `map`; the verifier's log in the error.
fn load_program(map: &OwnedFd, frags: bool) -> io::Result<OwnedFd> {
    let prog = redirect_program(map.as_raw_fd());
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: if frags { BPF_F_XDP_HAS_FRAGS } else { 0 },
        prog_name: name16("phonehome_xsk"),
        prog_ifindex: 0,
        expected_attach_type: BPF_XDP,
    };
    match bpf_fd(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            // Again with the verifier's log, to say why.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf_fd(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(log.get(..end).unwrap_or_default());
            Err(io::Error::new(
                e.kind(),
                format!("{e}; verifier: {}", text.trim()),
            ))
        }
    }
}

/// Attaches `prog` to `ifindex` in driver or skb mode (a BPF link).
fn attach(prog: &OwnedFd, ifindex: i32, native: bool) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex as u32,
        attach_type: BPF_XDP,
        flags: if native {
            XDP_FLAGS_DRV_MODE
        } else {
            XDP_FLAGS_SKB_MODE
        },
        pad: [0; 4],
    };
    bpf_fd(BPF_LINK_CREATE, &mut attr)
}

/// An AF_PACKET socket that keeps `ifindex` promiscuous while open.
fn promisc_holder(ifindex: i32) -> io::Result<OwnedFd> {
    // Protocol 0: it receives nothing.
    // SAFETY: socket takes integers only.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    #[repr(C)]
    struct PacketMreq {
        ifindex: libc::c_int,
        kind: libc::c_ushort,
        alen: libc::c_ushort,
        address: [u8; 8],
    }
    let mreq = PacketMreq {
        ifindex,
        kind: 1, // PACKET_MR_PROMISC
        alen: 0,
        address: [0; 8],
    };
    setsockopt(&fd, 263, 1, &mreq)?; // SOL_PACKET, PACKET_ADD_MEMBERSHIP
    Ok(fd)
}

/// Opens one socket per receive queue of `cfg.iface`, attaches the
/// redirect program and fills the map.
pub fn open(cfg: &XdpConfig) -> io::Result<Vec<XskSource>> {
    let iface = &cfg.iface;
    let ctx = |e: io::Error, what: &str| io::Error::new(e.kind(), format!("{iface}: {what}: {e}"));
    let ifindex = sys::ifindex(iface).map_err(|e| ctx(e, "no such interface"))?;
    match std::fs::read_to_string(format!("/sys/class/net/{iface}/type"))
        .map(|t| t.trim().to_string())
        .as_deref()
    {
        Ok("1") | Ok("772") => {}
        Ok(other) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{iface}: hardware type {other} is not Ethernet; AF_XDP needs Ethernet frames (use --method afpacket)"
                ),
            ));
        }
        Err(e) => return Err(ctx(io::Error::new(e.kind(), e.to_string()), "sysfs type")),
    }
    let queues = rx_queues(iface);
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: queues,
        map_flags: 0,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: name16("phonehome_xsks"),
    };
    let map = bpf_fd(BPF_MAP_CREATE, &mut attr).map_err(|e| {
        ctx(
            e,
            "cannot create the XSKMAP (needs CAP_BPF and CAP_NET_ADMIN, or root)",
        )
    })?;
    // Kernels before 5.18 do not know the frags flag.
    let prog = load_program(&map, true)
        .or_else(|_| load_program(&map, false))
        .map_err(|e| ctx(e, "cannot load the XDP program"))?;
    let busy = |e: io::Error, mode: &str| {
        let hint =
            if e.raw_os_error() == Some(libc::EBUSY) || e.raw_os_error() == Some(libc::EEXIST) {
                " (another XDP program is attached: `ip link set IFACE xdp off` if it is stale)"
            } else {
                ""
            };
        ctx(e, &format!("cannot attach XDP in {mode} mode{hint}"))
    };
    let (link, native) = match cfg.mode {
        XdpMode::Native => (
            attach(&prog, ifindex, true).map_err(|e| busy(e, "native"))?,
            true,
        ),
        XdpMode::Skb => (
            attach(&prog, ifindex, false).map_err(|e| busy(e, "skb"))?,
            false,
        ),
        XdpMode::Auto => match attach(&prog, ifindex, true) {
            Ok(l) => (l, true),
            Err(native_err) => match attach(&prog, ifindex, false) {
                Ok(l) => (l, false),
                Err(e) => {
                    return Err(busy(
                        io::Error::new(e.kind(), format!("{e}; native mode: {native_err}")),
                        "skb",
                    ));
                }
            },
        },
    };
    let promisc = if cfg.promisc {
        Some(promisc_holder(ifindex).map_err(|e| ctx(e, "promiscuous mode"))?)
    } else {
        None
    };
    let attach = Arc::new(Attachment {
        _link: link,
        _prog: prog,
        map,
        _promisc: promisc,
        native,
    });
    // Frames per queue: a power of two, 64 at least.
    let total = cfg.umem_mib.saturating_mul(1 << 20) / FRAME;
    let per_queue = (total / queues as usize).clamp(64, 1 << 20);
    let frames = 1u32 << per_queue.ilog2();
    let mut out = Vec::with_capacity(queues as usize);
    for q in 0..queues {
        let filter = match &cfg.bpf {
            Some(expr) => Some(super::pcap::compile(expr, 1)?),
            None => None,
        };
        let s = XskSource::open(cfg, ifindex, q, frames, filter, Arc::clone(&attach))
            .map_err(|e| ctx(e, &format!("queue {q}")))?;
        out.push(s);
    }
    Ok(out)
}

impl XskSource {
    fn open(
        cfg: &XdpConfig,
        ifindex: i32,
        queue: u32,
        frames: u32,
        filter: Option<pcap::BpfProgram>,
        attach: Arc<Attachment>,
    ) -> io::Result<XskSource> {
        // SAFETY: socket takes integers only.
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open an AF_XDP socket (needs CAP_NET_RAW; kernel ≥ 4.18): {e}"),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Mapping::new(frames as usize * FRAME, None, 0)
            .map_err(|e| io::Error::new(e.kind(), format!("UMEM: {e}")))?;
        let reg = UmemReg {
            addr: umem.ptr as u64,
            len: umem.len as u64,
            chunk_size: FRAME as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&fd, SOL_XDP, XDP_UMEM_REG, &reg).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("XDP_UMEM_REG (locked memory: RLIMIT_MEMLOCK or CAP_IPC_LOCK): {e}"),
            )
        })?;
        setsockopt(&fd, SOL_XDP, XDP_UMEM_FILL_RING, &frames)?;
        setsockopt(&fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &COMPLETION_ENTRIES)?;
        setsockopt(&fd, SOL_XDP, XDP_RX_RING, &frames)?;
        let off: MmapOffsets = getsockopt(&fd, SOL_XDP, XDP_MMAP_OFFSETS)?;
        let rx = Ring::map(
            &fd,
            &off.rx,
            frames,
            std::mem::size_of::<XdpDesc>(),
            XDP_PGOFF_RX_RING,
        )?;
        let fill = Ring::map(&fd, &off.fr, frames, 8, XDP_UMEM_PGOFF_FILL_RING)?;
        // Every frame to the kernel: the fill ring holds them all, so it
        // always has room for the ones we give back.
        for i in 0..frames {
            // SAFETY: a fill ring slot (Ring::slot), not yet published, so
            // the kernel does not read it concurrently.
            unsafe {
                fill.slot::<u64>(i)
                    .write_volatile(u64::from(i) * FRAME as u64)
            };
        }
        fill.producer().store(frames, Ordering::Release);
        let bind = |flags: u16| -> io::Result<()> {
            let sxdp = SockaddrXdp {
                family: AF_XDP as u16,
                flags,
                ifindex: ifindex as u32,
                queue_id: queue,
                shared_umem_fd: 0,
            };
            // SAFETY: `sxdp` is a sockaddr_xdp (repr(C)) live for the call,
            // with its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sxdp as *const SockaddrXdp).cast(),
                    std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        // In skb mode the kernel copies anyway; in native mode let it pick
        // zero-copy where the driver can. Multi-buffer (kernel ≥ 6.6) when
        // offered.
        let base = if attach.native { 0 } else { XDP_COPY };
        bind(base | XDP_USE_SG)
            .or_else(|_| bind(base))
            .map_err(|e| io::Error::new(e.kind(), format!("bind: {e}")))?;
        let key = queue;
        let value = fd.as_raw_fd() as u32;
        let mut upd = MapUpdateAttr {
            map_fd: attach.map.as_raw_fd() as u32,
            pad: 0,
            key: (&key as *const u32) as u64,
            value: (&value as *const u32) as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut upd)
            .map_err(|e| io::Error::new(e.kind(), format!("XSKMAP update: {e}")))?;
        #[repr(C)]
        #[derive(Default)]
        struct XdpOptions {
            flags: u32,
        }
        let zerocopy = getsockopt::<XdpOptions>(&fd, SOL_XDP, XDP_OPTIONS)
            .is_ok_and(|o| o.flags & XDP_OPTIONS_ZEROCOPY != 0);
        Ok(XskSource {
            fd,
            rx,
            fill,
            umem,
            rx_cons: 0,
            fill_prod: frames,
            filter,
            snaplen: cfg.snaplen.max(64),
            name: cfg.iface.clone(),
            queue,
            zerocopy,
            passed: 0,
            rejected: 0,
            sg_buf: Vec::new(),
            sg_len: None,
            attach,
        })
    }

    fn xdp_stats(&self) -> XdpStatistics {
        getsockopt(&self.fd, SOL_XDP, XDP_STATISTICS).unwrap_or_default()
    }

    /// Lends one descriptor's frame (or gathers it into a multi-buffer
    /// frame); returns whether a frame was lent.
    fn take(&mut self, d: XdpDesc, ts: Timestamp, f: &mut dyn FnMut(&Frame<'_>)) -> bool {
        let start = usize::try_from(d.addr).unwrap_or(usize::MAX);
        let len = d.len as usize;
        let bytes: &[u8] = match start.checked_add(len) {
            // SAFETY: the range lies inside the UMEM (checked); the kernel
            // posted this descriptor and does not write to its frame until
            // we give the frame back through the fill ring, after `f`.
            Some(end) if end <= self.umem.len => unsafe {
                std::slice::from_raw_parts(self.umem.ptr.add(start), len)
            },
            _ => &[],
        };
        let more = d.options & XDP_PKT_CONTD != 0;
        if more || self.sg_len.is_some() {
            if self.sg_len.is_none() {
                self.sg_buf.clear();
                self.sg_len = Some(0);
            }
            let room = self.snaplen.saturating_sub(self.sg_buf.len());
            self.sg_buf
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
            let total = self.sg_len.unwrap_or(0).saturating_add(d.len);
            if more {
                self.sg_len = Some(total);
                return false;
            }
            self.sg_len = None;
            let buf = std::mem::take(&mut self.sg_buf);
            let lent = self.lend(&buf, total, ts, f);
            self.sg_buf = buf;
            return lent;
        }
        self.lend(bytes, d.len, ts, f)
    }

    fn lend(
        &mut self,
        bytes: &[u8],
        orig_len: u32,
        ts: Timestamp,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> bool {
        if let Some(prog) = &self.filter
            && !prog.filter(bytes)
        {
            self.rejected += 1;
            return false;
        }
        self.passed += 1;
        f(&Frame {
            ts,
            linktype: 1,
            data: bytes.get(..self.snaplen.min(bytes.len())).unwrap_or(bytes),
            orig_len,
            mapped: None,
        });
        true
    }
}

fn wall_now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

impl Source for XskSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_batch(&mut self, timeout_ms: i32, f: &mut dyn FnMut(&Frame<'_>)) -> io::Result<usize> {
        let mut ready = self
            .rx
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.rx_cons);
        if ready == 0 {
            if !sys::wait_readable(self.fd.as_raw_fd(), timeout_ms)? {
                return Ok(0);
            }
            // Woken by the first frames: let a batch gather (as a
            // TPACKET_V3 block does until it retires) instead of waking
            // for every frame, which tripled the CPU per packet here.
            std::thread::sleep(GATHER);
            ready = self
                .rx
                .producer()
                .load(Ordering::Acquire)
                .wrapping_sub(self.rx_cons);
        }
        // At most a quarter of the ring per call, so the caller gets to
        // flush and publish statistics under load too.
        let n = ready.min((self.rx.mask + 1) / 4);
        // One clock read per batch: AF_XDP descriptors carry no timestamp.
        let ts = wall_now();
        let mut lent = 0;
        for i in 0..n {
            let slot = self.rx.slot::<XdpDesc>(self.rx_cons.wrapping_add(i));
            // SAFETY: an RX slot the kernel published (below the producer
            // index read with acquire), not reused until we advance the
            // consumer index.
            let d = unsafe { slot.read_volatile() };
            if self.take(d, ts, f) {
                lent += 1;
            }
            // The frame back to the kernel (its start: aligned mode).
            let base = d.addr - d.addr % FRAME as u64;
            let fslot = self.fill.slot::<u64>(self.fill_prod.wrapping_add(i));
            // SAFETY: a fill ring slot past the producer index, which the
            // kernel does not read until we publish it; the ring holds every
            // frame, so it is free.
            unsafe { fslot.write_volatile(base) };
        }
        self.fill_prod = self.fill_prod.wrapping_add(n);
        self.fill
            .producer()
            .store(self.fill_prod, Ordering::Release);
        self.rx_cons = self.rx_cons.wrapping_add(n);
        self.rx.consumer().store(self.rx_cons, Ordering::Release);
        Ok(lent)
    }

    fn stats(&mut self) -> SourceStats {
        let s = self.xdp_stats();
        // Frames dropped for want of a fill-ring frame or of room in the
        // RX ring (or too long without multi-buffer); those the filter
        // rejected are not received, as with a kernel filter.
        let drops = s.rx_dropped + s.rx_ring_full;
        SourceStats {
            received: self.passed + drops,
            kernel_drops: drops,
        }
    }

    fn describe(&mut self) -> Option<String> {
        let s = self.xdp_stats();
        Some(format!(
            "{} queue {}: AF_XDP, {} mode, {}; {} frames lent, {} rejected by the filter; XDP_STATISTICS rx_dropped {}, rx_ring_full {}, rx_fill_ring_empty_descs {}, rx_invalid_descs {}",
            self.name,
            self.queue,
            if self.attach.native { "native" } else { "skb" },
            if self.zerocopy { "zero-copy" } else { "copy" },
            self.passed,
            self.rejected,
            s.rx_dropped,
            s.rx_ring_full,
            s.rx_fill_ring_empty_descs,
            s.rx_invalid_descs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_the_six_instructions_of_a_queue_redirect() {
        let p = redirect_program(7);
        // ldxw r2, [r1+16]; lddw r1, map; mov r3, 2; call 51; exit
        let codes: Vec<u8> = p.iter().map(|i| i.code).collect();
        assert_eq!(codes, [0x61, 0x18, 0, 0xb7, 0x85, 0x95]);
        assert_eq!((p[0].regs, p[0].off), (0x12, 16));
        assert_eq!((p[1].regs, p[1].imm), (0x11, 7));
        assert_eq!((p[3].regs, p[3].imm), (3, XDP_PASS));
        assert_eq!(p[4].imm, 51);
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
    }

    #[test]
    fn kernel_structs_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<UmemReg>(), 32);
        assert_eq!(std::mem::size_of::<MmapOffsets>(), 128);
        assert_eq!(std::mem::size_of::<SockaddrXdp>(), 16);
        assert_eq!(std::mem::size_of::<XdpStatistics>(), 48);
        assert_eq!(std::mem::size_of::<XdpDesc>(), 16);
        assert_eq!(std::mem::size_of::<MapUpdateAttr>(), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
    }

    #[test]
    fn names_are_cut_to_fifteen_bytes_and_nul_terminated() {
        let n = name16("a_very_long_program_name");
        assert_eq!(&n[..15], b"a_very_long_pro");
        assert_eq!(n[15], 0);
    }
}
