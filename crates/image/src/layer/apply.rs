//! Applying a layer tar onto a directory.
//!
//! Safety model (S2): the target is opened once as a [`pathrs::Root`]. For each entry
//! the *parent* directory is resolved inside that root (openat2 `RESOLVE_IN_ROOT`, so
//! `..` and symlinks — absolute or relative — are scoped to the target the way a chroot
//! would scope them, which is what Docker's chrooted unpack does), and the entry itself
//! is then made with an `*at` syscall on that parent fd and a single name component,
//! never following a symlink at the final component (`O_NOFOLLOW`, `O_EXCL`,
//! `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`). Names are normalised
//! lexically first: a leading `/` is dropped, `.` and empty components are dropped, and
//! any `..` component is refused with [`Error::UnsafePath`], like GNU tar does.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::mkdirat;
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mknodat, utimensat, FchmodatFlags, FileStat,
    Mode as FileMode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use pathrs::flags::OpenFlags;
use pathrs::{Handle, Root};
use sha2::{Digest as _, Sha256};
use std::rc::Rc;

use super::compress;
use super::sys::{self, file_type};
use super::{
    Applied, Error, Mode, Result, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE, WHITEOUT_PREFIX,
};

/// Options of [`apply_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// How whiteouts are represented.
    pub mode: Mode,
    /// Ignore `EPERM`/`EINVAL` from chown (rootless, or ids outside the user namespace),
    /// as Docker's `IgnoreChownErrors`; the entries keep the applier's ownership.
    pub ignore_chown_errors: bool,
    /// Fail rather than replace an existing directory with a non-directory or the
    /// other way round (Docker's `NoOverwriteDirNonDir`, which `docker cp` sets).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner (uid, gid) of every entry instead of the tar's (Docker's `ChownOpts`).
    pub chown: Option<(u32, u32)>,
    /// A directory of the target (relative, already resolved) that entry names and
    /// hardlink targets are taken relative to; symlinks met on the way still resolve
    /// inside the whole target, as in Docker's untar chrooted into a container root.
    pub under: PathBuf,
}

impl From<Mode> for ApplyOptions {
    fn from(mode: Mode) -> Self {
        ApplyOptions {
            mode,
            ignore_chown_errors: false,
            no_overwrite_dir_non_dir: false,
            chown: None,
            under: PathBuf::new(),
        }
    }
}

/// Applies a layer (plain, gzip or zstd tar) onto `target`, an existing directory.
///
/// The DiffID is computed over the uncompressed stream as it is unpacked, including
/// the tar's end-of-archive blocks and any trailing bytes, so the reader is consumed
/// to its end. Nothing is fsynced: the caller syncs the target once when done.
pub fn apply<R: Read>(reader: R, target: &Path, mode: Mode) -> Result<Applied> {
    apply_with(reader, target, &mode.into())
}

/// [`apply`] with all options.
pub fn apply_with<R: Read>(reader: R, target: &Path, opts: &ApplyOptions) -> Result<Applied> {
    // gzip and zstd (pure-Rust ruzstd) are both undone here; see `compress`.
    let (_, stream) = compress::decompress(reader).map_err(Error::Tar)?;
    let mut hashed = HashReader {
        inner: stream,
        hasher: Sha256::new(),
    };
    let root = Root::open(target).map_err(|source| Error::Resolve {
        path: target.to_owned(),
        source,
    })?;
    let mut applier = Applier {
        root,
        opts: opts.clone(),
        parent_cache: None,
        unpacked: HashSet::new(),
        dir_times: Vec::new(),
        warnings: Vec::new(),
        buf: vec![0; 128 * 1024],
        size: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(Error::Tar)? {
            let entry = entry.map_err(Error::Tar)?;
            applier.entry(entry)?;
        }
    }
    // The tar reader stops at the end-of-archive marker; the DiffID covers the whole
    // stream, so read what follows (the second zero block, padding) too.
    io::copy(&mut hashed, &mut io::sink()).map_err(Error::Tar)?;
    applier.fix_dir_times()?;
    Ok(Applied {
        diff_id: format!("sha256:{}", hex::encode(hashed.hasher.finalize())),
        size: applier.size,
        warnings: applier.warnings,
    })
}

