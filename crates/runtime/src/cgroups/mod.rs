//! cgroups v1, v2 and the hybrid layout (v1 controllers with cgroup2 mounted beside).
//!
//! A [`Cgroup`] names one container's cgroup in every mounted hierarchy. It is resolved once
//! from the spec's `linux.cgroupsPath` ([`Cgroup::new`]), serialized into the container state,
//! and reopened by later commands without touching `/proc/self/*` again.

mod bpf;
mod fs;
mod parse;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use parse::shares_to_weight;
use parse::{parse_mountinfo, parse_proc_cgroup, MountKind};

/// Root under which cgroup filesystems are conventionally mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How long [`Cgroup::destroy`] keeps killing processes before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors from cgroup operations. Every variant names the file, path or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading a cgroup file failed.
    #[error("cgroup: read {}: {}", path.display(), errno_text(source))]
    Read {
        /// File that could not be read.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// Writing a value to a cgroup file failed.
    #[error("cgroup: write {value} to {}: {}", path.display(), errno_text(source))]
    Write {
        /// File that rejected the write.
        path: PathBuf,
        /// Value written.
        value: String,
        /// Underlying error.
        source: io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("cgroup: mkdir {}: {}", path.display(), errno_text(source))]
    Create {
        /// Directory that could not be created.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// Removing a cgroup directory failed.
    #[error("cgroup: rmdir {}: {}", path.display(), errno_text(source))]
    Remove {
        /// Directory that could not be removed.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// `linux.cgroupsPath` is not acceptable.
    #[error("cgroup: invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The path as given in the spec.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No usable cgroup hierarchy is mounted, or `/proc/self/cgroup` does not match it.
    #[error("cgroup: {0}")]
    Layout(String),
    /// A cgroup file did not have the expected format.
    #[error("cgroup: parse {}: {reason}", path.display())]
    Parse {
        /// File with unexpected content.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A resource setting cannot be applied on this host.
    #[error("cgroup: {setting}: {reason}")]
    Unsupported {
        /// The spec setting, e.g. `linux.resources.memory.swap`.
        setting: String,
        /// Why it cannot be applied.
        reason: String,
    },
    /// A resource setting has an invalid value.
    #[error("cgroup: invalid {setting} {value}: {reason}")]
    InvalidValue {
        /// The spec setting.
        setting: String,
        /// The offending value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Freezing or thawing did not reach the requested state in time.
    #[error("cgroup: {}: state is still {state:?}, wanted {wanted:?}", path.display())]
    FreezeTimeout {
        /// State file polled.
        path: PathBuf,
        /// Last state read.
        state: String,
        /// State requested.
        wanted: String,
    },
    /// Processes survived SIGKILL for too long.
    #[error("cgroup: processes {pids:?} in {} survived SIGKILL for {timeout:?}", path.display())]
    KillTimeout {
        /// Cgroup directory.
        path: PathBuf,
        /// Pids still present.
        pids: Vec<i32>,
        /// How long we waited.
        timeout: Duration,
    },
    /// Sending a signal failed.
    #[error("cgroup: kill {pid} in {}: {source}", path.display())]
    Signal {
        /// Process signalled.
        pid: i32,
        /// Cgroup directory it was found in.
        path: PathBuf,
        /// Underlying error.
        source: nix::Error,
    },
    /// Loading or attaching the cgroup v2 device eBPF program failed.
    #[error("cgroup: device filter on {}: {op}: {}", path.display(), errno_text(source))]
    Bpf {
        /// Cgroup directory.
        path: PathBuf,
        /// The bpf(2) operation that failed.
        op: String,
        /// Underlying error (with the verifier log appended, if any).
        source: io::Error,
    },
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, CgroupError>;

/// Render an OS error without the "(os error N)" suffix std adds.
fn errno_text(e: &io::Error) -> String {
    match (e.raw_os_error(), e.get_ref()) {
        (Some(code), None) => nix::errno::Errno::from_raw(code).desc().to_string(),
        _ => e.to_string(),
    }
}

/// Which cgroup hierarchies the host has mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 controllers plus a controller-less cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`).
    Hybrid,
    /// A single cgroup2 hierarchy.
    Unified,
}

/// One v1 hierarchy (a mount of one or more co-mounted controllers) and the container's
/// directory in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Hierarchy {
    /// Controllers of this mount, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The container's cgroup directory (absolute, under `mount_point`).
    pub path: PathBuf,
}

/// A container's cgroup across all hierarchies.
///
/// Serializable so the runtime can keep it in its state file and later commands reopen it
/// without re-resolving paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    layout: Layout,
    /// v1 hierarchies (empty on [`Layout::Unified`]).
    v1: Vec<V1Hierarchy>,
    /// Mount point of the cgroup2 hierarchy and the container's directory in it.
    unified: Option<(PathBuf, PathBuf)>,
    /// Directories [`Cgroup::create`] made, in creation order.
    created: Vec<PathBuf>,
    /// The default path's shared `berth/` parent, which berth owns: whichever container
    /// leaves it empty removes it, not only the one that made it.
    #[serde(default)]
    prune_parent: bool,
}

/// Resource usage of a cgroup, as reported by [`Cgroup::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU accounting.
    pub cpu: CpuStats,
    /// Memory accounting.
    pub memory: MemoryStats,
    /// Process count.
    pub pids: PidsStats,
    /// Block I/O accounting.
    pub blkio: BlkioStats,
}

/// CPU usage; all times in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time consumed.
    pub usage_total: u64,
    /// Time spent in user mode.
    pub usage_user: u64,
    /// Time spent in kernel mode.
    pub usage_system: u64,
    /// Per-CPU total usage (v1 `cpuacct.usage_percpu`; empty on v2).
    pub per_cpu: Vec<u64>,
    /// CFS bandwidth throttling.
    pub throttling: ThrottlingStats,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingStats {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total throttled time in nanoseconds.
    pub throttled_time: u64,
}

/// Memory usage in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` where available).
    pub max_usage: u64,
    /// Limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// Swap usage (v1: memory+swap usage, v2: `memory.swap.current`) when accounted.
    pub swap_usage: Option<u64>,
    /// Swap limit (v1: memory+swap limit, v2: `memory.swap.max`); `None` when unlimited or
    /// not accounted.
    pub swap_limit: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub cache: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub rss: u64,
    /// Raw `memory.stat`.
    pub stat: BTreeMap<String, u64>,
}

