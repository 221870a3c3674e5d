//! Overlay snapshots: one directory per unpacked layer, keyed by chain ID, and the
//! overlay mount of a container's rootfs over them.
//!
//! ```text
//! <root>/snapshots/<chain-id hex>/fs       the layer, unpacked in overlay mode
//! <root>/snapshots/<chain-id hex>/parent   the parent's chain ID (absent for a base layer)
//! <root>/snapshots/.tmp-<hex>-<pid>-<n>/   a snapshot being prepared
//! <root>/snapshots/.rm-<hex>-<pid>-<n>/    a snapshot being removed
//! <root>/snapshots/.lock-<hex>             flock(2) serialising prepares of one chain ID
//! ```
//!
//! A snapshot directory only ever appears complete: it is unpacked under a temporary
//! name, synced, and renamed into place with `RENAME_NOREPLACE`; removal renames it
//! away before deleting. Temporary leftovers of a crash are deleted by [`Snapshots::open`].

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{renameat2, Flock, FlockArg, RenameFlags, AT_FDCWD};
use nix::mount::{umount2, MntFlags};
use sha2::{Digest as _, Sha256};

use crate::layer::walk;

/// The most lower layers overlayfs stacks (`OVL_MAX_STACK`).
pub const MAX_LAYERS: usize = 500;

/// Overlay options berth always mounts with: the layer diff reads the upper dir as a
/// plain tree, which redirects (renamed lower dirs), metacopy (data left in a lower)
/// and the inode index would all break. Docker's overlay2 turns index off the same way.
const OVERLAY_FIXED_OPTS: [(&str, &str); 3] = [
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

/// Errors of the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Not a `sha256:<64 hex>` (or bare hex) chain ID.
    #[error("invalid chain ID {0:?}")]
    InvalidChainId(String),
    /// No such snapshot.
    #[error("snapshot {0} not found")]
    NotFound(String),
    /// `prepare` was given a parent that is not prepared.
    #[error("snapshot {chain_id}: parent snapshot {parent} not found")]
    ParentMissing {
        /// The snapshot being prepared.
        chain_id: String,
        /// Its missing parent.
        parent: String,
    },
    /// `remove` of a snapshot that another snapshot is stacked on.
    #[error("snapshot {chain_id} is the parent of {child}")]
    InUse {
        /// The snapshot to remove.
        chain_id: String,
        /// A snapshot stacked on it.
        child: String,
    },
    /// The apply function given to `prepare` failed.
    #[error("unpacking snapshot {chain_id}: {source}")]
    Apply {
        /// The snapshot being prepared.
        chain_id: String,
        /// The apply function's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Mounting the overlay failed.
    #[error("mounting overlay on {}: {source}{detail}", target.display())]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The failing call's error.
        #[source]
        source: io::Error,
        /// The kernel's own message, when it gave one.
        detail: String,
    },
    /// More layers than overlayfs (or the mount option page) can take.
    #[error("image has {count} layers, more than the {max} an overlay mount can stack here")]
    TooManyLayers {
        /// The image's layers.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn ioe(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// A `Result` with the snapshot [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The chain ID of a layer: its DiffID for a base layer, else
/// `sha256(parent_chain_id + " " + diff_id)`, as the OCI image spec defines it.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_owned(),
        Some(p) => format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()))
        ),
    }
}

/// The chain IDs of every layer of an image, from its DiffIDs (base first).
pub fn chain_ids<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = chain_id(out.last().map(String::as_str), d.as_ref());
        out.push(id);
    }
    out
}

/// The hex part of a chain ID given as `sha256:<hex>` or `<hex>`.
fn hex_of(id: &str) -> Result<&str> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex)
    } else {
        Err(Error::InvalidChainId(id.to_owned()))
    }
}

/// What [`Snapshots::prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared<T> {
    /// The snapshot was unpacked now; the apply function returned this.
    Created(T),
    /// The snapshot already existed (possibly made by a concurrent prepare) and was
    /// reused; the apply function was not called.
    Existing,
}

/// The snapshot store under a data root.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

