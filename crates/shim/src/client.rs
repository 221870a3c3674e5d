//! A blocking client of the control protocol ([`crate::proto`]) and [`spawn`], which
//! starts a shim. berthd runs it on a blocking thread; tests call it directly.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::proto::{AttachOptions, Empty, Exit, Request, State};

/// Longest answer line accepted; a state is a few hundred bytes.
const MAX_LINE: usize = 64 * 1024;

/// A connection to one shim's control socket.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the control socket at `socket`.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Client> {
        let socket = socket.as_ref();
        let stream = UnixStream::connect(socket)
            .map_err(|e| Error::io(format!("connecting to {}", socket.display()), e))?;
        Ok(Client { stream })
    }

    /// The underlying socket, e.g. to set timeouts.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends `req` and parses the answer as `T`, or as the shim's error.
    pub fn call<T: DeserializeOwned>(&mut self, req: &Request) -> Result<T> {
        let mut line = serde_json::to_vec(req).map_err(|e| Error::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| Error::io("writing to the shim", e))?;
        let answer = self.read_line()?;
        let v: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| Error::Protocol(format!("bad answer: {e}")))?;
        if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
            return Err(Error::Remote(err.to_string()));
        }
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("bad answer: {e}")))
    }

    /// Reads one answer line byte by byte: after `attach` the stream that follows must
    /// not be swallowed by a read-ahead buffer.
    fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::with_capacity(128);
        let mut b = [0u8; 1];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return Err(Error::Protocol("the shim closed the connection".into())),
                Ok(_) if b[0] == b'\n' => return Ok(line),
                Ok(_) if line.len() >= MAX_LINE => {
                    return Err(Error::Protocol("answer line too long".into()))
                }
                Ok(_) => line.push(b[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading from the shim", e)),
            }
        }
    }

    /// Starts the created container.
    pub fn start(&mut self) -> Result<()> {
        self.call::<Empty>(&Request::Start).map(drop)
    }

    /// The container's state.
    pub fn state(&mut self) -> Result<State> {
        self.call(&Request::State)
    }

    /// Sends signal number `signal` to the init, or with `all` to every process.
    pub fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        self.call::<Empty>(&Request::Kill { signal, all }).map(drop)
    }

    /// Freezes the container.
    pub fn pause(&mut self) -> Result<()> {
        self.call::<Empty>(&Request::Pause).map(drop)
    }

    /// Thaws the container.
    pub fn resume(&mut self) -> Result<()> {
        self.call::<Empty>(&Request::Resume).map(drop)
    }

    /// Sets the terminal size (rows, columns) of a tty container.
    pub fn resize(&mut self, height: u16, width: u16) -> Result<()> {
        self.call::<Empty>(&Request::Resize { height, width })
            .map(drop)
    }

    /// Blocks until the container has exited and its exit is recorded.
    pub fn wait(&mut self) -> Result<Exit> {
        self.call(&Request::Wait)
    }

    /// Closes the container's stdin.
    pub fn close_stdin(&mut self) -> Result<()> {
        self.call::<Empty>(&Request::CloseStdin).map(drop)
    }

    /// Attaches; the returned socket carries the container's output (multiplexed frames,
    /// or raw bytes with a terminal) and takes its stdin. Detach by closing it.
    pub fn attach(mut self, opts: AttachOptions) -> Result<UnixStream> {
        self.call::<Empty>(&Request::Attach(opts))?;
        Ok(self.stream)
    }

    /// Asks the shim to exit; it refuses while the container has not exited.
    pub fn shutdown(&mut self) -> Result<()> {
        self.call::<Empty>(&Request::Shutdown).map(drop)
    }
}

/// How to start a shim; mirrors the `berth-shim` command line.
#[derive(Debug, Clone, Default)]
pub struct ShimOptions {
    /// The `berth-shim` binary.
    pub binary: PathBuf,
    /// The container id.
    pub id: String,
    /// The OCI bundle directory.
    pub bundle: PathBuf,
    /// The runtime's state root (`--root` of runc).
    pub runtime_root: PathBuf,
    /// Where the control socket goes.
    pub socket: PathBuf,
    /// Where the exit status goes.
    pub exit_file: PathBuf,
    /// Log driver name (`json-file`, `none`); `None` logs nothing.
    pub log_driver: Option<String>,
    /// The log file for file-based drivers.
    pub log_path: Option<PathBuf>,
    /// Driver options (`max-size`, `max-file`, ...).
    pub log_opts: Vec<(String, String)>,
    /// The container has a terminal (process.terminal in config.json).
    pub tty: bool,
    /// Keep the container's stdin open for attach clients.
    pub stdin: bool,
    /// An external runc-compatible runtime binary instead of the built-in runtime.
    pub runtime: Option<PathBuf>,
    /// Exec mode: run this OCI process file in the running container `id`.
    pub exec: Option<PathBuf>,
}

impl ShimOptions {
    /// The command line for these options.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--runtime-root")
            .arg(&self.runtime_root)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--exit-file")
            .arg(&self.exit_file);
        if let Some(d) = &self.log_driver {
            c.arg("--log-driver").arg(d);
        }
        if let Some(p) = &self.log_path {
            c.arg("--log-path").arg(p);
        }
        for (k, v) in &self.log_opts {
            c.arg("--log-opt").arg(format!("{k}={v}"));
        }
        if self.tty {
            c.arg("--tty");
        }
        if self.stdin {
            c.arg("--stdin");
        }
        if let Some(r) = &self.runtime {
            c.arg("--runtime").arg(r);
        }
        if let Some(p) = &self.exec {
            c.arg("--exec").arg(p);
        }
        c
    }
}

/// What a started shim reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    /// The shim's pid (it has detached: it is not the caller's child).
    pub shim_pid: i32,
    /// Host pid of the container's init.
    pub container_pid: i32,
}

/// Starts a shim and waits for its `ok <shim pid> <container pid>` or `error <message>`
/// line. On success the container is created and the control socket listens.
pub fn spawn(opts: &ShimOptions) -> Result<Spawned> {
    let out = opts
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("running {}", opts.binary.display()), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("");
    parse_startup(line).map_err(|e| match e {
        Error::Protocol(_) if line.is_empty() => Error::Startup(format!(
            "no startup line ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        e => e,
    })
}

/// Parses the shim's startup line.
pub fn parse_startup(line: &str) -> Result<Spawned> {
    if let Some(msg) = line.strip_prefix("error ") {
        return Err(Error::Startup(msg.to_string()));
    }
    let mut f = line.split(' ');
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some("ok"), Some(a), Some(b), None) => match (a.parse(), b.parse()) {
            (Ok(shim_pid), Ok(container_pid)) => Ok(Spawned {
                shim_pid,
                container_pid,
            }),
            _ => Err(Error::Protocol(format!("bad startup line {line:?}"))),
        },
        _ => Err(Error::Protocol(format!("bad startup line {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_lines() {
        assert_eq!(
            parse_startup("ok 12 34").unwrap(),
            Spawned {
                shim_pid: 12,
                container_pid: 34
            }
        );
        assert!(
            matches!(parse_startup("error no such bundle"), Err(Error::Startup(m)) if m == "no such bundle")
        );
        assert!(parse_startup("ok 12").is_err());
        assert!(parse_startup("").is_err());
    }
}
