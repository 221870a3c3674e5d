//! A container's root filesystem as `docker cp` sees it: stat a path, archive it, and
//! unpack an archive into a directory, without ever leaving the root.
//!
//! Paths are taken as Docker takes them: absolute in the container, `..` clamped at the
//! root, a trailing `/` or `/.` kept. Every lookup goes through a [`pathrs::Root`]
//! (openat2 `RESOLVE_IN_ROOT`), so symlinks, absolute or relative, resolve inside the
//! container root as they would for a process chrooted there, and the final component
//! of a stat or archive path is not followed (as Docker's `lstat`). Unpacking is the
//! layer applier in [`Mode::Plain`], which resolves every entry's parent the same way.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fstat, fstatat, FileStat, SFlag};
use pathrs::flags::OpenFlags;
use pathrs::{Handle, Root};

use crate::layer::{self, sys::file_type, ApplyOptions, Mode};

/// Errors of container filesystem operations.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The path (given as the client gave it) does not exist in the container.
    #[error("no such file or directory: {0}")]
    NotFound(String),
    /// The directory to unpack into is not a directory (Docker's message).
    #[error("extraction point is not a directory")]
    NotADirectory,
    /// A path that must be a directory is something else.
    #[error("{0}: not a directory")]
    NotDir(String),
    /// Archiving or unpacking failed (bad archive, refused entry, I/O).
    #[error(transparent)]
    Layer(#[from] layer::Error),
    /// Opening or resolving in the root failed otherwise.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path in the container.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, RootfsError>;

/// Go's `os.FileMode` bits that Docker puts in `ContainerPathStat.mode`.
mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// What Docker reports of a path (`ContainerPathStat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last element of the path as requested (`/` for the root).
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go's `os.FileMode`: permission bits plus type and setuid/setgid/sticky flags.
    pub mode: u32,
    /// Modification time.
    pub mtime: SystemTime,
    /// For a symlink, its target fully resolved in the container (absolute).
    pub link_target: String,
}

impl PathStat {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & go_mode::DIR != 0
    }
}

/// Go's `os.FileMode` of a `stat`.
pub fn go_file_mode(st: &FileStat) -> u32 {
    let m = st.st_mode;
    let mut out = m & 0o777;
    if m & libc::S_ISUID != 0 {
        out |= go_mode::SETUID;
    }
    if m & libc::S_ISGID != 0 {
        out |= go_mode::SETGID;
    }
    if m & libc::S_ISVTX != 0 {
        out |= go_mode::STICKY;
    }
    out |= match file_type(st) {
        SFlag::S_IFDIR => go_mode::DIR,
        SFlag::S_IFLNK => go_mode::SYMLINK,
        SFlag::S_IFIFO => go_mode::NAMED_PIPE,
        SFlag::S_IFSOCK => go_mode::SOCKET,
        SFlag::S_IFBLK => go_mode::DEVICE,
        SFlag::S_IFCHR => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        _ => 0,
    };
    out
}

