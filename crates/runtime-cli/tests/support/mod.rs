//! Helpers shared by the lifecycle, cgroups and terminal tests (on top of `common`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{unique, Bundle};

/// A host directory removed (with everything in it) when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(&format!("berth-{prefix}")));
        std::fs::create_dir_all(&dir).unwrap();
        // Processes in the container may run as another user.
        let st = Command::new("chmod")
            .arg("0777")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// The file's content, or "" if it does not exist (yet).
    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.join(p)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command whose children may outlive it (create, run -d, exec -d): its stdout and
/// stderr go to files, so only the command itself is waited for, not every holder of a
/// pipe.
pub fn detached(cmd: &mut Command) -> Output {
    let logs = TempDir::new("out");
    let out = std::fs::File::create(logs.join("stdout")).unwrap();
    let err = std::fs::File::create(logs.join("stderr")).unwrap();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    Output {
        status,
        stdout: std::fs::read(logs.join("stdout")).unwrap_or_default(),
        stderr: std::fs::read(logs.join("stderr")).unwrap_or_default(),
    }
}

/// Bind-mounts a host directory into the container at `dest`.
pub fn bind(b: &mut Bundle, host: &Path, dest: &str) {
    let host = host.to_string_lossy().into_owned();
    b.edit(|s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest,
            "type": "bind",
            "source": host,
            "options": ["rbind", "rw"],
        }))
    });
}

/// Polls `f` every 10 ms until it is true; false after `timeout`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}
