//! Engine errors. Each kind says what went wrong in domain terms; the daemon maps kinds to
//! HTTP status codes in one place.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such object (container, image, network, volume, path).
    #[error("{0}")]
    NotFound(String),
    /// The object exists already, or its state forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or not allowed.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A fault of the engine itself.
    #[error("{0}")]
    Internal(String),
    /// The operation exists but not for this object (say, reading logs with a driver
    /// that keeps none).
    #[error("{0}")]
    NotImplemented(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }
}
