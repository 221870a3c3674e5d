//! Protection against overwriting the runtime binary from inside a container (the runc
//! CVE-2019-5736 class). A process in the container can reach the runtime's executable
//! through /proc/<pid>/exe (or a `#!/proc/self/exe` script run by exec) and write to it
//! once it stops running. Before it touches any container, the runtime re-executes
//! itself from a sealed memfd copy: /proc/self/exe is then an anonymous, write-sealed
//! file that nobody can change, and the host binary is never reachable from a container.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when /proc/self/exe is already a sealed copy.
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-executes the current program from a sealed memfd copy, with the same argv and
/// environment. Returns only when the process already runs from one, or on error.
pub fn ensure() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
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
    let args: Vec<CString> = std::env::args_os()
        .map(|a| {
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).unwrap_or_default()
        })
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            kv.push(b'=');
            kv.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let e = nix::unistd::fexecve(&dst, &args, &env).unwrap_err();
    Err(Error::Other(format!("re-executing from sealed copy: {e}")))
}