impl Snapshots {
    /// Opens (creating if needed) `<root>/snapshots`, and deletes what a crash left of
    /// prepares and removals no one is running any more.
    pub fn open(root: &Path) -> Result<Snapshots> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(ioe("create", &dir))?;
        let s = Snapshots { dir };
        s.clean_leftovers()?;
        Ok(s)
    }

    fn clean_leftovers(&self) -> Result<()> {
        for ent in fs::read_dir(&self.dir).map_err(ioe("read dir", &self.dir))? {
            let ent = ent.map_err(ioe("read dir", &self.dir))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            let path = ent.path();
            if let Some(hex) = name.strip_prefix(".lock-") {
                if hex_of(hex).is_ok() {
                    // Taken and dropped at once: deletes the file if no one holds it.
                    drop(self.lock(hex, false)?);
                }
            } else if name.starts_with(".rm-") {
                fs::remove_dir_all(&path).map_err(ioe("remove", &path))?;
            } else if let Some(rest) = name.strip_prefix(".tmp-") {
                let Some(hex) = rest.get(..64).filter(|h| hex_of(h).is_ok()) else {
                    continue;
                };
                // Holding the chain's lock proves no prepare of it is running.
                if let Some(_lock) = self.lock(hex, false)? {
                    fs::remove_dir_all(&path).map_err(ioe("remove", &path))?;
                }
            }
        }
        Ok(())
    }

    /// Takes the chain ID's lock (blocking, or `None` if `blocking` is false and
    /// someone holds it). The lock file is deleted when the lock is dropped, so the
    /// store holds no lock files at rest; a waiter that then gets the lock of a deleted
    /// file sees it is no longer the one at the path and retries.
    fn lock(&self, hex: &str, blocking: bool) -> Result<Option<ChainLock>> {
        let path = self.dir.join(format!(".lock-{hex}"));
        loop {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(ioe("open lock", &path))?;
            let arg = if blocking {
                FlockArg::LockExclusive
            } else {
                FlockArg::LockExclusiveNonblock
            };
            let lock = match Flock::lock(f, arg) {
                Ok(l) => l,
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => return Err(ioe("lock", &path)(e.into())),
            };
            let held = lock.metadata().map_err(ioe("stat", &path))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(ChainLock { _lock: lock, path }))
                }
                _ => continue,
            }
        }
    }

    /// The directory of a snapshot (`<root>/snapshots/<hex>`).
    pub fn path(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(hex_of(chain_id)?))
    }

    /// The unpacked layer of a snapshot (its overlay lower dir).
    pub fn fs_path(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.path(chain_id)?.join("fs"))
    }

    /// Whether a (complete) snapshot exists.
    pub fn exists(&self, chain_id: &str) -> Result<bool> {
        Ok(self.path(chain_id)?.is_dir())
    }

    /// Makes the snapshot `chain_id` on top of `parent` by calling `apply` on an empty
    /// directory (which becomes its `fs/`), unless it already exists.
    ///
    /// Crash-safe and idempotent: `apply` runs in a temporary directory that is synced
    /// (`syncfs`, once) and atomically renamed into place, so a snapshot is never seen
    /// half-applied and never applied twice. Concurrent prepares of the same chain ID
    /// (threads or processes) are serialised by a lock; the later ones see the
    /// snapshot made and return [`Prepared::Existing`].
    pub fn prepare<T, E, F>(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        apply: F,
    ) -> Result<Prepared<T>>
    where
        F: FnOnce(&Path) -> Result<T, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let hex = hex_of(chain_id)?;
        let final_dir = self.dir.join(hex);
        if final_dir.is_dir() {
            return Ok(Prepared::Existing);
        }
        if let Some(p) = parent {
            if !self.exists(p)? {
                return Err(Error::ParentMissing {
                    chain_id: chain_id.to_owned(),
                    parent: p.to_owned(),
                });
            }
        }
        let _lock = self.lock(hex, true)?;
        if final_dir.is_dir() {
            return Ok(Prepared::Existing);
        }

        let tmp = self.dir.join(format!(".tmp-{hex}-{}", unique_suffix()));
        let cleanup = RemoveOnDrop(Some(tmp.clone()));
        let fs_dir = tmp.join("fs");
        fs::create_dir(&tmp).map_err(ioe("create", &tmp))?;
        fs::create_dir(&fs_dir).map_err(ioe("create", &fs_dir))?;
        fs::set_permissions(&fs_dir, fs::Permissions::from_mode(0o755))
            .map_err(ioe("chmod", &fs_dir))?;

        let out = apply(&fs_dir).map_err(|e| Error::Apply {
            chain_id: chain_id.to_owned(),
            source: e.into(),
        })?;

        if let Some(p) = parent {
            let pf = tmp.join("parent");
            fs::write(&pf, format!("sha256:{}\n", hex_of(p)?)).map_err(ioe("write", &pf))?;
        }
        // One syncfs for everything unpacked, instead of an fsync per file.
        let tmp_fd = File::open(&tmp).map_err(ioe("open", &tmp))?;
        nix::unistd::syncfs(tmp_fd.as_fd()).map_err(|e| ioe("syncfs", &tmp)(e.into()))?;
        match renameat2(
            AT_FDCWD,
            &tmp,
            AT_FDCWD,
            &final_dir,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {}
            // Made by a process that ignored or lost the lock: it is complete, use it.
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => return Ok(Prepared::Existing),
            Err(e) => return Err(ioe("rename into place", &final_dir)(e.into())),
        }
        std::mem::forget(cleanup);
        self.sync_dir()?;
        Ok(Prepared::Created(out))
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(ioe("fsync", &self.dir))
    }

    /// The parent chain ID of a snapshot, if it has one.
    pub fn parent(&self, chain_id: &str) -> Result<Option<String>> {
        let dir = self.path(chain_id)?;
        if !dir.is_dir() {
            return Err(Error::NotFound(chain_id.to_owned()));
        }
        let pf = dir.join("parent");
        match fs::read_to_string(&pf) {
            Ok(s) => {
                let p = s.trim();
                hex_of(p)?;
                Ok(Some(p.to_owned()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ioe("read", &pf)(e)),
        }
    }

    /// The overlay lower dirs of a snapshot, top (this one) first, following parents.
    pub fn lowers(&self, chain_id: &str) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = Some(chain_id.to_owned());
        while let Some(id) = cur {
            if !seen.insert(hex_of(&id)?.to_owned()) {
                return Err(Error::InvalidChainId(format!("{id} (parent cycle)")));
            }
            if !self.exists(&id)? {
                return Err(Error::NotFound(id));
            }
            out.push(self.fs_path(&id)?);
            cur = self.parent(&id)?;
        }
        Ok(out)
    }

    /// The chain IDs of all snapshots, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).map_err(ioe("read dir", &self.dir))? {
            let ent = ent.map_err(ioe("read dir", &self.dir))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if hex_of(name).is_ok() && ent.path().is_dir() {
                out.push(format!("sha256:{name}"));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a snapshot. Refused while another snapshot has it as parent; whether a
    /// container or image still uses it is the caller's bookkeeping.
    pub fn remove(&self, chain_id: &str) -> Result<()> {
        let hex = hex_of(chain_id)?;
        let dir = self.dir.join(hex);
        if !dir.is_dir() {
            return Err(Error::NotFound(chain_id.to_owned()));
        }
        for other in self.list()? {
            if let Some(p) = self.parent(&other)? {
                if hex_of(&p)? == hex {
                    return Err(Error::InUse {
                        chain_id: chain_id.to_owned(),
                        child: other,
                    });
                }
            }
        }
        let lock = self.lock(hex, true)?;
        // Renamed away first so that a crash mid-delete never leaves a partial
        // snapshot under its real name.
        let trash = self.dir.join(format!(".rm-{hex}-{}", unique_suffix()));
        match fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ioe("rename", &dir)(e)),
        }
        self.sync_dir()?;
        drop(lock);
        fs::remove_dir_all(&trash).map_err(ioe("remove", &trash))
    }

    /// The size of a snapshot's own layer: the sum of the sizes of its non-directory
    /// entries, files with several links counted once (as Docker's layer size).
    pub fn size(&self, chain_id: &str) -> Result<u64> {
        let fs_dir = self.fs_path(chain_id)?;
        if !fs_dir.is_dir() {
            return Err(Error::NotFound(chain_id.to_owned()));
        }
        let mut seen = HashSet::new();
        let mut total = 0u64;
        walk::walk(&fs_dir, |e| {
            let st = e.st;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR
                && (st.st_nlink <= 1 || seen.insert((st.st_dev, st.st_ino)))
            {
                total += st.st_size as u64;
            }
            Ok(true)
        })
        .map_err(|e| ioe("walk", &fs_dir)(io::Error::other(e)))?;
        Ok(total)
    }

    /// Mounts a container's rootfs on `target`: an overlay of the image's snapshots
    /// (`chain_id`'s lowers; an empty dir for an image without layers) with
    /// `container_dir/upper` and `container_dir/work`, created if missing.
    ///
    /// The returned guard unmounts on drop; [`MountGuard::disarm`] keeps the mount (a
    /// running container's rootfs outlives the call) and [`umount_container`] removes
    /// it later.
    pub fn mount_container(
        &self,
        chain_id: Option<&str>,
        container_dir: &Path,
        target: &Path,
    ) -> Result<MountGuard> {
        let mut lowers = match chain_id {
            Some(c) => self.lowers(c)?,
            None => Vec::new(),
        };
        if lowers.len() > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                count: lowers.len(),
                max: MAX_LAYERS,
            });
        }
        if lowers.is_empty() {
            // overlayfs needs a lower dir; an empty one gives an empty rootfs.
            let empty = container_dir.join("lower-empty");
            fs::create_dir_all(&empty).map_err(ioe("create", &empty))?;
            lowers.push(empty);
        }
        let upper = container_dir.join("upper");
        let work = container_dir.join("work");
        if !upper.is_dir() {
            fs::create_dir_all(container_dir).map_err(ioe("create", container_dir))?;
            fs::create_dir(&upper).map_err(ioe("create", &upper))?;
            // The merged root takes its attributes from the upper dir: give it the
            // image's root ownership and mode rather than the daemon's defaults.
            let meta = fs::metadata(&lowers[0]).map_err(ioe("stat", &lowers[0]))?;
            std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()))
                .map_err(ioe("chown", &upper))?;
            fs::set_permissions(&upper, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(ioe("chmod", &upper))?;
        }
        fs::create_dir_all(&work).map_err(ioe("create", &work))?;
        mount_overlay(&lowers, &upper, &work, target, MountMethod::Auto)?;
        Ok(MountGuard {
            target: Some(target.to_owned()),
        })
    }
}

