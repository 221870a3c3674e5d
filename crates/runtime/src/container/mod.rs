//! The lifecycle operations, one file per verb, each a plain function over the state root.

mod create;
mod delete;
pub mod events;
mod exec;
mod foreground;
mod kill;
mod pause;
mod ps;
mod start;

pub use create::{create, create_from, CreateOpts};
pub use delete::delete;
pub use exec::{exec, ExecOpts};
pub use foreground::{block_signals, foreground, TtyProxy};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use ps::processes;
pub use start::start;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::state::{OciState, Record, StateDir, Status};

/// A container known under a state root.
pub struct Container {
    pub dir: StateDir,
    pub record: Record,
}

impl Container {
    /// Opens the container `id`; [`Error::NotFound`] if there is none.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        crate::spec::validate_id(id)?;
        let dir = StateDir::new(root, id);
        if !dir.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        let record = dir.load()?;
        Ok(Container { dir, record })
    }

    pub fn status(&self) -> Status {
        self.record.status(&self.dir)
    }

    pub fn state(&self) -> OciState {
        self.record.oci_state(&self.dir)
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    fn bad_state(&self, action: &'static str, needs: &'static str) -> Error {
        Error::BadState {
            id: self.record.id.clone(),
            status: self.status().to_string(),
            action,
            needs,
        }
    }
}

/// Every container under a state root, in id order.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("reading state root", root, e)),
    };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if let Ok(c) = Container::load(root, &id) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok(out)
}

/// Writes a pid file atomically, as runc does (temp file and rename).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp: PathBuf = {
        let mut s = path.as_os_str().to_owned();
        s.push(".tmp");
        s.into()
    };
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("writing pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("writing pid file", path, e))
}

/// Waits until a process that is not our child is gone, up to `timeout`.
pub(crate) fn wait_gone(record: &Record, timeout: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + timeout;
    while record.alive() {
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}
