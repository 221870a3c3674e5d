//! The container's root filesystem: propagation, the spec's mounts, device nodes, the
//! /dev symlinks, pivot_root, then masked and read-only paths. Runs inside the
//! container's new mount namespace, in the init process.
//!
//! Every destination inside the root is resolved with openat2(RESOLVE_IN_ROOT) (via
//! `pathrs`), so a symlink in the image cannot send a mount outside the root; the mount is
//! then made on the resolved `/proc/self/fd/N`.

mod cgroupfs;
mod devices;
mod mount;
mod paths;
mod pivot;

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;
use pathrs::Root;

use crate::error::{Error, Result, SysContext};

pub use mount::MountOptions;
pub use pivot::pivot_root;

/// What the mount steps need to know about the container.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container has its own user namespace: device nodes are bind-mounted, not made.
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
}

/// A path inside the root, resolved safely, as a mount target.
struct Target {
    _handle: pathrs::Handle,
    proc_path: PathBuf,
}

impl Target {
    fn new(handle: pathrs::Handle) -> Target {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", handle.as_fd().as_raw_fd()));
        Target {
            _handle: handle,
            proc_path,
        }
    }
}

fn pathrs_err(what: &str, p: &Path, e: pathrs::error::Error) -> Error {
    // pathrs puts the OS error in the source chain; show all of it.
    let mut msg = format!("{what} {}: {e}", p.display());
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    Error::Other(msg)
}

/// The spec's rootfsPropagation as mount flags; None when it sets none.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let linux = spec.linux().as_ref();
    let flags = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => return Ok(None),
        Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("slave") => MsFlags::MS_SLAVE,
        Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("shared") => MsFlags::MS_SHARED,
        Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some(other) => {
            return Err(Error::InvalidSpec(format!(
                "unknown rootfsPropagation {other:?}"
            )))
        }
    };
    Ok(Some(flags))
}

/// Everything before pivot_root.
pub fn prepare(ctx: &Ctx) -> Result<()> {
    let propagation = root_propagation(ctx.spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Nothing this container mounts may propagate back to the host.
    nix::mount::mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .ctx(|| "setting propagation of /".into())?;
    // pivot_root needs the new root to be a mount point whose parent is not shared.
    pivot::make_parent_private(ctx.rootfs)?;
    nix::mount::mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting root {}", ctx.rootfs.display()))?;

    let root = Root::open(ctx.rootfs).map_err(|e| pathrs_err("opening root", ctx.rootfs, e))?;
    let mut dev_from_host = false;
    let mut devpts = false;
    for m in ctx.spec.mounts().iter().flatten() {
        let dest = m.destination();
        if dest == Path::new("/dev") && mount::is_bind(m) {
            dev_from_host = true;
        }
        if dest == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts") {
            devpts = true;
        }
        mount::mount_one(&root, ctx, m)?;
    }
    if !dev_from_host {
        devices::create_all(&root, ctx)?;
    }
    devices::symlinks(&root, devpts)?;
    Ok(())
}

/// Everything after pivot_root: the process's cwd, masked paths, read-only paths, the
/// read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        create_cwd(p.cwd())?;
    }
    if let Some(linux) = spec.linux() {
        for p in linux.masked_paths().iter().flatten() {
            paths::mask(Path::new(p))?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            paths::readonly(Path::new(p))?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        paths::remount_ro(Path::new("/"))?;
    }
    // As runc does, the spec's propagation applies to the new "/" as well (the root bind
    // was made from a private parent); last, as masking binds from /dev, which must not
    // be unbindable yet. Private already holds.
    if let Some(p) = root_propagation(spec)?.filter(|p| !p.contains(MsFlags::MS_PRIVATE)) {
        nix::mount::mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .ctx(|| "setting propagation of the container's root".into())?;
    }
    Ok(())
}

/// Creates a missing process.cwd (mode 755), as runc does. Runs after pivot_root and
/// resolves inside the root without magic links, so neither a symlink in the image nor a
/// /proc/self/fd path can place it outside the container. An existing cwd is left to
/// chdir, whose result finalize checks (CVE-2024-21626).
fn create_cwd(cwd: &Path) -> Result<()> {
    if cwd.exists() {
        return Ok(());
    }
    let root = Root::open("/").map_err(|e| pathrs_err("opening root", Path::new("/"), e))?;
    root.mkdir_all(cwd, &std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| pathrs_err("creating cwd", cwd, e))?;
    Ok(())
}

/// Binds the pty slave over /dev/console, as runc does for a container with a terminal.
pub fn bind_console(slave: &std::os::fd::OwnedFd) -> Result<()> {
    let console = Path::new("/dev/console");
    if !console.exists() {
        std::fs::File::create(console).map_err(|e| Error::io("creating", console, e))?;
    }
    let src = format!("/proc/self/fd/{}", slave.as_raw_fd());
    nix::mount::mount(
        Some(src.as_str()),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| "bind-mounting the pty over /dev/console".into())
}