/// A held chain-ID lock; its file is deleted on drop, before the lock is released.
struct ChainLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl Drop for ChainLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes a temporary directory unless forgotten.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// An overlay mount that is unmounted when dropped, unless disarmed.
#[must_use = "dropping the guard unmounts the rootfs"]
#[derive(Debug)]
pub struct MountGuard {
    target: Option<PathBuf>,
}

impl MountGuard {
    /// The mount point.
    pub fn target(&self) -> &Path {
        self.target.as_deref().expect("armed guard")
    }

    /// Keeps the mount, returning its mount point.
    pub fn disarm(mut self) -> PathBuf {
        self.target.take().expect("armed guard")
    }

    /// Unmounts now, reporting errors.
    pub fn unmount(mut self) -> Result<()> {
        let t = self.target.take().expect("armed guard");
        umount_container(&t)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            if umount_container(&t).is_err() {
                let _ = umount2(&t, MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Whether something is mounted on `path` (its device differs from its parent's, as
/// an overlay's does).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(Ok(p))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    m.dev() != p.dev()
}

/// Unmounts a container rootfs. Not mounted is not an error; a busy mount is detached
/// (lazily unmounted once its last user is gone).
pub fn umount_container(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|e| ioe("unmount", target)(e.into()))
        }
        Err(e) => Err(ioe("unmount", target)(e.into())),
    }
}

/// How [`mount_overlay`] mounts; tests force the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountMethod {
    /// The new mount API if the kernel has `lowerdir+` (6.8+), else classic.
    Auto,
    /// mount(2) with an option string.
    // Only forced by tests; Auto reaches the same code on kernels without `lowerdir+`.
    #[cfg_attr(not(test), allow(dead_code))]
    Classic,
}

