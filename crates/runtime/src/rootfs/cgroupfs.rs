//! The container's view of /sys/fs/cgroup. With a cgroup namespace the hierarchies are
//! mounted afresh (their root is the container's cgroup); without one, the container's
//! own cgroup directories are bound from the host. Either way the layout mirrors the
//! host's: one cgroup2 mount, or a tmpfs holding one directory per v1 hierarchy (and
//! `unified` in the hybrid layout).

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use pathrs::Root;

use super::mount::{remount_bind, target, MountOptions};
use crate::error::{Error, Result, SysContext};

/// A cgroup hierarchy mounted on the host.
struct Hierarchy {
    mountpoint: PathBuf,
    /// The hierarchy path the mount shows as its root (mountinfo's 4th field).
    root: PathBuf,
    v2: bool,
    /// Super options naming the controllers, e.g. "cpu" or "name=systemd".
    controllers: String,
}

fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading", "/proc/self/mountinfo", e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mp), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else {
            continue;
        };
        let v2 = *fstype == "cgroup2";
        if !v2 && *fstype != "cgroup" {
            continue;
        }
        let controllers = post
            .get(2)
            .map(|o| {
                o.split(',')
                    .filter(|x| {
                        *x != "rw"
                            && *x != "ro"
                            && !x.starts_with("release_agent")
                            && *x != "clone_children"
                            && !x.contains("nsdelegate")
                            && !x.contains("memory_recursiveprot")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        out.push(Hierarchy {
            mountpoint: PathBuf::from(mp),
            root: PathBuf::from(root),
            v2,
            controllers,
        });
    }
    Ok(out)
}

/// This process's cgroup in a hierarchy, from /proc/self/cgroup.
fn own_cgroup(h: &Hierarchy) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if h.v2 {
            ctrl.is_empty()
        } else {
            !ctrl.is_empty()
                && h.controllers
                    .split(',')
                    .all(|c| ctrl.split(',').any(|x| x == c))
        };
        if matches {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Mounts the cgroup file systems at `target` (a resolved path inside the root).
pub fn mount(root: &Root, dest: &Path, opts: &MountOptions, cgroupns: bool) -> Result<()> {
    let flags = opts.flags
        & (MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_RELATIME);
    let hierarchies = host_hierarchies()?;
    let unified_only = hierarchies
        .iter()
        .any(|h| h.v2 && h.mountpoint == Path::new("/sys/fs/cgroup"));
    if unified_only {
        if let Some(h) = hierarchies.iter().find(|h| h.v2) {
            return mount_one(root, h, dest, flags, cgroupns);
        }
    }
    let t = target(root, dest, false)?;
    nix::mount::mount(
        Some("tmpfs"),
        &t.proc_path,
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .ctx(|| format!("mounting tmpfs on {}", dest.display()))?;
    // In the hybrid layout the container does not join the unified hierarchy (see
    // Cgroup::join_current); mounting it would only show the host's tree.
    for h in hierarchies
        .iter()
        .filter(|h| !h.v2 && h.mountpoint.starts_with("/sys/fs/cgroup"))
    {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let sub_dest = dest.join(name);
        mount_one(root, h, &sub_dest, flags, cgroupns)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = target(root, dest, false)?;
        remount_bind(&top.proc_path, flags, dest)?;
    }
    Ok(())
}

fn mount_one(
    root: &Root,
    h: &Hierarchy,
    dest: &Path,
    flags: MsFlags,
    cgroupns: bool,
) -> Result<()> {
    let t = target(root, dest, false)?;
    let target = t.proc_path.as_path();
    if cgroupns {
        let (typ, data) = if h.v2 {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(h.controllers.as_str()))
        };
        if nix::mount::mount(Some(typ), target, Some(typ), flags, data).is_ok() {
            return Ok(());
        }
    }
    // No cgroup namespace, or the kernel refused a fresh mount: bind the container's own
    // cgroup from the host hierarchy.
    let own = own_cgroup(h).unwrap_or_else(|| PathBuf::from("/"));
    let rel = own.strip_prefix(&h.root).unwrap_or(&own);
    let src = h.mountpoint.join(rel.strip_prefix("/").unwrap_or(rel));
    nix::mount::mount(
        Some(&src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("binding cgroup {} on {}", src.display(), dest.display()))?;
    if !flags.is_empty() {
        let top = super::mount::target(root, dest, false)?;
        remount_bind(&top.proc_path, flags, dest)?;
    }
    Ok(())
}
