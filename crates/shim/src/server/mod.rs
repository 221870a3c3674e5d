//! The shim process: start-up (daemonize, create the container, bind the control
//! socket, report to the caller) and the event loop in [`monitor`].
//!
//! Start-up protocol: the process the caller runs forks; the child detaches (setsid,
//! chdir /, stdio on /dev/null), creates the container and binds the socket, then tells
//! its parent `ok <shim pid> <container pid>` or `error <message>` over a pipe; the
//! parent prints that line on the caller's stdout and exits 0 or 1. The caller can so
//! wait for a plain child while the shim lives on.
//!
//! Exit rule: the shim exits after the container's exit is recorded (exit file written,
//! container deleted) and either a client sent `shutdown`, or no client has been
//! connected for `--linger` seconds (default 10). It removes its socket when it goes;
//! berthd then reads `<id>.exit`.

pub mod args;
pub mod backend;
pub mod logger;
pub mod memory;
pub mod monitor;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};
use args::{Args, RuntimeKind};
use backend::{Backend, ContainerStdio, Exec, ExecRuntime, External, Library};
use monitor::{Monitor, Stdio};

/// Runs the shim with the process's command line; returns the exit code of the process
/// the caller started (the detached shim never returns here before it is done).
pub fn main() -> i32 {
    crate::trace::mark("shim: main");
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            println!("error {}", one_line(&e.to_string()));
            return 2;
        }
    };
    let (report_r, report_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            println!("error pipe: {e}");
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded here; both sides continue with ordinary code.
    match unsafe { fork() } {
        Err(e) => {
            println!("error fork: {e}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(report_w);
            relay(report_r)
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            close_inherited(report_w.as_raw_fd());
            let mut report = File::from(report_w);
            let monitor = detach().and_then(|()| setup(&args));
            crate::trace::mark("shim: set up");
            match monitor {
                Ok(mut m) => {
                    let _ = writeln!(report, "ok {} {}", std::process::id(), m.pid());
                    drop(report);
                    memory::trim();
                    m.run();
                    0
                }
                Err(e) => {
                    let _ = writeln!(report, "error {}", one_line(&e.to_string()));
                    1
                }
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// The parent's part: pass the child's report on to the caller.
fn relay(from: OwnedFd) -> i32 {
    // Only up to the newline: the container, forked before the report was written,
    // holds the pipe's write end until it execs, so EOF may come much later.
    let mut from = File::from(from);
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 64 * 1024 {
        match from.read(&mut b) {
            Ok(1) if b[0] != b'\n' => line.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&line);
    if line.is_empty() {
        println!("error the shim exited during start-up");
        return 1;
    }
    println!("{line}");
    if line.starts_with("ok ") {
        0
    } else {
        1
    }
}

/// Closes every descriptor above stdio except `keep`: a long-lived shim must not hold
/// its caller's pipes (a test harness's, a jobserver's) open, nor pass them on to the
/// container.
fn close_inherited(keep: i32) {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // SAFETY: closing descriptors the shim has no Rust owner for (inherited ones);
        // the directory's own descriptor is already closed, so at worst EBADF.
        unsafe { libc::close(fd) };
    }
}

/// Leaves the caller's session and stdio, so the shim outlives it and holds none of its
/// pipes open.
fn detach() -> Result<()> {
    nix::unistd::setsid()?;
    std::env::set_current_dir("/").map_err(|e| Error::io("chdir /", e))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("opening /dev/null", e))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto a standard descriptor; /dev/null is open.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(Error::io("dup2", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Binds the control socket with mode 0600; a stale socket (nobody listening) is
/// replaced, a live one is an error.
fn bind(path: &std::path::Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(Error::Usage(format!(
                "a shim already listens on {}",
                path.display()
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    // The umask makes the socket 0600 from the start; chmod after would leave a window.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = l.map_err(|e| Error::io(format!("binding {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::io("control socket", e))?;
    Ok(l)
}

/// A pipe as (read end, write end), both close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(Error::io("fcntl", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Creates the container and everything the event loop needs.
fn setup(args: &Args) -> Result<Monitor> {
    // SIGCHLD is read from a signalfd; blocked before the container exists so that an
    // early exit is not lost. The container's chain unblocks it for itself.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    // The container's init must re-parent to us also when an external runtime forks it.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    // A stale exit file (an earlier container of this id) must not be taken for ours.
    match std::fs::remove_file(&args.exit_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(
                format!("removing {}", args.exit_file.display()),
                e,
            ))
        }
        _ => {}
    }
    if let Some(dir) = args.exit_file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let log = logger::Logger::open(args)?;
    let listener = bind(&args.socket)?;
    let r = create(args).map(|(backend, pid, stdio)| {
        let mut m = Monitor::new(backend, pid, stdio, listener, sfd, log, args);
        if args.exec.is_some() {
            m.exec_mode();
        }
        m
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&args.socket);
    }
    r
}

/// Makes the container's stdio and creates it.
fn create(args: &Args) -> Result<(Box<dyn Backend>, i32, Stdio)> {
    let null = || -> Result<OwnedFd> {
        Ok(File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::io("opening /dev/null", e))?
            .into())
    };
    let lib = || Library {
        root: args.runtime_root.clone(),
        id: args.id.clone(),
        bundle: args.bundle.clone(),
    };
    let ext = |bin: &std::path::Path| External {
        binary: bin.to_path_buf(),
        root: args.runtime_root.clone(),
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        scratch: args.socket.clone(),
        cgroup: None,
    };
    let mut backend: Box<dyn Backend> = match (&args.runtime, &args.exec) {
        (RuntimeKind::Builtin, None) => Box::new(lib()),
        (RuntimeKind::External(bin), None) => Box::new(ext(bin)),
        (kind, Some(process)) => Box::new(Exec {
            runtime: match kind {
                RuntimeKind::Builtin => ExecRuntime::Library(lib()),
                RuntimeKind::External(bin) => ExecRuntime::External(ext(bin)),
            },
            process: process.clone(),
            pid: 0,
        }),
    };
    if args.tty {
        let theirs = ContainerStdio {
            stdin: null()?,
            stdout: null()?,
            stderr: null()?,
        };
        let (pid, master) = backend.create(theirs, true)?;
        let master =
            master.ok_or_else(|| Error::Runtime("the runtime sent no pty master".into()))?;
        set_nonblocking(&master)?;
        // stdin and output get separate descriptors so each can be closed on its own.
        let input = master.try_clone().map_err(|e| Error::io("dup", e))?;
        let stdio = Stdio {
            stdin: args.stdin.then_some(input),
            stdout: Some(master),
            stderr: None,
        };
        return Ok((backend, pid, stdio));
    }
    let (in_r, in_w) = if args.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (null()?, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let theirs = ContainerStdio {
        stdin: in_r,
        stdout: out_w,
        stderr: err_w,
    };
    // `theirs` is consumed here: after create only the container holds those ends, so
    // its exit gives us EOF.
    let (pid, _) = backend.create(theirs, false)?;
    for fd in [Some(&out_r), Some(&err_r), in_w.as_ref()]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd)?;
    }
    // Bigger pipes mean fewer wake-ups for chatty containers; a failure is harmless.
    for fd in [&out_r, &err_r] {
        // SAFETY: F_SETPIPE_SZ on a pipe we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 256 * 1024) };
    }
    let stdio = Stdio {
        stdin: in_w,
        stdout: Some(out_r),
        stderr: Some(err_r),
    };
    Ok((backend, pid, stdio))
}