/// Mounts an overlay of `lowers` (top first).
///
/// The classic mount(2) takes all options in one page (4096 bytes), which ~40 layers of
/// `/var/lib/berth/snapshots/<64 hex>/fs` already fill. Docker works around that with
/// short symlinked names and a chdir in a re-exec'd child, which a multithreaded daemon
/// cannot do in-process. berth instead uses the new mount API, where each lower layer is
/// its own `fsconfig("lowerdir+", path)` call with no total limit (kernel 6.8+). On
/// older kernels it falls back to mount(2); when the absolute paths don't fit the page
/// it names every dir as `/proc/self/fd/<n>` of an `O_PATH` fd held across the call
/// (~18 bytes a layer, so the 500-layer kernel limit nearly fits), which needs no chdir.
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    method: MountMethod,
) -> Result<()> {
    if method == MountMethod::Auto
        && lowers
            .iter()
            .chain([&upper.to_owned(), &work.to_owned()])
            .all(|p| p.as_os_str().len() < 256)
    {
        match mount_new_api(lowers, upper, work, target) {
            Ok(()) => return Ok(()),
            Err(NewApi::Unsupported) => {}
            Err(NewApi::Failed(e)) => return Err(e),
        }
    }
    mount_classic(lowers, upper, work, target)
}

