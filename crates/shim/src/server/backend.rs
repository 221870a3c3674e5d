//! The runtime that creates and drives the container: berth's runtime library in
//! process, or an external runc-compatible binary through its command line.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{signal, SigHandler, Signal};

use crate::error::{Error, Result};

/// The container's ends of its stdio.
pub struct ContainerStdio {
    /// The container's stdin (a pipe's read end, or /dev/null).
    pub stdin: OwnedFd,
    /// The container's stdout (a pipe's write end, or /dev/null with a terminal).
    pub stdout: OwnedFd,
    /// The container's stderr.
    pub stderr: OwnedFd,
}

/// What a runtime must do for the shim. The shim tracks created/running/paused itself:
/// every transition goes through it.
pub trait Backend {
    /// Creates the container with `stdio`; with `tty` receives its pty master. Returns
    /// the init's host pid and the master.
    fn create(&mut self, stdio: ContainerStdio, tty: bool) -> Result<(i32, Option<OwnedFd>)>;
    /// Starts the created container.
    fn start(&mut self) -> Result<()>;
    /// Sends `signal` to the init, or with `all` to every process of the container.
    fn kill(&mut self, signal: i32, all: bool) -> Result<()>;
    /// Freezes the container.
    fn pause(&mut self) -> Result<()>;
    /// Thaws the container.
    fn resume(&mut self) -> Result<()>;
    /// Whether the OOM killer killed a process of the container; asked before `delete`.
    fn oom_killed(&mut self) -> bool;
    /// Removes the container's cgroup and runtime state (force: also if processes are
    /// left, which it kills).
    fn delete(&mut self) -> Result<()>;
}

