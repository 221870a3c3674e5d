//! `events`: a container's resource usage (for `docker stats` later) and OOM kills, as
//! runc prints them: one JSON object per line, `{"type":"stats","id":..,"data":..}` or
//! `{"type":"oom","id":..}`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::Container;
use crate::cgroups::Stats;
use crate::error::Result;
use crate::state::Status;

/// One line of `events` output.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// The container's current stats.
pub fn stats(root: &Path, id: &str) -> Result<Event> {
    let c = Container::load(root, id)?;
    Ok(Event {
        kind: "stats",
        id: id.to_string(),
        data: Some(c.record.cgroup.stats()?),
    })
}

/// Calls `emit` with stats every `interval` and with an `oom` event when the kernel OOM
/// kills a process of the container, until the container stops.
pub fn watch(
    root: &Path,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event),
) -> Result<()> {
    let c = Container::load(root, id)?;
    let mut oom_seen = c.record.cgroup.oom_killed().unwrap_or(false);
    let tick = Duration::from_millis(100).min(interval);
    let mut waited = interval;
    while c.status() != Status::Stopped {
        if c.record.cgroup.oom_killed().unwrap_or(false) && !oom_seen {
            oom_seen = true;
            emit(&Event {
                kind: "oom",
                id: id.to_string(),
                data: None,
            });
        }
        if waited >= interval {
            waited = Duration::ZERO;
            if let Ok(s) = c.record.cgroup.stats() {
                emit(&Event {
                    kind: "stats",
                    id: id.to_string(),
                    data: Some(s),
                });
            }
        }
        std::thread::sleep(tick);
        waited += tick;
    }
    Ok(())
}
