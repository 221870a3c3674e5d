//! The container lifecycle through berth-runtime's CLI: create, start, state, kill, pause,
//! resume, ps, list, exec, run -d, delete, and the OCI hooks.

mod common;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use support::*;

const SEC: Duration = Duration::from_secs(1);

/// `create` with a pid file and extra arguments; the container's stdio goes to files.
fn create_with(rt: &Runtime, b: &Bundle, id: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = rt.cmd();
    cmd.arg("create").arg("-b").arg(&b.dir).args(extra).arg(id);
    detached(&mut cmd)
}

fn create(rt: &Runtime, b: &Bundle, id: &str) {
    ok(&create_with(rt, b, id, &[]));
}

fn start(rt: &Runtime, id: &str) {
    ok(&rt.exec(&["start", id]));
}

/// `run -d`: returns once the container runs.
fn run_detached(rt: &Runtime, b: &Bundle, id: &str) {
    let mut cmd = rt.cmd();
    cmd.args(["run", "-d", "-b"]).arg(&b.dir).arg(id);
    ok(&detached(&mut cmd));
}

fn pid_of(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().unwrap() as i32
}

/// A bundle whose process runs `script` with the host directory `out` at /out.
fn bundle_with_out(name: &str, out: &TempDir, script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    bind(&mut b, out.path(), "/out");
    b.sh(script);
    b
}

fn ps_json(rt: &Runtime, id: &str) -> Vec<i32> {
    let out = ok(&rt.exec(&["ps", "--format", "json", id]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps json {out:?}: {e}"))
}

/// A created container's process has not run; start runs it; it stops when it exits.
#[test]
fn create_waits_for_start_then_runs_and_stops() {
    let rt = Runtime::new("lc");
    let out = TempDir::new("lc");
    let b = bundle_with_out(
        "lc",
        &out,
        "echo ran > /out/marker; while [ ! -e /out/go ]; do sleep 0.02; done",
    );
    let id = unique("lc");
    create(&rt, &b, &id);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(
        pid > 0 && alive(pid),
        "a created container has a live process"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!out.join("marker").exists(), "the process ran before start");
    start(&rt, &id);
    assert!(
        wait_for(5 * SEC, || out.join("marker").exists()),
        "the process did not run after start"
    );
    assert_eq!(rt.status(&id), "running");
    let again = rt.exec(&["start", &id]);
    assert!(
        !again.status.success(),
        "start of a running container must fail"
    );
    assert!(!stderr(&again).is_empty(), "start twice gives no reason");

    std::fs::write(out.join("go"), "").unwrap();
    rt.wait_status(&id, "stopped");
    let st = rt.state(&id);
    assert_eq!(st["pid"], 0, "a stopped container reports pid 0: {st}");
    let stopped = rt.exec(&["start", &id]);
    assert!(!stopped.status.success(), "start of a stopped container");
    assert!(stderr(&stopped).contains("stopped"), "{}", stderr(&stopped));

    assert!(
        !cgroup_dirs(&id).is_empty(),
        "the cgroup exists until delete"
    );
    ok(&rt.exec(&["delete", &id]));
    assert!(!rt.exists(&id), "delete leaves the state directory");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "delete leaves cgroups: {:?}",
        cgroup_dirs(&id)
    );
    assert!(mounts_under(&b.dir).is_empty());
    let gone = rt.exec(&["state", &id]);
    assert!(!gone.status.success(), "state of a deleted container");
}

/// `create --pid-file` writes the same pid that `state` reports.
#[test]
fn pid_file_holds_the_state_pid() {
    let rt = Runtime::new("lc");
    let tmp = TempDir::new("pidfile");
    let mut b = Bundle::new("pidfile");
    b.args(&["sleep", "100"]);
    let id = unique("pidfile");
    let pid_file = tmp.join("pid");
    ok(&create_with(
        &rt,
        &b,
        &id,
        &["--pid-file", pid_file.to_str().unwrap()],
    ));
    let written: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, pid_of(&rt, &id));
    assert!(alive(written));
}

/// `kill` sends SIGTERM by default and the named signal otherwise.
#[test]
fn kill_sends_sigterm_by_default_and_the_named_signal() {
    let rt = Runtime::new("lc");
    let out = TempDir::new("kill");
    let b = bundle_with_out(
        "kill",
        &out,
        "trap 'echo TERM > /out/sig; exit 4' TERM; echo up > /out/up; while :; do sleep 0.02; done",
    );
    let id = unique("kill");
    run_detached(&rt, &b, &id);
    assert!(wait_for(5 * SEC, || out.join("up").exists()));
    ok(&rt.exec(&["kill", &id]));
    rt.wait_status(&id, "stopped");
    assert_eq!(out.read("sig"), "TERM\n", "the trap did not see SIGTERM");

    let mut b2 = Bundle::new("kill");
    b2.args(&["sleep", "100"]);
    let id2 = unique("kill");
    run_detached(&rt, &b2, &id2);
    let pid = pid_of(&rt, &id2);
    ok(&rt.exec(&["kill", &id2, "KILL"]));
    rt.wait_status(&id2, "stopped");
    assert!(!alive(pid));
    let late = rt.exec(&["kill", &id2, "KILL"]);
    assert!(!late.status.success(), "kill of a stopped container");
}

