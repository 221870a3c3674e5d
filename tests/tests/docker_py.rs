//! docker-py (the pip package `docker`) against a private berthd: every check in
//! tests/python/test_docker_py.py, which prints one PASS/FAIL line per check and exits
//! non-zero on any failure.
//!
//! The Python with docker-py is the virtualenv at /var/cache/berth-venv (or
//! `$BERTH_VENV`), which scripts/deps.sh makes; this test makes it too when it is
//! missing, and fails (never skips) when it cannot.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::*;

/// The whole script must finish in this time.
const LIMIT: Duration = Duration::from_secs(50);

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("BERTH_VENV").unwrap_or_else(|_| "/var/cache/berth-venv".into()))
}

fn has_docker_py(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import docker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's python, made (`python3 -m venv`, `pip install docker`) when missing.
fn python() -> PathBuf {
    let venv = venv();
    let python = venv.join("bin/python3");
    if has_docker_py(&python) {
        return python;
    }
    let run = |cmd: &mut Command| {
        let o = cmd.stdin(Stdio::null()).output();
        match o {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "cannot set up docker-py in {} (run scripts/deps.sh): {cmd:?} failed: {}{}",
                venv.display(),
                stdout(&o),
                stderr(&o)
            ),
            Err(e) => panic!(
                "cannot set up docker-py in {} (run scripts/deps.sh): {cmd:?}: {e}",
                venv.display()
            ),
        }
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "--disable-pip-version-check",
        "docker>=7,<8",
    ]));
    assert!(
        has_docker_py(&python),
        "{} cannot import docker after pip install docker",
        python.display()
    );
    python
}

#[test]
fn docker_py_suite() {
    let python = python();
    let d = Daemon::with_busybox();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/test_docker_py.py");
    let mut child = Command::new(&python)
        .arg("-u")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    // Read both pipes on threads so a chatty script cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    print!("{out}");
    eprint!("{err}");
    match status {
        None => panic!(
            "{} did not finish in {LIMIT:?}; berthd log:\n{}",
            script.display(),
            d.log()
        ),
        Some(st) => assert!(
            st.success(),
            "docker-py checks failed ({st}): {}\nberthd log:\n{}",
            out.lines()
                .filter(|l| l.starts_with("FAIL ") || l.starts_with("failed:"))
                .collect::<Vec<_>>()
                .join("\n"),
            d.log()
        ),
    }
    // Every check ran and passed: the closing line says so.
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(" passed, 0 failed") && !last.starts_with("0 "),
        "unexpected closing line: {last:?}"
    );
}
