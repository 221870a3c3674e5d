//! `exec`: more processes in a running container. Each exec gets its own `berth-shim`
//! in exec mode (socket `<exec-root>/shims/exec-<id>.sock`), which holds the process's
//! stdio or tty, serves the attach stream and records the exit code, as the
//! container's shim does for its init.
//!
//! Exec records live in memory, as in dockerd: they go with the container's exit or
//! removal and with the daemon.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use shim::client::{self, Client, ShimOptions};
use shim::proto::AttachOptions;

use super::spec;
use super::{Container, HostConfig};
use crate::error::{Error, Result};
use crate::Engine;

/// What `POST /containers/{id}/exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    /// `NAME=value`, over the container's environment.
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub privileged: bool,
    /// Empty: the container's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub detach_keys: String,
    /// Rows, columns.
    pub console_size: Option<(u16, u16)>,
}

/// One exec instance.
#[derive(Debug, Clone)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    /// Started, and its exit not yet recorded.
    pub running: bool,
    /// Set once it has exited.
    pub exit_code: Option<i32>,
    /// Host pid while it runs.
    pub pid: i32,
    started: bool,
}

/// The exec instances of this daemon.
#[derive(Default)]
pub struct Execs {
    map: std::sync::Mutex<HashMap<String, Exec>>,
}

impl Execs {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Exec>) -> R) -> R {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }
}

fn no_such_exec(id: &str) -> Error {
    Error::NotFound(format!("No such exec instance: {id}"))
}

/// Where a started exec is, for the daemon to bridge.
pub struct ExecStream {
    /// The shim's attach stream.
    pub stream: UnixStream,
    /// A terminal (raw stream) rather than multiplexed frames.
    pub tty: bool,
}

