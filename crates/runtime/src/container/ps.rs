//! `ps`: the processes of a container, from its cgroup.

use std::path::Path;

use super::Container;
use crate::error::Result;

pub fn processes(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    let mut pids = c.record.cgroup.processes()?;
    pids.sort_unstable();
    Ok(pids)
}
