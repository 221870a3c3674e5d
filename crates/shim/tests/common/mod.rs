//! Test harness: a bundle made from the busybox fixture, a private runtime root and shim
//! paths, and cleanup (kill, shutdown, delete, remove) that also runs when a test fails.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shim::client::{self, Client, ShimOptions, Spawned};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The shim binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_berth-shim");

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn fixture_rootfs() -> PathBuf {
    let dir =
        std::env::var("BERTH_FIXTURES").unwrap_or_else(|_| "/var/cache/berth-fixtures".into());
    let p = PathBuf::from(dir).join("busybox");
    assert!(
        p.join("bin/busybox").exists(),
        "fixture missing: run scripts/fixtures.sh (expected {})",
        p.display()
    );
    p
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create containers: run them as root"
    );
}

/// One container under a shim, with everything removed on drop.
pub struct Fixture {
    pub id: String,
    pub dir: PathBuf,
    pub spec: Value,
    pub opts: ShimOptions,
    pub spawned: Option<Spawned>,
}

impl Fixture {
    /// A bundle running `args`, without a terminal.
    pub fn new(name: &str, args: &[&str]) -> Fixture {
        require_root();
        let id = unique(name);
        let dir = PathBuf::from("/run/berth-shim-test").join(&id);
        std::fs::create_dir_all(dir.join("bundle")).unwrap();
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(fixture_rootfs())
            .arg(dir.join("bundle/rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "copying the fixture rootfs");
        let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["root"] = json!({"path": "rootfs", "readonly": false});
        let opts = ShimOptions {
            binary: BIN.into(),
            id: id.clone(),
            bundle: dir.join("bundle"),
            runtime_root: dir.join("state"),
            socket: dir.join("shim.sock"),
            exit_file: dir.join("shim.exit"),
            log_driver: Some("json-file".into()),
            log_path: Some(dir.join("log/container.log")),
            ..Default::default()
        };
        let f = Fixture {
            id,
            dir,
            spec,
            opts,
            spawned: None,
        };
        f.save();
        f
    }

    pub fn save(&self) {
        std::fs::write(
            self.opts.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    /// Gives the container a terminal (config.json and `--tty`).
    pub fn tty(&mut self) -> &mut Self {
        self.spec["process"]["terminal"] = json!(true);
        self.opts.tty = true;
        self.save();
        self
    }

    /// Runs the container in the host's pid namespace (so SIGTERM kills its init).
    pub fn no_pid_namespace(&mut self) -> &mut Self {
        let ns = self.spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        self.save();
        self
    }

    /// Starts the shim; panics if it reports an error.
    pub fn spawn(&mut self) -> Spawned {
        let s = client::spawn(&self.opts).expect("spawning the shim");
        self.spawned = Some(s);
        s
    }

    /// A client with a timeout, so a broken shim fails the test instead of hanging it.
    pub fn client(&self) -> Client {
        let c = Client::connect(&self.opts.socket).expect("connecting to the shim");
        c.stream()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        c
    }

    pub fn log_path(&self) -> &Path {
        self.opts.log_path.as_deref().unwrap()
    }

    /// The json-file log's entries.
    pub fn log_entries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a json-file line"))
            .collect()
    }

    pub fn exit_file(&self) -> Option<Value> {
        let data = std::fs::read(&self.opts.exit_file).ok()?;
        Some(serde_json::from_slice(&data).unwrap())
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// Polls `f` up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.spawned {
            if let Ok(mut c) = Client::connect(&self.opts.socket) {
                let _ = c.stream().set_read_timeout(Some(Duration::from_secs(15)));
                let _ = c.kill(9, true);
                let _ = c.wait();
                let _ = c.shutdown();
            }
            if !eventually(5, || !alive(s.shim_pid)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.shim_pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if alive(s.container_pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.container_pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        match &self.opts.runtime {
            None => {
                let _ = runtime::container::delete(&self.opts.runtime_root, &self.id, true);
            }
            Some(bin) => {
                let _ = std::process::Command::new(bin)
                    .arg("--root")
                    .arg(&self.opts.runtime_root)
                    .args(["delete", "--force", &self.id])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads multiplexed frames until EOF or `done` says so; returns (stream, payload) pairs.
pub fn read_frames(
    s: &mut UnixStream,
    mut done: impl FnMut(&[(u8, Vec<u8>)]) -> bool,
) -> Vec<(u8, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    while let Some(f) = shim::frame::read_frame(s).expect("reading a frame") {
        out.push(f);
        if done(&out) {
            break;
        }
    }
    out
}

/// Concatenates the payloads of one stream.
pub fn stream_text(frames: &[(u8, Vec<u8>)], kind: u8) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == kind)
        .flat_map(|f| f.1.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads raw bytes until `needle` appears or EOF.
pub fn read_until(s: &mut UnixStream, needle: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading: {e}; got {:?}", String::from_utf8_lossy(&all)),
        }
        if String::from_utf8_lossy(&all).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}
