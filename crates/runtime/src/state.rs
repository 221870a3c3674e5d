//! The container's record under the state root (`--root`): `<root>/<id>/state.json`,
//! a copy of its config, and the `exec.fifo` that holds a created container until start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};

/// Where a container is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.pad(s)
    }
}

/// What the runtime remembers of a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Host pid of the container's init; 0 while creating.
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot, to tell a reused pid apart.
    pub pid_start: u64,
    /// RFC 3339 creation time.
    pub created: String,
    pub cgroup: Cgroup,
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
}

/// The OCI state as `berth-runtime state` prints it (runc's fields, plus `oomKilled`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty", default)]
    pub annotations: std::collections::HashMap<String, String>,
    /// True when the kernel's OOM killer killed a process of this container.
    #[serde(default)]
    pub oom_killed: bool,
}

/// The state directory of one container.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

pub const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";
const CONFIG: &str = "config.json";

impl StateDir {
    pub fn new(root: &Path, id: &str) -> StateDir {
        StateDir { dir: root.join(id) }
    }

    /// Creates the directory; fails if the container already exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        fs::create_dir_all(root).map_err(|e| Error::io("creating state root", root, e))?;
        let dir = root.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(StateDir { dir }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::io("creating state directory", dir, e)),
        }
    }

    pub fn exists(&self) -> bool {
        self.dir.join(STATE).exists()
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    /// Writes the record atomically (temp file and rename), so a crash leaves the old or
    /// the new record, never half of one.
    pub fn save(&self, record: &Record) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(record).map_err(|e| Error::Other(e.to_string()))?;
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io("writing", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        fs::rename(&tmp, self.dir.join(STATE))
            .map_err(|e| Error::io("renaming", self.dir.join(STATE), e))
    }

    pub fn load(&self) -> Result<Record> {
        let p = self.dir.join(STATE);
        let data = fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::Other(format!("corrupt state {}: {e}", p.display())))
    }

    pub fn save_spec(&self, spec: &Spec) -> Result<()> {
        let p = self.dir.join(CONFIG);
        let data = serde_json::to_vec(spec).map_err(|e| Error::Other(e.to_string()))?;
        fs::write(&p, data).map_err(|e| Error::io("writing", &p, e))
    }

    /// Only the hooks of the saved config: start and delete need nothing else, and
    /// skipping the rest keeps config parsing off their path.
    pub fn load_hooks(&self) -> Result<Option<oci_spec::runtime::Hooks>> {
        #[derive(serde::Deserialize)]
        struct HooksOnly {
            #[serde(default)]
            hooks: Option<oci_spec::runtime::Hooks>,
        }
        let p = self.dir.join(CONFIG);
        let data = fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        let h: HooksOnly = serde_json::from_slice(&data)
            .map_err(|e| Error::Other(format!("corrupt config {}: {e}", p.display())))?;
        Ok(h.hooks)
    }

    pub fn load_spec(&self) -> Result<Spec> {
        let p = self.dir.join(CONFIG);
        let data = fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::Other(format!("corrupt config {}: {e}", p.display())))
    }

    /// Removes the whole directory; a missing one is fine.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("removing state directory", &self.dir, e))
            }
            _ => Ok(()),
        }
    }
}

/// Start time (field 22 of /proc/<pid>/stat) and whether the process is a zombie.
pub fn proc_stat(pid: i32) -> Option<(u64, bool)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, zombie))
}

impl Record {
    /// True while the container's init (the same process, not a reused pid) lives.
    pub fn alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some((start, zombie)) if start == self.pid_start && !zombie)
    }

    /// Works out the status from the kernel's view, not from what was last written.
    pub fn status(&self, dir: &StateDir) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        if !self.alive() {
            return Status::Stopped;
        }
        if dir.fifo().exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci_state(&self, dir: &StateDir) -> OciState {
        let status = self.status(dir);
        OciState {
            oci_version: "1.2.0".into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
            oom_killed: self.cgroup.oom_killed().unwrap_or(false),
        }
    }
}

/// The current time in RFC 3339 with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}
