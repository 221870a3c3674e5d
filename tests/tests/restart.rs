//! Restart policies through the stock docker CLI: on-failure with a retry limit,
//! always until a manual stop, what a daemon restart brings back, and Docker's errors.

use std::time::Duration;

use e2e::*;

fn inspect(d: &Daemon, fmt: &str, name: &str) -> String {
    ok(&d.docker(&["inspect", "-f", fmt, name]))
        .trim()
        .to_string()
}

#[test]
fn on_failure_and_always() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]));
    assert!(eventually(15, || inspect(
        &d,
        "{{.RestartCount}} {{.State.Status}}",
        "flaky"
    ) == "2 exited"));
    assert_eq!(ok(&d.docker(&["logs", "flaky"])), "try\ntry\ntry\n");
    assert_eq!(
        inspect(
            &d,
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "flaky"
        ),
        "on-failure 2"
    );
    // A clean exit is no failure.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect(&d, "{{.RestartCount}} {{.State.ExitCode}}", "fine"),
        "0 0"
    );

    assert!(eventually(15, || {
        inspect(&d, "{{.RestartCount}}", "forever")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    }));
    ok(&d.docker(&["stop", "-t", "1", "forever"]));
    let n = inspect(&d, "{{.RestartCount}}", "forever");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&d, "{{.RestartCount}} {{.State.Status}}", "forever"),
        format!("{n} exited")
    );
    // A user's start resets the count.
    ok(&d.docker(&["start", "forever"]));
    ok(&d.docker(&["stop", "-t", "0", "forever"]));
    assert_eq!(inspect(&d, "{{.RestartCount}}", "forever"), "0");
}

#[test]
fn daemon_restart_and_errors() {
    let mut d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "300",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "unl",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ]));
    ok(&d.docker(&["stop", "-t", "0", "alw"]));
    ok(&d.docker(&["stop", "-t", "0", "unl"]));
    d.stop();
    d.restart();
    // `always` comes back with the daemon even after a manual stop; `unless-stopped`
    // does not.
    assert!(eventually(10, || inspect(&d, "{{.State.Status}}", "alw") == "running"));
    assert_eq!(inspect(&d, "{{.State.Status}}", "unl"), "exited");

    let o = d.docker(&["create", "--restart", "sometimes", "busybox", "true"]);
    assert!(
        stderr(&o).contains(
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["create", "--restart", "always:3", "busybox", "true"]);
    assert!(
        stderr(&o).contains("maximum retry count can only be used with 'on-failure'"),
        "{}",
        stderr(&o)
    );
    let (code, body) = d.curl_json(
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("can't create 'AutoRemove' container with restart policy"),
        "{body}"
    );
}
