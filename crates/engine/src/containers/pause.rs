//! `pause` and `unpause`: the cgroup freezer, through the container's shim.

use std::time::Duration;

use super::CONTAINERS;
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// Freezes every process of a running container.
    pub fn pause_container(&self, name: &str) -> Result<()> {
        let c = self.lookup_container(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        let mut cl = self
            .shim(&c.id, Some(Duration::from_secs(10)))
            .ok_or_else(|| Error::Internal(format!("container {}: its shim is gone", c.id)))?;
        cl.pause()
            .map_err(|e| Error::Internal(format!("pausing container {}: {e}", c.id)))?;
        self.emit_container(&c, "pause", &[]);
        self.set_paused(&c.id, true)
    }

    /// Thaws a paused container.
    pub fn unpause_container(&self, name: &str) -> Result<()> {
        let c = self.lookup_container(name)?;
        if !c.state.paused || !c.running() {
            return Err(Error::Conflict(format!("Container {} is not paused", c.id)));
        }
        let mut cl = self
            .shim(&c.id, Some(Duration::from_secs(10)))
            .ok_or_else(|| Error::Internal(format!("container {}: its shim is gone", c.id)))?;
        cl.resume()
            .map_err(|e| Error::Internal(format!("unpausing container {}: {e}", c.id)))?;
        self.emit_container(&c, "unpause", &[]);
        self.set_paused(&c.id, false)
    }

    pub(crate) fn set_paused(&self, id: &str, paused: bool) -> Result<()> {
        self.db.transaction(|tx| {
            if let Some(mut r) = tx.get(CONTAINERS, id)? {
                r.state.paused = paused && r.running();
                tx.put(CONTAINERS, id, &r)?;
            }
            Ok(())
        })
    }
}