/// Runs `f` with the container's stdio on fds 0-2 and SIGPIPE at its default, so that a
/// container forked meanwhile inherits both; restores /dev/null and SIG_IGN after.
fn with_container_stdio<T>(stdio: &ContainerStdio, f: impl FnOnce() -> T) -> Result<T> {
    let dup = |fd: &OwnedFd, to: i32| {
        // SAFETY: dup2 onto a standard descriptor number; both fds are valid.
        if unsafe { libc::dup2(fd.as_raw_fd(), to) } < 0 {
            Err(Error::io("dup2", std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    };
    dup(&stdio.stdin, 0)?;
    dup(&stdio.stdout, 1)?;
    dup(&stdio.stderr, 2)?;
    // Rust ignores SIGPIPE and an ignored signal stays ignored across execve: the
    // container's programs must get the default (`yes | head` relies on it).
    // SAFETY: only the disposition changes; no handler function is installed.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let r = f();
    // SAFETY: as above.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigIgn);
    }
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("opening /dev/null", e))?
        .into();
    for fd in 0..3 {
        dup(&null, fd)?;
    }
    Ok(r)
}

/// Receives the pty master that the container's init sent before it reported ready.
fn take_master(sock: &UnixStream) -> Result<OwnedFd> {
    // Non-blocking: if config.json has no terminal nothing comes, and waiting would hang.
    sock.set_nonblocking(true)
        .map_err(|e| Error::io("console socket", e))?;
    runtime::tty::recv_fd(sock.as_raw_fd()).map_err(|e| {
        Error::Runtime(format!(
            "no pty master from the container (is process.terminal true in config.json?): {e}"
        ))
    })
}

/// berth's runtime library. The container's init becomes the shim's child.
pub struct Library {
    /// The runtime state root.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
}

impl Backend for Library {
    fn create(&mut self, stdio: ContainerStdio, tty: bool) -> Result<(i32, Option<OwnedFd>)> {
        let (ours, theirs) = if tty {
            let (a, b) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let opts = runtime::container::CreateOpts {
            root: self.root.clone(),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console: theirs,
            pid_file: None,
            preserve_fds: 0,
        };
        let c = with_container_stdio(&stdio, || runtime::container::create(opts))??;
        let master = ours.as_ref().map(take_master).transpose()?;
        Ok((c.record.pid, master))
    }

    fn start(&mut self) -> Result<()> {
        Ok(runtime::container::start(&self.root, &self.id)?)
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        let sig = Signal::try_from(signal)
            .map_err(|_| Error::Runtime(format!("invalid signal {signal}")))?;
        Ok(runtime::container::kill(&self.root, &self.id, sig, all)?)
    }

    fn pause(&mut self) -> Result<()> {
        Ok(runtime::container::pause(&self.root, &self.id)?)
    }

    fn resume(&mut self) -> Result<()> {
        Ok(runtime::container::resume(&self.root, &self.id)?)
    }

    fn oom_killed(&mut self) -> bool {
        runtime::container::Container::load(&self.root, &self.id)
            .map(|c| c.state().oom_killed)
            .unwrap_or(false)
    }

    fn delete(&mut self) -> Result<()> {
        Ok(runtime::container::delete(&self.root, &self.id, true)?)
    }
}

/// A runc-compatible binary (runc, crun, berth-runtime) driven through its CLI. Its init
/// re-parents to the shim when `create` returns, because the shim is a child subreaper.
pub struct External {
    /// The runtime binary.
    pub binary: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Prefix for scratch files (pid file, console socket, runtime log).
    pub scratch: PathBuf,
    /// The init's cgroup v2 directory, for the OOM count after it exited.
    pub cgroup: Option<PathBuf>,
}

impl External {
    fn scratch(&self, suffix: &str) -> PathBuf {
        let mut s = self.scratch.clone().into_os_string();
        s.push(suffix);
        s.into()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs a runtime command that does not touch the container's stdio.
    fn run(&self, args: &[&str]) -> Result<()> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::io(format!("running {}", self.binary.display()), e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Runtime(format!(
            "{} {}: {}",
            self.binary.display(),
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The cgroup v2 directory of `pid`, from /proc/<pid>/cgroup.
fn cgroup_dir(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')))
}

/// The last `"msg"` of a runc JSON log, the runtime's own wording of its error.
fn last_log_message(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        v.get("msg")?.as_str().map(str::to_string)
    })
}

impl External {
    /// Runs `<runtime> <args> --pid-file P [--console-socket S] <id>` with the
    /// container's stdio; returns the pid it wrote and the pty master it sent. `undo`
    /// runs when the command succeeded but its result is unusable.
    fn run_with_stdio(
        &self,
        args: Vec<std::ffi::OsString>,
        stdio: ContainerStdio,
        tty: bool,
        undo: &dyn Fn(),
    ) -> Result<(i32, Option<OwnedFd>)> {
        let pid_file = self.scratch(".pid");
        let log_file = self.scratch(".runtime.log");
        let console_path = self.scratch(".console");
        let console = if tty {
            let _ = std::fs::remove_file(&console_path);
            Some(
                UnixListener::bind(&console_path)
                    .map_err(|e| Error::io(format!("binding {}", console_path.display()), e))?,
            )
        } else {
            None
        };
        let verb = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut cmd = self.command();
        // The runtime's stderr is the container's: its errors go to a log file instead.
        cmd.arg("--log")
            .arg(&log_file)
            .arg("--log-format")
            .arg("json")
            .args(&args)
            .arg("--pid-file")
            .arg(&pid_file);
        if console.is_some() {
            cmd.arg("--console-socket").arg(&console_path);
        }
        cmd.arg(&self.id)
            .stdin(Stdio::from(stdio.stdin))
            .stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr));
        let status = cmd
            .status()
            .map_err(|e| Error::io(format!("running {}", self.binary.display()), e));
        let cleanup = || {
            let _ = std::fs::remove_file(&pid_file);
            let _ = std::fs::remove_file(&log_file);
            let _ = std::fs::remove_file(&console_path);
        };
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                cleanup();
                return Err(e);
            }
        };
        if !status.success() {
            let msg = last_log_message(&log_file).unwrap_or_else(|| status.to_string());
            cleanup();
            return Err(Error::Runtime(format!(
                "{} {verb}: {msg}",
                self.binary.display()
            )));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let master = match &console {
            Some(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| Error::io("console socket", e))?;
                match l.accept() {
                    Ok((s, _)) => take_master(&s).map(Some),
                    Err(e) => Err(Error::io("no pty master from the runtime", e)),
                }
            }
            None => Ok(None),
        };
        cleanup();
        let r = match (pid, master) {
            (Some(pid), Ok(master)) => Ok((pid, master)),
            (None, _) => Err(Error::Runtime("the runtime wrote no pid file".into())),
            (_, Err(e)) => Err(e),
        };
        if r.is_err() {
            undo();
        }
        r
    }
}

impl Backend for External {
    fn create(&mut self, stdio: ContainerStdio, tty: bool) -> Result<(i32, Option<OwnedFd>)> {
        let args = vec![
            "create".into(),
            "--bundle".into(),
            self.bundle.clone().into(),
        ];
        let undo = || {
            let _ = self.run(&["delete", "--force", &self.id]);
        };
        let (pid, master) = self.run_with_stdio(args, stdio, tty, &undo)?;
        self.cgroup = cgroup_dir(pid);
        Ok((pid, master))
    }

    fn start(&mut self) -> Result<()> {
        self.run(&["start", &self.id])
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        let sig = signal.to_string();
        if all {
            self.run(&["kill", "--all", &self.id, &sig])
        } else {
            self.run(&["kill", &self.id, &sig])
        }
    }

    fn pause(&mut self) -> Result<()> {
        self.run(&["pause", &self.id])
    }

    fn resume(&mut self) -> Result<()> {
        self.run(&["resume", &self.id])
    }

    fn oom_killed(&mut self) -> bool {
        let Some(dir) = &self.cgroup else {
            return false;
        };
        std::fs::read_to_string(dir.join("memory.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    }

    fn delete(&mut self) -> Result<()> {
        self.run(&["delete", "--force", &self.id])
    }
}

/// `docker exec`: one more process in a running container, with the runtime that runs
/// the container. `create` runs it (the shim holds its output until the first attach);
/// the container itself is never started, paused or deleted from here.
pub struct Exec {
    /// The runtime that created the container (its `root`, `id`; `bundle` unused).
    pub runtime: ExecRuntime,
    /// The OCI process to run (JSON).
    pub process: PathBuf,
    /// The process's host pid, once it runs.
    pub pid: i32,
}

/// Which runtime an [`Exec`] goes through.
pub enum ExecRuntime {
    /// berth's runtime library.
    Library(Library),
    /// A runc-compatible binary.
    External(External),
}

impl Exec {
    fn create_library(
        &self,
        lib: &Library,
        stdio: ContainerStdio,
        tty: bool,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let data = std::fs::read(&self.process)
            .map_err(|e| Error::io(format!("reading {}", self.process.display()), e))?;
        let process: oci_spec::runtime::Process = serde_json::from_slice(&data)
            .map_err(|e| Error::Runtime(format!("bad process file: {e}")))?;
        let (ours, theirs) = if tty {
            let (a, b) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let opts = runtime::container::ExecOpts {
            root: lib.root.clone(),
            id: lib.id.clone(),
            process,
            console: theirs,
            pid_file: None,
            preserve_fds: 0,
        };
        let pid = with_container_stdio(&stdio, || runtime::container::exec(opts))??;
        let master = match ours.as_ref().map(take_master).transpose() {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: kill(2) on the pid we just started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(e);
            }
        };
        Ok((pid, master))
    }

    fn create_external(
        &self,
        ext: &External,
        stdio: ContainerStdio,
        tty: bool,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let mut args: Vec<std::ffi::OsString> = vec!["exec".into(), "--detach".into()];
        args.push("--process".into());
        args.push(self.process.clone().into());
        // A started exec whose pid or terminal got lost cannot be found again.
        let undo = || {};
        ext.run_with_stdio(args, stdio, tty, &undo)
    }
}

impl Backend for Exec {
    fn create(&mut self, stdio: ContainerStdio, tty: bool) -> Result<(i32, Option<OwnedFd>)> {
        let r = match &self.runtime {
            ExecRuntime::Library(lib) => self.create_library(lib, stdio, tty),
            ExecRuntime::External(ext) => self.create_external(ext, stdio, tty),
        };
        if let Ok((pid, _)) = &r {
            self.pid = *pid;
        }
        r
    }

    fn start(&mut self) -> Result<()> {
        Ok(())
    }

    fn kill(&mut self, signal: i32, _all: bool) -> Result<()> {
        let sig = Signal::try_from(signal)
            .map_err(|_| Error::Runtime(format!("invalid signal {signal}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig)?;
        Ok(())
    }

    fn pause(&mut self) -> Result<()> {
        Err(Error::Runtime(
            "an exec process cannot be paused on its own".into(),
        ))
    }

    fn resume(&mut self) -> Result<()> {
        Err(Error::Runtime(
            "an exec process cannot be resumed on its own".into(),
        ))
    }

    fn oom_killed(&mut self) -> bool {
        false
    }

    fn delete(&mut self) -> Result<()> {
        Ok(())
    }
}
