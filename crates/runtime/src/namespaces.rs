//! Which namespaces a container creates and which it joins by path.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result};

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

/// The name under /proc/<pid>/ns/ of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// A namespace to join: its type, an open handle, and where it came from for errors.
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// The namespaces of a container split into those to create and those to join.
pub struct Plan {
    /// New namespaces other than user, created together after joining.
    pub create: CloneFlags,
    pub new_user: bool,
    /// Namespaces to join, user first (joining it first grants the rights over the rest).
    pub join: Vec<Join>,
}

impl Plan {
    /// Opens every path now, in the runtime's own namespaces, so a later setns cannot be
    /// confused by a mount namespace already joined.
    pub fn new(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        let mut plan = Plan {
            create: CloneFlags::empty(),
            new_user: false,
            join: Vec::new(),
        };
        for ns in namespaces {
            match ns.path() {
                Some(path) => {
                    let fd = File::open(path)
                        .map_err(|e| Error::io("opening namespace", path, e))?
                        .into();
                    plan.join.push(Join {
                        typ: ns.typ(),
                        fd,
                        path: path.clone(),
                    });
                }
                None if ns.typ() == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.create |= flag(ns.typ()),
            }
        }
        plan.join.sort_by_key(|j| j.typ != LinuxNamespaceType::User);
        Ok(plan)
    }

    /// The namespaces of a running process, for exec: every one that differs from ours.
    pub fn of_process(pid: i32) -> Result<Plan> {
        use LinuxNamespaceType::*;
        let mut join = Vec::new();
        for t in [User, Ipc, Uts, Network, Pid, Mount, Cgroup, Time] {
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
            let ours = format!("/proc/self/ns/{}", proc_name(t));
            let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
                continue;
            };
            use std::os::unix::fs::MetadataExt;
            if a.ino() == b.ino() && a.dev() == b.dev() {
                continue;
            }
            let fd = File::open(&theirs)
                .map_err(|e| Error::io("opening namespace", &theirs, e))?
                .into();
            join.push(Join {
                typ: t,
                fd,
                path: theirs,
            });
        }
        Ok(Plan {
            create: CloneFlags::empty(),
            new_user: false,
            join,
        })
    }

    /// setns into every namespace to join, in order.
    pub fn join_all(&self) -> Result<()> {
        for j in &self.join {
            nix::sched::setns(&j.fd, flag(j.typ)).map_err(|e| Error::Sys {
                context: format!(
                    "joining {} namespace {}",
                    proc_name(j.typ),
                    j.path.display()
                ),
                source: e,
            })?;
        }
        Ok(())
    }
}
