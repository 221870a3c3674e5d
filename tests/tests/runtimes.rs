//! `--runtime runc`: the same engine driving runc through its command line (shim,
//! logs, exec, pause, stop), and Docker's error for an unknown runtime.

use e2e::*;

#[test]
fn runc_drives_the_container() {
    let d = Daemon::with_busybox();
    let o = ok(&d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo via runc; grep Seccomp: /proc/self/status",
    ]));
    assert_eq!(o, "via runc\nSeccomp:\t2\n");
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "rc",
        "--runtime",
        "runc",
        "busybox",
        "sleep",
        "300",
    ]));
    assert_eq!(ok(&d.docker(&["exec", "rc", "echo", "in"])), "in\n");
    ok(&d.docker(&["pause", "rc"]));
    ok(&d.docker(&["unpause", "rc"]));
    assert!(ok(&d.docker(&["top", "rc"])).contains("sleep 300"));
    ok(&d.docker(&["stop", "-t", "0", "rc"]));
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Runtime}} {{.State.ExitCode}}",
        "rc",
    ]));
    assert_eq!(st.trim(), "runc 137");
    let info = ok(&d.docker(&["info", "--format", "{{json .Runtimes}}"]));
    assert!(
        info.contains("\"runc\"") && info.contains("\"berth\""),
        "{info}"
    );

    let o = d.docker(&["create", "--runtime", "nope", "busybox", "true"]);
    assert!(
        stderr(&o).contains("unknown or invalid runtime name: nope"),
        "{}",
        stderr(&o)
    );
}

/// A runtime that fails at create: the attached `run` reports it and ends.
#[test]
fn a_failing_runtime_ends_the_attached_run() {
    let mut d = Daemon::with_busybox();
    std::fs::write(
        d.dir.join("daemon.json"),
        r#"{"runtimes": {"broken": {"path": "/bin/false"}}}"#,
    )
    .unwrap();
    d.stop();
    d.restart();
    let o = std::process::Command::new("timeout")
        .args([
            "20",
            "docker",
            "run",
            "--runtime",
            "broken",
            "busybox",
            "true",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(124), "docker run hung");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/bin/false create"), "{}", stderr(&o));
}
