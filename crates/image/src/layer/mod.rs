//! Layer tars: applying them onto a directory (with Docker's AUFS-style whiteouts,
//! either converted to overlayfs whiteouts or applied by deletion), producing them from
//! an overlay upper dir or a whole tree, and listing a container's changes.
//!
//! Every write into a target goes through a [`pathrs::Root`] (openat2 `RESOLVE_IN_ROOT`)
//! for the parent directory plus `*at` syscalls on a single final component, so no
//! entry of an untrusted tar can create, modify or link anything outside the target.

mod apply;
pub mod compress;
mod diff;
pub(crate) mod sys;
pub(crate) mod walk;

#[cfg(test)]
pub(crate) mod tests;

use std::io;
use std::path::PathBuf;

pub use apply::{apply, apply_with, ApplyOptions};
pub(crate) use diff::tar_resource;
pub use diff::{changes, diff, diff_skipping, tar_dir};

/// The prefix that marks an AUFS-style whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The prefix of AUFS metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`, ...).
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The entry name that marks its directory opaque.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The overlayfs xattr that marks a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The prefix of overlayfs' private xattrs. They are never taken from nor written to a
/// layer tar: whiteouts travel as `.wh.` names, and the other keys (`redirect`,
/// `metacopy`, `origin`, ...) would let a crafted layer steer overlayfs' merge logic
/// towards content of other layers.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// How whiteouts in a layer are represented on disk when applying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The target is the layer's own (empty) snapshot dir that will be an overlay lower
    /// dir: `.wh.name` becomes a 0/0 character device `name`, `.wh..wh..opq` the xattr
    /// `trusted.overlay.opaque=y` on its directory.
    Overlay,
    /// The target already holds the content of the layers below (a flattened rootfs):
    /// `.wh.name` deletes `name`, `.wh..wh..opq` deletes everything in its directory
    /// that this layer did not itself unpack.
    Flatten,
    /// Not a layer but an ordinary archive (`docker cp`, Docker's untar): `.wh.` names
    /// are ordinary files, and an entry for the root itself is skipped.
    Plain,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the uncompressed tar stream (the layer's DiffID).
    pub diff_id: String,
    /// The sum of the sizes of the regular files in the layer (Docker's layer size).
    pub size: u64,
    /// Entries that were skipped, with the reason (device nodes that may not be created
    /// here, xattrs the filesystem refuses, AUFS metadata, unknown entry types).
    pub warnings: Vec<String>,
}

/// The kind of a [`Change`], as `docker diff` prints it (`A`, `C`, `D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The path did not exist in the image.
    Added,
    /// The path existed in the image and was changed (or, for a directory, something
    /// in it was).
    Modified,
    /// The path existed in the image and was deleted.
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One entry of a container's filesystem changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// The absolute path inside the container (`/etc/hosts`).
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// Errors of layer apply, diff and changes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The path it was applied to (relative to the target for layer entries).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Resolving a path inside the target failed (this includes pathrs' detection of
    /// an escape attempt).
    #[error("resolving {} inside the target: {source}", path.display())]
    Resolve {
        /// The path inside the target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: pathrs::error::Error,
    },
    /// The layer's tar stream is malformed or could not be read.
    #[error("reading layer tar: {0}")]
    Tar(#[source] io::Error),
    /// An entry's name or link target would leave the target directory.
    #[error("unsafe path in layer entry {path:?}: {reason}")]
    UnsafePath {
        /// The name as found in the tar.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A hardlink entry could not be made.
    #[error("hardlink {} -> {}: {reason}", path.display(), target.display())]
    BadHardlink {
        /// The link's own path.
        path: PathBuf,
        /// The path it links to.
        target: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// The layer's format is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// An entry would replace a directory with a non-directory or the other way round,
    /// which [`ApplyOptions::no_overwrite_dir_non_dir`] forbids (message as Docker's).
    #[error("{0}")]
    Overwrite(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn nix(op: &'static str, path: impl Into<PathBuf>, errno: nix::Error) -> Self {
        Error::io(op, path, io::Error::from(errno))
    }
}

/// A `Result` with the layer [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
