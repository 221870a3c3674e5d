//! `pause` and `resume`: the cgroup freezer.

use std::path::Path;

use super::Container;
use crate::error::Result;
use crate::state::Status;

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status() != Status::Running {
        return Err(c.bad_state("pause", "running"));
    }
    Ok(c.record.cgroup.freeze()?)
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status() != Status::Paused {
        return Err(c.bad_state("resume", "paused"));
    }
    Ok(c.record.cgroup.thaw()?)
}