/// Hashes everything read through it.
struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Lexically normalises a tar name to a relative path of plain components.
pub(crate) fn normalize(raw: &[u8]) -> Result<PathBuf> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => unreachable!("no path prefixes on unix"),
            Component::ParentDir => {
                return Err(Error::UnsafePath {
                    path: String::from_utf8_lossy(raw).into_owned(),
                    reason: "`..` components are not allowed",
                })
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// The metadata of an entry, with PAX overrides applied.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    if secs < 0 {
        // Pre-1970 times are rare enough that sub-second precision doesn't matter.
        return Some(TimeSpec::new(secs, 0));
    }
    let mut nanos: i64 = 0;
    for ch in frac.chars().chain(std::iter::repeat('0')).take(9) {
        nanos = nanos * 10 + i64::from(ch.to_digit(10)?);
    }
    Some(TimeSpec::new(secs, nanos))
}

/// Go's tar reader (Docker's) reads an empty numeric field (all NULs or spaces) as 0,
/// and some writers leave unused fields so; the tar crate calls them malformed.
fn lenient(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, rel: &Path) -> Result<Meta> {
    let hdr = entry.header();
    let bad = |what: &'static str, e: io::Error| Error::Io {
        op: what,
        path: rel.to_owned(),
        source: e,
    };
    let old = hdr.as_old();
    let mut uid = lenient(&old.uid, hdr.uid()).map_err(|e| bad("reading uid of", e))?;
    let mut gid = lenient(&old.gid, hdr.gid()).map_err(|e| bad("reading gid of", e))?;
    let mode = lenient(&old.mode, hdr.mode().map(u64::from))
        .map_err(|e| bad("reading mode of", e))? as u32
        & 0o7777;
    let mtime = lenient(&old.mtime, hdr.mtime()).map_err(|e| bad("reading mtime of", e))?;
    let mut mtime = TimeSpec::new(mtime as i64, 0);
    let mut xattrs = Vec::new();
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| bad("reading PAX records of", e))?
    {
        for ext in pax {
            let ext = ext.map_err(|e| bad("reading PAX records of", e))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_owned(), value.to_vec()));
            } else {
                let v = std::str::from_utf8(value).unwrap_or("");
                match key {
                    "uid" => uid = v.parse().unwrap_or(uid),
                    "gid" => gid = v.parse().unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(v).unwrap_or(mtime),
                    _ => {}
                }
            }
        }
    }
    let id = |v: u64| {
        u32::try_from(v).map_err(|_| {
            bad(
                "ownership of",
                io::Error::new(io::ErrorKind::InvalidData, "uid/gid out of range"),
            )
        })
    };
    Ok(Meta {
        uid: id(uid)?,
        gid: id(gid)?,
        mode,
        mtime,
        xattrs,
    })
}

struct Applier {
    root: Root,
    opts: ApplyOptions,
    /// The last resolved parent. Entries come grouped by directory, so this saves most
    /// resolutions. It can't go stale: an entry only creates or removes its own path
    /// (and, for opaque whiteouts, paths below its parent), never an ancestor of it.
    parent_cache: Option<(PathBuf, Rc<Handle>)>,
    /// Flatten mode: the paths this layer unpacked, which an opaque whiteout keeps.
    unpacked: HashSet<PathBuf>,
    /// Directory mtimes, set at the end since creating entries changes them.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    warnings: Vec<String>,
    buf: Vec<u8>,
    size: u64,
}

fn errno_of(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(n) => n,
        _ => None,
    }
}

fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Applier {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let rel = normalize(&raw)?;
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let plain = self.opts.mode == Mode::Plain;
        // AUFS metadata (`.wh..wh.plnk/...`, `.wh..wh.aufs`) is not content. Hardlinks
        // into `.wh..wh.plnk` (old AUFS-built images) are therefore not supported.
        let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or(b"");
        if !plain
            && rel.components().any(|c| {
                let c = c.as_os_str().as_bytes();
                c.starts_with(WHITEOUT_META_PREFIX.as_bytes()) && c != WHITEOUT_OPAQUE.as_bytes()
            })
        {
            self.warnings
                .push(format!("{}: AUFS metadata skipped", rel.display()));
            return Ok(());
        }
        let mut meta = read_meta(&mut entry, &rel)?;
        if let Some((uid, gid)) = self.opts.chown {
            meta.uid = uid;
            meta.gid = gid;
        }

        if rel.as_os_str().is_empty() {
            // Docker's untar leaves the directory it unpacks into as it is.
            if plain {
                return Ok(());
            }
            return self.root_entry(etype, &raw, &meta);
        }
        if !plain && name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&rel, name, &meta);
        }
        let rel = self.opts.under.join(&rel);

        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_owned();
        let name = rel
            .file_name()
            .expect("normalised non-empty path")
            .to_owned();
        if self.opts.mode == Mode::Flatten {
            self.unpacked.insert(rel.clone());
        }
        let parent = self.parent(&parent_rel)?;
        let pfd = parent.as_fd();
        let existing = lstat_at(pfd, &name).map_err(|e| Error::nix("lstat", &rel, e))?;
        if self.opts.no_overwrite_dir_non_dir {
            if let Some(st) = &existing {
                let was_dir = file_type(st) == SFlag::S_IFDIR;
                if was_dir != (etype == tar::EntryType::Directory) {
                    let (old, new) = if was_dir {
                        ("directory", "non-directory")
                    } else {
                        ("non-directory", "directory")
                    };
                    return Err(Error::Overwrite(format!(
                        "cannot overwrite {old} {:?} with {new} {:?}",
                        Path::new("/").join(&rel),
                        Path::new("/").join(&self.opts.under)
                    )));
                }
            }
        }

        match etype {
            tar::EntryType::Directory => {
                match existing {
                    Some(st) if file_type(&st) == SFlag::S_IFDIR => {} // merge
                    Some(st) => {
                        self.remove(pfd, &rel, &name, &st)?;
                        mkdirat(pfd, name.as_os_str(), FileMode::from_bits_truncate(0o700))
                            .map_err(|e| Error::nix("mkdir", &rel, e))?;
                    }
                    None => mkdirat(pfd, name.as_os_str(), FileMode::from_bits_truncate(0o700))
                        .map_err(|e| Error::nix("mkdir", &rel, e))?,
                }
                let dir = openat(
                    pfd,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    FileMode::empty(),
                )
                .map_err(|e| Error::nix("open dir", &rel, e))?;
                self.set_meta_fd(dir.as_fd(), &rel, &meta)?;
                self.dir_times.push((rel, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if let Some(st) = existing {
                    self.remove(pfd, &rel, &name, &st)?;
                }
                let fd = openat(
                    pfd,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    FileMode::from_bits_truncate(0o600),
                )
                .map_err(|e| Error::nix("create", &rel, e))?;
                let mut file = File::from(fd);
                let mut written = 0u64;
                loop {
                    let n = entry.read(&mut self.buf).map_err(Error::Tar)?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])
                        .map_err(|e| Error::io("write", &rel, e))?;
                    written += n as u64;
                }
                self.size += written;
                self.set_meta_fd(file.as_fd(), &rel, &meta)?;
                futimens(file.as_fd(), &meta.mtime, &meta.mtime)
                    .map_err(|e| Error::nix("set times of", &rel, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if let Some(st) = existing {
                    self.remove(pfd, &rel, &name, &st)?;
                }
                symlinkat(OsStr::from_bytes(&target), pfd, name.as_os_str())
                    .map_err(|e| Error::nix("symlink", &rel, e))?;
                self.set_meta_at(pfd, &rel, &name, &meta, false)?;
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(&rel, &name, existing, &target_raw)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match etype {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let hdr = entry.header();
                let major = hdr.device_major().ok().flatten().unwrap_or(0);
                let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
                if let Some(st) = existing {
                    self.remove(pfd, &rel, &name, &st)?;
                }
                let dev = if kind == SFlag::S_IFIFO {
                    0
                } else {
                    libc::makedev(major, minor)
                };
                match mknodat(
                    pfd,
                    name.as_os_str(),
                    kind,
                    FileMode::from_bits_truncate(0o600),
                    dev,
                ) {
                    Ok(()) => {}
                    // Without CAP_MKNOD (user namespaces) device nodes can't be made;
                    // Docker skips them too, the runtime bind-mounts /dev anyway.
                    Err(Errno::EPERM) if kind != SFlag::S_IFIFO => {
                        self.warnings.push(format!(
                            "{}: device node {major}:{minor} not created: not permitted",
                            rel.display()
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(Error::nix("mknod", &rel, e)),
                }
                self.set_meta_at(pfd, &rel, &name, &meta, true)?;
            }
            other => {
                self.warnings.push(format!(
                    "{}: entry type {other:?} not supported, skipped",
                    rel.display()
                ));
            }
        }
        Ok(())
    }

    /// An entry for the root itself (`./`): only its metadata applies.
    fn root_entry(&mut self, etype: tar::EntryType, raw: &[u8], meta: &Meta) -> Result<()> {
        if etype != tar::EntryType::Directory {
            return Err(Error::UnsafePath {
                path: String::from_utf8_lossy(raw).into_owned(),
                reason: "the root of a layer can only be a directory",
            });
        }
        let dir = self
            .root
            .open_subpath(".", OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
            .map_err(|source| Error::Resolve {
                path: ".".into(),
                source,
            })?;
        self.set_meta_fd(dir.as_fd(), Path::new("."), meta)?;
        self.dir_times.push((PathBuf::new(), meta.mtime));
        Ok(())
    }

    /// Resolves (creating if missing, with mode 0755 as Docker does) a parent dir.
    fn parent(&mut self, parent_rel: &Path) -> Result<Rc<Handle>> {
        let hit = matches!(&self.parent_cache, Some((p, _)) if p == parent_rel);
        if !hit {
            let lookup = if parent_rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent_rel
            };
            let handle = match self.root.resolve(lookup) {
                Ok(h) => h,
                Err(e) if errno_of(&e) == Some(libc::ENOENT) => self
                    .root
                    .mkdir_all(lookup, &std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .map_err(|source| Error::Resolve {
                        path: parent_rel.to_owned(),
                        source,
                    })?,
                Err(source) => {
                    return Err(Error::Resolve {
                        path: parent_rel.to_owned(),
                        source,
                    })
                }
            };
            self.parent_cache = Some((parent_rel.to_owned(), Rc::new(handle)));
        }
        let (_, h) = self.parent_cache.as_ref().expect("cache just filled");
        Ok(Rc::clone(h))
    }

    /// Removes an existing entry that a new entry replaces.
    fn remove(&self, pfd: BorrowedFd<'_>, rel: &Path, name: &OsStr, st: &FileStat) -> Result<()> {
        if file_type(st) == SFlag::S_IFDIR {
            self.root.remove_all(rel).map_err(|source| Error::Resolve {
                path: rel.to_owned(),
                source,
            })?;
        } else {
            unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| Error::nix("remove", rel, e))?;
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, name: &[u8], meta: &Meta) -> Result<()> {
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_owned();
        let mode = self.opts.mode;
        if name == WHITEOUT_OPAQUE.as_bytes() {
            let parent = self.parent(&parent_rel)?;
            let dir = openat(
                parent.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                FileMode::empty(),
            )
            .map_err(|e| Error::nix("open dir", &parent_rel, e))?;
            return match mode {
                Mode::Overlay => sys::fsetxattr(dir.as_fd(), OVERLAY_OPAQUE_XATTR, b"y")
                    .map_err(|e| Error::io("mark opaque", &parent_rel, e)),
                // Plain archives have no whiteouts: `entry` never gets here with them.
                Mode::Flatten | Mode::Plain => self.remove_not_unpacked(&parent_rel, dir),
            };
        }
        let hidden = OsString::from(OsStr::from_bytes(&name[WHITEOUT_PREFIX.len()..]));
        if hidden.is_empty() {
            self.warnings
                .push(format!("{}: empty whiteout skipped", rel.display()));
            return Ok(());
        }
        let hidden_rel = parent_rel.join(&hidden);
        let parent = self.parent(&parent_rel)?;
        let pfd = parent.as_fd();
        let existing = lstat_at(pfd, &hidden).map_err(|e| Error::nix("lstat", &hidden_rel, e))?;
        match mode {
            Mode::Flatten | Mode::Plain => {
                if let Some(st) = existing {
                    self.remove(pfd, &hidden_rel, &hidden, &st)?;
                }
            }
            Mode::Overlay => {
                if let Some(st) = existing {
                    self.remove(pfd, &hidden_rel, &hidden, &st)?;
                }
                let parent = self.parent(&parent_rel)?;
                let pfd = parent.as_fd();
                mknodat(
                    pfd,
                    hidden.as_os_str(),
                    SFlag::S_IFCHR,
                    FileMode::empty(),
                    0,
                )
                .map_err(|e| {
                    Error::io(
                        "creating overlay whiteout (needs CAP_MKNOD)",
                        &hidden_rel,
                        e.into(),
                    )
                })?;
                self.chown_at(pfd, &hidden_rel, &hidden, meta)?;
                // Not needed by overlayfs, but makes diff → apply round trips exact.
                utimensat(
                    pfd,
                    hidden.as_os_str(),
                    &meta.mtime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| Error::nix("set times of", &hidden_rel, e))?;
            }
        }
        Ok(())
    }

    /// Flatten mode's opaque whiteout: removes everything below `dir_rel` that this
    /// layer did not unpack itself.
    fn remove_not_unpacked(&mut self, dir_rel: &Path, dir: OwnedFd) -> Result<()> {
        let names = super::walk::read_names(dir.as_fd(), dir_rel)?;
        for n in names {
            let child = dir_rel.join(&n);
            let Some(st) = lstat_at(dir.as_fd(), &n).map_err(|e| Error::nix("lstat", &child, e))?
            else {
                continue;
            };
            if !self.unpacked.contains(&child) {
                self.remove(dir.as_fd(), &child, &n, &st)?;
            } else if file_type(&st) == SFlag::S_IFDIR {
                let sub = openat(
                    dir.as_fd(),
                    n.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    FileMode::empty(),
                )
                .map_err(|e| Error::nix("open dir", &child, e))?;
                self.remove_not_unpacked(&child, sub)?;
            }
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        rel: &Path,
        name: &OsStr,
        existing: Option<FileStat>,
        target_raw: &[u8],
    ) -> Result<()> {
        let target = normalize(target_raw)?;
        let target = if target.as_os_str().is_empty() {
            target
        } else {
            self.opts.under.join(target)
        };
        let bad = |reason: &str| Error::BadHardlink {
            path: rel.to_owned(),
            target: target.clone(),
            reason: reason.to_owned(),
        };
        if target.as_os_str().is_empty() || target == rel {
            return Err(bad("invalid link target"));
        }
        let tparent_rel = target.parent().unwrap_or(Path::new(""));
        let tname = target.file_name().expect("non-empty").to_owned();
        let tparent = self
            .root
            .resolve(if tparent_rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                tparent_rel
            })
            .map_err(|_| bad("link target does not exist in the layer"))?;
        match lstat_at(tparent.as_fd(), &tname) {
            Ok(Some(st)) if file_type(&st) == SFlag::S_IFDIR => {
                return Err(bad("link target is a directory"))
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad("link target does not exist in the layer")),
            Err(e) => return Err(Error::nix("lstat", &target, e)),
        }
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_owned();
        let parent = self.parent(&parent_rel)?;
        let pfd = parent.as_fd();
        if let Some(st) = existing {
            self.remove(pfd, rel, name, &st)?;
        }
        let parent = self.parent(&parent_rel)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself, which
        // stays inside the target whatever it points to.
        linkat(
            tparent.as_fd(),
            tname.as_os_str(),
            parent.as_fd(),
            name,
            AtFlags::empty(),
        )
        .map_err(|e| bad(&io::Error::from(e).to_string()))
    }

    fn chown_at(&self, pfd: BorrowedFd<'_>, rel: &Path, name: &OsStr, meta: &Meta) -> Result<()> {
        match fchownat(
            pfd,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM | Errno::EINVAL) if self.opts.ignore_chown_errors => Ok(()),
            Err(e) => Err(Error::nix("chown", rel, e)),
        }
    }

    /// Ownership, mode and xattrs of an open file or dir, in the order that keeps them
    /// all: chown clears setuid bits and file capabilities, so it goes first.
    fn set_meta_fd(&mut self, fd: BorrowedFd<'_>, rel: &Path, meta: &Meta) -> Result<()> {
        match fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        ) {
            Ok(()) => {}
            Err(Errno::EPERM | Errno::EINVAL) if self.opts.ignore_chown_errors => {}
            Err(e) => return Err(Error::nix("chown", rel, e)),
        }
        fchmod(fd, FileMode::from_bits_truncate(meta.mode))
            .map_err(|e| Error::nix("chmod", rel, e))?;
        for (k, v) in &meta.xattrs {
            if self.skip_xattr(rel, k) {
                continue;
            }
            let r = sys::fsetxattr(fd, k, v);
            self.xattr_result(rel, k, r)?;
        }
        Ok(())
    }

    /// Metadata of an entry that can't be opened (symlink, device, fifo).
    fn set_meta_at(
        &mut self,
        pfd: BorrowedFd<'_>,
        rel: &Path,
        name: &OsStr,
        meta: &Meta,
        chmod: bool,
    ) -> Result<()> {
        self.chown_at(pfd, rel, name, meta)?;
        if chmod {
            // The entry was just made by mknodat in a tree only we write to, so
            // following a symlink here is not a concern (and Linux can't chmod one).
            fchmodat(
                pfd,
                name,
                FileMode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| Error::nix("chmod", rel, e))?;
        }
        for (k, v) in &meta.xattrs {
            if self.skip_xattr(rel, k) {
                continue;
            }
            let r = sys::setxattr_at(pfd, name, k, v);
            self.xattr_result(rel, k, r)?;
        }
        utimensat(
            pfd,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| Error::nix("set times of", rel, e))
    }

    fn skip_xattr(&mut self, rel: &Path, key: &str) -> bool {
        if key.starts_with(OVERLAY_XATTR_PREFIX) {
            self.warnings.push(format!(
                "{}: overlayfs-private xattr {key} ignored",
                rel.display()
            ));
            return true;
        }
        false
    }

    /// Like Docker, xattrs the filesystem can't hold (or may not be set here) are
    /// skipped with a warning rather than failing the pull.
    fn xattr_result(&mut self, rel: &Path, key: &str, r: io::Result<()>) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) => {
                self.warnings
                    .push(format!("{}: xattr {key} not set: {e}", rel.display()));
                Ok(())
            }
            Err(e) => Err(Error::io("set xattr on", rel, e)),
        }
    }

    fn fix_dir_times(&mut self) -> Result<()> {
        self.parent_cache = None;
        let times = std::mem::take(&mut self.dir_times);
        for (rel, t) in times {
            let (parent_rel, name) = match (rel.parent(), rel.file_name()) {
                (Some(p), Some(n)) => (p.to_owned(), n.to_owned()),
                _ => (PathBuf::new(), OsString::from(".")),
            };
            let lookup = if parent_rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &parent_rel
            };
            // A later whiteout may have removed the directory again.
            let Ok(parent) = self.root.resolve(lookup) else {
                continue;
            };
            match utimensat(
                parent.as_fd(),
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(Error::nix("set times of", &rel, e)),
            }
        }
        Ok(())
    }
}
