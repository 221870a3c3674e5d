//! pivot_root without a put_old directory: pivot onto ".", then detach the old root that
//! now sits underneath.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{fchdir, pivot_root as sys_pivot_root};

use crate::error::{Result, SysContext};

/// Makes the mount holding `rootfs` private: pivot_root refuses a shared parent.
pub fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mut p = rootfs.to_path_buf();
    // Walk up to the nearest mount point; "/" is always one.
    loop {
        let r = nix::mount::mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        );
        match r {
            Ok(()) => return Ok(()),
            Err(nix::Error::EINVAL) if p.pop() => continue,
            Err(e) => return Err(e).ctx(|| format!("making {} private", p.display())),
        }
    }
}

/// Makes `rootfs` the root of the calling process's mount namespace.
pub fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening old root".into())?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening new root {}", rootfs.display()))?;
    fchdir(&new).ctx(|| "entering new root".into())?;
    sys_pivot_root(".", ".").ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    // The old root is now stacked under "."; step onto it and take it away. Make it a
    // slave first so the unmount cannot propagate to the host.
    fchdir(&old).ctx(|| "entering old root".into())?;
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "making old root a slave".into())?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir to new root".into())?;
    Ok(())
}
