//! `create`: the container's namespaces, cgroup and root filesystem are set up and its
//! process waits on exec.fifo until `start`.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::{write_pid_file, Container};
use crate::capabilities::CapSets;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::hooks;
use crate::namespaces::Plan;
use crate::process::channel::Msg;
use crate::process::init::{self, Init};
use crate::process::{spawn, Spawn};
use crate::seccomp;
use crate::spec::{validate_id, Bundle};
use crate::state::{now_rfc3339, proc_stat, Record, StateDir, Status};

/// What `create` needs besides the bundle.
pub struct CreateOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    /// Where the pty master goes when the process has a terminal.
    pub console: Option<UnixStream>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// Undoes a half-made container when create fails at any step.
struct Cleanup {
    dir: Option<StateDir>,
    cgroup: Option<Cgroup>,
    pid: i32,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(d) = &self.dir {
            let _ = d.remove();
        }
    }
}

fn warn(msg: &str) {
    eprintln!("berth-runtime: warning: {msg}");
}

/// Creates the container; on return its process waits for `start`.
pub fn create(opts: CreateOpts) -> Result<Container> {
    validate_id(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    create_from(opts, bundle)
}

/// [`create`] for a bundle the caller already loaded (`run` reads it first to know
/// whether the process has a terminal), so start does not parse config.json twice.
pub fn create_from(opts: CreateOpts, bundle: Bundle) -> Result<Container> {
    validate_id(&opts.id)?;
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    let linux = spec.linux().as_ref().expect("validated");
    if process.terminal().unwrap_or(false) && opts.console.is_none() {
        return Err(Error::Other(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    // Everything that can be refused is refused before anything exists.
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::new)
        .transpose()?;
    let program = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
    let apparmor = process.apparmor_profile().clone().filter(|p| !p.is_empty());
    let apparmor = match apparmor {
        Some(p) if !std::path::Path::new("/sys/kernel/security/apparmor").exists() => {
            warn(&format!(
                "apparmor profile {p:?} ignored: AppArmor is not enabled on this host"
            ));
            None
        }
        other => other,
    };
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
            warn(&format!(
                "selinux label {label:?} ignored: SELinux is not enabled on this host"
            ));
        }
    }
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let plan = Plan::new(&namespaces)?;

    crate::trace::mark("spec loaded");
    let dir = StateDir::create(&opts.root, &opts.id)?;
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: 0,
    };
    let mut cgroup = Cgroup::new(linux.cgroups_path().as_deref(), &opts.id)?;
    cgroup.create()?;
    guard.cgroup = Some(cgroup.clone());
    // Devices follow runc's policy (deny by default, the spec's rules, then the default
    // nodes), so runc's own config.json (which denies all) still has a usable /dev/null
    // and an empty list does not mean every host device. Rootless runc sets none.
    let mut res = linux.resources().clone().unwrap_or_default();
    if nix::unistd::geteuid().is_root() {
        let rules = crate::cgroups::runc_device_rules(res.devices().as_deref().unwrap_or_default());
        res.set_devices(Some(rules));
    }
    cgroup.apply(&res)?;
    crate::trace::mark("cgroup ready");
    nix::unistd::mkfifo(&dir.fifo(), Mode::from_bits_truncate(0o622))
        .ctx(|| "creating exec fifo".into())?;
    // Not subject to the umask: a container root mapped to an unprivileged host uid (user
    // namespace) must still be able to open the fifo for writing.
    std::fs::set_permissions(
        dir.fifo(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o622),
    )
    .map_err(|e| Error::io("chmod", dir.fifo(), e))?;
    dir.save_spec(spec)?;
    let mut record = Record {
        id: opts.id.clone(),
        bundle: bundle.path.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: 0,
        pid_start: 0,
        created: now_rfc3339(),
        cgroup: cgroup.clone(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    dir.save(&record)?;
    let state_fd: OwnedFd = open(
        &dir.dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {}", dir.dir.display()))?;

    let has = |t| namespaces.iter().any(|n| n.typ() == t);
    let init = Init {
        id: &opts.id,
        bundle: &bundle,
        state_dir: state_fd,
        console: opts.console,
        userns: has(LinuxNamespaceType::User),
        new_netns: namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none()),
        cgroupns: namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none()),
        caps,
        seccomp: program,
        preserve_fds: opts.preserve_fds,
        apparmor,
    };
    let s = Spawn {
        plan,
        uid_mappings: linux.uid_mappings().as_deref().unwrap_or_default(),
        gid_mappings: linux.gid_mappings().as_deref().unwrap_or_default(),
        cgroup: Some(&cgroup),
        oom_score_adj: process.oom_score_adj(),
        time_offsets: linux.time_offsets().as_ref(),
    };
    let (pid, chan) = spawn(&s, move |chan| init::run(init, chan))?;
    guard.pid = pid;
    record.pid = pid;
    record.pid_start = proc_stat(pid).map(|(s, _)| s).unwrap_or(0);
    loop {
        match chan.recv()? {
            Some(Msg::CreateRuntime) => {
                let state = record.oci_state(&dir);
                let state = crate::state::OciState {
                    status: Status::Creating,
                    ..state
                };
                let h = spec.hooks().as_ref();
                #[allow(deprecated)]
                hooks::run("prestart", h.and_then(|h| h.prestart().as_ref()), &state)?;
                hooks::run(
                    "createRuntime",
                    h.and_then(|h| h.create_runtime().as_ref()),
                    &state,
                )?;
                chan.send(&Msg::HooksDone)?;
            }
            Some(Msg::Warning(w)) => warn(&w),
            Some(Msg::Ready) => break,
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Other(format!("sync: unexpected {m:?}"))),
            None => {
                return Err(Error::Init(
                    "the container process exited during create".into(),
                ))
            }
        }
    }
    crate::trace::mark("created");
    dir.save(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    guard.dir = None;
    guard.cgroup = None;
    guard.pid = 0;
    Ok(Container { dir, record })
}
