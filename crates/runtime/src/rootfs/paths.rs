//! Masked and read-only paths, applied after pivot_root inside the container.

use std::path::Path;

use nix::mount::MsFlags;

use super::mount::remount_bind;
use crate::error::{Result, SysContext};

/// Hides a path: an empty read-only tmpfs over a directory, /dev/null over a file.
pub fn mask(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ctx(|| format!("masking {}", path.display()))
    } else {
        nix::mount::mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("masking {}", path.display()))
    }
}

/// Makes a path read-only by binding it over itself and remounting.
pub fn readonly(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    nix::mount::mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("binding {} read-only", path.display()))?;
    remount_ro(path)
}

pub fn remount_ro(path: &Path) -> Result<()> {
    remount_bind(path, MsFlags::MS_RDONLY, path)
}
