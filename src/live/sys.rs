//! The operating-system calls of live capture that have no safe wrapper:
//! signal flags, waiting on a descriptor, and dropping privileges. Every
//! `unsafe` block says why it is sound.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second SIGINT/SIGTERM while shutting down: leave at once.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Installs the handlers: SIGINT/SIGTERM ask for a clean stop (a second one
/// exits at once), SIGHUP asks for a feed reload. The handlers only set
/// atomic flags, read by [`stop_requested`] and [`take_reload`].
pub fn install_signal_handlers() -> io::Result<()> {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 3] = [
        (libc::SIGINT, on_stop),
        (libc::SIGTERM, on_stop),
        (libc::SIGHUP, on_reload),
    ];
    for (sig, handler) in handlers {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
        // the handler is an extern "C" fn that only touches atomics (and
        // _exit), which is async-signal-safe; `sa` outlives the call.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Asks for a stop as a signal would (a `--duration` running out).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether SIGHUP arrived since the last call.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

/// Waits until `fd` is readable or `timeout_ms` passes. Returns whether it
/// is readable; an interrupted wait (a signal) counts as a timeout.
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd array of length 1 for the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

/// The index of network interface `name`.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    i32::try_from(i).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// What [`drop_privileges`] did.
#[derive(Debug, Clone)]
pub struct Dropped {
    /// The user now running (name), or `None` when it stayed the same.
    pub user: Option<String>,
    /// Effective capabilities afterwards (bit mask from /proc/self/status).
    pub cap_eff: u64,
}

/// The uid and gid of `user`.
fn lookup_user(user: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    let c = CString::new(user).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `c` is NUL-terminated,
    // `pw` and `out` are out-parameters, and `buf` is writable for its length.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if out.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such user: {user}"),
        ));
    }
    Ok((pw.pw_uid, pw.pw_gid))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

/// Empties the permitted, effective and inheritable capability sets of the
/// process.
fn clear_capabilities() -> io::Result<()> {
    let hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads a v3 header and two data structs, which `hdr` and
    // `data` are, laid out as the kernel's (repr(C)).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The effective capability mask of this process.
pub fn effective_capabilities() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff in /proc/self/status"))
}

/// Gives up every privilege once the capture sockets are open: as root with
/// a `user`, switches to it (supplementary groups cleared, then group, then
/// user, with capabilities not kept across the switch); then, whoever runs
/// (root without `user`, or a user whose binary got CAP_NET_RAW from
/// setcap), clears the capability sets, forbids regaining privileges
/// through exec (no_new_privs) and checks that no effective capability is
/// left.
pub fn drop_privileges(user: Option<&str>) -> io::Result<Dropped> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mut switched = None;
    if let (0, Some(user)) = (euid, user) {
        let (uid, gid) = lookup_user(user)?;
        if uid == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--user {user} is root: choose an unprivileged user"),
            ));
        }
        prctl(libc::PR_SET_KEEPCAPS, 0)?;
        // SAFETY: setgroups with a zero count reads no memory; setgid and
        // setuid take plain integers. glibc applies them to every thread.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        switched = Some(user.to_string());
    }
    // Nothing is left after setuid from root without KEEPCAPS; a non-root
    // process with file capabilities clears its own sets.
    clear_capabilities()?;
    // PR_CAP_AMBIENT / PR_CAP_AMBIENT_CLEAR_ALL (old kernels: EINVAL, nothing to clear).
    let _ = prctl(47, 4);
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
    let cap_eff = effective_capabilities()?;
    if cap_eff != 0 {
        return Err(io::Error::other(format!(
            "capabilities left after dropping privileges: CapEff {cap_eff:016x}"
        )));
    }
    Ok(Dropped {
        user: switched,
        cap_eff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_index_and_nonsense_has_none() {
        assert!(ifindex("lo").is_ok_and(|i| i > 0));
        assert!(ifindex("no-such-if-x").is_err());
        assert!(ifindex("bad\0name").is_err());
    }

    #[test]
    fn users_are_looked_up() {
        assert_eq!(lookup_user("root").unwrap().0, 0);
        assert!(lookup_user("no-such-user-phonehome").is_err());
    }

    #[test]
    fn capabilities_are_read() {
        assert!(effective_capabilities().is_ok());
    }
}
