//! `logs`: the container's json-file log read back (crates/log).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::start::read_exit;
use crate::error::{Error, Result};
use crate::Engine;

pub use log::{LogEntry, LogReader, Stream as LogStream};

/// The `docker logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub tail: Option<usize>,
    pub timestamps: bool,
}

/// What [`Engine::container_logs`] returns.
pub struct Logs {
    /// The container has a terminal: its output is one raw stream.
    pub tty: bool,
    /// The entries; `None` when nothing was ever logged.
    pub reader: Option<log::LogReader>,
}

impl Engine {
    /// The log of container `name`. With `follow`, the reader blocks for new entries
    /// until the container exits.
    pub fn container_logs(&self, name: &str, opts: &LogsOptions) -> Result<Logs> {
        let c = self.lookup_container(name)?;
        if c.host_config.log_config.driver == "none" {
            return Err(Error::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        }
        let stop = Arc::new(AtomicBool::new(!c.running()));
        if opts.follow && c.running() {
            let exit_file = self.exit_file(&c.id);
            let dir = self.container_dir(&c.id);
            let flag = Arc::clone(&stop);
            // Ends when the container exits or the reader is dropped. A container
            // removed right after its exit (`run --rm`, docker-py's `run(remove=True)`)
            // takes its exit file along: its directory going ends the follow too.
            let _ = std::thread::Builder::new()
                .name("logs-follow".into())
                .spawn(move || {
                    while Arc::strong_count(&flag) > 1 {
                        if read_exit(&exit_file).is_some() || !dir.exists() {
                            flag.store(true, Ordering::SeqCst);
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
        }
        let ro = log::ReadOptions {
            since: opts.since,
            until: opts.until,
            tail: opts.tail,
            stdout: opts.stdout,
            stderr: opts.stderr,
            follow: opts.follow,
            timestamps: opts.timestamps,
            stop: Some(stop),
        };
        let reader = match log::read(&c.log_path, ro) {
            Ok(r) => Some(r),
            Err(_) if !c.log_path.exists() => None,
            Err(e) => return Err(Error::Internal(format!("reading the log: {e}"))),
        };
        Ok(Logs {
            tty: c.config.tty,
            reader,
        })
    }
}
