//! The last steps before the container's program runs, shared by init and exec: rlimits,
//! user and groups, capabilities, no_new_privs, seccomp, cwd, environment, file
//! descriptors, execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use crate::capabilities::CapSets;
use crate::error::{Error, Result, SysContext};
use crate::rlimits;
use crate::seccomp::{self, Program};

/// Everything the final stage needs, prepared (and validated) by the parent.
pub struct Final<'a> {
    pub process: &'a Process,
    pub caps: Option<CapSets>,
    pub seccomp: Option<(Program, &'a oci_spec::runtime::LinuxSeccomp)>,
    /// The program, already resolved against the container's PATH.
    pub program: PathBuf,
    /// How many fds after stdio the program inherits (runc's --preserve-fds).
    pub preserve_fds: i32,
    /// AppArmor profile to switch to at exec, when the host has AppArmor.
    pub apparmor: Option<String>,
}

/// The environment the program gets: the spec's, plus HOME when it has none.
pub fn environment(process: &Process) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

/// The user's home directory from the container's /etc/passwd.
fn home_of(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Finds `name` as execvp would, with the container's PATH. Called after pivot_root, so
/// it looks in the container.
pub fn find_program(name: &str, env: &[String]) -> Result<PathBuf> {
    let not_found = || {
        Error::Other(format!(
            "exec: {name:?}: executable file not found in $PATH"
        ))
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(Error::Other(format!("exec: {name:?}: is a directory"))),
            Ok(_) if executable(&p) => Ok(p),
            Ok(_) => Err(Error::Other(format!("exec: {name:?}: permission denied"))),
            Err(e) => Err(Error::Other(format!("exec: {name:?}: {e}"))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
        .find(|p| executable(p))
        .ok_or_else(not_found)
}

fn prctl(op: libc::c_int, arg: libc::c_ulong, what: &str) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(op, arg, 0, 0, 0) } != 0 {
        return Err(Error::Other(format!(
            "{what}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Applies the process's security settings and replaces the calling process with the
/// program. Only returns on failure.
pub fn exec(f: Final) -> Result<Infallible> {
    let p = f.process;
    if let Some(limits) = p.rlimits() {
        rlimits::apply(limits)?;
    }
    let nnp = p.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we still
    // have it, before the user change (runc's order). With it, install last, so the
    // filter does not constrain the runtime's own setup.
    if !nnp {
        if let Some((prog, profile)) = &f.seccomp {
            install_seccomp(prog, profile)?;
        }
    }
    prctl(
        libc::PR_SET_KEEPCAPS,
        1,
        "keeping capabilities across setuid",
    )?;
    if let Some(c) = &f.caps {
        c.drop_bounding()?;
    }
    let user = p.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // A user namespace with setgroups denied refuses this; that is fine when there is
    // nothing to set.
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !groups.is_empty() {
            return Err(e).ctx(|| format!("setting additional groups {groups:?}"));
        }
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setting gid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setting uid {uid}"))?;
    prctl(libc::PR_SET_KEEPCAPS, 0, "resetting keep-capabilities")?;
    if let Some(c) = &f.caps {
        c.apply()?;
    }
    let umask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));

    nix::unistd::chdir(p.cwd()).ctx(|| format!("chdir to cwd {:?}", p.cwd()))?;
    // A cwd reached through a leaked fd would lie outside the root: getcwd then fails or
    // returns an unreachable path (CVE-2024-21626).
    match nix::unistd::getcwd() {
        Ok(cwd) if cwd.is_absolute() => {}
        _ => {
            return Err(Error::Other(
                "current working directory is outside of container mount namespace root".into(),
            ))
        }
    }
    let env = environment(p);
    if nnp {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "setting no_new_privs")?;
    }
    if let Some(profile) = &f.apparmor {
        let attr = format!("exec {profile}");
        std::fs::write("/proc/self/attr/apparmor/exec", &attr)
            .or_else(|_| std::fs::write("/proc/self/attr/exec", &attr))
            .map_err(|e| Error::Other(format!("setting apparmor profile {profile}: {e}")))?;
    }
    close_fds(f.preserve_fds)?;
    // Rust ignores SIGPIPE in its own processes, and an ignored signal stays ignored
    // across execve: give the program the default, as any shell would.
    // SAFETY: resetting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<CString> = p
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::InvalidSpec("process.args contains a NUL byte".into()))?;
    let envs: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    let prog = CString::new(f.program.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidSpec("program path contains a NUL byte".into()))?;
    if nnp {
        if let Some((prog, profile)) = &f.seccomp {
            install_seccomp(prog, profile)?;
        }
    }
    crate::trace::mark("execve");
    let e = nix::unistd::execve(&prog, &args, &envs).unwrap_err();
    Err(Error::Other(format!("exec {:?}: {e}", f.program)))
}

/// Marks every fd above stdio (and the preserved ones) close-on-exec, so nothing of the
/// runtime reaches the program.
fn close_fds(preserve: i32) -> Result<()> {
    let first = 3 + preserve.max(0) as u32;
    // SAFETY: close_range only changes flags of our own fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Old kernels: walk /proc/self/fd instead.
        for entry in std::fs::read_dir("/proc/self/fd")
            .map_err(|e| Error::io("reading", "/proc/self/fd", e))?
        {
            let Ok(fd) = entry.map(|e| e.file_name()) else {
                continue;
            };
            if let Ok(fd) = fd.to_string_lossy().parse::<i32>() {
                if fd >= first as i32 {
                    // SAFETY: setting FD_CLOEXEC on a descriptor number is harmless.
                    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
            }
        }
    }
    for fd in 3..first as i32 {
        // SAFETY: clearing FD_CLOEXEC on the preserved descriptors the caller asked for.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// Installs the filter; with SCMP_ACT_NOTIFY rules, hands the listener fd to the agent at
/// `listenerPath` (SCM_RIGHTS, with the OCI seccomp state as payload).
fn install_seccomp(prog: &Program, profile: &oci_spec::runtime::LinuxSeccomp) -> Result<()> {
    let Some(listener) = seccomp::install(prog, profile)? else {
        return Ok(());
    };
    let Some(path) = profile.listener_path() else {
        return Err(Error::InvalidSpec(
            "seccomp profile uses SCMP_ACT_NOTIFY but sets no listenerPath".into(),
        ));
    };
    let sock = crate::tty::connect(path)?;
    let state = serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": std::process::id(),
        "metadata": profile.listener_metadata().clone().unwrap_or_default(),
    });
    use std::os::fd::AsRawFd;
    crate::tty::send_fd(sock.as_raw_fd(), &state.to_string(), listener.as_raw_fd())
}
