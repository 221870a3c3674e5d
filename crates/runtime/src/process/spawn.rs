//! Forking the chain P → I → C (see the module docs of [`crate::process`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{LinuxIdMapping, LinuxTimeOffset};

use super::channel::{Channel, Msg};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::Plan;

/// What the parent must arrange while the chain forks.
pub struct Spawn<'a> {
    pub plan: Plan,
    pub uid_mappings: &'a [LinuxIdMapping],
    pub gid_mappings: &'a [LinuxIdMapping],
    pub cgroup: Option<&'a Cgroup>,
    pub oom_score_adj: Option<i32>,
    pub time_offsets: Option<&'a HashMap<String, LinuxTimeOffset>>,
}

/// Forks the chain and runs `child` as the container process. Returns C's host pid and
/// the parent's end of the channel. The caller must be single-threaded (it forks).
pub fn spawn(
    s: &Spawn,
    child: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<(i32, Channel)> {
    let (parent, theirs) = Channel::pair()?;
    // C is reparented to us when I exits, so we can wait for it (run, exec) or reap it
    // when create fails.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SAFETY: the runtime is single-threaded when it forks, so the child may run
    // arbitrary code; it leaves only through _exit.
    match unsafe { fork() }.ctx(|| "fork".into())? {
        ForkResult::Child => {
            drop(parent);
            let code = match intermediate(s, theirs, child) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit skips the parent's atexit handlers and buffered streams.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child: i } => {
            drop(theirs);
            match drive(s, &parent, i) {
                Ok(pid) => {
                    let _ = waitpid(i, None);
                    Ok((pid, parent))
                }
                Err(e) => {
                    let _ = kill(i, Signal::SIGKILL);
                    let _ = waitpid(i, None);
                    Err(e)
                }
            }
        }
    }
}

/// P's side until C's pid is known.
fn drive(s: &Spawn, chan: &Channel, i: Pid) -> Result<i32> {
    if let Some(adj) = s.oom_score_adj {
        let p = format!("/proc/{i}/oom_score_adj");
        std::fs::write(&p, adj.to_string()).map_err(|e| {
            Error::Other(format!(
                "setting oomScoreAdj {adj}: {e} (a negative value needs CAP_SYS_RESOURCE)"
            ))
        })?;
    }
    crate::trace::mark("chain in cgroup");
    chan.send(&Msg::Go)?;
    loop {
        match chan.recv()? {
            Some(Msg::UserNs) => {
                write_map(i, "gid_map", s.gid_mappings)?;
                write_map(i, "uid_map", s.uid_mappings)?;
                chan.send(&Msg::MapsDone)?;
            }
            Some(Msg::Pid(pid)) => return Ok(pid),
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Other(format!("sync: unexpected {m:?}"))),
            None => return Err(Error::Init("the intermediate process exited early".into())),
        }
    }
}

fn write_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut text = String::new();
    for m in maps {
        let _ = writeln!(text, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, text).map_err(|e| Error::io("writing", p, e))
}

/// I: joins and creates namespaces, forks C, reports its pid.
fn intermediate(
    s: &Spawn,
    chan: Channel,
    child: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<()> {
    let r = (|| -> Result<()> {
        // The parent may block signals to forward them; the container starts clean.
        let _ = SigSet::empty().thread_set_mask();
        chan.expect(Msg::Go)?;
        // Join the cgroup before any namespace: its paths are the host's, and a new
        // cgroup namespace is rooted wherever we stand when it is made.
        if let Some(cg) = s.cgroup {
            cg.join_current()?;
        }
        s.plan.join_all()?;
        if s.plan.new_user {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .ctx(|| "creating user namespace".into())?;
            chan.send(&Msg::UserNs)?;
            chan.expect(Msg::MapsDone)?;
            // Become the namespace's root, so the next unshare has its rights.
            let root = nix::unistd::Uid::from_raw(0);
            let rootg = nix::unistd::Gid::from_raw(0);
            let _ = nix::unistd::setresgid(rootg, rootg, rootg);
            let _ = nix::unistd::setresuid(root, root, root);
        }
        if !s.plan.create.is_empty() {
            nix::sched::unshare(s.plan.create)
                .ctx(|| format!("creating namespaces {:?}", s.plan.create))?;
        }
        if let Some(offsets) = s.time_offsets.filter(|_| {
            s.plan
                .create
                .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        }) {
            let mut text = String::new();
            for (clock, o) in offsets {
                let _ = writeln!(
                    text,
                    "{clock} {} {}",
                    o.secs().unwrap_or(0),
                    o.nanosecs().unwrap_or(0)
                );
            }
            std::fs::write("/proc/self/timens_offsets", text)
                .map_err(|e| Error::io("writing", "/proc/self/timens_offsets", e))?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = chan.send(&Msg::Error(e.to_string()));
        return Err(e);
    }
    crate::trace::mark("namespaces made");
    // I and C share the channel, so C waits on this pipe until I has sent `Pid`:
    // otherwise C's first message could reach P before it knows C's pid.
    let (gate_r, gate_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "creating pipe".into())?;
    // SAFETY: still single-threaded; the child leaves through _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(gate_w);
            // EOF: I closed its end after sending the pid (or died).
            let _ = nix::unistd::read(&gate_r, &mut [0u8; 1]);
            drop(gate_r);
            let msg = match child(&chan) {
                Err(e) => e.to_string(),
                Ok(never) => match never {},
            };
            // After `start` nobody reads the channel any more (e.g. execve failed once
            // the user changed): say it on the container's stderr, as runc does.
            if chan.send(&Msg::Error(msg.clone())).is_err() {
                eprintln!("berth-runtime: container init: {msg}");
            }
            // SAFETY: see above.
            unsafe { libc::_exit(1) }
        }
        Ok(ForkResult::Parent { child: c }) => {
            let sent = chan.send(&Msg::Pid(c.as_raw()));
            drop(gate_w);
            sent
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(format!("fork: {e}")));
            Err(Error::Sys {
                context: "fork".into(),
                source: e,
            })
        }
    }
}