/// `kill --all` signals every process in the container, not just its init.
#[test]
fn kill_all_reaches_every_process() {
    let rt = Runtime::new("lc");
    let out = TempDir::new("killall");
    // The init survives SIGTERM (trap); its background sleeps do not.
    let b = bundle_with_out(
        "killall",
        &out,
        "trap 'echo TERM >> /out/init' TERM; for i in 1 2 3 4; do sleep 100 & done; \
         echo up > /out/up; while :; do sleep 0.02; done",
    );
    let id = unique("killall");
    run_detached(&rt, &b, &id);
    assert!(wait_for(5 * SEC, || out.join("up").exists()));
    let init = pid_of(&rt, &id);
    let sleepers: Vec<i32> = ps_json(&rt, &id)
        .into_iter()
        .filter(|p| {
            *p != init
                && std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| c == b"sleep\x00100\x00")
                    .unwrap_or(false)
        })
        .collect();
    assert_eq!(sleepers.len(), 4, "background sleeps: {sleepers:?}");
    ok(&rt.exec(&["kill", "--all", &id, "TERM"]));
    assert!(
        wait_for(5 * SEC, || sleepers.iter().all(|p| !alive(*p))),
        "processes survived kill --all: {:?}",
        sleepers.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    assert!(
        wait_for(5 * SEC, || out.read("init").contains("TERM")),
        "init did not get the signal"
    );
    assert_eq!(rt.status(&id), "running", "init traps TERM and lives on");

    ok(&rt.exec(&["kill", "--all", &id, "KILL"]));
    rt.wait_status(&id, "stopped");
    assert!(!alive(init));
}

