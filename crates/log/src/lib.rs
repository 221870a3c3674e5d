//! Container log drivers and readers.
//!
//! The per-container shim feeds a container's raw stdout/stderr chunks to a
//! [`Driver`]; `docker logs` reads them back with [`read`]. Everything here is
//! blocking std I/O: the shim has no async runtime, and the daemon calls the
//! reader from a blocking thread.
//!
//! The `json-file` driver writes byte-for-byte what Docker writes (see
//! [`JsonFileWriter`]), so logs survive a switch between Docker and berth and
//! tools that parse Docker's files (Kubernetes, Filebeat, ...) keep working.

#![warn(missing_docs)]

mod driver;
pub mod escape;
mod jsonfile;
mod opts;
mod read;
mod split;
pub mod time;

pub use driver::{ContainerInfo, Driver, JsonFileDriver, NoneDriver};
pub use jsonfile::{JsonFileOptions, JsonFileWriter};
pub use opts::{parse_human_size, parse_ram_size, validate_log_opts, JsonFileConfig};
pub use read::{read, LogEntry, LogReader, ReadOptions};
pub use split::{LineSplitter, Message, PartialMeta, MAX_LINE};

use std::path::PathBuf;

/// Which of the container's output streams a chunk or entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The container's standard output.
    Stdout,
    /// The container's standard error.
    Stderr,
}

impl Stream {
    /// The name Docker stores in the `stream` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Errors from log drivers and readers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on a log file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `rotate`, ...).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A log option is unknown or has a bad value; the text is Docker's.
    #[error("{0}")]
    InvalidOpt(String),
    /// No driver of that name exists (Docker's wording).
    #[error("logger: no log driver named '{0}' is registered")]
    UnknownDriver(String),
    /// A timestamp cannot be written: Go refuses years outside 0..=9999.
    #[error("time.MarshalJSON: year outside of range [0,9999]")]
    TimeOutOfRange,
    /// A line in a log file is not a valid json-file entry.
    #[error("corrupt log entry in {path}: {reason}")]
    Corrupt {
        /// The log file (or rotated file) holding the entry.
        path: PathBuf,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The driver was used after [`Driver::close`].
    #[error("log driver is closed")]
    Closed,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
