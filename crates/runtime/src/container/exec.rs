//! `exec`: another process in a running container, in all of its namespaces and its
//! cgroup, with its security settings unless the exec's process overrides them.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::{write_pid_file, Container};
use crate::capabilities::CapSets;
use crate::error::{Error, Result};
use crate::namespaces::Plan;
use crate::process::channel::Msg;
use crate::process::finalize::{self, Final};
use crate::process::{spawn, Spawn};
use crate::seccomp;
use crate::state::Status;
use crate::tty;

pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub console: Option<UnixStream>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// Starts the process and returns its host pid once it has exec'd.
pub fn exec(opts: ExecOpts) -> Result<i32> {
    let c = Container::load(&opts.root, &opts.id)?;
    match c.status() {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::Other(format!(
                "cannot exec in paused container \"{}\"",
                opts.id
            )))
        }
        _ => {
            return Err(Error::Other(format!(
                "cannot exec in a stopped container \"{}\"",
                opts.id
            )))
        }
    }
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidSpec("exec needs a command".into()));
    }
    if p.terminal().unwrap_or(false) && opts.console.is_none() {
        return Err(Error::Other(
            "exec with a terminal needs a console socket".into(),
        ));
    }
    if let Some(limits) = p.rlimits() {
        crate::rlimits::check(limits)?;
    }
    let spec = c.dir.load_spec()?;
    let caps = p.capabilities().as_ref().map(CapSets::new).transpose()?;
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let filter = profile.as_ref().map(seccomp::compile).transpose()?;
    let apparmor = p.apparmor_profile().clone().filter(|a| {
        !a.is_empty() && std::path::Path::new("/sys/kernel/security/apparmor").exists()
    });
    let plan = Plan::of_process(c.record.pid)?;
    let s = Spawn {
        plan,
        uid_mappings: &[],
        gid_mappings: &[],
        cgroup: Some(&c.record.cgroup),
        oom_score_adj: None,
        time_offsets: None,
    };
    let console = opts.console;
    let (pid, chan) = spawn(&s, |chan| {
        nix::unistd::setsid().map_err(|e| Error::Sys {
            context: "setsid".into(),
            source: e,
        })?;
        if p.terminal().unwrap_or(false) {
            let console = console.as_ref().expect("checked");
            let slave = tty::hand_over_pty(console, p.console_size())?;
            tty::make_controlling(&slave)?;
        }
        let env = finalize::environment(p);
        let argv0 = p.args().as_ref().and_then(|a| a.first()).expect("checked");
        let program = finalize::find_program(argv0, &env)?;
        chan.send(&Msg::Ready)?;
        finalize::exec(Final {
            process: p,
            caps,
            seccomp: filter.zip(profile.as_ref()),
            program,
            preserve_fds: opts.preserve_fds,
            apparmor,
        })
    })?;
    // After Ready, EOF means the execve closed the child's end: the program runs.
    chan.expect(Msg::Ready).inspect_err(|_| reap(pid))?;
    match chan.recv() {
        Ok(None) => {}
        Ok(Some(Msg::Error(e))) => {
            reap(pid);
            return Err(Error::Init(e));
        }
        Ok(Some(m)) => return Err(Error::Other(format!("sync: unexpected {m:?}"))),
        Err(e) => return Err(e),
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    Ok(pid)
}

fn reap(pid: i32) {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}
