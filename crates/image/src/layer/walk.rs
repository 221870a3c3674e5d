//! A sorted, fd-based walk of a directory tree.
//!
//! A container's upper dir can be changed by the container while it is walked. Going
//! from directory fd to directory fd with `O_NOFOLLOW` (and checking that what was
//! opened is what was listed) means a directory swapped for a symlink can never make
//! the walk read files outside the tree into a layer.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode as FileMode, SFlag};

use super::sys::{cstr_os, file_type};
use super::{Error, Result};

/// One entry found by [`walk`].
pub(crate) struct Entry<'a> {
    /// The path relative to the walked root.
    pub rel: &'a Path,
    /// The entry's name in its parent.
    pub name: &'a std::ffi::OsStr,
    /// The parent directory.
    pub parent: BorrowedFd<'a>,
    /// `lstat` of the entry.
    pub st: &'a FileStat,
}

/// Opens `name` in `parent` as a directory, not following symlinks, and checks that it
/// is the inode `st` describes.
pub(crate) fn open_dir_at(
    parent: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    st: &FileStat,
    rel: &Path,
) -> Result<OwnedFd> {
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .map_err(|e| Error::nix("open dir", rel, e))?;
    same_inode(fd.as_fd(), st, rel)?;
    Ok(fd)
}

/// Fails if `fd` is not the inode `st` was taken of (it was replaced meanwhile).
pub(crate) fn same_inode(fd: BorrowedFd<'_>, st: &FileStat, rel: &Path) -> Result<()> {
    let now = fstat(fd).map_err(|e| Error::nix("stat", rel, e))?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(Error::io(
            "walking",
            rel,
            std::io::Error::other("entry was replaced while reading it"),
        ));
    }
    Ok(())
}

/// Opens a tree's root directory for [`walk_fd`].
pub(crate) fn open_root(root: &Path) -> Result<OwnedFd> {
    open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .map_err(|e| Error::nix("open dir", root, e))
}

/// Walks `root` depth first, each directory's entries sorted by name bytes; `visit`
/// returns whether to descend into a directory entry.
pub(crate) fn walk<F>(root: &Path, mut visit: F) -> Result<()>
where
    F: FnMut(&Entry<'_>) -> Result<bool>,
{
    let fd = open_root(root)?;
    walk_fd(fd, &mut PathBuf::new(), &mut visit)
}

/// The sorted names in a directory, without `.` and `..`.
pub(crate) fn read_names(dir: BorrowedFd<'_>, rel: &Path) -> Result<Vec<OsString>> {
    let dup = dir
        .try_clone_to_owned()
        .map_err(|e| Error::io("dup", rel, e))?;
    // The dup shares the file offset with `dir`: start from the beginning whatever
    // read it before.
    nix::unistd::lseek(&dup, 0, nix::unistd::Whence::SeekSet)
        .map_err(|e| Error::nix("read dir", rel, e))?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| Error::nix("read dir", rel, e))?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent.map_err(|e| Error::nix("read dir", rel, e))?;
        let n = cstr_os(ent.file_name());
        if n != "." && n != ".." {
            names.push(n.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn walk_fd<F>(dir: OwnedFd, rel: &mut PathBuf, visit: &mut F) -> Result<()>
where
    F: FnMut(&Entry<'_>) -> Result<bool>,
{
    for name in read_names(dir.as_fd(), rel)? {
        rel.push(&name);
        let st = match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Deleted since listed (a running container): nothing to report.
            Err(nix::errno::Errno::ENOENT) => {
                rel.pop();
                continue;
            }
            Err(e) => return Err(Error::nix("lstat", rel.as_path(), e)),
        };
        let descend = visit(&Entry {
            rel,
            name: &name,
            parent: dir.as_fd(),
            st: &st,
        })?;
        if descend && file_type(&st) == SFlag::S_IFDIR {
            let sub = open_dir_at(dir.as_fd(), &name, &st, rel)?;
            walk_fd(sub, rel, visit)?;
        }
        rel.pop();
    }
    Ok(())
}