enum NewApi {
    Unsupported,
    Failed(Error),
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The messages the kernel logged on an fs context (`e overlayfs: ...` lines).
fn fs_context_log(fsfd: &OwnedFd) -> String {
    let Ok(dup) = fsfd.try_clone() else {
        return String::new();
    };
    let mut f = File::from(dup);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    // Each read returns one message; ENODATA when the log is empty.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(": ");
        out.push_str(String::from_utf8_lossy(&buf[..n]).trim_end());
    }
    out
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> std::result::Result<(), NewApi> {
    let fail = |op: &'static str, source: io::Error, detail: String| {
        NewApi::Failed(Error::Mount {
            target: target.to_owned(),
            source: io::Error::new(source.kind(), format!("{op}: {source}")),
            detail,
        })
    };
    let name = c"overlay";
    // SAFETY: fsopen takes a NUL-terminated fs name and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => Err(NewApi::Unsupported),
            _ => Err(fail("fsopen", e, String::new())),
        };
    }
    // SAFETY: fd was just returned by fsopen and is owned by nothing else.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let set = |key: &str, value: &CString| -> io::Result<()> {
        let key = CString::new(key).expect("static key");
        // SAFETY: fsfd is a live fs context; key and value are NUL-terminated.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    for (i, l) in lowers.iter().enumerate() {
        let v = cpath(l).map_err(|e| fail("lower path", e, String::new()))?;
        if let Err(e) = set("lowerdir+", &v) {
            // Kernels before 6.8 don't know `lowerdir+`.
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                return Err(NewApi::Unsupported);
            }
            return Err(fail("fsconfig lowerdir+", e, fs_context_log(&fsfd)));
        }
    }
    for (key, p) in [("upperdir", upper), ("workdir", work)] {
        let v = cpath(p).map_err(|e| fail("path", e, String::new()))?;
        set(key, &v).map_err(|e| fail("fsconfig", e, fs_context_log(&fsfd)))?;
    }
    for (key, value) in OVERLAY_FIXED_OPTS {
        let v = CString::new(value).expect("static value");
        set(key, &v).map_err(|e| fail("fsconfig", e, fs_context_log(&fsfd)))?;
    }
    // SAFETY: fsfd is a live fs context; CMD_CREATE takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(fail("creating overlay", e, fs_context_log(&fsfd)));
    }
    // SAFETY: fsfd is a created fs context; fsmount returns a new mount fd or -1.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        let e = io::Error::last_os_error();
        return Err(fail("fsmount", e, fs_context_log(&fsfd)));
    }
    // SAFETY: m was just returned by fsmount and is owned by nothing else.
    let mfd = unsafe { OwnedFd::from_raw_fd(m as i32) };
    let t = cpath(target).map_err(|e| fail("target path", e, String::new()))?;
    let empty = c"";
    // SAFETY: mfd is a detached mount; both paths are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(fail(
            "move_mount",
            io::Error::last_os_error(),
            String::new(),
        ));
    }
    Ok(())
}

fn mount_classic(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let page = 4096 - 1;
    let fixed: String = OVERLAY_FIXED_OPTS
        .iter()
        .map(|(k, v)| format!(",{k}={v}"))
        .collect();
    let build = |names: &[Vec<u8>]| -> Vec<u8> {
        let (lower, rest) = names.split_at(names.len() - 2);
        let mut o = b"lowerdir=".to_vec();
        o.extend_from_slice(&lower.join(&b':'));
        o.extend_from_slice(b",upperdir=");
        o.extend_from_slice(&rest[0]);
        o.extend_from_slice(b",workdir=");
        o.extend_from_slice(&rest[1]);
        o.extend_from_slice(fixed.as_bytes());
        o
    };
    let all: Vec<&Path> = lowers
        .iter()
        .map(PathBuf::as_path)
        .chain([upper, work])
        .collect();
    let plain: Vec<Vec<u8>> = all
        .iter()
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .collect();
    let mut opts = build(&plain);
    // Held open until mount(2) has resolved the /proc/self/fd names.
    let mut held: Vec<OwnedFd> = Vec::new();
    let unsafe_chars = plain.iter().any(|p| p.iter().any(|b| b",:\\".contains(b)));
    if opts.len() > page || unsafe_chars {
        let mut names = Vec::new();
        for p in &all {
            let fd = nix::fcntl::open(
                *p,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| ioe("open", *p)(e.into()))?;
            names.push(format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes());
            held.push(fd);
        }
        opts = build(&names);
        if opts.len() > page {
            return Err(Error::TooManyLayers {
                count: lowers.len(),
                max: (page - 100) / 20,
            });
        }
    }
    let data = CString::new(opts)
        .map_err(|_| ioe("mount", target)(io::Error::from_raw_os_error(libc::EINVAL)))?;
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| Error::Mount {
        target: target.to_owned(),
        source: e.into(),
        detail: String::new(),
    })?;
    drop(held);
    Ok(())
}

#[cfg(test)]
mod tests;
