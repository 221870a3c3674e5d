//! A container's filesystem from outside: `docker cp` both ways (stat, archive,
//! extract), `docker diff` and `docker export`.
//!
//! Running and stopped containers keep their rootfs mounted at `<dir>/rootfs`; a
//! container never started has none, so its overlay is mounted for the time of the
//! operation on a private mount point under `<exec-root>/mounts/` (never on
//! `<dir>/rootfs`, which a concurrent start may mount and must not lose) and unmounted
//! after. Paths inside the root are resolved by [`image::rootfs`], which never leaves
//! it.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::rootfs::{ContainerRoot, ExtractOptions, Resource, RootfsError};
use image::snapshot::MountGuard;

pub use image::layer::{Change, ChangeKind};
pub use image::rootfs::PathStat;

use super::Container;
use crate::error::{Error, Result};
use crate::Engine;

/// What Docker keeps in a container's init layer: mount points the engine makes in
/// every container. Created in the upper dir by the runtime when the image lacks them,
/// they are not the container's changes: `diff` hides them and `commit` leaves them
/// out, so both show what Docker shows.
pub(crate) const MOUNT_POINTS: &[&str] = &[
    "dev/pts",
    "dev/shm",
    "proc",
    "sys",
    ".dockerenv",
    "etc/resolv.conf",
    "etc/hosts",
    "etc/hostname",
    "dev/console",
    "etc/mtab",
];

static MOUNT_SEQ: AtomicU64 = AtomicU64::new(0);

/// A container's root filesystem, mounted for one operation if it was not already.
pub(crate) struct MountedRootfs {
    path: PathBuf,
    guard: Option<MountGuard>,
}