/// Process count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Number of tasks.
    pub current: u64,
    /// Limit; `None` when unlimited.
    pub limit: Option<u64>,
}

/// Block I/O per device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// One entry per device that saw I/O.
    pub devices: Vec<BlkioDeviceStats>,
}

/// I/O counters of one block device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioDeviceStats {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub read_ios: u64,
    /// Write operations.
    pub write_ios: u64,
}

impl Cgroup {
    /// Resolve the spec's `linux.cgroupsPath` for container `id` against the host's mounts.
    ///
    /// An absolute path is taken from each hierarchy's root; a relative one is placed under
    /// the calling process's own cgroup in each hierarchy (as runc does); `None` means the
    /// relative path `berth/<id>`. `..` components and systemd `slice:prefix:name` paths are
    /// rejected. Nothing is created.
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        let mountinfo = fs::read(Path::new("/proc/self/mountinfo"))?;
        let proc_cgroup = fs::read(Path::new("/proc/self/cgroup"))?;
        let root_is_cgroup2 = nix::sys::statfs::statfs(CGROUP_ROOT)
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .ok();
        Self::resolve(&mountinfo, &proc_cgroup, root_is_cgroup2, cgroups_path, id)
    }

    /// [`Cgroup::new`] on given `/proc/self/mountinfo` and `/proc/self/cgroup` contents.
    /// `root_is_cgroup2` is the statfs verdict on `/sys/fs/cgroup`, if it could be taken.
    pub fn resolve(
        mountinfo: &str,
        proc_cgroup: &str,
        root_is_cgroup2: Option<bool>,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Self> {
        let default_path;
        let prune_parent = cgroups_path.is_none();
        let requested = match cgroups_path {
            Some(p) => p,
            None => {
                default_path = PathBuf::from(format!("berth/{id}"));
                &default_path
            }
        };
        let requested = validate_path(requested)?;
        let mounts = parse_mountinfo(mountinfo);
        let own = parse_proc_cgroup(proc_cgroup);

        let v2_mounts: Vec<_> = mounts.iter().filter(|m| m.kind == MountKind::V2).collect();
        let v1_mounts: Vec<_> = mounts.iter().filter(|m| m.kind == MountKind::V1).collect();
        let layout = match root_is_cgroup2 {
            Some(true) => Layout::Unified,
            _ if v1_mounts.is_empty() && !v2_mounts.is_empty() => Layout::Unified,
            _ if v1_mounts.is_empty() => {
                return Err(CgroupError::Layout(
                    "no cgroup or cgroup2 filesystem in /proc/self/mountinfo".into(),
                ))
            }
            _ if v2_mounts.is_empty() => Layout::Legacy,
            _ => Layout::Hybrid,
        };

        let mut v1 = Vec::new();
        if layout != Layout::Unified {
            for m in &v1_mounts {
                if v1
                    .iter()
                    .any(|h: &V1Hierarchy| same_set(&h.controllers, &m.controllers))
                {
                    continue;
                }
                let best = v1_mounts
                    .iter()
                    .filter(|o| same_set(&o.controllers, &m.controllers))
                    .min_by_key(|o| mount_rank(o))
                    .expect("m itself matches");
                let own_path = own
                    .iter()
                    .find(|c| c.hierarchy_id != 0 && same_set(&c.controllers, &best.controllers))
                    .map(|c| c.path.as_str());
                if !requested.is_absolute() && own_path.is_none() {
                    return Err(CgroupError::Layout(format!(
                        "/proc/self/cgroup has no entry for hierarchy {}",
                        best.controllers.join(",")
                    )));
                }
                v1.push(V1Hierarchy {
                    controllers: best.controllers.clone(),
                    mount_point: best.mount_point.clone(),
                    path: resolve_dir(&best.mount_point, &best.root, own_path, &requested),
                });
            }
        }

        let unified = match v2_mounts.iter().min_by_key(|m| mount_rank(m)) {
            Some(m) => {
                let own_path = own
                    .iter()
                    .find(|c| c.hierarchy_id == 0 && c.controllers.is_empty())
                    .map(|c| c.path.as_str());
                if !requested.is_absolute() && own_path.is_none() {
                    return Err(CgroupError::Layout(
                        "/proc/self/cgroup has no cgroup2 (0::) entry".into(),
                    ));
                }
                Some((
                    m.mount_point.clone(),
                    resolve_dir(&m.mount_point, &m.root, own_path, &requested),
                ))
            }
            None => None,
        };

        Ok(Cgroup {
            layout,
            v1,
            unified,
            created: Vec::new(),
            prune_parent,
        })
    }

    /// The host's cgroup layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The v1 hierarchies and the container's directory in each (empty on pure v2).
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The container's directory in the cgroup2 hierarchy (pure v2, or the hybrid's
    /// controller-less unified mount).
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_ref().map(|(_, p)| p.as_path())
    }

    /// The container's directory for a v1 controller (e.g. `"memory"`, `"name=systemd"`),
    /// or the cgroup2 directory on [`Layout::Unified`].
    pub fn path_for(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            Layout::Unified => self.unified_path(),
            _ => self.v1_dir(controller),
        }
    }

    /// Directories [`Cgroup::create`] made, in creation order.
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.path.as_path())
    }

    /// Every directory of this cgroup: one per v1 hierarchy, then the cgroup2 one.
    fn all_dirs(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.v1
            .iter()
            .map(|h| (h.mount_point.as_path(), h.path.as_path()))
            .chain(self.unified.iter().map(|(m, p)| (m.as_path(), p.as_path())))
    }

    /// Create the cgroup directory in every hierarchy (`mkdir -p`), remembering which
    /// directories were made so [`Cgroup::destroy`] removes only those.
    ///
    /// On v1 `cpuset`, empty `cpuset.cpus`/`cpuset.mems` of new directories are copied from
    /// the parent. On pure v2, the available controllers are enabled in the ancestors'
    /// `cgroup.subtree_control`.
    pub fn create(&mut self) -> Result<()> {
        let mut created = Vec::new();
        let dirs: Vec<(PathBuf, PathBuf)> = self
            .all_dirs()
            .map(|(m, p)| (m.to_path_buf(), p.to_path_buf()))
            .collect();
        for (mount, dir) in &dirs {
            let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
            let mut cur = mount.clone();
            let is_unified_v2 =
                self.layout == Layout::Unified && Some(dir) == self.unified.as_ref().map(|u| &u.1);
            for comp in rel.components() {
                if is_unified_v2 {
                    v2::enable_controllers(&cur)?;
                }
                cur.push(comp);
                match std::fs::create_dir(&cur) {
                    Ok(()) => created.push(cur.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    // Another container just pruned the shared parent: make it again.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && self.prune_parent => {
                        std::fs::create_dir_all(&cur).map_err(|source| CgroupError::Create {
                            path: cur.clone(),
                            source,
                        })?;
                        created.push(cur.clone());
                    }
                    Err(source) => {
                        self.created.extend(created);
                        return Err(CgroupError::Create { path: cur, source });
                    }
                }
            }
        }
        self.created.extend(created);
        if let Some(h) = self
            .v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "cpuset"))
        {
            for dir in self
                .created
                .iter()
                .filter(|d| d.starts_with(&h.mount_point))
            {
                v1::init_cpuset(dir)?;
            }
        }
        Ok(())
    }

    /// Apply the spec's resource limits.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        match self.layout {
            Layout::Unified => v2::apply(self.unified_dir()?, resources),
            Layout::Legacy | Layout::Hybrid => v1::apply(self, resources),
        }
    }

    fn unified_dir(&self) -> Result<&Path> {
        self.unified_path()
            .ok_or_else(|| CgroupError::Layout("no cgroup2 hierarchy".into()))
    }

    /// Move process `pid` into this cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        if pid <= 0 {
            return Err(CgroupError::InvalidValue {
                setting: "pid".into(),
                value: pid.to_string(),
                reason: "must be positive".into(),
            });
        }
        for (_, dir) in self.all_dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves the calling process, which must be single-threaded, into this cgroup.
    ///
    /// On v1 it writes "0" to each hierarchy's `tasks`: moving just the current thread
    /// skips the kernel's global threadgroup lock, whose RCU grace period otherwise costs
    /// 5-10 ms per container start (measured on this project's test machine). In the
    /// hybrid layout the unified hierarchy holds no controllers, so the process does not
    /// join it, for the same reason.
    pub fn join_current(&self) -> Result<()> {
        match self.layout {
            Layout::Unified => fs::write(&self.unified_dir()?.join("cgroup.procs"), "0"),
            Layout::Legacy | Layout::Hybrid => {
                for h in &self.v1 {
                    fs::write(&h.path.join("tasks"), "0")?;
                }
                Ok(())
            }
        }
    }

    /// Every process in this cgroup (not its descendants).
    pub fn processes(&self) -> Result<Vec<i32>> {
        let dir = match self.layout {
            Layout::Unified => self.unified_dir()?,
            _ => ["pids", "memory", "freezer"]
                .iter()
                .find_map(|c| self.v1_dir(c))
                .or_else(|| self.v1.first().map(|h| h.path.as_path()))
                .ok_or_else(|| CgroupError::Layout("no v1 hierarchy".into()))?,
        };
        read_procs(dir)
    }

    /// Freeze every process of the cgroup and wait until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::freeze(dir),
            Freezer::V2(dir) => v2::set_frozen(dir, true),
        }
    }

    /// Thaw a frozen cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::thaw(dir),
            Freezer::V2(dir) => v2::set_frozen(dir, false),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::is_frozen(dir),
            Freezer::V2(dir) => v2::is_frozen(dir),
        }
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if self.layout != Layout::Unified {
            if let Some(dir) = self.v1_dir("freezer") {
                return Ok(Freezer::V1(dir));
            }
        }
        match self.unified_path() {
            Some(dir) if self.layout == Layout::Unified || dir.join("cgroup.freeze").exists() => {
                Ok(Freezer::V2(dir))
            }
            _ => Err(CgroupError::Unsupported {
                setting: "freezer".into(),
                reason: "no v1 freezer hierarchy and no cgroup.freeze".into(),
            }),
        }
    }

    /// Whether the kernel OOM-killed a process in this cgroup. Missing files mean `false`.
    pub fn oom_killed(&self) -> Result<bool> {
        let (path, key) = match self.layout {
            Layout::Unified => (self.unified_dir()?.join("memory.events"), "oom_kill"),
            _ => match self.v1_dir("memory") {
                Some(d) => (d.join("memory.oom_control"), "oom_kill"),
                None => return Ok(false),
            },
        };
        Ok(match fs::read_opt(&path)? {
            Some(text) => parse::flat_keyed(&text).get(key).copied().unwrap_or(0) > 0,
            None => false,
        })
    }

    /// Current resource usage. Counters whose files are missing are left at zero/`None`.
    pub fn stats(&self) -> Result<Stats> {
        match self.layout {
            Layout::Unified => v2::stats(self.unified_dir()?),
            _ => v1::stats(self),
        }
    }

    /// SIGKILL every process in the cgroup (thawing it first), wait until it is empty
    /// (bounded), then remove the directories [`Cgroup::create`] made, deepest first.
    /// Idempotent.
    pub fn destroy(&self) -> Result<()> {
        let kill_result = self.kill_all();
        let mut first_err = kill_result.err();
        let own: Vec<&Path> = self.all_dirs().map(|(_, d)| d).collect();
        for dir in self.created.iter().rev() {
            if !own.contains(&dir.as_path()) {
                // An ancestor (e.g. `berth/`) we made may since hold other containers'
                // cgroups: remove it only when it is empty, and never fail for it.
                let _ = std::fs::remove_dir(dir);
                continue;
            }
            if let Err(e) = remove_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        if self.prune_parent {
            for (_, dir) in self.all_dirs() {
                // Fails harmlessly while other containers' cgroups are still in it.
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn kill_all(&self) -> Result<()> {
        if matches!(self.is_frozen(), Ok(true)) {
            self.thaw()?;
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let mut remaining: Vec<(i32, &Path)> = Vec::new();
            for (_, dir) in self.all_dirs() {
                if !dir.exists() {
                    continue;
                }
                for pid in read_procs(dir)? {
                    if !remaining.iter().any(|(p, _)| *p == pid) {
                        remaining.push((pid, dir));
                    }
                }
            }
            if remaining.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::KillTimeout {
                    path: remaining[0].1.to_path_buf(),
                    pids: remaining.iter().map(|(p, _)| *p).collect(),
                    timeout: KILL_TIMEOUT,
                });
            }
            for (pid, dir) in &remaining {
                match kill(Pid::from_raw(*pid), Signal::SIGKILL) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Signal {
                            pid: *pid,
                            path: dir.to_path_buf(),
                            source,
                        })
                    }
                }
            }
            sleep(Duration::from_millis(10));
        }
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let Some(text) = fs::read_opt(&path)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|s| {
            s.parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                reason: format!("bad pid {s:?}"),
            })
        })
        .collect()
}