fn counter(out: &TempDir) -> u64 {
    // The writer truncates then writes: retry a torn read.
    for _ in 0..100 {
        if let Ok(n) = out.read("counter").trim().parse() {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("counter unreadable: {:?}", out.read("counter"));
}

/// `pause` freezes the container's processes and `resume` thaws them.
#[test]
fn pause_stops_the_process_and_resume_continues_it() {
    let rt = Runtime::new("lc");
    let out = TempDir::new("pause");
    let b = bundle_with_out(
        "pause",
        &out,
        "i=0; while :; do i=$((i+1)); echo $i > /out/counter; sleep 0.01; done",
    );
    let id = unique("pause");
    run_detached(&rt, &b, &id);
    assert!(wait_for(5 * SEC, || out.join("counter").exists()));
    let c0 = counter(&out);
    assert!(
        wait_for(5 * SEC, || counter(&out) > c0 + 3),
        "the counter does not advance"
    );
    ok(&rt.exec(&["pause", &id]));
    assert_eq!(rt.status(&id), "paused");
    let c1 = counter(&out);
    std::thread::sleep(Duration::from_millis(500));
    let c2 = counter(&out);
    assert_eq!(c1, c2, "the counter advanced while paused");
    let again = rt.exec(&["pause", &id]);
    assert!(!again.status.success(), "pause of a paused container");
    ok(&rt.exec(&["resume", &id]));
    assert_eq!(rt.status(&id), "running");
    assert!(
        wait_for(5 * SEC, || counter(&out) > c2 + 3),
        "the counter did not advance after resume"
    );
    let again = rt.exec(&["resume", &id]);
    assert!(!again.status.success(), "resume of a running container");
}

/// A paused container can be force-deleted and leaves nothing behind.
#[test]
fn paused_container_is_force_deleted() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("pausedel");
    b.args(&["sleep", "100"]);
    let id = unique("pausedel");
    run_detached(&rt, &b, &id);
    let pid = pid_of(&rt, &id);
    ok(&rt.exec(&["pause", &id]));
    let plain = rt.exec(&["delete", &id]);
    assert!(!plain.status.success(), "delete of a paused container");
    ok(&rt.exec(&["delete", "-f", &id]));
    assert!(!rt.exists(&id));
    assert!(wait_for(5 * SEC, || !alive(pid)));
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

/// `ps --format json` lists the init and exec'd processes; `list` shows the container.
#[test]
fn ps_and_list_show_the_container() {
    let rt = Runtime::new("lc");
    let tmp = TempDir::new("ps");
    let mut b = Bundle::new("ps");
    b.args(&["sleep", "100"]);
    let id = unique("ps");
    create(&rt, &b, &id);
    let list = ok(&rt.exec(&["list"]));
    let line = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("{id} not in list:\n{list}"));
    assert!(line.contains("created"), "{line}");
    start(&rt, &id);
    let init = pid_of(&rt, &id);
    let pid_file = tmp.join("exec.pid");
    let mut cmd = rt.cmd();
    cmd.args(["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id])
        .args(["sleep", "100"]);
    ok(&detached(&mut cmd));
    let exec_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids = ps_json(&rt, &id);
    assert!(pids.contains(&init), "init {init} not in {pids:?}");
    assert!(pids.contains(&exec_pid), "exec {exec_pid} not in {pids:?}");

    let list = ok(&rt.exec(&["list"]));
    let line = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("{id} not in list:\n{list}"));
    assert!(line.contains("running"), "{line}");
    assert!(line.contains(&init.to_string()), "{line}");
    let quiet = ok(&rt.exec(&["list", "-q"]));
    assert_eq!(quiet.trim(), id);
    let all: Value = serde_json::from_str(&ok(&rt.exec(&["list", "--format", "json"]))).unwrap();
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["pid"], init);
}

/// An exec'd process shares every namespace and the cgroup of the container's init.
#[test]
fn exec_joins_the_init_namespaces_and_cgroup() {
    let rt = Runtime::new("lc");
    let tmp = TempDir::new("execns");
    let mut b = Bundle::new("execns");
    b.args(&["sleep", "100"]);
    let id = unique("execns");
    run_detached(&rt, &b, &id);
    let init = pid_of(&rt, &id);
    let kinds = ["pid", "net", "mnt", "uts", "ipc"];
    let inside = ok(&rt.exec(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done",
    ]));
    let host: Vec<String> = kinds
        .iter()
        .map(|k| {
            std::fs::read_link(format!("/proc/{init}/ns/{k}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(inside.lines().collect::<Vec<_>>(), host);
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(
        ours.to_string_lossy(),
        host[0],
        "the container has no pid namespace of its own"
    );

    let pid_file = tmp.join("exec.pid");
    let mut cmd = rt.cmd();
    cmd.args(["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id])
        .args(["sleep", "100"]);
    ok(&detached(&mut cmd));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid), "exec -d process is not running");
    assert_ne!(pid, init);
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(pid), cg(init), "exec'd process is in another cgroup");
    assert!(
        cg(init).contains(&id),
        "init not in its own cgroup: {}",
        cg(init)
    );
}

/// exec returns the process's exit code (128+signal when a signal killed it) and honours
/// -e, -u and --cwd.
#[test]
fn exec_returns_codes_and_applies_env_user_cwd() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("execopts");
    b.args(&["sleep", "100"]);
    // The fixture's rootfs is 0700: uid 1000 needs to reach "/".
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let id = unique("execopts");
    run_detached(&rt, &b, &id);
    let out = rt.exec(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = rt.exec(&["exec", &id, "sh", "-c", "kill -USR1 $$; sleep 5"]);
    assert_eq!(out.status.code(), Some(128 + 10), "{}", stderr(&out));

    let env = ok(&rt.exec(&["exec", "-e", "FOO=bar", &id, "sh", "-c", "echo $FOO"]));
    assert_eq!(env, "bar\n");
    let id_out = ok(&rt.exec(&["exec", "-u", "1000:1000", &id, "id"]));
    assert!(
        id_out.starts_with("uid=1000 gid=1000"),
        "exec -u 1000:1000: {id_out}"
    );
    let root = ok(&rt.exec(&["exec", &id, "id", "-u"]));
    assert_eq!(root, "0\n");
    let cwd = ok(&rt.exec(&["exec", "--cwd", "/tmp", &id, "pwd"]));
    assert_eq!(cwd, "/tmp\n");
    let default_cwd = ok(&rt.exec(&["exec", &id, "pwd"]));
    assert_eq!(default_cwd, "/\n");
}

/// exec into a stopped container fails and says why.
#[test]
fn exec_into_a_stopped_container_fails_clearly() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("execstopped");
    b.args(&["true"]);
    let id = unique("execstopped");
    run_detached(&rt, &b, &id);
    rt.wait_status(&id, "stopped");
    let out = rt.exec(&["exec", &id, "true"]);
    assert!(!out.status.success(), "exec into a stopped container");
    assert!(
        stderr(&out).contains("stopped"),
        "unclear error: {}",
        stderr(&out)
    );
}

/// `run -d` returns with the container running; KILL stops it.
#[test]
fn run_detached_leaves_it_running() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("rund");
    b.args(&["sleep", "100"]);
    let id = unique("rund");
    let t = Instant::now();
    run_detached(&rt, &b, &id);
    assert!(t.elapsed() < 10 * SEC, "run -d waited for the container");
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid));
    assert_eq!(
        std::fs::read(format!("/proc/{pid}/cmdline")).unwrap(),
        b"sleep\x00100\x00"
    );
    ok(&rt.exec(&["kill", &id, "KILL"]));
    rt.wait_status(&id, "stopped");
    ok(&rt.exec(&["delete", &id]));
    assert!(!rt.exists(&id));
}

