//! The CLI's errors, worded as the docker CLI words them, each with its exit code.

use std::io;

/// Everything a command can fail with. `Display` is the line printed on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing listens on the socket (absent, or refused).
    #[error("Cannot connect to the berth daemon at {0}. Is the berth daemon running?")]
    Connect(String),
    /// The socket exists but this user may not use it.
    #[error(
        "permission denied while trying to connect to the berth daemon socket at {host}: {source}"
    )]
    Permission { host: String, source: io::Error },
    /// `-H`, `BERTH_HOST` or `DOCKER_HOST` names something berth cannot dial.
    #[error("unsupported host {0:?}: berth connects to unix:// sockets only (unix:///path/to/berth.sock)")]
    Host(String),
    /// A non-2xx response; `message` is the `{"message"}` of its body.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The HTTP exchange broke (connection reset, malformed response).
    #[error("error during connect: {0}")]
    Http(#[from] hyper::Error),
    /// The daemon answered 2xx with a body that is not what the API promises.
    #[error("error decoding the daemon's response: {0}")]
    Decode(#[from] serde_json::Error),
    /// A `--format` template that does not parse or does not execute.
    #[error("template parsing error: {0}")]
    Template(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A message printed as it is: client-side checks, errors inside progress streams.
    #[error("{0}")]
    Message(String),
    /// The command already printed its errors (as `rmi a b` does per image); only the
    /// exit code is left.
    #[error("")]
    Reported,
}

impl Error {
    /// A client-side error with docker's wording.
    pub fn msg(m: impl Into<String>) -> Error {
        Error::Message(m.into())
    }

    /// The process exit code: docker exits 1 for every runtime error; usage errors (125)
    /// are decided in main before any command runs.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

/// The result of every command and client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
