//! The five capability sets of the container process.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// Converts the spec's names to the kernel's, refusing what this kernel does not know.
fn convert(set: &Option<Capabilities>, which: &str) -> Result<CapsHashSet> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name)
            .map_err(|_| Error::InvalidSpec(format!("unknown capability {name} in {which}")))?;
        out.insert(cap);
    }
    Ok(out)
}

/// The container's capability sets, checked against what the runtime itself holds.
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapSets {
    pub fn new(c: &LinuxCapabilities) -> Result<CapSets> {
        let sets = CapSets {
            bounding: convert(c.bounding(), "bounding")?,
            effective: convert(c.effective(), "effective")?,
            permitted: convert(c.permitted(), "permitted")?,
            inheritable: convert(c.inheritable(), "inheritable")?,
            ambient: convert(c.ambient(), "ambient")?,
        };
        // A capability the runtime's bounding set lacks cannot be granted; say which.
        let ours = caps::read(None, CapSet::Bounding).unwrap_or_default();
        for set in [&sets.bounding, &sets.permitted, &sets.effective] {
            let mut missing: Vec<_> = set.difference(&ours).map(|c| c.to_string()).collect();
            if !missing.is_empty() {
                missing.sort();
                return Err(Error::InvalidSpec(format!(
                    "capabilities not in the runtime's bounding set: {}",
                    missing.join(", ")
                )));
            }
        }
        Ok(sets)
    }

    /// Drops from the bounding set what the container may never gain. Runs while the
    /// process still has CAP_SETPCAP, before changing user.
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in caps::read(None, CapSet::Bounding).unwrap_or_default() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::Other(format!("dropping {cap} from bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable, then raises ambient. Runs after the
    /// user change (with PR_SET_KEEPCAPS so that permitted survived it).
    pub fn apply(&self) -> Result<()> {
        let err = |what: &str, e: caps::errors::CapsError| {
            Error::Other(format!("setting {what} capabilities: {e}"))
        };
        // Effective must stay a subset of permitted at every step.
        caps::set(
            None,
            CapSet::Effective,
            &self
                .effective
                .intersection(&self.permitted)
                .copied()
                .collect(),
        )
        .map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(|e| err("permitted", e))?;
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .map_err(|e| err("inheritable", e))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(|e| err("effective", e))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
        for cap in &self.ambient {
            // The kernel only allows ambient caps that are permitted and inheritable;
            // runc skips the others the same way, silently.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|e| err("ambient", e))?;
            }
        }
        Ok(())
    }
}
