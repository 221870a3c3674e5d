//! POSIX rlimits of the container process. Nothing is clamped: a limit the runtime cannot
//! grant is an error that names it.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn name(t: PosixRlimitType) -> String {
    t.to_string()
}

fn get(t: PosixRlimitType) -> libc::rlimit {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; the resource id is valid.
    unsafe { libc::getrlimit(resource(t), &mut cur) };
    cur
}

/// Refuses limits that the runtime could not set: soft above hard, or a hard limit above
/// the host's when the runtime lacks CAP_SYS_RESOURCE to raise it.
pub fn check(limits: &[PosixRlimit]) -> Result<()> {
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    for l in limits {
        let n = name(l.typ());
        if l.soft() > l.hard() {
            return Err(Error::InvalidSpec(format!(
                "{n}: soft limit {} is above hard limit {}",
                l.soft(),
                l.hard()
            )));
        }
        let host = get(l.typ()).rlim_max;
        if !can_raise && l.hard() > host {
            return Err(Error::InvalidSpec(format!(
                "{n}: hard limit {} is above the host's hard limit {host}, and the runtime lacks CAP_SYS_RESOURCE to raise it",
                l.hard()
            )));
        }
    }
    Ok(())
}

/// Applies the limits to the calling process.
pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let lim = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads the struct we pass; the resource id is valid.
        if unsafe { libc::setrlimit(resource(l.typ()), &lim) } != 0 {
            return Err(Error::Other(format!(
                "setting {} to soft {} hard {}: {}",
                name(l.typ()),
                l.soft(),
                l.hard(),
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}
