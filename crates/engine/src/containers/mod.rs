//! Containers: records in the `containers` table, the OCI bundle in
//! `<data-root>/containers/<id>/`, and one `berth-shim` per started container.
//!
//! - [`create`]: resolves the image, records the container, writes its bundle.
//! - [`spec`]: the OCI `config.json` for a container.
//! - [`start`]: start, stop, kill, wait and remove through the shim.
//! - [`logs`]: reading the json-file log back.
//!
//! A record says `running` from a successful start until the exit is seen: either by
//! the watcher thread that waits on the shim, or lazily, from the shim's exit file,
//! whenever the record is read (so a daemon restart loses nothing).
//!
//! All methods block; the daemon calls them from `spawn_blocking`.

pub mod archive;
pub mod attach;
pub mod commit;
pub mod create;
pub mod exec;
pub mod filter;
pub mod logs;
pub mod names;
pub mod pause;
pub mod prune;
pub mod rename;
pub mod restart;
pub mod seccomp;
pub mod spec;
pub mod start;
pub mod top;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Table;
use crate::Engine;

/// Containers by id.
pub const CONTAINERS: Table<Container> = Table::new("containers");

/// Go's zero time, which Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What a container runs, as given at create (image defaults not merged in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// The image as the user named it.
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `NAME=value`, merged over the image's.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub domainname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
}

/// The host side of a container: limits, namespaces, privileges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// CPU quota in units of 1e-9 CPUs; 0 = unlimited.
    pub nano_cpus: i64,
    /// Max processes; `None`, 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
    /// `none`, `host`, `bridge`/`default` (no networking yet: an empty namespace).
    pub network_mode: String,
    pub auto_remove: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    /// `--init`: run berth-init as PID 1 (`None`: not asked).
    pub init: Option<bool>,
    /// `--security-opt` values as given (a seccomp profile as its JSON).
    pub security_opt: Vec<String>,
    /// `--restart`.
    pub restart_policy: restart::RestartPolicy,
    /// `--log-driver` and `--log-opt`; an empty type takes the daemon's.
    pub log_config: LogConfig,
    /// `--runtime`: `berth` (built in) or a runc-compatible one from the daemon's
    /// `runtimes` (`runc` is known without configuration). Empty: the default.
    pub runtime: String,
}

/// A container's logging driver and its options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `json-file` or `none`; empty: the daemon's `log-driver`.
    pub driver: String,
    pub opts: BTreeMap<String, String>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    /// Docker's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// The runtime state of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    /// Host pid of the init while running; 0 otherwise.
    pub pid: i32,
    /// The shim's pid while running.
    pub shim_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Frozen by `pause` (status stays running).
    pub paused: bool,
    /// Waiting to be started again by its restart policy.
    pub restarting: bool,
    /// Stopped or killed by its user: restart policies leave it alone.
    pub manually_stopped: bool,
    /// Why the last start failed, or empty.
    pub error: String,
    /// RFC 3339; [`ZERO_TIME`] when never.
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            oom_killed: false,
            paused: false,
            restarting: false,
            manually_stopped: false,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

/// A container as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// `/name`.
    pub name: String,
    /// `sha256:<hex>` of the image.
    pub image_id: String,
    /// RFC 3339.
    pub created: String,
    /// The command that runs (after merging with the image): path and arguments.
    pub path: String,
    pub args: Vec<String>,
    /// The merged environment (image's, then the given).
    #[serde(default)]
    pub env: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// The json-file log.
    pub log_path: PathBuf,
    #[serde(default)]
    pub restart_count: u64,
}

impl Container {
    /// The 12-digit short id.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// Whether the container's init runs.
    pub fn running(&self) -> bool {
        self.state.status == Status::Running
    }
}

/// Filters of [`Engine::list_containers`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Also stopped and created containers.
    pub all: bool,
    /// `--filter`s, checked by [`filter::ContainerFilter::new`].
    pub filters: BTreeMap<String, Vec<String>>,
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

pub(crate) fn no_such_container(name: &str) -> Error {
    Error::NotFound(format!("No such container: {name}"))
}

/// How a container's runtime is driven: an external binary (`None`: berth's own) and
/// the runtime's state root.
pub(crate) struct RuntimeChoice {
    pub binary: Option<PathBuf>,
    pub root: PathBuf,
}

impl Engine {
    /// Resolves a `--runtime` name; Docker's 400 for an unknown one.
    pub(crate) fn runtime_named(&self, name: &str) -> Result<RuntimeChoice> {
        let name = if name.is_empty() {
            self.config.default_runtime.as_str()
        } else {
            name
        };
        let binary = match (name, self.config.runtimes.get(name)) {
            (_, Some(path)) => Some(path.clone()),
            ("berth", None) => None,
            ("runc", None) => Some(PathBuf::from("runc")),
            _ => {
                return Err(Error::InvalidParameter(format!(
                    "unknown or invalid runtime name: {name}"
                )))
            }
        };
        // Each runtime keeps its own state format: one root each.
        let root = match &binary {
            None => self.config.exec_root.join("runtime"),
            Some(_) => self.config.exec_root.join("runtimes").join(name),
        };
        Ok(RuntimeChoice { binary, root })
    }