impl MountedRootfs {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            // A still busy mount is detached by `unmount`; the dir goes either way.
            let _ = g.unmount();
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Whether `path` is a mount point below `parent` (another filesystem).
fn mounted(path: &Path, parent: &Path) -> bool {
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// An archive of one path of a container, ready to be written.
pub struct PathArchive {
    resource: Resource,
    // Declared after `resource`: its fds close before the rootfs is unmounted.
    _rootfs: MountedRootfs,
}

impl PathArchive {
    /// What Docker reports of the path (the `X-Docker-Container-Path-Stat` header).
    pub fn stat(&self) -> &PathStat {
        self.resource.stat()
    }

    /// Writes the tar to `out`.
    pub fn write_to<W: Write>(self, out: W) -> Result<()> {
        self.resource
            .write_tar(out)
            .map(drop)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

/// What a `docker diff` shows minus the engine's own mount points (and `/etc` or
/// `/dev` when nothing else in them changed).
fn hide_mount_points(changes: Vec<Change>) -> Vec<Change> {
    let root = Path::new("/");
    let is_mount_point = |p: &Path| MOUNT_POINTS.iter().any(|m| p.starts_with(root.join(m)));
    let kept: Vec<Change> = changes
        .into_iter()
        .filter(|c| !is_mount_point(&c.path))
        .collect();
    let parents: Vec<PathBuf> = MOUNT_POINTS
        .iter()
        .filter_map(|m| Path::new(m).parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| root.join(p))
        .collect();
    kept.iter()
        .filter(|c| {
            let only_ours = parents.contains(&c.path)
                && c.kind != ChangeKind::Deleted
                && !kept
                    .iter()
                    .any(|o| o.path != c.path && o.path.starts_with(&c.path));
            !only_ours
        })
        .cloned()
        .collect()
}

impl Engine {
    /// The container's rootfs, mounted (on a private mount point) if it is not.
    pub(crate) fn mount_rootfs(&self, c: &Container) -> Result<MountedRootfs> {
        let dir = self.container_dir(&c.id);
        let rootfs = dir.join("rootfs");
        if mounted(&rootfs, &dir) {
            return Ok(MountedRootfs {
                path: rootfs,
                guard: None,
            });
        }
        let chain = self.container_chain(c)?;
        let base = self.config.exec_root.join("mounts");
        let target = base.join(format!(
            "{}-{}-{}",
            c.short_id(),
            std::process::id(),
            MOUNT_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&target).map_err(|e| Error::io("creating", &target, e))?;
        match self
            .images
            .snapshots()
            .mount_container(chain.as_deref(), &dir, &target)
        {
            Ok(guard) => Ok(MountedRootfs {
                path: target,
                guard: Some(guard),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&target);
                Err(Error::Internal(format!("mounting the rootfs: {e}")))
            }
        }
    }

    /// Docker's errors for a path of container `name` (both as the client gave them).
    fn path_err(name: &str, path: &str, e: RootfsError) -> Error {
        match e {
            RootfsError::NotFound(_) => Error::NotFound(format!(
                "Could not find the file {path} in container {name}"
            )),
            RootfsError::NotADirectory | RootfsError::NotDir(_) => {
                Error::InvalidParameter(e.to_string())
            }
            e => Error::Internal(e.to_string()),
        }
    }

    fn check_path(path: &str) -> Result<()> {
        if path.is_empty() {
            return Err(Error::InvalidParameter("Path cannot be empty".into()));
        }
        Ok(())
    }

    /// Stats `path` in container `name` (`HEAD /containers/{name}/archive`).
    pub fn stat_container_path(&self, name: &str, path: &str) -> Result<PathStat> {
        Self::check_path(path)?;
        let c = self.lookup_container(name)?;
        let rootfs = self.mount_rootfs(&c)?;
        let root = ContainerRoot::open(rootfs.path()).map_err(|e| Self::path_err(name, path, e))?;
        root.stat(path).map_err(|e| Self::path_err(name, path, e))
    }

    /// Prepares the tar of `path` in container `name` (`GET .../archive`): the path
    /// is resolved and stat'ed now, the tar written by [`PathArchive::write_to`].
    pub fn archive_container_path(&self, name: &str, path: &str) -> Result<PathArchive> {
        Self::check_path(path)?;
        let c = self.lookup_container(name)?;
        let rootfs = self.mount_rootfs(&c)?;
        let root = ContainerRoot::open(rootfs.path()).map_err(|e| Self::path_err(name, path, e))?;
        let resource = root
            .resource(path)
            .map_err(|e| Self::path_err(name, path, e))?;
        self.emit_container(&c, "archive-path", &[]);
        Ok(PathArchive {
            resource,
            _rootfs: rootfs,
        })
    }

    /// Unpacks the tar `reader` into the directory `path` of container `name` (`PUT
    /// .../archive`). With `copy_uid_gid`, entries belong to the container's user (as
    /// Docker: only when the container has one), else they keep the tar's owners.
    pub fn extract_to_container(
        &self,
        name: &str,
        path: &str,
        reader: impl Read,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        Self::check_path(path)?;
        let c = self.lookup_container(name)?;
        let rootfs = self.mount_rootfs(&c)?;
        let root = ContainerRoot::open(rootfs.path()).map_err(|e| Self::path_err(name, path, e))?;
        let into = root
            .extract_dir(path)
            .map_err(|e| Self::path_err(name, path, e))?;
        if c.host_config.readonly_rootfs {
            return Err(Error::InvalidParameter(
                "container rootfs is marked read-only".into(),
            ));
        }
        let chown = if copy_uid_gid && !c.config.user.is_empty() {
            Some(self.container_user(&c, &root)?)
        } else {
            None
        };
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir,
            chown,
        };
        root.extract(&into, reader, &opts).map_err(|e| match e {
            // Docker's words for an entry that would leave the directory.
            RootfsError::Layer(image::layer::Error::UnsafePath { path: p, .. }) => {
                Error::Internal(format!("{p:?} is outside of {:?}", into.path()))
            }
            e => Self::path_err(name, path, e),
        })?;
        self.emit_container(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// The uid and gid of the container's user, looked up in its own `/etc/passwd`
    /// and `/etc/group` (read inside the root, then parsed from a private copy).
    fn container_user(&self, c: &Container, root: &ContainerRoot) -> Result<(u32, u32)> {
        let tmp = self.config.exec_root.join("mounts").join(format!(
            "user-{}-{}-{}",
            c.short_id(),
            std::process::id(),
            MOUNT_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let etc = tmp.join("etc");
        std::fs::create_dir_all(&etc).map_err(|e| Error::io("creating", &etc, e))?;
        let result = (|| {
            for f in ["passwd", "group"] {
                let data = root
                    .read_file(&format!("/etc/{f}"), 4 << 20)
                    .unwrap_or_default();
                std::fs::write(etc.join(f), data)
                    .map_err(|e| Error::io("writing", etc.join(f), e))?;
            }
            super::spec::resolve_user(&tmp, &c.config.user).map(|(u, g, _)| (u, g))
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }

    /// The changes of container `name`'s filesystem to its image, sorted by path
    /// (`docker diff`).
    pub fn container_changes(&self, name: &str) -> Result<Vec<Change>> {
        let c = self.lookup_container(name)?;
        let upper = self.container_dir(&c.id).join("upper");
        if !upper.is_dir() {
            return Ok(Vec::new());
        }
        let lowers = match self.container_chain(&c)? {
            Some(chain) => self
                .images
                .snapshots()
                .lowers(&chain)
                .map_err(|e| Error::Internal(format!("the image's layers: {e}")))?,
            None => Vec::new(),
        };
        let changes = image::layer::changes(&upper, &lowers)
            .map_err(|e| Error::Internal(format!("listing changes: {e}")))?;
        Ok(hide_mount_points(changes))
    }

    /// Writes the whole filesystem of container `name` as a tar (`docker export`).
    pub fn export_container<W: Write>(&self, name: &str, out: W) -> Result<()> {
        let c = self.lookup_container(name)?;
        let rootfs = self.mount_rootfs(&c)?;
        self.emit_container(&c, "export", &[]);
        image::layer::tar_dir(rootfs.path(), out)
            .map(drop)
            .map_err(|e| Error::Internal(format!("exporting container {}: {e}", c.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(p: &str, kind: ChangeKind) -> Change {
        Change {
            path: p.into(),
            kind,
        }
    }

    #[test]
    fn engine_mount_points_are_not_changes() {
        use ChangeKind::*;
        let got = hide_mount_points(vec![
            ch("/etc", Modified),
            ch("/etc/hostname", Added),
            ch("/etc/hosts", Added),
            ch("/proc", Added),
            ch("/root", Modified),
            ch("/root/.ash_history", Added),
        ]);
        assert_eq!(
            got,
            [ch("/root", Modified), ch("/root/.ash_history", Added)]
        );
        let got = hide_mount_points(vec![
            ch("/etc", Modified),
            ch("/etc/hosts", Added),
            ch("/etc/passwd", Modified),
        ]);
        assert_eq!(got, [ch("/etc", Modified), ch("/etc/passwd", Modified)]);
    }
}
