//! Protection against overwriting the runtime binary from inside a container (the runc
//! CVE-2019-5736 class). A process in the container can reach the runtime's executable
//! through /proc/<pid>/exe (or a `#!/proc/self/exe` script run by exec) and write to it
//! once it stops running. So before it touches any container, the runtime re-executes
//! itself from a copy that cannot be written:
//!
//! 1. preferred (as runc 1.2 does): in a private mount namespace of its own, the binary
//!    is bind-mounted read-only over itself and executed from there; a write through
//!    /proc/<pid>/exe then meets the read-only mount (EROFS). Costs an exec, no copy.
//! 2. fallback: a sealed memfd copy (write, grow and shrink sealed).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::mount::MsFlags;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Error, Result};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when /proc/self/exe cannot be written: a sealed memfd or a read-only mount.
pub fn is_protected() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    statvfs("/proc/self/exe").is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

fn argv_envp() -> (Vec<CString>, Vec<CString>) {
    let args = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    (args, env)
}

/// Re-executes the current program from a protected copy, with the same argv and
/// environment. Returns only when it already runs from one, or on error.
pub fn ensure() -> Result<()> {
    crate::trace::mark("main");
    if is_protected() {
        return Ok(());
    }
    let read_only = read_only_exec();
    memfd_exec().map_err(|e| match read_only {
        Err(r) => Error::Other(format!("protecting the runtime binary: {r}; {e}")),
        Ok(()) => e,
    })
}

/// Way 1: a read-only bind mount of the binary in a private mount namespace.
fn read_only_exec() -> Result<()> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| Error::io("reading", "/proc/self/exe", e))?;
    let sys = |what: &str, e: nix::Error| Error::Other(format!("{what}: {e}"));
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| sys("unshare mount namespace", e))?;
    // Nothing mounted here may reach the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| sys("making / a slave", e))?;
    nix::mount::mount(
        Some(&exe),
        &exe,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| sys("binding the runtime binary", e))?;
    nix::mount::mount(
        None::<&str>,
        &exe,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| sys("remounting the runtime binary read-only", e))?;
    let (args, env) = argv_envp();
    let path = CString::new(exe.as_os_str().as_bytes()).unwrap_or_default();
    let e = nix::unistd::execve(&path, &args, &env).unwrap_err();
    Err(sys("re-executing from the read-only mount", e))
}

/// Way 2: a sealed memfd copy.
fn memfd_exec() -> Result<()> {
    let err = |what: &str| Error::Other(format!("{what}: {}", std::io::Error::last_os_error()));
    let name = c"berth-runtime";
    // SAFETY: memfd_create with a valid name; the returned fd is ours.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(err("memfd_create"));
    }
    // SAFETY: fd was just returned by memfd_create.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut src =
        File::open("/proc/self/exe").map_err(|e| Error::io("opening", "/proc/self/exe", e))?;
    let mut dst = File::from(memfd);
    std::io::copy(&mut src, &mut dst).map_err(|e| Error::io("copying", "/proc/self/exe", e))?;
    // SAFETY: F_ADD_SEALS on the memfd we own.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(err("sealing the runtime copy"));
    }
    let (args, env) = argv_envp();
    let e = nix::unistd::fexecve(&dst, &args, &env).unwrap_err();
    Err(Error::Other(format!("re-executing from sealed copy: {e}")))
}
