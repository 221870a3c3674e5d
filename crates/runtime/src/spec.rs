//! Loading and validating a bundle's `config.json`. Everything that can be checked before
//! the runtime creates anything (state dir, cgroup, process) is checked here, so that a
//! bad bundle leaves nothing behind.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::rlimits;

/// A bundle whose config has been parsed and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Canonical path of the bundle directory.
    pub path: PathBuf,
    /// Canonical path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Reads `<bundle>/config.json` and validates it for `create`/`run`.
    pub fn load(bundle: &Path) -> Result<Bundle> {
        let path = fs::canonicalize(bundle)
            .map_err(|e| Error::InvalidSpec(format!("bundle {}: {e}", bundle.display())))?;
        let config = path.join("config.json");
        let text = fs::read(&config)
            .map_err(|e| Error::InvalidSpec(format!("cannot read {}: {e}", config.display())))?;
        let spec: Spec = serde_json::from_slice(&text)
            .map_err(|e| Error::InvalidSpec(format!("{}: {e}", config.display())))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec("config.json has no \"root\"".into()))?;
        let rootfs = path.join(root.path());
        let rootfs = fs::canonicalize(&rootfs).map_err(|e| {
            Error::InvalidSpec(format!("root filesystem {}: {e}", rootfs.display()))
        })?;
        if !rootfs.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "root filesystem {} is not a directory",
                rootfs.display()
            )));
        }
        validate(&spec)?;
        Ok(Bundle { path, rootfs, spec })
    }
}

/// Checks what serde cannot: required fields, namespace consistency, limits.
pub fn validate(spec: &Spec) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidSpec(m));
    let Some(process) = spec.process() else {
        return bad("config.json has no \"process\"".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args must name the program to run".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let Some(linux) = spec.linux() else {
        return bad("config.json has no \"linux\" section".into());
    };
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for ns in &namespaces {
        if !seen.insert(ns.typ()) {
            return bad(format!("namespace {} is listed twice", ns.typ()));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return bad(format!(
                    "{} namespace path {} must be absolute",
                    ns.typ(),
                    p.display()
                ));
            }
            if let Err(e) = fs::metadata(p) {
                return bad(format!("{} namespace path {}: {e}", ns.typ(), p.display()));
            }
        }
    }
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    if !has(LinuxNamespaceType::Mount) {
        return bad("a mount namespace is required".into());
    }
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user && !maps {
        return bad("a new user namespace needs uidMappings and gidMappings".into());
    }
    if maps && !new_user {
        return bad("uidMappings/gidMappings need a new user namespace".into());
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return bad("cannot set hostname without a private UTS namespace".into());
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return bad("cannot set domainname without a private UTS namespace".into());
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &has)?;
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return bad(format!(
                "mount destination {} must be absolute",
                m.destination().display()
            ));
        }
    }
    if let Some(limits) = process.rlimits() {
        rlimits::check(limits)?;
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only when the container has that namespace.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (ok, ns) = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        (has(LinuxNamespaceType::Ipc), "ipc")
    } else if key.starts_with("net.") {
        (has(LinuxNamespaceType::Network), "network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        (has(LinuxNamespaceType::Uts), "uts")
    } else {
        return Err(Error::InvalidSpec(format!(
            "sysctl {key:?} is not namespaced and cannot be set in a container"
        )));
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!(
            "sysctl {key:?} needs a private {ns} namespace"
        )))
    }
}

/// A container id: what runc accepts, so ids are safe as path components.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid container id {id:?}: use letters, digits and _ + - ."
        )))
    }
}
