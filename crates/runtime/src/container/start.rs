//! `start`: releases a created container's process by reading its exec.fifo.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Container;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::Status;

pub fn start(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::Other(format!(
                "cannot start container \"{id}\": it has stopped"
            )))
        }
        _ => return Err(c.bad_state("start", "created")),
    }
    let fifo_path = c.dir.fifo();
    // Non-blocking open: if the process died meanwhile, a blocking open would hang.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| Error::io("opening", &fifo_path, e))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 1];
    // The process writes one byte, runs the startContainer hooks and execs its program,
    // which closes the fifo: EOF after the byte means the program runs.
    let mut released = false;
    loop {
        match fifo.read(&mut buf) {
            Ok(1) => released = true,
            Ok(0) if released => break,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                return Err(Error::io("reading", &fifo_path, e))
            }
            _ => {}
        }
        if !c.record.alive() {
            // A short program may write its byte, run and exit between the read above
            // and this check: the byte is still in the fifo then.
            if released || matches!(fifo.read(&mut buf), Ok(1)) {
                break;
            }
            return Err(Error::Other(format!(
                "cannot start container \"{id}\": its process exited"
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "container \"{id}\" did not start within 30s"
            )));
        }
        // Sleep until the fifo has data or its writer closed it; the timeout only
        // bounds how late a dead process is noticed.
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u8));
    }
    std::fs::remove_file(&fifo_path).map_err(|e| Error::io("removing", &fifo_path, e))?;
    let hooks = c.dir.load_hooks()?;
    if let Some(poststart) = hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
        // A failing poststart hook is only a warning: the container already runs.
        if let Err(e) = hooks::run("poststart", Some(poststart), &c.state()) {
            eprintln!("berth-runtime: warning: {e}");
        }
    }
    Ok(())
}
