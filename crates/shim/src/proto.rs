//! The control protocol on `/run/berth/shims/<id>.sock`.
//!
//! A client writes one JSON [`Request`] per line; the shim answers each with one JSON
//! line: `{}` for requests without a result, a [`State`] for `state`, an [`Exit`] for
//! `wait`, or `{"error": "..."}`. Requests on one connection are answered in order. After
//! the answer to `attach` the connection stops being line-based: it carries the
//! container's output (Docker's multiplexed frames, see [`crate::frame`], or raw bytes
//! for a terminal) and whatever the client writes goes to the container's stdin.
//!
//! ```text
//! → {"op":"start"}                           ← {}
//! → {"op":"state"}                           ← {"status":"running","pid":4242,"exit":null,"started_at":"2024-..Z"}
//! → {"op":"kill","signal":15,"all":false}    ← {}
//! → {"op":"wait"}                            ← {"code":143,"oom_killed":false,"finished_at":"2024-..Z"}  (when it exits)
//! → {"op":"attach","stdin":true,"stdout":true,"stderr":true}   ← {}  then the raw stream
//! → {"op":"bogus"}                           ← {"error":"..."}
//! ```

use serde::{Deserialize, Serialize};

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Starts the created container. Answer: `{}`.
    Start,
    /// Reports the container's state. Answer: [`State`].
    State,
    /// Sends `signal` (a number) to the init, or with `all` to every process of the
    /// container. Answer: `{}`.
    Kill {
        /// The signal number, e.g. 15 for SIGTERM.
        signal: i32,
        /// Signal every process in the container's cgroup, not only its init.
        #[serde(default)]
        all: bool,
    },
    /// Freezes the container (cgroup freezer). Answer: `{}`.
    Pause,
    /// Thaws a paused container. Answer: `{}`.
    Resume,
    /// Sets the terminal size of a tty container. Answer: `{}`.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Blocks until the container has exited and its exit is recorded. Answer: [`Exit`].
    Wait,
    /// Closes the container's stdin (a pipe: EOF; a terminal: sends ^D). Answer: `{}`.
    CloseStdin,
    /// Turns the connection into an attach stream after the `{}` answer.
    Attach(AttachOptions),
    /// Exits the shim; refused while the container has not exited. Answer: `{}`.
    Shutdown,
}

/// What an attach client wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOptions {
    /// Bytes the client writes go to the container's stdin.
    #[serde(default)]
    pub stdin: bool,
    /// The client receives the container's stdout.
    #[serde(default)]
    pub stdout: bool,
    /// The client receives the container's stderr.
    #[serde(default)]
    pub stderr: bool,
    /// Replay what the json-file log already holds before the live output.
    #[serde(default)]
    pub logs: bool,
    /// Close the container's stdin when this client's input ends (Docker's `StdinOnce`).
    #[serde(default)]
    pub stdin_once: bool,
    /// With `logs`: replay from this byte of the log file (what an earlier run of the
    /// container logged comes before it).
    #[serde(default)]
    pub log_offset: u64,
}

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, waiting for `start`.
    Created,
    /// Its init runs.
    Running,
    /// Frozen.
    Paused,
    /// Its init has exited.
    Stopped,
}

/// How the container's init ended; also the content of the exit file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, or 128 + the signal number when a signal killed it.
    pub code: i32,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// When the shim saw the init exit (RFC 3339 with nanoseconds).
    pub finished_at: String,
}

/// The answer to `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The container's status.
    pub status: Status,
    /// Host pid of the container's init; 0 once it has exited.
    pub pid: i32,
    /// Set once the exit has been recorded.
    pub exit: Option<Exit>,
    /// When `start` succeeded (RFC 3339 with nanoseconds); `None` before.
    pub started_at: Option<String>,
}

/// An answer that carries only an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, worded for the user.
    pub error: String,
}

/// The answer to requests without a result: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 9,
                all: false
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true}"#).unwrap();
        assert!(matches!(
            r,
            Request::Attach(AttachOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                ..
            })
        ));
        assert_eq!(
            serde_json::to_string(&Request::CloseStdin).unwrap(),
            r#"{"op":"close_stdin"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn state_wire_format() {
        let s = State {
            status: Status::Stopped,
            pid: 0,
            exit: Some(Exit {
                code: 137,
                oom_killed: false,
                finished_at: "2024-01-01T00:00:00.000000001Z".into(),
            }),
            started_at: None,
        };
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains(r#""status":"stopped""#), "{j}");
        assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
    }
}
