//! Bad bundles and bad requests: each fails with a non-zero exit and one message on
//! stderr that names the problem, and leaves nothing behind (no state directory, no
//! cgroup, no mount).

mod common;
use common::*;

use std::process::{Output, Stdio};

use serde_json::{json, Value};

/// Asserts a failure with exactly one stderr line that contains every needle.
#[track_caller]
fn one_error(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure, got success: stdout={} stderr={}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "want one message on stderr, got: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// `run` of the bundle fails with one message naming the problem and leaves nothing.
#[track_caller]
fn run_refused(b: &Bundle, needles: &[&str]) {
    let rt = Runtime::new("err");
    let id = unique("err");
    let out = rt.run(b, &id);
    one_error(&out, needles);
    nothing_left(&rt, b, &id);
    assert!(
        std::fs::read_dir(&rt.root).unwrap().next().is_none(),
        "state root not empty"
    );
}

fn bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.args(&["true"]);
    b
}

/// `create` with stdio on /dev/null: the created process keeps create's stdio, so
/// waiting for EOF on a pipe would wait for the container.
fn create_quiet(rt: &Runtime, b: &Bundle, id: &str) {
    let st = rt
        .cmd()
        .args(["create", "-b"])
        .arg(&b.dir)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "create {id}");
}

/// A started long-running container (`create` then `start`).
struct Running {
    id: String,
}

fn start_sleeper(rt: &Runtime, b: &mut Bundle, prefix: &str) -> Running {
    b.args(&["sleep", "1000"]);
    let id = unique(prefix);
    create_quiet(rt, b, &id);
    ok(&rt.exec(&["start", &id]));
    rt.wait_status(&id, "running");
    Running { id }
}

/// The bundle's rootfs directory does not exist.
#[test]
fn missing_rootfs() {
    let b = bundle("norootfs");
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    run_refused(&b, &["root filesystem", "rootfs"]);
}

/// The bundle has no config.json.
#[test]
fn missing_config_json() {
    let b = bundle("noconfig");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    run_refused(&b, &["config.json"]);
}

/// config.json is truncated JSON.
#[test]
fn truncated_config_json() {
    let b = bundle("badjson");
    let path = b.dir.join("config.json");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    run_refused(&b, &["config.json"]);
}

/// A namespace of an unknown type.
#[test]
fn unknown_namespace_type() {
    let mut b = bundle("nstype");
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}))
    });
    run_refused(&b, &["bogus"]);
}

/// No process section.
#[test]
fn missing_process() {
    let mut b = bundle("noprocess");
    b.edit(|s| {
        s.as_object_mut().unwrap().remove("process");
    });
    run_refused(&b, &["process"]);
}

/// process.args is empty.
#[test]
fn empty_args() {
    let mut b = bundle("noargs");
    b.args(&[]);
    run_refused(&b, &["process.args"]);
}

/// The program is not in the rootfs: runc's message, after create started, and still
/// nothing is left.
#[test]
fn program_not_found() {
    let mut b = bundle("noprog");
    b.args(&["nope"]);
    run_refused(&b, &["exec: \"nope\": executable file not found in $PATH"]);
}

/// A namespace path that does not exist.
#[test]
fn namespace_path_does_not_exist() {
    let mut b = bundle("nspath");
    b.edit(|s| {
        for ns in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!("/nonexistent/berth/netns");
            }
        }
    });
    run_refused(&b, &["/nonexistent/berth/netns"]);
}

/// The same namespace type listed twice.
#[test]
fn duplicate_namespace() {
    let mut b = bundle("nsdup");
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "ipc"}))
    });
    run_refused(&b, &["ipc", "twice"]);
}

/// A mount whose destination is relative.
#[test]
fn relative_mount_destination() {
    let mut b = bundle("relmount");
    b.edit(|s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "relative/dir",
            "type": "tmpfs",
            "source": "tmpfs"
        }))
    });
    run_refused(&b, &["relative/dir", "absolute"]);
}

