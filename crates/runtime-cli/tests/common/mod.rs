//! Test harness for berth-runtime end-to-end tests: a bundle made from the busybox
//! fixture, a private state root, and cleanup that runs also when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// A name unique to this test process and call, safe as a container id and path part.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn require_root() {
    assert!(
        nix_is_root(),
        "these tests create namespaces, mounts and cgroups: run them as root"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The busybox root filesystem built by scripts/fixtures.sh.
pub fn fixture_rootfs() -> PathBuf {
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

/// A bundle directory with its own copy of the busybox rootfs and a runc-like config.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Value,
}

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        require_root();
        let dir = std::env::temp_dir().join(unique(&format!("berth-test-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(fixture_rootfs())
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "copying the fixture rootfs");
        let out = Command::new(BIN)
            .arg("spec")
            .arg("-b")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth-runtime spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["root"]["readonly"] = json!(false);
        let b = Bundle { dir, spec };
        b.save();
        b
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = json!(args);
        self.save();
        self
    }

    /// `sh -c script`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    /// Edits the spec and saves it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.spec);
        self.save();
        self
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private state root; every container left in it is force-deleted on drop.
pub struct Runtime {
    pub root: PathBuf,
}

impl Runtime {
    pub fn new(name: &str) -> Runtime {
        require_root();
        let root = PathBuf::from("/run/berth-test").join(unique(name));
        std::fs::create_dir_all(&root).unwrap();
        Runtime { root }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs `berth-runtime --root R <args>` with stdin closed and output captured.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs the bundle in the foreground and returns its output.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd()
            .args(["run", "-b"])
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `create`; the container inherits stdout/stderr, so they go to a file (a pipe would
    /// stay open as long as the container lives and hang the read).
    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        let err_path = self.root.join(format!(".{id}.stderr"));
        let err_file = std::fs::File::create(&err_path).unwrap();
        let status = self
            .cmd()
            .args(["create", "-b"])
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .status()
            .unwrap();
        let stderr = std::fs::read(&err_path).unwrap_or_default();
        let _ = std::fs::remove_file(&err_path);
        Output {
            status,
            stdout: Vec::new(),
            stderr,
        }
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.exec(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Polls until the container reaches `status`, up to 10 s.
    /// Polls until the container exists and reaches `status`, up to 10 s.
    pub fn wait_status(&self, id: &str, status: &str) {
        let mut last = String::new();
        for _ in 0..1000 {
            let out = self.exec(&["state", id]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                last = v["status"].as_str().unwrap_or_default().to_string();
                if last == status {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {id} never reached {status} (last: {last:?})");
    }

    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.exec(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
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

/// Mount points under `dir` in the host's mount table (there must be none after a test).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(d.as_ref()))
        .map(String::from)
        .collect()
}

/// Directories named `name` in any cgroup hierarchy (there must be none after delete).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(out_find) = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-mindepth",
            "1",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            name,
        ])
        .output()
    else {
        return out;
    };
    for l in String::from_utf8_lossy(&out_find.stdout).lines() {
        out.push(PathBuf::from(l));
    }
    out
}

/// Asserts that nothing of container `id` is left: state dir, cgroup, mounts.
#[track_caller]
pub fn nothing_left(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(!rt.exists(id), "state dir of {id} left behind");
    assert!(
        cgroup_dirs(id).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs(id)
    );
    assert!(
        mounts_under(&b.dir).is_empty(),
        "mounts left behind: {:?}",
        mounts_under(&b.dir)
    );
}
