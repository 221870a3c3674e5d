//! berth-init: the init of `docker run --init`, mounted at `/sbin/docker-init` and run
//! as `docker-init -- CMD...` (as Docker does with tini).
//!
//! As PID 1 of the container it runs CMD as its child, forwards the signals it gets
//! to that child (PID 1 has no default signal actions, so without it `docker stop`
//! waits for its timeout), reaps every process that gets reparented to it, and exits
//! with the child's status (128 + signal when the child was killed).

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// `si_code` of a signal the kernel sent, e.g. SIGINT from the terminal: it went to
/// the whole foreground process group, the child included, so forwarding it would
/// deliver it twice.
const SI_KERNEL: i32 = 0x80;

/// Signals left alone: the synchronous ones (a fault in berth-init itself must kill
/// it) and the terminal job-control stops.
const UNBLOCKED: [Signal; 9] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("usage: berth-init [--] COMMAND [ARG...]");
        return ExitCode::from(1);
    }
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("berth-init: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The exit code for a child's wait status, if it ended.
fn exit_code(st: WaitStatus) -> Option<u8> {
    match st {
        WaitStatus::Exited(_, c) => Some(c as u8),
        WaitStatus::Signaled(_, s, _) => Some((128 + s as i32) as u8),
        _ => None,
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    let mut mask = SigSet::empty();
    for s in Signal::iterator().filter(|s| !UNBLOCKED.contains(s)) {
        mask.add(s);
    }
    // Blocked before the child exists, so no signal is lost in between.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| format!("blocking signals: {e}"))?;
    let sfd =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(|e| format!("signalfd: {e}"))?;
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // sigprocmask, which is async-signal-safe. The child must not inherit the mask
    // (std does not reset it), or it could never be signalled.
    unsafe {
        cmd.pre_exec(move || {
            sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None).map_err(std::io::Error::from)
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
                None => e.to_string(),
            };
            eprintln!("berth-init: exec {} failed: {why}", args[0]);
            return Ok(match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            });
        }
    };
    let child = Pid::from_raw(child.id() as i32);
    loop {
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("reading signals: {e}")),
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            if info.ssi_code != SI_KERNEL {
                // The child may be gone already: nothing to do then.
                let _ = kill(child, sig);
            }
            continue;
        }
        // One SIGCHLD may stand for many exits: reap until none is left.
        let mut code = None;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) => {
                    if st.pid() == Some(child) {
                        code = code.or(exit_code(st));
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                // ECHILD: nothing left to reap.
                Err(_) => break,
            }
        }
        if let Some(c) = code {
            return Ok(c);
        }
    }
}
