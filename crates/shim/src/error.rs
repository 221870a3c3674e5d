//! The shim's error type, shared by the client and the server.

/// Every failure the shim or its client reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path or peer involved.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The peer sent something that is not the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The shim answered a request with `{"error": ...}`.
    #[error("{0}")]
    Remote(String),
    /// The shim could not start (its `error ...` startup line).
    #[error("shim failed to start: {0}")]
    Startup(String),
    /// The container runtime refused or failed an operation.
    #[error("{0}")]
    Runtime(String),
    /// A bad command line or option.
    #[error("{0}")]
    Usage(String),
}

/// The shim's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<runtime::Error> for Error {
    fn from(e: runtime::Error) -> Error {
        Error::Runtime(e.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Error {
        Error::io("system call", std::io::Error::from(e))
    }
}