/// rmdir, tolerating ENOENT and retrying EBUSY briefly (the kernel releases a cgroup
/// shortly after its last task exits).
fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Check a `cgroupsPath` and normalize it (drop `.` and duplicate slashes).
fn validate_path(path: &Path) -> Result<PathBuf> {
    let shown = path.display().to_string();
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: shown.clone(),
        reason: reason.into(),
    };
    if !path.is_absolute() && shown.split(':').count() == 3 {
        return Err(invalid(
            "systemd \"slice:prefix:name\" cgroup paths are not supported (no systemd cgroup driver)",
        ));
    }
    let mut out = PathBuf::new();
    let mut normal = 0;
    for comp in path.components() {
        match comp {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("\"..\" components are not allowed")),
            Component::Normal(c) => {
                normal += 1;
                out.push(c);
            }
            Component::Prefix(_) => return Err(invalid("unexpected path prefix")),
        }
    }
    if normal == 0 {
        return Err(invalid("must name a cgroup below the hierarchy root"));
    }
    Ok(out)
}

/// The directory for `requested` in a hierarchy mounted at `mount_point` whose mount shows
/// cgroup `mount_root`; `own` is the caller's cgroup there (for relative paths).
fn resolve_dir(
    mount_point: &Path,
    mount_root: &str,
    own: Option<&str>,
    requested: &Path,
) -> PathBuf {
    let below_mount = |cgroup: &Path| -> PathBuf {
        let rel = cgroup
            .strip_prefix(mount_root)
            .ok()
            .filter(|_| mount_root != "/")
            .unwrap_or_else(|| cgroup.strip_prefix("/").unwrap_or(cgroup));
        mount_point.join(rel)
    };
    if requested.is_absolute() {
        below_mount(requested)
    } else {
        let own = Path::new(own.unwrap_or("/"));
        let base = if mount_root == "/" {
            mount_point.join(own.strip_prefix("/").unwrap_or(own))
        } else {
            match own.strip_prefix(mount_root) {
                Ok(rel) => mount_point.join(rel),
                Err(_) => mount_point.to_path_buf(),
            }
        };
        base.join(requested)
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Prefer mounts of the whole hierarchy under /sys/fs/cgroup.
fn mount_rank(m: &parse::CgroupMount) -> (bool, bool) {
    (m.root != "/", !m.mount_point.starts_with(CGROUP_ROOT))
}

/// runc's device policy for `rules` (a spec's `linux.resources.devices`): everything is
/// denied unless allowed, the spec's rules apply in order, and then the nodes every
/// container gets stay usable (null, zero, full, random, urandom, tty, ptmx, pts, tun) and
/// mknod of any node is allowed, as in runc's `specconv.AllowedDevices`.
pub fn runc_device_rules(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType as T};
    let rule = |allow: bool, typ: T, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow)
            .set_typ(Some(typ))
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_string()));
        r
    };
    let mut out = vec![rule(false, T::A, None, None, "rwm")];
    out.extend(rules.iter().cloned());
    out.push(rule(true, T::C, None, None, "m"));
    out.push(rule(true, T::B, None, None, "m"));
    for (major, minor) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9)] {
        out.push(rule(true, T::C, Some(major), Some(minor), "rwm"));
    }
    out.push(rule(true, T::C, Some(136), None, "rwm"));
    out.push(rule(true, T::C, Some(5), Some(2), "rwm"));
    out.push(rule(true, T::C, Some(10), Some(200), "rwm"));
    out
}
