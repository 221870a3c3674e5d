//! Start, stop, kill, wait and remove: the container's `berth-shim` does the work; the
//! engine records what happened.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shim::client::{self, Client, ShimOptions};
use shim::proto::{Exit, Status as ShimStatus};
use shim::trace::mark;

use super::{no_such_container, now_rfc3339, Container, Status, CONTAINERS};
use crate::error::{Error, Result};
use crate::Engine;

/// The exit status the shim recorded, if it did.
pub(crate) fn read_exit(path: &Path) -> Option<Exit> {
    let data = std::fs::read(path).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Whether `id` could leave the shims directory as a file name.
fn names_a_path(id: &str) -> bool {
    id.is_empty() || id.contains('/') || id.starts_with('.')
}

/// A signal by name (`KILL`, `SIGKILL`, `kill`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || Error::InvalidParameter(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(bad()),
    };
    Ok(n)
}

/// How [`Engine::wait_container`] waits (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Returns at once unless the container runs.
    #[default]
    NotRunning,
    /// Waits for the next exit, also of a container not started yet.
    NextExit,
    /// Waits until the container is removed.
    Removed,
}

fn pid_alive(pid: i32) -> bool {
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let st = s.rsplit(')').next().unwrap_or("").trim_start();
                !st.starts_with('Z') && !st.starts_with('X')
            })
            .unwrap_or(false)
}

