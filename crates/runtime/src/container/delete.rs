//! `delete`: removes a stopped (or, with force, any) container: its process, cgroup and
//! state, then runs the poststop hooks.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{wait_gone, Container};
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::Status;

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    match c.status() {
        Status::Stopped | Status::Created | Status::Creating => {}
        Status::Running | Status::Paused if force => {}
        _ => {
            return Err(Error::Other(format!(
                "cannot delete container \"{id}\" that is not stopped: {}",
                c.status()
            )))
        }
    }
    if c.record.alive() {
        let _ = nix::sys::signal::kill(Pid::from_raw(c.record.pid), Signal::SIGKILL);
        let _ = c.record.cgroup.thaw();
        // Our child only if we are `run`; otherwise someone else reaps it.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(c.record.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if !wait_gone(&c.record, Duration::from_secs(10)) {
            return Err(Error::Other(format!(
                "container \"{id}\" did not die after SIGKILL"
            )));
        }
    }
    // Every process of the container goes with it, also those that left PID 1's tree.
    c.record.cgroup.destroy()?;
    let hooks = c.dir.load_hooks().ok().flatten();
    if let Some(poststop) = hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        // Hooks get the pid the container had, as runc passes it.
        let state = crate::state::OciState {
            status: Status::Stopped,
            pid: c.record.pid,
            ..c.state()
        };
        if let Err(e) = hooks::run("poststop", Some(poststop), &state) {
            eprintln!("berth-runtime: warning: {e}");
        }
    }
    c.dir.remove()
}
