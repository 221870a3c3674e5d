//! The basics: a bundle runs, its output and exit code come back, nothing is left behind.

mod common;
use common::*;

#[test]
fn run_prints_and_exits_with_the_process_code() {
    let rt = Runtime::new("smoke");
    let mut b = Bundle::new("smoke");
    b.sh("echo hello; exit 7");
    let id = unique("smoke");
    let out = rt.run(&b, &id);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert!(
        !rt.exists(&id),
        "run removes the container's state when it exits"
    );
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs(&id)
    );
    assert!(mounts_under(&b.dir).is_empty());
}

#[test]
fn killed_by_a_signal_exits_128_plus_signal() {
    let rt = Runtime::new("smoke");
    let mut b = Bundle::new("smoke");
    // PID 1 ignores signals it has no handler for, except from outside its namespace.
    b.args(&["sleep", "100"]);
    let id = unique("sig");
    let child = rt
        .cmd()
        .args(["run", "-b"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    ok(&rt.exec(&["kill", &id, "KILL"]));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn sigterm_to_run_is_forwarded_to_the_container() {
    let rt = Runtime::new("smoke");
    let mut b = Bundle::new("smoke");
    b.sh("trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done");
    let id = unique("fwd");
    let child = rt
        .cmd()
        .args(["run", "-b"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    std::thread::sleep(std::time::Duration::from_millis(200));
    unsafe_kill(child.id() as i32, 15);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "stdout: {}", stdout(&out));
    assert!(stdout(&out).contains("got TERM"));
}

fn unsafe_kill(pid: i32, sig: i32) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// The container's program gets SIGPIPE at its default (the runtime, a Rust program,
/// ignores it, and ignored signals survive execve).
#[test]
fn sigpipe_is_default_in_the_container() {
    let rt = Runtime::new("smoke");
    let mut b = Bundle::new("smoke");
    b.args(&["grep", "SigIgn", "/proc/self/status"]);
    let out = ok(&rt.run(&b, &unique("pipe")));
    let mask = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(mask & (1 << (13 - 1)), 0, "SIGPIPE ignored: {out}");
}

/// `features` prints the OCI features document with the namespaces and hooks supported.
#[test]
fn features_document() {
    let rt = Runtime::new("smoke");
    let out = ok(&rt.exec(&["features"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ociVersionMax"], "1.2.0");
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n == "user"));
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    assert_eq!(v["hooks"].as_array().unwrap().len(), 6);
}
