//! `attach`: a stream to the container's stdio through its shim.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use shim::proto::AttachOptions;

use super::{no_such_container, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// What an attach client wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the log first.
    pub logs: bool,
}

impl Engine {
    /// Attaches to container `name`. A container not started yet is waited for (the
    /// docker CLI attaches before it starts the container); what it printed before the
    /// attach reached the shim is replayed from the log. The stream carries Docker's
    /// multiplexed frames, or raw bytes for a terminal; the flag says which.
    pub fn attach_container(&self, name: &str, req: AttachRequest) -> Result<(Attached, bool)> {
        let mut c = self.lookup_container(name)?;
        let mut replay = req.logs;
        // A container not running yet is waited for until its next start (`docker
        // start -a` attaches to an exited container, then starts it).
        let before = c.state.started_at.clone();
        // What an earlier run logged is not replayed.
        let log_offset = if c.state.status == Status::Exited {
            std::fs::metadata(&c.log_path).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        // A start that fails records its error (and a finish time): stop waiting.
        let attempt = (c.state.error.clone(), c.state.finished_at.clone());
        let waiting = |c: &super::Container| {
            let failed = !c.state.error.is_empty()
                && (c.state.error.clone(), c.state.finished_at.clone()) != attempt;
            !failed
                && (c.state.status == Status::Created
                    || (c.state.status == Status::Exited && c.state.started_at == before))
        };
        // While this attach waits for the start, a `--rm` container is not removed
        // before its output got here (see the watcher).
        let _marker = waiting(&c).then(|| {
            let p = self.attach_marker(&c.id);
            let _ = std::fs::create_dir_all(self.shims_dir());
            let _ = std::fs::write(&p, b"");
            RemoveOnDrop(p, &self.db)
        });
        while waiting(&c) {
            replay = true;
            let seen = self.db.generation();
            c = self
                .container_by_id(&c.id)?
                .ok_or_else(|| no_such_container(name))?;
            if waiting(&c) {
                self.db.wait_change(seen, Duration::from_millis(500));
            }
        }
        // A container that exited before the attach got to it: its shim lingers a
        // while and replays the log.
        if c.state.status != Status::Running && !replay {
            return Err(Error::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        let live = shim::client::Client::connect(self.shim_socket(&c.id)).and_then(|cl| {
            cl.attach(AttachOptions {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                logs: replay,
                // The daemon closes stdin itself on the client's EOF (not on a
                // detach): see `close_stdin`.
                stdin_once: false,
                log_offset,
            })
        });
        match live {
            Ok(s) => Ok((Attached::Live(s), c.config.tty)),
            Err(_) if replay => {
                // It exited before the shim saw the attach: its log is all there is.
                let opts = log::ReadOptions {
                    stdout: req.stdout,
                    stderr: req.stderr,
                    // Only this run's output.
                    since: humantime::parse_rfc3339_weak(&c.state.started_at).ok(),
                    ..Default::default()
                };
                let mut out = Vec::new();
                if let Ok(r) = log::read(&c.log_path, opts) {
                    let mut buf = Vec::new();
                    for e in r.flatten() {
                        buf.clear();
                        e.append_docker(false, false, &mut buf);
                        if c.config.tty {
                            out.extend_from_slice(&buf);
                        } else {
                            let kind = match e.stream {
                                log::Stream::Stdout => shim::frame::STDOUT,
                                log::Stream::Stderr => shim::frame::STDERR,
                            };
                            shim::frame::encode_into(&mut out, kind, &buf);
                        }
                    }
                }
                Ok((Attached::Replay(out), c.config.tty))
            }
            Err(e) => Err(Error::Internal(format!("attaching: {e}"))),
        }
    }
}

impl Engine {
    /// Closes the stdin of a running container (an attached client's input ended and
    /// the container has `StdinOnce`).
    pub fn close_stdin(&self, name: &str) -> Result<()> {
        let c = self.lookup_container(name)?;
        if let Some(mut cl) = self.shim(&c.id, Some(Duration::from_secs(5))) {
            cl.close_stdin()
                .map_err(|e| Error::Internal(format!("closing the stdin of {}: {e}", c.id)))?;
        }
        Ok(())
    }

    /// Sets the terminal size of a running container; a no-op without a terminal.
    pub fn resize_container(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let c = self.lookup_container(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if !c.config.tty {
            return Ok(());
        }
        let mut cl = self
            .shim(&c.id, Some(Duration::from_secs(5)))
            .ok_or_else(|| Error::Conflict(format!("Container {} is not running", c.id)))?;
        cl.resize(height, width)
            .map_err(|e| Error::Internal(format!("resizing the terminal of {}: {e}", c.id)))
    }
}

/// The attach marker; its removal wakes the watcher waiting on it.
struct RemoveOnDrop<'a>(PathBuf, &'a crate::store::Store);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        self.1.notify();
    }
}

impl Engine {
    /// Exists while an attach waits for the container to start.
    pub(crate) fn attach_marker(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("{id}.attach"))
    }
}

/// An attach stream: live from the shim, or the log of a container that already exited.
#[derive(Debug)]
pub enum Attached {
    Live(UnixStream),
    Replay(Vec<u8>),
}
