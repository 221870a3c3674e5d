//! The runtime's error type. Messages are written for the person running the container:
//! they name the file, path, limit or namespace involved.

use std::path::PathBuf;

/// Every failure the runtime core reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle or its config.json is unusable.
    #[error("invalid bundle: {0}")]
    InvalidSpec(String),
    /// No container of that id under the state root.
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    /// A container of that id is already known.
    #[error("container \"{0}\" already exists")]
    AlreadyExists(String),
    /// The container is in a state that forbids the operation.
    #[error("container \"{id}\" is {status}: {action} needs it {needs}")]
    BadState {
        id: String,
        status: String,
        action: &'static str,
        needs: &'static str,
    },
    /// A file-system operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys { context: String, source: nix::Error },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// A hook exited non-zero, timed out or could not run.
    #[error("{0}")]
    Hook(String),
    /// The container's init reported a failure while it set itself up.
    #[error("container init: {0}")]
    Init(String),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

/// Adds context to a failed system call.
pub(crate) trait SysContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context(),
            source,
        })
    }
}