impl Engine {
    pub(crate) fn shim_binary(&self) -> PathBuf {
        if let Some(p) = std::env::var_os("BERTH_SHIM") {
            return p.into();
        }
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("berth-shim")))
            .unwrap_or_else(|| "berth-shim".into())
    }

    /// Connects to the container's shim, with a read timeout.
    pub(crate) fn shim(&self, id: &str, timeout: Option<Duration>) -> Option<Client> {
        let c = Client::connect(self.shim_socket(id)).ok()?;
        c.stream().set_read_timeout(timeout).ok()?;
        Some(c)
    }

    /// Starts a container; `Ok(false)` when it was running already.
    pub fn start_container(self: &Arc<Self>, name: &str) -> Result<bool> {
        self.start_inner(name, false)
    }

    /// Starts a container, for its user or (`by_policy`) for its restart policy; a
    /// user's start resets the policy's count and lifts a manual stop.
    pub(crate) fn start_inner(self: &Arc<Self>, name: &str, by_policy: bool) -> Result<bool> {
        mark("start: begin");
        let c = self.lookup_container(name)?;
        if c.running() {
            return Ok(false);
        }
        if !by_policy && (c.restart_count != 0 || c.state.manually_stopped) {
            self.db.transaction(|tx| {
                if let Some(mut r) = tx.get(CONTAINERS, &c.id)? {
                    r.restart_count = 0;
                    r.state.manually_stopped = false;
                    tx.put(CONTAINERS, &c.id, &r)?;
                }
                Ok(())
            })?;
        }
        let dir = self.container_dir(&c.id);
        let rootfs = dir.join("rootfs");
        // Mounted since create (or a previous run); after a reboot it is mounted again.
        let guard = if image::snapshot::is_mountpoint(&rootfs) {
            None
        } else {
            let chain = self.container_chain(&c)?;
            Some(
                self.images
                    .snapshots()
                    .mount_container(chain.as_deref(), &dir, &rootfs)
                    .map_err(|e| Error::Internal(format!("mounting the rootfs: {e}")))?,
            )
        };
        mark("start: rootfs mounted");
        let shims = self.shims_dir();
        std::fs::create_dir_all(&shims).map_err(|e| Error::io("creating", &shims, e))?;
        let socket = self.shim_socket(&c.id);
        let exit_file = self.exit_file(&c.id);
        // The previous run's shim may linger; it goes before a new one takes the path.
        if let Some(mut old) = self.shim(&c.id, Some(Duration::from_secs(2))) {
            let _ = old.shutdown();
        }
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&exit_file);
        let lc = &c.host_config.log_config;
        // Containers made before log configs were recorded use the daemon's.
        let (driver, log_opts) = if lc.driver.is_empty() {
            (self.config.log_driver.clone(), self.config.log_opts.clone())
        } else {
            (lc.driver.clone(), lc.opts.clone())
        };
        let log_opts: Vec<(String, String)> = log_opts.into_iter().collect();
        let rt = self.runtime_named(&c.host_config.runtime)?;
        let opts = ShimOptions {
            binary: self.shim_binary(),
            id: c.id.clone(),
            bundle: dir.clone(),
            runtime_root: rt.root,
            socket: socket.clone(),
            exit_file,
            log_path: (driver == "json-file").then(|| c.log_path.clone()),
            log_driver: Some(driver),
            log_opts,
            tty: c.config.tty,
            stdin: c.config.open_stdin,
            runtime: rt.binary,
            exec: None,
        };
        let fail = |msg: String| -> Error {
            let _ = self.db.transaction(|tx| {
                if let Some(mut r) = tx.get(CONTAINERS, &c.id)? {
                    r.state.error = msg.clone();
                    r.state.exit_code = 128;
                    // Marks the failed attempt for attach clients waiting on it.
                    r.state.finished_at = now_rfc3339();
                    tx.put(CONTAINERS, &c.id, &r)?;
                }
                Ok(())
            });
            Error::Internal(msg)
        };
        mark("start: spawning shim");
        let spawned = client::spawn(&opts).map_err(|e| fail(format!("starting the shim: {e}")))?;
        mark("start: shim up");
        let mut cl = Client::connect(&socket).map_err(|e| fail(e.to_string()))?;
        let _ = cl.stream().set_read_timeout(Some(Duration::from_secs(30)));
        if let Err(e) = cl.start() {
            let _ = cl.kill(libc::SIGKILL, true);
            let _ = cl.shutdown();
            return Err(fail(e.to_string()));
        }
        let started_at = cl
            .state()
            .ok()
            .and_then(|s| s.started_at)
            .unwrap_or_else(now_rfc3339);
        drop(cl);
        mark("start: started");
        // The rootfs stays mounted while the container exists.
        if let Some(g) = guard {
            g.disarm();
        }
        let id = c.id.clone();
        self.db.transaction(|tx| {
            let mut r = tx
                .get(CONTAINERS, &id)?
                .ok_or_else(|| no_such_container(&id))?;
            r.state.status = Status::Running;
            r.state.pid = spawned.container_pid;
            r.state.shim_pid = spawned.shim_pid;
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.error.clear();
            r.state.started_at = started_at.clone();
            r.state.finished_at = super::ZERO_TIME.into();
            tx.put(CONTAINERS, &id, &r)?;
            // In the transaction, as `die` is: a fast exit seen by another thread
            // cannot be announced before the start.
            self.emit_container(&c, "start", &[]);
            Ok(())
        })?;
        // The watcher records the exit as soon as it happens and removes --rm
        // containers.
        let engine = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("watch-{}", &id[..12]))
            .spawn(move || engine.watch(&id))
            .map_err(|e| Error::Internal(format!("spawning the watcher: {e}")))?;
        mark("start: recorded");
        Ok(true)
    }

    /// Live restore, after a daemon restart: every container recorded as running gets
    /// its watcher back. Its shim kept it running (and logging) meanwhile; one that
    /// exited while the daemon was away has its exit recorded (and a `--rm` one is
    /// removed) now.
    pub fn restore(self: &Arc<Self>) -> Result<usize> {
        let mut n = 0;
        for (id, c) in self.db.list(CONTAINERS)? {
            if c.state.status != Status::Running {
                continue;
            }
            let engine = Arc::clone(self);
            std::thread::Builder::new()
                .name(format!("watch-{}", &id[..12.min(id.len())]))
                .spawn(move || engine.watch(&id))
                .map_err(|e| Error::Internal(format!("spawning the watcher: {e}")))?;
            n += 1;
        }
        self.restart_with_daemon()?;
        Ok(n)
    }

    /// Waits for the exit of running container `id`, records it and removes a `--rm`
    /// container. Runs on its own thread, from the start or from [`Engine::restore`].
    pub(crate) fn watch(self: &Arc<Self>, id: &str) {
        let Ok(Some(c)) = self.db.get(CONTAINERS, id) else {
            return;
        };
        let exit = self
            .wait_exit(&c, None)
            .unwrap_or_else(|| self.exit_of(id, Duration::from_secs(5)));
        let Ok(c) = self.record_exit(id, &exit) else {
            return;
        };
        if c.host_config.auto_remove {
            // An attach client that has not got the output yet reads it from the log.
            let marker = self.attach_marker(id);
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let seen = self.db.generation();
                if !marker.exists() || Instant::now() >= until {
                    break;
                }
                self.db.wait_change(seen, Duration::from_millis(100));
            }
            // `wait --condition removed` may learn of the exit only after the removal:
            // the exit file stays a little longer.
            if self.remove_inner(id, true, true).is_ok() {
                std::thread::sleep(Duration::from_secs(10));
                let _ = std::fs::remove_file(self.exit_file(id));
            }
        } else if c.state.status == Status::Exited {
            self.apply_restart_policy(&c);
        }
    }

    /// The exit of a container whose init is gone: from the exit file (waiting up to
    /// `grace` for the shim to write it), else an unknown exit (code 255).
    fn exit_of(&self, id: &str, grace: Duration) -> Exit {
        let path = self.exit_file(id);
        let until = Instant::now() + grace;
        loop {
            if let Some(e) = read_exit(&path) {
                return e;
            }
            if Instant::now() >= until {
                return Exit {
                    code: 255,
                    oom_killed: false,
                    finished_at: now_rfc3339(),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` (forever with `None`) for the running container `c` to
    /// exit; its exit once it has.
    fn wait_exit(&self, c: &Container, timeout: Option<Duration>) -> Option<Exit> {
        if let Some(e) = read_exit(&self.exit_file(&c.id)) {
            return Some(e);
        }
        match self.shim(&c.id, timeout) {
            Some(mut cl) => match cl.wait() {
                Ok(e) => Some(e),
                Err(_) => read_exit(&self.exit_file(&c.id)).or_else(|| {
                    // Timed out, or the shim went away: is the init still there?
                    if pid_alive(c.state.pid) && pid_alive(c.state.shim_pid) {
                        None
                    } else {
                        Some(self.exit_of(&c.id, Duration::from_secs(2)))
                    }
                }),
            },
            None => {
                if pid_alive(c.state.pid) && pid_alive(c.state.shim_pid) {
                    // The shim lives but its socket does not answer: poll.
                    let until = timeout.map(|t| Instant::now() + t);
                    while pid_alive(c.state.pid) {
                        if until.is_some_and(|u| Instant::now() >= u) {
                            return None;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                Some(self.exit_of(&c.id, Duration::from_secs(2)))
            }
        }
    }

    /// Sends `signal` to a running container (to every process with `all`). A paused
    /// container is thawed after, or the signal would wait for `unpause`.
    fn signal(&self, c: &Container, signal: i32, all: bool) -> Result<()> {
        self.emit_kill(c, signal);
        match self.shim(&c.id, Some(Duration::from_secs(10))) {
            Some(mut cl) => {
                cl.kill(signal, all)
                    .map_err(|e| Error::Internal(format!("signalling container {}: {e}", c.id)))?;
                if c.state.paused {
                    let _ = cl.resume();
                    let _ = self.set_paused(&c.id, false);
                }
                Ok(())
            }
            None if pid_alive(c.state.pid) => {
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(c.state.pid, signal) };
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Sends a signal (default SIGKILL); a container not running is a conflict.
    pub fn kill_container(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        let c = self.lookup_container(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "cannot kill container: {name}: container {} is not running",
                c.id
            )));
        }
        self.set_manually_stopped(&c.id, true)?;
        self.signal(&c, sig, false)?;
        if sig == libc::SIGKILL {
            if let Some(e) = self.wait_exit(&c, Some(Duration::from_secs(10))) {
                self.record_exit(&c.id, &e)?;
            }
        }
        Ok(())
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout` seconds
    /// (default: its StopTimeout or 10; negative waits forever). `Ok(false)` when it was
    /// not running.
    pub fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let c = self.lookup_container(name)?;
        // Also a container waiting for its policy's restart: it stays stopped.
        self.set_manually_stopped(&c.id, true)?;
        if !c.running() {
            return Ok(false);
        }
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => match c.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s).unwrap_or(libc::SIGTERM),
                None => libc::SIGTERM,
            },
        };
        let t = timeout.or(c.config.stop_timeout).unwrap_or(10);
        self.signal(&c, sig, false)?;
        let wait = (t >= 0).then(|| Duration::from_secs(t as u64).max(Duration::from_millis(1)));
        let exit = match self.wait_exit(&c, wait) {
            Some(e) => e,
            None => {
                self.signal(&c, libc::SIGKILL, true)?;
                self.wait_exit(&c, Some(Duration::from_secs(30)))
                    .ok_or_else(|| {
                        Error::Internal(format!("container {} did not stop after SIGKILL", c.id))
                    })?
            }
        };
        self.record_exit(&c.id, &exit)?;
        self.emit_container(&c, "stop", &[]);
        Ok(true)
    }

    /// For `wait --condition removed` on a `--rm` container already gone (a fast one
    /// can go before the client's wait arrives): the exit code its watcher kept.
    pub fn removed_exit(&self, id: &str, condition: WaitCondition) -> Option<i32> {
        if condition != WaitCondition::Removed || names_a_path(id) {
            return None;
        }
        read_exit(&self.exit_file(id)).map(|e| e.code)
    }

    /// Stops a running container (as [`Engine::stop_container`]) and starts it again.
    pub fn restart_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.lookup_container(name)?;
        if c.running() {
            self.stop_container(&c.id, timeout, signal)?;
        }
        self.start_container(&c.id)?;
        self.emit_container(&c, "restart", &[]);
        Ok(())
    }

    /// Waits for a container as `condition` says; its exit code.
    pub fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<i32> {
        let mut c = match self.lookup_container(name) {
            Ok(c) => c,
            Err(e) => return self.removed_exit(name, condition).ok_or(e),
        };
        if condition != WaitCondition::NotRunning {
            // A container not started yet: wait for a start first.
            while c.state.status == Status::Created {
                let seen = self.db.generation();
                c = match self.container_by_id(&c.id)? {
                    Some(c) => c,
                    None if condition == WaitCondition::Removed => {
                        return Ok(
                            read_exit(&self.exit_file(&c.id)).map_or(c.state.exit_code, |e| e.code)
                        )
                    }
                    None => return Err(no_such_container(name)),
                };
                if c.state.status == Status::Created {
                    self.db.wait_change(seen, Duration::from_millis(500));
                }
            }
        }
        let mut code = c.state.exit_code;
        if c.running() {
            let e = self
                .wait_exit(&c, None)
                .unwrap_or_else(|| self.exit_of(&c.id, Duration::ZERO));
            // The record may be gone already (`--rm`); the exit is what counts.
            code = match self.record_exit(&c.id, &e) {
                Ok(r) => r.state.exit_code,
                Err(_) => e.code,
            };
        }
        if condition == WaitCondition::Removed {
            loop {
                let seen = self.db.generation();
                if self.db.get(CONTAINERS, &c.id)?.is_none() {
                    break;
                }
                self.db.wait_change(seen, Duration::from_millis(500));
            }
        }
        Ok(code)
    }

    /// Removes a container: a running one only with `force` (it is killed first).
    pub fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        self.remove_inner(name, force, false)
    }

    /// Removes a container; `keep_exit` leaves its exit file for a while (the `--rm`
    /// watcher: a `wait --condition removed` may read it after the record is gone).
    fn remove_inner(&self, name: &str, force: bool, keep_exit: bool) -> Result<()> {
        let c = self.lookup_container(name)?;
        if c.running() {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.signal(&c, libc::SIGKILL, true)?;
            let e = self
                .wait_exit(&c, Some(Duration::from_secs(15)))
                .unwrap_or_else(|| self.exit_of(&c.id, Duration::ZERO));
            self.record_exit(&c.id, &e)?;
        }
        if let Some(mut cl) = self.shim(&c.id, Some(Duration::from_secs(5))) {
            if cl.state().is_ok_and(|s| s.status == ShimStatus::Stopped) {
                let _ = cl.shutdown();
            }
        }
        let dir = self.container_dir(&c.id);
        image::snapshot::umount_container(&dir.join("rootfs"))
            .map_err(|e| Error::Internal(format!("unmounting the rootfs: {e}")))?;
        if !self.db.delete(CONTAINERS, &c.id)? {
            // Removed concurrently (say, by --rm's watcher).
            return Ok(());
        }
        self.emit_container(&c, "destroy", &[]);
        if !keep_exit {
            let _ = std::fs::remove_file(self.exit_file(&c.id));
        }
        let _ = std::fs::remove_file(self.shim_socket(&c.id));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing", &dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
