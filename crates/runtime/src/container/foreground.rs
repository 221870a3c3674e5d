//! Waiting for a container (or exec) process in the foreground, as `run` and `exec`
//! without `-d` do: signals are forwarded to it, its exit status becomes ours
//! (128+signal when a signal killed it), and a terminal is proxied to our stdio.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};

/// The signals `run` forwards; SIGCHLD and SIGWINCH are handled, not forwarded.
const FORWARD: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGWINCH,
];

/// Blocks the signals that [`foreground`] will read, so none is lost before it runs.
/// Call before forking the container; the chain unblocks them in its children.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for s in FORWARD {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set.thread_block().ctx(|| "blocking signals".into())?;
    Ok(set)
}

/// A terminal to copy between our stdio and the container.
pub struct TtyProxy {
    pub master: OwnedFd,
}

struct RawMode(Option<termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(orig) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Waits for `pid` (our child), forwarding signals and proxying `tty`. Returns its exit
/// code. `signals` must be the set returned by [`block_signals`].
pub fn foreground(pid: i32, signals: SigSet, tty: Option<TtyProxy>) -> Result<i32> {
    let target = Pid::from_raw(pid);
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd".into())?;
    // The process may have exited before the signal fd existed.
    if let Some(c) = reap(target)? {
        return Ok(c);
    }
    let _raw = tty.as_ref().map(|_| RawMode::enter());
    let stdin = std::io::stdin();
    let mut stdin_open = tty.is_some();
    let mut master_open = tty.is_some();
    if let Some(t) = &tty {
        resize(t.master.as_fd());
    }
    let mut exit: Option<i32> = None;
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(t) = &tty {
            if master_open {
                fds.push(PollFd::new(t.master.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            r => {
                r.ctx(|| "poll".into())?;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGCHLD) => {
                        if let Some(c) = reap(target)? {
                            exit = Some(c);
                        }
                    }
                    Some(Signal::SIGWINCH) if tty.is_some() => {
                        resize(tty.as_ref().unwrap().master.as_fd())
                    }
                    Some(s) => {
                        let _ = nix::sys::signal::kill(target, s);
                    }
                    None => {}
                }
            }
        }
        if let Some(t) = &tty {
            let mut i = 1;
            if master_open {
                if ready[i] && !copy(t.master.as_fd(), std::io::stdout().as_fd()) {
                    master_open = false;
                }
                i += 1;
            }
            if stdin_open && ready.get(i) == Some(&true) && !copy(stdin.as_fd(), t.master.as_fd()) {
                stdin_open = false;
            }
        }
        if let Some(c) = exit {
            // Drain what the terminal still holds before returning.
            if let Some(t) = &tty {
                while master_open && copy_nonblocking(t.master.as_fd(), std::io::stdout().as_fd()) {
                }
            }
            crate::trace::mark("exited");
            return Ok(c);
        }
    }
}

/// Reaps every exited child; returns the code of `target` if it was among them.
fn reap(target: Pid) -> Result<Option<i32>> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(found),
            Ok(s) => {
                if s.pid() == Some(target) {
                    found = code(s);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Err(Error::Sys {
                    context: "waitpid".into(),
                    source: e,
                })
            }
        }
    }
}

fn resize(master: BorrowedFd) {
    if let Some((rows, cols)) = crate::tty::get_size(0) {
        crate::tty::set_size(master.as_raw_fd(), rows, cols);
    }
}

/// Copies one read's worth; false at EOF or error (EIO once the slave side is closed).
fn copy(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn copy_nonblocking(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut fds = [PollFd::new(from, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) && copy(from, to)
}

fn write_all(to: BorrowedFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}
