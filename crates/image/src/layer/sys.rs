//! Thin wrappers over the xattr syscalls, which nix does not cover, plus small helpers.
//!
//! Xattrs of an entry that cannot be opened (symlinks, device nodes) are reached as
//! `/proc/self/fd/<dirfd>/<name>` with the `l*xattr` calls: the kernel follows the
//! magic link to the already resolved directory and does not follow `name`, so the path
//! can't be redirected by a symlink.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::stat::{FileStat, SFlag};

/// The `/proc/self/fd/<dirfd>/<name>` path of `name` in an open directory.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Sets an xattr on an open file or directory.
pub(crate) fn fsetxattr(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let key = cstr(key)?;
    // SAFETY: fd is a live descriptor, key is NUL-terminated, value is a valid slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets an xattr on `name` in `dir` without following a symlink at `name`.
pub(crate) fn setxattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &str,
    value: &[u8],
) -> io::Result<()> {
    let path = proc_path(dir, name)?;
    let key = cstr(key)?;
    // SAFETY: both strings are NUL-terminated, value is a valid slice.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where an xattr operation is aimed: an open fd, or a `/proc/self/fd/..` path that
/// is not followed at its last component.
pub(crate) enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    Path(CString),
}

impl XattrTarget<'_> {
    /// The names of all xattrs, sorted.
    pub(crate) fn list(&self) -> io::Result<Vec<String>> {
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: buf is valid for buf.len() bytes; the fd/path are live/valid.
            let n = unsafe {
                match self {
                    XattrTarget::Fd(fd) => {
                        libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                    }
                    XattrTarget::Path(p) => {
                        libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                    }
                }
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ERANGE) => {
                        buf.resize(buf.len() * 4, 0);
                        continue;
                    }
                    Some(libc::ENOTSUP) => return Ok(Vec::new()),
                    _ => return Err(e),
                }
            }
            let mut names: Vec<String> = buf[..n as usize]
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            names.sort();
            return Ok(names);
        }
    }

    /// The value of one xattr, `None` if it is not set.
    pub(crate) fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let key = cstr(key)?;
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: buf is valid for buf.len() bytes; key is NUL-terminated.
            let n = unsafe {
                match self {
                    XattrTarget::Fd(fd) => libc::fgetxattr(
                        fd.as_raw_fd(),
                        key.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    ),
                    XattrTarget::Path(p) => libc::lgetxattr(
                        p.as_ptr(),
                        key.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    ),
                }
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ERANGE) => {
                        buf.resize(buf.len() * 4, 0);
                        continue;
                    }
                    Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
                    _ => return Err(e),
                }
            }
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
    }
}

/// Reads an xattr of a path (not following a final symlink); for trusted trees only.
pub(crate) fn lgetxattr_path(path: &std::path::Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    XattrTarget::Path(p).get(key)
}

/// The file type bits of a stat.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Whether a stat is an overlayfs whiteout (a 0/0 character device).
pub(crate) fn is_whiteout(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// `CStr` → `OsStr`, for directory entry names.
pub(crate) fn cstr_os(c: &CStr) -> &OsStr {
    OsStr::from_bytes(c.to_bytes())
}
