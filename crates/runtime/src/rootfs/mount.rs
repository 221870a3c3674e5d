//! One mount of the spec: options parsed into flags and data, the destination resolved
//! inside the root, bind mounts remounted for their flags, propagation applied last.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::Mount;
use pathrs::flags::OpenFlags;
use pathrs::Root;

use super::{cgroupfs, pathrs_err, Ctx, Target};
use crate::error::{Error, Result, SysContext};

/// A mount's options, split as mount(2) wants them.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags an option explicitly turned off ("rw", "suid", ...), for remounts.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive: false,
        }
    }
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions> {
        let mut o = MountOptions::default();
        for opt in options {
            let (set, clear) = match opt.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "bind" => {
                    o.bind = true;
                    continue;
                }
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                    continue;
                }
                // Accepted for compatibility; berth creates no copy-up tmpfs.
                "tmpcopyup" => continue,
                "idmap" | "ridmap" => {
                    return Err(Error::InvalidSpec(format!(
                        "mount option {opt:?} (idmapped mounts) is not supported"
                    )))
                }
                p => {
                    if let Some(f) = propagation(p) {
                        o.propagation.push(f);
                    } else {
                        o.data.push(p.to_string());
                    }
                    continue;
                }
            };
            o.flags |= set;
            o.flags &= !clear;
            o.cleared |= clear;
        }
        Ok(o)
    }
}

fn propagation(opt: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Flags the kernel locks on a mount seen from a less privileged namespace; a remount
/// must repeat them or it fails with EPERM.
pub fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Remounts a bind mount with `flags`, retrying with the flags the kernel locked.
pub fn remount_bind(target: &Path, flags: MsFlags, what: &Path) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let r = nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        base | flags,
        None::<&str>,
    );
    match r {
        Err(nix::Error::EPERM) => {
            let locked = locked_flags(target);
            nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .ctx(|| format!("remounting {} with its options", what.display()))
        }
        r => r.ctx(|| format!("remounting {} with its options", what.display())),
    }
}

/// `dest` with the image's symlinks followed inside the root (an absolute target or
/// ".." never leaves it), as runc's securejoin does: a dangling symlink in the image then
/// names a path in the root that can be created, never one on the host.
fn join_in_root(root: &Root, dest: &Path) -> PathBuf {
    use std::ffi::OsString;
    use std::path::Component;
    // Components still to walk, the next one last.
    fn push_all(todo: &mut Vec<OsString>, p: &Path) {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(n.to_os_string()),
                Component::ParentDir => todo.push("..".into()),
                _ => {}
            }
        }
    }
    let mut todo = Vec::new();
    push_all(&mut todo, dest);
    let mut out = PathBuf::from("/");
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        match root.readlink(&next) {
            Ok(link) if links < 255 => {
                links += 1;
                if link.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_all(&mut todo, &link);
            }
            _ => out = next,
        }
    }
    out
}

/// Resolves `dest` inside the root, creating it as a directory or an empty file.
pub(super) fn target(root: &Root, dest: &Path, as_file: bool) -> Result<Target> {
    let perm = std::fs::Permissions::from_mode(0o755);
    if let Ok(h) = root.resolve(dest) {
        return Ok(Target::new(h));
    }
    // Missing, or behind a dangling symlink: create where the symlinks lead in the root.
    let path = join_in_root(root, dest);
    if as_file {
        if let Some(parent) = path.parent() {
            root.mkdir_all(parent, &perm)
                .map_err(|e| pathrs_err("creating mount point", dest, e))?;
        }
        root.create_file(
            &path,
            OpenFlags::O_CREAT | OpenFlags::O_CLOEXEC,
            &std::fs::Permissions::from_mode(0o644),
        )
        .map_err(|e| pathrs_err("creating mount point", dest, e))?;
        let h = root
            .resolve(&path)
            .map_err(|e| pathrs_err("resolving mount point", dest, e))?;
        Ok(Target::new(h))
    } else {
        let h = root
            .mkdir_all(&path, &perm)
            .map_err(|e| pathrs_err("creating mount point", dest, e))?;
        Ok(Target::new(h))
    }
}

pub fn mount_one(root: &Root, ctx: &Ctx, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        return cgroupfs::mount(root, dest, &opts, ctx.cgroupns);
    }
    if opts.bind || typ == "bind" {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            ctx.bundle.join(src)
        };
        let meta = std::fs::metadata(&src).map_err(|e| Error::io("bind mount source", &src, e))?;
        let t = target(root, dest, !meta.is_dir())?;
        let mut flags = MsFlags::MS_BIND;
        if opts.recursive {
            flags |= MsFlags::MS_REC;
        }
        nix::mount::mount(Some(&src), &t.proc_path, None::<&str>, flags, None::<&str>)
            .ctx(|| format!("bind-mounting {} on {}", src.display(), dest.display()))?;
        // The fd behind the first target still names the directory underneath; resolve
        // again to reach the new mount on top of it.
        let top = target(root, dest, false)?;
        let extra = opts.flags & !MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            remount_bind(&top.proc_path, extra, dest)?;
        }
        return propagate(&top.proc_path, &opts, dest);
    }
    let t = target(root, dest, false)?;
    let src: PathBuf = m.source().clone().unwrap_or_else(|| typ.into());
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let r = nix::mount::mount(Some(&src), &t.proc_path, Some(typ), opts.flags, data);
    match (r, typ) {
        (Ok(()), _) => {}
        // Without its own network namespace (or in a user namespace) sysfs cannot be
        // mounted afresh: bind the host's, read-only as runc does.
        (Err(nix::Error::EPERM), "sysfs") => {
            nix::mount::mount(
                Some("/sys"),
                &t.proc_path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| format!("bind-mounting /sys on {}", dest.display()))?;
            let top = target(root, dest, false)?;
            remount_bind(&top.proc_path, opts.flags | MsFlags::MS_RDONLY, dest)?;
        }
        (Err(nix::Error::EPERM), "mqueue") => {
            nix::mount::mount(
                Some("/dev/mqueue"),
                &t.proc_path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind-mounting /dev/mqueue on {}", dest.display()))?;
        }
        (Err(e), _) => {
            return Err(e).ctx(|| format!("mounting {typ} on {}", dest.display()));
        }
    }
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top = target(root, dest, false)?;
    propagate(&top.proc_path, &opts, dest)
}

fn propagate(target: &Path, opts: &MountOptions, dest: &Path) -> Result<()> {
    for p in &opts.propagation {
        nix::mount::mount(None::<&str>, target, None::<&str>, *p, None::<&str>)
            .ctx(|| format!("setting propagation of {}", dest.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_data_and_propagation() {
        let o = MountOptions::parse(
            &[
                "nosuid",
                "ro",
                "rbind",
                "mode=755",
                "size=65536k",
                "rslave",
                "rw",
            ]
            .map(String::from),
        )
        .unwrap();
        assert!(o.bind && o.recursive);
        assert!(o.flags.contains(MsFlags::MS_NOSUID));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY), "rw after ro wins");
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn refuses_idmap() {
        assert!(MountOptions::parse(&["idmap".to_string()]).is_err());
    }
}