/// An id that is not a safe path component is refused before anything is made.
#[test]
fn invalid_container_id() {
    let rt = Runtime::new("err");
    let b = bundle("badid");
    let out = rt.run(&b, "../x");
    one_error(&out, &["invalid container id", "../x"]);
    assert!(!rt.root.join("../x").exists());
    assert!(mounts_under(&b.dir).is_empty());
}

/// Creating an id twice: the second fails with "already exists" and does not disturb
/// the first, which still starts and runs.
#[test]
fn same_id_twice() {
    let rt = Runtime::new("err");
    let mut b = Bundle::new("twice");
    b.sh("echo first > /first-ran");
    let other = bundle("twice-other");
    let id = unique("twice");
    create_quiet(&rt, &b, &id);
    let out = rt.create(&other, &id);
    one_error(&out, &["already exists", &id]);
    assert!(mounts_under(&other.dir).is_empty());
    assert_eq!(rt.status(&id), "created");
    assert_eq!(
        rt.state(&id)["bundle"],
        json!(b.dir.canonicalize().unwrap())
    );
    ok(&rt.exec(&["start", &id]));
    rt.wait_status(&id, "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("first-ran")).unwrap(),
        "first\n"
    );
    ok(&rt.exec(&["delete", &id]));
    nothing_left(&rt, &b, &id);
}

/// `start` of a container that does not exist.
#[test]
fn start_of_nonexistent_container() {
    let rt = Runtime::new("err");
    let id = unique("ghost");
    one_error(&rt.exec(&["start", &id]), &[&id, "does not exist"]);
}

/// state, kill, pause and resume of a container that does not exist.
#[test]
fn commands_on_nonexistent_container() {
    let rt = Runtime::new("err");
    let id = unique("ghost");
    for cmd in [
        vec!["state", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["pause", &id],
        vec!["resume", &id],
        vec!["delete", &id],
    ] {
        let out = rt.exec(&cmd);
        one_error(&out, &[&id, "does not exist"]);
    }
    assert!(!rt.exists(&id));
}

/// Deleting a running container needs --force; with it the container and everything
/// it had are gone.
#[test]
fn delete_running_needs_force() {
    let rt = Runtime::new("err");
    let mut b = Bundle::new("delrun");
    let c = start_sleeper(&rt, &mut b, "delrun");
    let out = rt.exec(&["delete", &c.id]);
    one_error(&out, &[&c.id, "running"]);
    assert_eq!(rt.status(&c.id), "running");
    ok(&rt.exec(&["delete", "--force", &c.id]));
    nothing_left(&rt, &b, &c.id);
}

/// kill with a signal name that does not exist fails and leaves the container running.
#[test]
fn kill_with_invalid_signal() {
    let rt = Runtime::new("err");
    let mut b = Bundle::new("badsig");
    let c = start_sleeper(&rt, &mut b, "badsig");
    for sig in ["SIGBOGUS", "BOGUS", "999"] {
        let out = rt.exec(&["kill", &c.id, sig]);
        one_error(&out, &["invalid signal", sig]);
    }
    assert_eq!(rt.status(&c.id), "running");
    ok(&rt.exec(&["delete", "--force", &c.id]));
    nothing_left(&rt, &b, &c.id);
}

/// With `--log FILE --log-format json`, the error is also a JSON line with
/// "level":"error" and the message in the log file.
#[test]
fn json_log_gets_the_error() {
    let rt = Runtime::new("err");
    let b = bundle("jsonlog");
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let log = b.dir.join("log.json");
    let id = unique("jsonlog");
    let out = rt
        .cmd()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "run", "-b"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    one_error(&out, &["root filesystem"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "error", "{text}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("root filesystem"), "{text}");
    assert!(
        stderr(&out).contains(msg),
        "stderr and log carry the same message"
    );
    nothing_left(&rt, &b, &id);
}