/// `run` exits with 128+signal when the process dies of a signal.
#[test]
fn run_exits_128_plus_the_signal() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("runsig");
    // Without a pid namespace the process is no namespace init and SIGTERM kills it.
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
    b.sh("kill -TERM $$; sleep 5");
    let id = unique("runsig");
    let out = rt.run(&b, &id);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
}

fn hook(log: &Path, name: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("printf '%s %s\\n' {name} \"$(cat)\" >> {}", log.display())],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    })
}

/// Every hook runs once, in lifecycle order, and gets the container's state on stdin.
#[test]
fn hooks_run_in_order_with_the_state() {
    let rt = Runtime::new("lc");
    let dir = TempDir::new("hooks");
    let log = dir.join("log");
    let mut b = Bundle::new("hooks");
    // startContainer runs inside the container: the log is at the same path there.
    bind(&mut b, dir.path(), dir.path().to_str().unwrap());
    b.args(&["sleep", "100"]);
    let names = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    b.edit(|s| {
        let mut hooks = serde_json::Map::new();
        for n in names {
            hooks.insert(n.to_string(), json!([hook(&log, n)]));
        }
        s["hooks"] = Value::Object(hooks);
    });
    let id = unique("hooks");
    create(&rt, &b, &id);
    let pid = pid_of(&rt, &id);
    let seen = |s: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(s)
    };
    assert!(seen("createContainer"));
    assert!(!seen("startContainer"), "startContainer ran at create");
    start(&rt, &id);
    assert!(
        seen("poststart"),
        "poststart did not run before start returned"
    );
    assert!(
        wait_for(5 * SEC, || seen("startContainer")),
        "startContainer did not run"
    );
    ok(&rt.exec(&["delete", "-f", &id]));

    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<(&str, Value)> = text
        .lines()
        .map(|l| {
            let (name, state) = l.split_once(' ').unwrap();
            let v = serde_json::from_str(state)
                .unwrap_or_else(|e| panic!("{name} got no JSON state ({e}): {state:?}"));
            (name, v)
        })
        .collect();
    let order: Vec<&str> = entries.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, names, "hook order");
    for (name, state) in &entries {
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{name}: {state}");
        if *name != "poststop" {
            assert_eq!(state["pid"], pid, "{name}: {state}");
        }
    }
    assert_eq!(entries[5].1["status"], "stopped");
    assert_eq!(entries[4].1["status"], "running");
}

/// A failing createRuntime hook fails create and leaves no state, cgroup or mount.
#[test]
fn failing_create_runtime_hook_fails_create_cleanly() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("hookfail");
    b.args(&["sleep", "100"]);
    b.edit(|s| {
        s["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "echo hook says no >&2; exit 3"],
        }]})
    });
    let id = unique("hookfail");
    let out = create_with(&rt, &b, &id, &[]);
    assert!(
        !out.status.success(),
        "create with a failing hook succeeded"
    );
    assert!(
        stderr(&out).contains("createRuntime"),
        "error does not name the hook: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hook says no"), "{}", stderr(&out));
    assert!(!rt.exists(&id), "state left behind");
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(
        mounts_under(&b.dir).is_empty(),
        "{:?}",
        mounts_under(&b.dir)
    );
}

/// A hook that outlives its timeout is stopped and fails the operation promptly.
#[test]
fn hook_timeout_is_enforced() {
    let rt = Runtime::new("lc");
    let mut b = Bundle::new("hooktimeout");
    b.args(&["sleep", "100"]);
    b.edit(|s| {
        s["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "sleep 5"],
            "timeout": 1,
        }]})
    });
    let id = unique("hooktimeout");
    let t = Instant::now();
    let out = create_with(&rt, &b, &id, &[]);
    let took = t.elapsed();
    assert!(
        !out.status.success(),
        "create with a hanging hook succeeded"
    );
    assert!(
        took < Duration::from_millis(2500),
        "timeout 1 took {took:?}"
    );
    assert!(took >= Duration::from_millis(900), "too early: {took:?}");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(!rt.exists(&id));
}
