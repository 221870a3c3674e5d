//! The container process (C) from fork to execve: mounts, hooks, pivot_root, hostname,
//! sysctls, terminal, masked paths; then it reports `Ready`, waits on exec.fifo for
//! `start`, and runs [`finalize::exec`].

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::channel::{Channel, Msg};
use super::finalize::{self, Final};
use crate::capabilities::CapSets;
use crate::error::{Error, Result, SysContext};
use crate::hooks;
use crate::rootfs;
use crate::seccomp::Program;
use crate::spec::Bundle;
use crate::state::{OciState, Status, FIFO};
use crate::tty;

/// What the parent prepared for the container process.
pub struct Init<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    /// The container's state directory (O_PATH), where exec.fifo lives.
    pub state_dir: OwnedFd,
    pub console: Option<UnixStream>,
    pub userns: bool,
    pub cgroupns: bool,
    /// The container has a network namespace of its own (not joined): bring `lo` up.
    pub new_netns: bool,
    pub caps: Option<CapSets>,
    pub seccomp: Option<Program>,
    pub preserve_fds: i32,
    pub apparmor: Option<String>,
}

fn hook_state(init: &Init, pid: i32, status: Status) -> OciState {
    OciState {
        oci_version: "1.2.0".into(),
        id: init.id.to_string(),
        pid,
        status,
        bundle: init.bundle.path.clone(),
        rootfs: init.bundle.rootfs.clone(),
        created: String::new(),
        owner: String::new(),
        annotations: init.bundle.spec.annotations().clone().unwrap_or_default(),
        oom_killed: false,
    }
}

/// Runs in C. Returns only on failure.
pub fn run(mut init: Init, chan: &Channel) -> Result<Infallible> {
    let spec = &init.bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    // Our pid as the host sees it, for the hooks; /proc is still the host's here.
    let host_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // Device nodes and mount points get exactly the modes the spec asks for.
    nix::sys::stat::umask(Mode::empty());
    if init.new_netns {
        crate::loopback::up()?;
    }

    rootfs::prepare(&rootfs::Ctx {
        spec,
        rootfs: &init.bundle.rootfs,
        bundle: &init.bundle.path,
        userns: init.userns,
        cgroupns: init.cgroupns,
    })?;
    crate::trace::mark("mounts done");
    chan.send(&Msg::CreateRuntime)?;
    chan.expect(Msg::HooksDone)?;
    let hooks = spec.hooks().as_ref();
    hooks::run(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &hook_state(&init, host_pid, Status::Created),
    )?;
    rootfs::pivot_root(&init.bundle.rootfs)?;
    crate::trace::mark("pivoted");

    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("setting hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads len bytes from a buffer we own.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::Other(format!(
                "setting domainname {d:?}: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v)
                .map_err(|e| Error::Other(format!("setting sysctl {k}={v}: {e}")))?;
        }
    }
    if process.terminal().unwrap_or(false) {
        let console = init
            .console
            .as_ref()
            .ok_or_else(|| Error::Other("a terminal needs a console socket".into()))?;
        let slave = tty::hand_over_pty(console, process.console_size())?;
        rootfs::bind_console(&slave)?;
        tty::make_controlling(&slave)?;
    }
    // The console socket is not the container's to keep.
    init.console = None;
    rootfs::finish(spec)?;
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        use oci_spec::runtime::LinuxPersonalityDomain;
        let persona = match p.domain() {
            // Values from <linux/personality.h>.
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
            LinuxPersonalityDomain::PerLinux => 0x0000,
        };
        // SAFETY: personality takes a plain integer.
        unsafe { libc::personality(persona as libc::c_ulong) };
    }

    let env = finalize::environment(process);
    let argv0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .expect("validated");
    let program = finalize::find_program(argv0, &env)?;

    crate::trace::mark("ready");
    chan.send(&Msg::Ready)?;
    // Block until `start` opens the fifo for reading.
    let fifo = openat(
        init.state_dir.as_fd(),
        FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening exec fifo".into())?;
    // The fifo stays open (close-on-exec, above the preserved fds) until execve: `start`
    // reads to EOF, so it returns, and runs poststart, only once the program runs.
    let first_free = 3 + init.preserve_fds.max(0);
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own returns a new fd or -1.
    let high = unsafe { libc::fcntl(fifo.as_raw_fd(), libc::F_DUPFD_CLOEXEC, first_free) };
    if high < 0 {
        return Err(Error::io(
            "duplicating",
            FIFO,
            std::io::Error::last_os_error(),
        ));
    }
    drop(fifo);
    // SAFETY: fcntl just returned this new fd; we own it.
    let mut fifo = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(high) });
    fifo.write_all(b"0")
        .map_err(|e| Error::io("writing", FIFO, e))?;
    crate::trace::mark("started");
    let start_state = hook_state(&init, host_pid, Status::Running);
    drop(init.state_dir);

    hooks::run(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &start_state,
    )?;
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    finalize::exec(Final {
        process,
        caps: init.caps,
        seccomp: init.seccomp.zip(profile),
        program,
        preserve_fds: init.preserve_fds,
        apparmor: init.apparmor,
    })
}