impl Engine {
    fn exec_socket(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("exec-{id}.sock"))
    }

    fn exec_exit_file(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("exec-{id}.exit"))
    }

    fn exec_process_file(&self, id: &str) -> PathBuf {
        self.shims_dir().join(format!("exec-{id}.json"))
    }

    /// A running, unpaused container, or Docker's conflict.
    fn exec_target(&self, name: &str) -> Result<Container> {
        let c = self.lookup_container(name)?;
        if !c.running() {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(Error::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        Ok(c)
    }

    /// Registers an exec in container `name`; its id.
    pub fn create_exec(&self, name: &str, config: ExecConfig) -> Result<String> {
        if config.cmd.is_empty() {
            return Err(Error::InvalidParameter("No exec command specified".into()));
        }
        for e in &config.env {
            if e.is_empty() || e.starts_with('=') {
                return Err(Error::InvalidParameter(format!(
                    "invalid environment variable: {e}"
                )));
            }
        }
        let c = self.exec_target(name)?;
        let id = super::names::new_id();
        self.emit_exec(&c.id, &id, crate::events::ExecEvent::Create(&config.cmd));
        let exec = Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            running: false,
            exit_code: None,
            pid: 0,
            started: false,
        };
        self.execs.with(|m| m.insert(id.clone(), exec));
        Ok(id)
    }

    /// The exec `id`. A client that read the stream to its end asks right away: the
    /// exit file the shim wrote before closing the stream may be ahead of the watcher.
    pub fn inspect_exec(&self, id: &str) -> Result<Exec> {
        let e = self
            .execs
            .with(|m| m.get(id).cloned())
            .ok_or_else(|| no_such_exec(id))?;
        if !e.running {
            return Ok(e);
        }
        match super::start::read_exit(&self.exec_exit_file(id)) {
            Some(exit) => Ok(self.exec_exited(id, exit.code).unwrap_or(e)),
            None => Ok(e),
        }
    }

    /// Records the exit code of exec `id`; the exec as it now is.
    fn exec_exited(&self, id: &str, code: i32) -> Option<Exec> {
        self.execs.with(|m| {
            let e = m.get_mut(id)?;
            e.running = false;
            e.pid = 0;
            e.exit_code = Some(code);
            Some(e.clone())
        })
    }

    /// The OCI process for `exec` in `c`: the container's process with the exec's
    /// command, environment, user, directory and terminal.
    fn exec_process(&self, c: &Container, exec: &Exec) -> Result<Value> {
        let dir = self.container_dir(&c.id);
        let path = dir.join("config.json");
        let data = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        let spec: Value = serde_json::from_slice(&data)
            .map_err(|e| Error::Internal(format!("bad {}: {e}", path.display())))?;
        let mut p = spec["process"].clone();
        let cfg = &exec.config;
        p["args"] = serde_json::json!(cfg.cmd);
        p["terminal"] = Value::Bool(cfg.tty);
        if let Some((h, w)) = cfg.console_size {
            p["consoleSize"] = serde_json::json!({"height": h, "width": w});
        }
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        for e in &cfg.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p["env"] = serde_json::json!(env);
        if !cfg.working_dir.is_empty() {
            p["cwd"] = Value::String(cfg.working_dir.clone());
        }
        if !cfg.user.is_empty() {
            let (uid, gid, extra) = spec::resolve_user(&dir.join("rootfs"), &cfg.user)?;
            let mut user = serde_json::json!({"uid": uid, "gid": gid});
            if !extra.is_empty() {
                user["additionalGids"] = serde_json::json!(extra);
            }
            p["user"] = user;
        }
        if cfg.privileged {
            let all = spec::capabilities(&HostConfig {
                privileged: true,
                ..Default::default()
            })?;
            p["capabilities"] = serde_json::json!({
                "bounding": all, "effective": all, "permitted": all,
            });
        }
        Ok(p)
    }

    /// Starts exec `id`. Attached (`detach` false): returns the stream the client
    /// reads the output from and writes stdin to. Detached: returns `None` and the
    /// output goes nowhere.
    pub fn start_exec(self: &Arc<Self>, id: &str, detach: bool) -> Result<Option<ExecStream>> {
        let exec = self.execs.with(|m| {
            let e = m.get_mut(id).ok_or_else(|| no_such_exec(id))?;
            if e.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            e.started = true;
            Ok(e.clone())
        })?;
        let r = self.spawn_exec(&exec, detach);
        if let Err(err) = &r {
            let code = exec_failure_code(&err.to_string());
            self.execs.with(|m| {
                if let Some(e) = m.get_mut(id) {
                    e.exit_code = Some(code);
                }
            });
        }
        r
    }

    fn spawn_exec(self: &Arc<Self>, exec: &Exec, detach: bool) -> Result<Option<ExecStream>> {
        let c = self.exec_target(&exec.container_id)?;
        let process = self.exec_process(&c, exec)?;
        let shims = self.shims_dir();
        std::fs::create_dir_all(&shims).map_err(|e| Error::io("creating", &shims, e))?;
        let pfile = self.exec_process_file(&exec.id);
        let data = serde_json::to_vec(&process).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&pfile, data).map_err(|e| Error::io("writing", &pfile, e))?;
        let socket = self.exec_socket(&exec.id);
        let cfg = &exec.config;
        let rt = self.runtime_named(&c.host_config.runtime)?;
        let opts = ShimOptions {
            binary: self.shim_binary(),
            id: c.id.clone(),
            bundle: self.container_dir(&c.id),
            runtime_root: rt.root,
            socket: socket.clone(),
            exit_file: self.exec_exit_file(&exec.id),
            log_driver: Some("none".into()),
            log_path: None,
            log_opts: Vec::new(),
            tty: cfg.tty,
            stdin: cfg.attach_stdin && !detach,
            runtime: rt.binary,
            exec: Some(pfile.clone()),
        };
        let spawned = client::spawn(&opts);
        let _ = std::fs::remove_file(&pfile);
        let spawned = spawned.map_err(|e| {
            Error::Internal(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
                e.to_string()
                    .trim_start_matches("shim failed to start: ")
                    .trim_start_matches("container init: ")
            ))
        })?;
        self.execs.with(|m| {
            if let Some(e) = m.get_mut(&exec.id) {
                e.running = true;
                e.pid = spawned.container_pid;
            }
        });
        self.emit_exec(&c.id, &exec.id, crate::events::ExecEvent::Start(&cfg.cmd));
        // The attach releases the output the shim holds; detached, nobody reads it.
        let cl = Client::connect(&socket).map_err(|e| Error::Internal(e.to_string()))?;
        let opts = AttachOptions {
            stdin: cfg.attach_stdin && !detach,
            stdout: cfg.attach_stdout && !detach,
            stderr: cfg.attach_stderr && !detach,
            logs: false,
            stdin_once: false,
            log_offset: 0,
        };
        let stream = cl
            .attach(opts)
            .map_err(|e| Error::Internal(format!("attaching to the exec: {e}")))?;
        let engine = Arc::clone(self);
        let id = exec.id.clone();
        std::thread::Builder::new()
            .name(format!("exec-{}", &id[..12]))
            .spawn(move || engine.watch_exec(&id))
            .map_err(|e| Error::Internal(format!("spawning the exec watcher: {e}")))?;
        if detach {
            drop(stream);
            return Ok(None);
        }
        Ok(Some(ExecStream {
            stream,
            tty: cfg.tty,
        }))
    }

    /// Records the exit of exec `id` when its shim reports it.
    fn watch_exec(&self, id: &str) {
        let socket = self.exec_socket(id);
        let exit_file = self.exec_exit_file(id);
        let code = Client::connect(&socket)
            .and_then(|mut cl| {
                let e = cl.wait()?;
                let _ = cl.shutdown();
                Ok(e.code)
            })
            .ok()
            .or_else(|| super::start::read_exit(&exit_file).map(|e| e.code))
            .unwrap_or(255);
        self.exec_exited(id, code);
        let _ = std::fs::remove_file(&exit_file);
        self.emit_exec_die(id, code);
    }

    /// Sets the terminal size of a running exec.
    pub fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let e = self.inspect_exec(id)?;
        if !e.running {
            return Err(Error::Conflict(format!("Exec {id} is not running")));
        }
        let mut cl = Client::connect(self.exec_socket(id))
            .map_err(|e| Error::Conflict(format!("Exec {id} is not running: {e}")))?;
        let _ = cl.stream().set_read_timeout(Some(Duration::from_secs(5)));
        cl.resize(height, width)
            .map_err(|e| Error::InvalidParameter(e.to_string()))
    }

    /// Closes the stdin of a running exec (its attached client's input ended).
    pub fn close_exec_stdin(&self, id: &str) -> Result<()> {
        if let Ok(mut cl) = Client::connect(self.exec_socket(id)) {
            let _ = cl.stream().set_read_timeout(Some(Duration::from_secs(5)));
            cl.close_stdin()
                .map_err(|e| Error::Internal(format!("closing the stdin of exec {id}: {e}")))?;
        }
        Ok(())
    }

    /// Forgets the execs of container `id` (it stopped or went away).
    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .with(|m| m.retain(|_, e| e.container_id != container_id || e.running));
    }
}

/// The exit code of an exec that could not start, as dockerd reports it: 127 for a
/// program not found, 126 for anything else (not executable, bad directory...).
fn exec_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else {
        126
    }
}
