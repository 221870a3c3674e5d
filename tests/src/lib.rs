//! Harness for end-to-end tests: each test starts its own berthd on its own socket, data
//! root and exec root, and the daemon is killed and its directories removed when the
//! test ends, also when it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod hostile;
pub mod registry;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Where cargo put the workspace's binaries (the tests' own exe lives in `deps/` below).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// A running berthd with private state.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    /// Extra berthd arguments, kept for restarts.
    extra: Vec<String>,
}

/// The busybox rootfs that scripts/fixtures.sh makes.
pub const BUSYBOX: &str = "/var/cache/berth-fixtures/busybox";

/// Polls `f` every 50 ms for up to `secs` seconds; its last answer.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

impl Daemon {
    /// A daemon with the busybox fixture imported as `busybox:latest`.
    pub fn with_busybox() -> Daemon {
        assert!(
            Path::new(BUSYBOX).join("bin/busybox").exists(),
            "busybox fixture missing: run scripts/fixtures.sh"
        );
        let d = Daemon::start();
        d.import_busybox("busybox:latest");
        d
    }

    /// `docker import`s the busybox fixture as `tag`.
    pub fn import_busybox(&self, tag: &str) {
        let mut tar = Command::new("tar")
            .args(["-C", BUSYBOX, "--exclude=./.complete", "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = self
            .docker_cmd(&["import", "-", tag])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar of the fixture");
        ok(&out);
    }

    /// Starts berthd and waits until it answers /_ping.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        Daemon::start_configured(None, extra)
    }

    /// Starts berthd with `daemon_json` as its daemon.json (insecure-registries,
    /// certs-dir, ...).
    pub fn start_with_json(daemon_json: &str) -> Daemon {
        Daemon::start_configured(Some(daemon_json), &[])
    }

    fn start_configured(daemon_json: Option<&str>, extra: &[&str]) -> Daemon {
        let dir = PathBuf::from("/tmp").join(unique("berthd"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(j) = daemon_json {
            std::fs::write(dir.join("daemon.json"), j).unwrap();
        }
        let socket = dir.join("exec/berth.sock");
        let mut d = Daemon {
            dir,
            socket,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    /// Runs berthd on this daemon's directories and waits until it listens.
    fn spawn(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("berthd.log"))
            .unwrap();
        let child = Command::new(bin("berthd"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// SIGKILLs berthd, as a crash would; its containers' shims live on.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The socket file stays behind, as after a real crash.
    }

    /// Starts berthd again on the same state (after [`Daemon::crash`] or [`Daemon::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "berthd still runs");
        self.spawn();
    }

    fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("berthd exited {st}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("berthd did not come up: {}", self.log());
    }

    /// `berth system check` finds nothing wrong.
    pub fn assert_check_clean(&self) {
        let out = ok(&self.berth(&["system", "check"]));
        assert!(
            !out.contains("problem") || out.contains("0 problems"),
            "{out}"
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The stock docker CLI against this daemon, not yet run (stdio left as is).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args);
        c
    }

    /// The stock docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker CLI installed")
    }

    /// The docker CLI with `input` on stdin.
    pub fn docker_in(&self, args: &[&str], input: &[u8]) -> Output {
        with_stdin(self.docker_cmd(args), input)
    }

    /// berth's own CLI against this daemon (`berth -H <host> ARGS`), with the host
    /// variables cleared so only the flag decides; not yet run.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.arg("-H")
            .arg(self.host())
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST");
        c
    }

    /// berth's own CLI against this daemon (see [`Daemon::berth_cmd`]).
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("berth built")
    }

    /// `berth ARGS` with `input` on stdin.
    pub fn berth_in(&self, args: &[&str], input: &[u8]) -> Output {
        with_stdin(self.berth_cmd(args), input)
    }

    /// A raw HTTP request over the socket with curl, `extra` curl arguments added:
    /// (status, body).
    fn curl_with(&self, method: &str, path: &str, extra: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .args(extra)
            .args(["-X", method, "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://berth{path}"))
            .output()
            .expect("curl installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// `curl` with a JSON body.
    pub fn curl_json(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.curl_with(
            method,
            path,
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
        )
    }

    /// A raw HTTP request over the socket with curl: (status, body).
    pub fn curl(&self, method: &str, path: &str) -> (u16, String) {
        self.curl_with(method, path, &[])
    }

    /// Stops the daemon (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY-free: signal through the kill command to avoid a libc dependency.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers (and their shims, which outlive berthd) go first, also when the
        // test failed.
        // (No panics here: a panic while unwinding aborts the test binary.)
        let docker = |args: &[&str]| self.docker_cmd(args).stdin(Stdio::null()).output().ok();
        if self.child.is_some() {
            if let Some(o) = docker(&["ps", "-aq"]) {
                let ids = stdout(&o);
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = docker(&args);
                }
            }
        }
        self.stop();
        // Whatever is left (a test that crashed the daemon and failed before its
        // restart): processes started on this state and mounts below it.
        kill_processes_mentioning(&self.dir);
        unmount_below(&self.dir);
        remove_container_cgroups(&self.dir.join("data/containers"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGKILLs every process whose command line mentions `dir` (shims, containers' chains).
fn kill_processes_mentioning(dir: &Path) {
    // With the slash: `/tmp/berthd-1-2` must not match `/tmp/berthd-1-23/...`.
    let needle = format!("{}/", dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Removes the cgroups (`berth/<id>` in every hierarchy) of the containers recorded
/// under `containers`, which a killed shim could not delete.
fn remove_container_cgroups(containers: &Path) {
    let Ok(ids) = std::fs::read_dir(containers) else {
        return;
    };
    let ids: Vec<String> = ids
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        for id in &ids {
            let _ = std::fs::remove_dir(h.path().join("berth").join(id));
        }
        // The shared parent goes with the last container (fails while others use it).
        let _ = std::fs::remove_dir(h.path().join("berth"));
    }
}

/// Lazily unmounts every mount point below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for m in points {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}): stdout={} stderr={}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The exit code, -1 for a signal.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs `cmd` with `input` on its stdin (written from a thread, so a large input
/// cannot block against the output); stdout and stderr are captured.
pub fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `tar -C dir -cf out .`, asserting it worked.
pub fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of {}", dir.display());
}

/// A scratch directory below /tmp, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new, empty scratch directory named after `prefix`.
    pub fn new(prefix: &str) -> Scratch {
        let p = PathBuf::from("/tmp").join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