/// Docker's view of a requested path: `filepath.Join("/", p)` (so `..` stops at the
/// root) with a trailing `/` or `/.` of `p` kept (`PreserveTrailingDotOrSeparator`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    let last = p.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let specifies_current = last == "." || (last.is_empty() && p.is_empty());
    if specifies_current && !out.ends_with("/.") {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if p.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the root.
fn base_name(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// A resolved path: the directory holding it and its name there (`.` for the
/// directory itself, when the path ends in `/`, `/.` or is the root).
pub struct Resource {
    parent: Handle,
    name: OsString,
    st: FileStat,
    stat: PathStat,
}

impl Resource {
    /// What Docker reports of it.
    pub fn stat(&self) -> &PathStat {
        &self.stat
    }

    /// Writes the resource as a tar, named as Docker names it: the requested base name
    /// (`dir/` and `dir/...` for a directory, `/...` for the root). A symlink is
    /// archived as a symlink. Returns the writer.
    pub fn write_tar<W: Write>(&self, out: W) -> Result<W> {
        let prefix: &[u8] = if self.stat.name == "/" {
            b""
        } else {
            self.stat.name.as_bytes()
        };
        Ok(layer::tar_resource(
            self.parent.as_fd(),
            &self.name,
            &self.st,
            prefix,
            out,
        )?)
    }
}

/// Options of [`ContainerRoot::extract`] (Docker's `PUT /containers/{id}/archive`).
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Fail rather than replace a directory with a non-directory or the other way
    /// round (`noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner of every unpacked entry instead of the archive's (`copyUIDGID`).
    pub chown: Option<(u32, u32)>,
}

/// A directory of the container to unpack into, resolved.
#[derive(Debug, Clone)]
pub struct ExtractDir {
    path: String,
}

impl ExtractDir {
    /// Its absolute path in the container, symlinks resolved.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A container root filesystem (a mounted rootfs directory).
pub struct ContainerRoot {
    root: Root,
    path: PathBuf,
    /// The host path the root's fd points at, to turn resolved fds into container
    /// paths.
    real: PathBuf,
}

fn errno_of(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(n) => n,
        _ => None,
    }
}

fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl ContainerRoot {
    /// Opens the root filesystem mounted at `path`.
    pub fn open(path: &Path) -> Result<ContainerRoot> {
        let io_err = |op, source| RootfsError::Io {
            op,
            path: path.display().to_string(),
            source,
        };
        let root = Root::open(path)
            .map_err(|e| io_err("opening the container root", io::Error::other(e)))?;
        let real = fd_path(root.as_fd()).map_err(|e| io_err("reading the root path", e))?;
        Ok(ContainerRoot {
            root,
            path: path.to_owned(),
            real,
        })
    }

    /// Resolves `rel` (relative, no `..`) following every symlink inside the root.
    fn resolve(&self, rel: &str, shown: &str) -> Result<Handle> {
        let lookup = if rel.is_empty() { "." } else { rel };
        self.root.resolve(lookup).map_err(|e| match errno_of(&e) {
            Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => {
                RootfsError::NotFound(shown.to_string())
            }
            _ => RootfsError::Io {
                op: "resolving",
                path: shown.to_string(),
                source: io::Error::other(e),
            },
        })
    }

    /// The absolute container path of a resolved fd.
    fn container_path(&self, fd: BorrowedFd<'_>) -> Option<String> {
        let p = fd_path(fd).ok()?;
        let rel = p.strip_prefix(&self.real).ok()?;
        Some(format!("/{}", rel.display()))
    }

    /// Resolves `path` as Docker's `ResolvePath` does: the directory part with every
    /// symlink followed (inside the root), the last element not followed.
    pub fn resource(&self, path: &str) -> Result<Resource> {
        let abs = clean_path(path);
        let cut = abs.rfind('/').map_or(0, |i| i + 1);
        let (dir, base) = abs.split_at(cut);
        let parent = self.resolve(dir.trim_matches('/'), path)?;
        let (name, st) = if base.is_empty() || base == "." {
            let st = fstat(parent.as_fd()).map_err(|e| RootfsError::Io {
                op: "stat",
                path: path.to_string(),
                source: e.into(),
            })?;
            if file_type(&st) != SFlag::S_IFDIR {
                return Err(RootfsError::NotDir(path.to_string()));
            }
            (OsStr::new(".").to_owned(), st)
        } else {
            let st = match fstatat(parent.as_fd(), base, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => {
                    return Err(RootfsError::NotFound(path.to_string()))
                }
                Err(e) => {
                    return Err(RootfsError::Io {
                        op: "lstat",
                        path: path.to_string(),
                        source: e.into(),
                    })
                }
            };
            (OsStr::new(base).to_owned(), st)
        };
        let link_target = if file_type(&st) == SFlag::S_IFLNK {
            // Docker shows the symlink fully resolved in the container; a dangling
            // one shows its raw target.
            match self.root.resolve(abs.trim_start_matches('/')) {
                Ok(h) => self.container_path(h.as_fd()),
                Err(_) => None,
            }
            .or_else(|| {
                readlinkat(parent.as_fd(), name.as_os_str())
                    .ok()
                    .map(|t| t.to_string_lossy().into_owned())
            })
            .unwrap_or_default()
        } else {
            String::new()
        };
        let mtime = UNIX_EPOCH
            + Duration::new(
                st.st_mtime.max(0) as u64,
                st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
            );
        let stat = PathStat {
            name: base_name(&abs),
            size: st.st_size,
            mode: go_file_mode(&st),
            mtime,
            link_target,
        };
        Ok(Resource {
            parent,
            name,
            st,
            stat,
        })
    }

    /// Stats `path` (see [`resource`](Self::resource)).
    pub fn stat(&self, path: &str) -> Result<PathStat> {
        Ok(self.resource(path)?.stat)
    }

    /// Resolves the directory `dir` to unpack into: every symlink followed, its last
    /// element too (so a symlink to a directory can be the destination), as Docker
    /// does.
    pub fn extract_dir(&self, dir: &str) -> Result<ExtractDir> {
        let abs = clean_path(dir);
        let h = self.resolve(abs.trim_matches('/').trim_end_matches("/."), dir)?;
        let st = fstat(h.as_fd()).map_err(|e| RootfsError::Io {
            op: "stat",
            path: dir.to_string(),
            source: e.into(),
        })?;
        if file_type(&st) != SFlag::S_IFDIR {
            return Err(RootfsError::NotADirectory);
        }
        let path = self
            .container_path(h.as_fd())
            .ok_or_else(|| RootfsError::Io {
                op: "locating",
                path: dir.to_string(),
                source: io::Error::other("the directory is not inside the container root"),
            })?;
        Ok(ExtractDir { path })
    }

    /// Unpacks an archive (plain, gzip or zstd tar) into `into`. Entries land below
    /// it: `..` in names and hardlinks to outside it are refused, and symlinks met on
    /// the way resolve inside the root.
    pub fn extract<R: Read>(
        &self,
        into: &ExtractDir,
        reader: R,
        opts: &ExtractOptions,
    ) -> Result<()> {
        let opts = ApplyOptions {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            chown: opts.chown,
            under: PathBuf::from(into.path.trim_start_matches('/')),
            ..ApplyOptions::from(Mode::Plain)
        };
        layer::apply_with(reader, &self.path, &opts)?;
        Ok(())
    }

    /// The content of the regular file at `path` (symlinks followed inside the root),
    /// at most `limit` bytes; `None` if it can't be read.
    pub fn read_file(&self, path: &str, limit: u64) -> Option<Vec<u8>> {
        let rel = clean_path(path);
        let f = self
            .root
            .open_subpath(rel.trim_start_matches('/'), OpenFlags::O_RDONLY)
            .ok()?;
        let mut out = Vec::new();
        f.take(limit).read_to_end(&mut out).ok()?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_docker_cleans_them() {
        assert_eq!(clean_path("etc/passwd"), "/etc/passwd");
        assert_eq!(clean_path("/../../etc"), "/etc");
        assert_eq!(clean_path("/tmp/"), "/tmp/");
        assert_eq!(clean_path("/tmp/."), "/tmp/.");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("."), "/.");
        assert_eq!(clean_path("a/b/../c/"), "/a/c/");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/tmp/"), "tmp");
        assert_eq!(base_name("/tmp/."), ".");
    }

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn stat_archive_and_extract_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/sub/f"), b"hi").unwrap();
        std::os::unix::fs::symlink("/../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/d", root.join("dl")).unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        let r = ContainerRoot::open(&root).unwrap();

        let s = r.stat("/d").unwrap();
        assert!(s.is_dir() && s.name == "d");
        let s = r.stat("/dl").unwrap();
        assert_eq!(s.mode & go_mode::SYMLINK, go_mode::SYMLINK);
        assert_eq!(s.link_target, "/d");
        let s = r.stat("/up").unwrap();
        assert_eq!(s.link_target, "/", "an escaping link stays at the root");
        assert!(matches!(
            r.stat("/up/outside"),
            Err(RootfsError::NotFound(_))
        ));
        assert!(matches!(r.stat("/nope"), Err(RootfsError::NotFound(_))));

        let tar = r.resource("/dl/").unwrap().write_tar(Vec::new()).unwrap();
        assert_eq!(names(&tar), ["dl/", "dl/sub/", "dl/sub/f"]);
        let tar = r
            .resource("/d/sub/f")
            .unwrap()
            .write_tar(Vec::new())
            .unwrap();
        assert_eq!(names(&tar), ["f"]);
        let tar = r.resource("/up").unwrap().write_tar(Vec::new()).unwrap();
        assert_eq!(names(&tar), ["up"], "a symlink is archived, not followed");

        // Unpacking through a symlink that points above the root lands inside it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "new", &b"abc"[..]).unwrap();
        let data = b.into_inner().unwrap();
        assert!(matches!(
            r.extract_dir("/up/tmp"),
            Err(RootfsError::NotFound(_))
        ));
        std::fs::create_dir(root.join("tmp")).unwrap();
        let into = r.extract_dir("/up/tmp").unwrap();
        assert_eq!(into.path(), "/tmp");
        r.extract(&into, &data[..], &ExtractOptions::default())
            .unwrap();
        assert_eq!(std::fs::read(root.join("tmp/new")).unwrap(), b"abc");
        assert!(!t.path().join("tmp").exists());
        assert_eq!(std::fs::read(t.path().join("outside")).unwrap(), b"secret");
        assert!(matches!(
            r.extract_dir("/d/sub/f"),
            Err(RootfsError::NotADirectory)
        ));

        // A name with `..`, and a hardlink to a file outside the unpack dir.
        let mut raw = Vec::new();
        for (name, kind, link) in [("../evil", b'0', ""), ("sub/ok", b'0', "")] {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(tar::EntryType::new(kind));
            h.set_mode(0o644);
            h.set_size(0);
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
        }
        raw.extend_from_slice(&[0; 1024]);
        let into = r.extract_dir("/tmp").unwrap();
        assert!(r
            .extract(&into, &raw[..], &ExtractOptions::default())
            .is_err());
        assert!(!root.join("evil").exists() && !t.path().join("evil").exists());

        let mut raw = Vec::new();
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..4].copy_from_slice(b"link");
        h.as_old_mut().linkname[..10].copy_from_slice(b"../d/sub/f");
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(&[0; 1024]);
        assert!(r
            .extract(&into, &raw[..], &ExtractOptions::default())
            .is_err());
        assert!(!root.join("tmp/link").exists());

        // noOverwriteDirNonDir: a file may not replace a directory.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "sub", &b""[..]).unwrap();
        let data = b.into_inner().unwrap();
        let into = r.extract_dir("/d").unwrap();
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            chown: None,
        };
        let e = r.extract(&into, &data[..], &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"cannot overwrite directory "/d/sub" with non-directory "/d""#
        );
        assert!(root.join("d/sub/f").exists());
    }
}
