//! `kill`: a signal to the container's init, or with `all` to every process in its cgroup.

use std::path::Path;
use std::str::FromStr;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Container;
use crate::error::{Error, Result};
use crate::state::Status;

/// Parses "KILL", "SIGKILL", "kill" or "9".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Other(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| Error::Other(format!("invalid signal {s:?}")))
}

pub fn kill(root: &Path, id: &str, signal: Signal, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status() == Status::Stopped {
        return Err(Error::Other(format!("container \"{id}\" is not running")));
    }
    if all {
        if signal == Signal::SIGKILL && c.status() == Status::Paused {
            // A frozen process cannot die; thaw it after the signal is queued.
            for p in c.record.cgroup.processes()? {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), signal);
            }
            c.record.cgroup.thaw()?;
            return Ok(());
        }
        for p in c.record.cgroup.processes()? {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), signal);
        }
        return Ok(());
    }
    nix::sys::signal::kill(Pid::from_raw(c.record.pid), signal)
        .map_err(|e| Error::Other(format!("sending {signal} to container \"{id}\": {e}")))
}