    /// `<data-root>/containers/<id>`.
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    /// `<exec-root>/shims`.
    pub(crate) fn shims_dir(&self) -> PathBuf {
        self.config.exec_root.join("shims")
    }

    pub(crate) fn shim_socket(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("{id}.sock"))
    }

    pub(crate) fn exit_file(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("{id}.exit"))
    }

    /// The record of `id` (a full id), refreshed.
    pub(crate) fn container_by_id(&self, id: &str) -> Result<Option<Container>> {
        match self.db.get(CONTAINERS, id)? {
            Some(c) => Ok(Some(self.refresh(c)?)),
            None => Ok(None),
        }
    }

    /// Finds a container by full id, name (with or without the leading `/`) or a
    /// unique id prefix, in that order, as Docker does.
    pub fn lookup_container(&self, name: &str) -> Result<Container> {
        if name.is_empty() {
            return Err(no_such_container(name));
        }
        // Clients name a container by its full id once they have it (`docker run`
        // does, for every request after create): one read, not a scan of every record.
        if let Some(c) = self.db.get(CONTAINERS, name)? {
            return self.refresh(c);
        }
        let all = self.db.list(CONTAINERS)?;
        let slash = format!("/{}", name.trim_start_matches('/'));
        let found = all
            .iter()
            .find(|(_, c)| c.name == slash)
            .cloned()
            .or_else(|| {
                if !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let mut m = all.iter().filter(|(id, _)| id.starts_with(name));
                match (m.next(), m.next()) {
                    (Some(c), None) => Some(c.clone()),
                    _ => None,
                }
            });
        match found {
            Some((_, c)) => self.refresh(c),
            None => Err(no_such_container(name)),
        }
    }

    /// Brings a `running` record up to date with the shim's exit file.
    pub(crate) fn refresh(&self, c: Container) -> Result<Container> {
        if c.state.status != Status::Running {
            return Ok(c);
        }
        match start::read_exit(&self.exit_file(&c.id)) {
            Some(exit) => self.record_exit(&c.id, &exit),
            None => Ok(c),
        }
    }

    /// Records that the container exited (idempotent); the record as it now is.
    pub(crate) fn record_exit(&self, id: &str, exit: &shim::proto::Exit) -> Result<Container> {
        self.forget_execs(id);
        self.db.transaction(|tx| {
            let mut c = tx
                .get(CONTAINERS, id)?
                .ok_or_else(|| no_such_container(id))?;
            if c.state.status == Status::Running {
                c.state.status = Status::Exited;
                c.state.paused = false;
                c.state.pid = 0;
                c.state.shim_pid = 0;
                c.state.exit_code = exit.code;
                c.state.oom_killed = exit.oom_killed;
                c.state.finished_at = exit.finished_at.clone();
                tx.put(CONTAINERS, id, &c)?;
                // Inside the write transaction: only one caller sees the transition.
                self.emit_exit(&c);
            }
            Ok(c)
        })
    }

    /// Containers, newest first; running ones only unless `opts.all`.
    pub fn list_containers(&self, opts: &ListOptions) -> Result<Vec<Container>> {
        let f = filter::ContainerFilter::new(self, &opts.filters)?;
        let all = opts.all || f.wants_stopped();
        let mut out = Vec::new();
        for (_, c) in self.db.list(CONTAINERS)? {
            let c = self.refresh(c)?;
            if (all || c.running()) && f.matches(&c) {
                out.push(c);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The container named `name`, for inspect.
    pub fn inspect_container(&self, name: &str) -> Result<Container> {
        self.lookup_container(name)
    }

    /// The short id of a container made from image `id`, if any.
    pub(crate) fn container_using_image(&self, id: &str) -> Option<String> {
        self.db
            .list(CONTAINERS)
            .ok()?
            .into_iter()
            .find(|(_, c)| c.image_id == id)
            .map(|(_, c)| c.short_id().to_string())
    }

    /// The short id of a running (or paused) container made from image `id`, if any:
    /// Docker's hard conflict, which no `force` overrides.
    pub(crate) fn running_container_using_image(&self, id: &str) -> Option<String> {
        self.db
            .list(CONTAINERS)
            .ok()?
            .into_iter()
            .filter(|(_, c)| c.image_id == id)
            .filter_map(|(_, c)| self.refresh(c).ok())
            .find(|c| c.running())
            .map(|c| c.short_id().to_string())
    }
}
