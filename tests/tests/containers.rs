//! Containers end to end through the stock docker CLI against a private berthd: run -d,
//! ps, logs, stop, wait, rm, create + start, name conflicts and the errors Docker gives.
//!
//! The image is the busybox fixture (scripts/fixtures.sh) brought in with
//! `docker import`. Every container is removed when the test's Daemon is dropped, also
//! when the test fails.

use std::time::{Duration, Instant};

use e2e::*;

/// `docker run -d`, ps, logs, stop, ps -a, wait, rm.
#[test]
fn run_detached_lifecycle() {
    let d = Daemon::with_busybox();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo hi; sleep 30",
    ]));
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");

    let ps = ok(&d.docker(&["ps"]));
    assert!(ps.contains("web") && ps.contains(&id[..12]), "{ps}");
    assert!(ps.contains("Up "), "{ps}");
    let running = ok(&d.docker(&["inspect", "-f", "{{.State.Running}}", "web"]));
    assert_eq!(running.trim(), "true");

    assert!(
        eventually(10, || stdout(&d.docker(&["logs", "web"])) == "hi\n"),
        "logs: {:?}",
        d.docker(&["logs", "web"])
    );

    let started = Instant::now();
    ok(&d.docker(&["stop", "-t", "1", "web"]));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!ok(&d.docker(&["ps"])).contains("web"));
    let all = ok(&d.docker(&["ps", "-a"]));
    assert!(all.contains("web") && all.contains("Exited ("), "{all}");

    // sh as PID 1 ignores SIGTERM: the stop ends with SIGKILL.
    assert_eq!(ok(&d.docker(&["wait", "web"])).trim(), "137");
    // The log survives the exit.
    assert_eq!(ok(&d.docker(&["logs", "web"])), "hi\n");
    ok(&d.docker(&["rm", "web"]));
    assert!(!ok(&d.docker(&["ps", "-a"])).contains("web"));
    assert!(!d.dir.join("data/containers").join(id).exists());
}

/// `docker create` + `docker start` + `docker wait` gives the exit code.
#[test]
fn create_start_wait_exit_code() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["create", "--name", "three", "busybox", "sh", "-c", "exit 3"]));
    let all = ok(&d.docker(&["ps", "-a"]));
    assert!(all.contains("three") && all.contains("Created"), "{all}");
    ok(&d.docker(&["start", "three"]));
    assert_eq!(ok(&d.docker(&["wait", "three"])).trim(), "3");
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "three",
    ]));
    assert_eq!(st.trim(), "exited 3");
    let all = ok(&d.docker(&["ps", "-a"]));
    assert!(all.contains("Exited (3)"), "{all}");
}

/// Names are unique; a running container is removed only with -f; unknown names are
/// Docker's 404.
#[test]
fn conflicts_and_errors() {
    let d = Daemon::with_busybox();
    let id = ok(&d.docker(&["run", "-d", "--name", "busy", "busybox", "sleep", "30"]));
    let id = id.trim();

    let o = d.docker(&["create", "--name", "busy", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "Conflict. The container name \"/busy\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{}",
        stderr(&o)
    );

    let o = d.docker(&["rm", "busy"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "cannot remove container \"/busy\": container is running: stop the container before removing or force remove"
        ),
        "{}",
        stderr(&o)
    );

    let o = d.docker(&["rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "Error response from daemon: No such container: nosuch"
    );

    // An id prefix names the container too.
    ok(&d.docker(&["rm", "-f", &id[..8]]));
    assert!(!ok(&d.docker(&["ps", "-a"])).contains("busy"));
    // The name is free again.
    ok(&d.docker(&["create", "--name", "busy", "busybox", "true"]));
}

/// `docker kill` and the errors of a missing image and a bad name.
#[test]
fn kill_and_bad_input() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["run", "-d", "--name", "k1", "busybox", "sleep", "30"]));
    ok(&d.docker(&["kill", "k1"]));
    assert_eq!(ok(&d.docker(&["wait", "k1"])).trim(), "137");
    let o = d.docker(&["kill", "k1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));

    let o = d.docker(&["create", "--name", "bad name", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Invalid container name"),
        "{}",
        stderr(&o)
    );

    let (code, body) = d.curl("POST", "/containers/create");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl("GET", "/containers/nosuch/json");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such container: nosuch"), "{body}");
}

/// `logs -f` follows until the exit, `--tail` counts both streams, `--rm` removes the
/// container on exit, and an image in use is not removed.
#[test]
fn logs_follow_auto_remove_and_image_in_use() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done",
    ]));
    let o = d.docker(&["logs", "-f", "talker"]);
    assert_eq!(ok(&o), "out1\nout2\nout3\n");
    assert_eq!(stderr(&o), "err1\nerr2\nerr3\n");
    let o = d.docker(&["logs", "--tail", "1", "talker"]);
    assert_eq!(ok(&o), "");
    assert_eq!(stderr(&o), "err3\n");
    let o = d.docker(&["logs", "-t", "--tail", "2", "talker"]);
    assert!(ok(&o).ends_with(" out3\n"), "{}", stdout(&o));

    let o = d.docker(&["rmi", "busybox"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is using its referenced image"),
        "{}",
        stderr(&o)
    );

    ok(&d.docker(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "gone",
        "--cap-drop",
        "ALL",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5",
    ]));
    assert!(
        eventually(15, || !stdout(&d.docker(&["ps", "-a"])).contains("gone")),
        "--rm container still listed"
    );
}

/// `docker run` attached (the hijacked attach endpoint): output on the right streams,
/// the exit code passed through, also with `--rm` for a container gone at once.
#[test]
fn run_attached() {
    let d = Daemon::with_busybox();
    let o = d.docker(&[
        "run",
        "--name",
        "att",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");
    assert_eq!(stderr(&o), "oops\n");

    let o = d.docker(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 0.3; echo two",
    ]);
    assert_eq!(ok(&o), "one\ntwo\n");

    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo quick; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert_eq!(stdout(&o), "quick\n");
    assert!(eventually(10, || ok(&d.docker(&["ps", "-aq"]))
        .lines()
        .count()
        == 2));
}

/// `--log-driver none` keeps no log (and `logs` says so), `--log-opt` rotates per
/// container, bad drivers and options are refused at create.
#[test]
fn log_driver_and_options() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]));
    let o = d.docker(&["logs", "quiet"]);
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done",
    ]));
    assert_eq!(ok(&d.docker(&["wait", "chatty"])).trim(), "0");
    let dir = d.dir.join("data/containers").join(id.trim());
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .collect();
    assert_eq!(logs.len(), 2, "max-file=2 keeps two files");
    assert!(ok(&d.docker(&["logs", "chatty"])).ends_with("line 299\n"));
    let lc = ok(&d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "chatty"]));
    assert!(lc.contains("\"max-size\":\"1k\""), "{lc}");

    let o = d.docker(&["create", "--log-opt", "max-size=bogus", "busybox", "true"]);
    assert!(
        stderr(&o).contains("invalid size: 'bogus'"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["create", "--log-driver", "nosuch", "busybox", "true"]);
    assert!(
        stderr(&o).contains("no log driver named 'nosuch' is registered"),
        "{}",
        stderr(&o)
    );
}

/// `container prune` takes the stopped containers only, honours `label` and `label!`,
/// and says what it reclaimed in an event.
#[test]
fn container_prune_filters() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["run", "-d", "--name", "up", "busybox", "sleep", "300"]));
    ok(&d.docker(&[
        "create", "--name", "keep", "-l", "keep=1", "busybox", "true",
    ]));
    ok(&d.docker(&["create", "--name", "gone", "busybox", "true"]));
    ok(&d.docker(&["run", "--name", "ran", "-l", "tier=x", "busybox", "true"]));
    let out = ok(&d.docker(&["container", "prune", "-f", "--filter", "label!=keep"]));
    assert!(out.contains("Total reclaimed space"), "{out}");
    let mut names: Vec<String> = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]))
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["keep", "up"]);
    ok(&d.docker(&["container", "prune", "-f", "--filter", "label=keep=1"]));
    let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names.trim(), "up");
    // `--until 0s` is now in whole seconds: let the second of the prunes pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ev = ok(&d.docker(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=prune",
        "--format",
        "{{.Type}} {{.Action}}",
    ]));
    assert_eq!(
        ev.lines().filter(|l| *l == "container prune").count(),
        2,
        "{ev}"
    );
    let o = d.docker(&["container", "prune", "-f", "--filter", "bogus=1"]);
    assert!(
        stderr(&o).contains("invalid filter 'bogus'"),
        "{}",
        stderr(&o)
    );
}

/// The run flags reach the container: limits in its cgroups, `--env-file`, networking
/// (`none` has only lo, `host` the host's links), hostname, /etc/hosts and resolv.conf.
#[test]
fn run_flags_reach_the_container() {
    let d = Daemon::with_busybox();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "300",
    ]));
    let id = id.trim();
    let cg = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/berth/{id}/{file}"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cg("pids", "pids.max"), "50");

    let env_file = d.dir.join("env");
    std::fs::write(&env_file, "# a comment\nFOO=bar\n\nEMPTY=\n").unwrap();
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--env-file",
        env_file.to_str().unwrap(),
        "busybox",
        "sh",
        "-c",
        "echo \"$FOO|${EMPTY-unset}\"",
    ]));
    assert_eq!(out, "bar|\n");

    let links = |net: &str| {
        let mut v: Vec<String> = ok(&d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ls",
            "/sys/class/net",
        ]))
        .split_whitespace()
        .map(str::to_string)
        .collect();
        v.sort();
        v
    };
    assert_eq!(links("none"), ["lo"]);
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(links("host"), host);

    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts; test -s /etc/resolv.conf && echo resolv",
    ]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("box1"));
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.contains("\tbox1"), "{out}");
    assert!(out.ends_with("resolv\n"), "{out}");
    // Without --hostname, Docker's: the short id.
    let out = ok(&d.docker(&["run", "-d", "busybox", "hostname"]));
    let short = &out.trim()[..12];
    ok(&d.docker(&["wait", out.trim()]));
    assert_eq!(ok(&d.docker(&["logs", out.trim()])).trim(), short);
}

/// A `--rm` container can be gone before a client's `wait --condition removed`
/// arrives (`docker run --rm` sends it concurrently): the wait still gets its code.
#[test]
fn wait_removed_after_the_removal() {
    let d = Daemon::with_busybox();
    let id = ok(&d.docker(&["run", "-d", "--rm", "busybox", "sh", "-c", "exit 7"]));
    let id = id.trim();
    assert!(eventually(10, || !ok(&d.docker(&[
        "ps",
        "-aq",
        "--no-trunc"
    ]))
    .contains(id)));
    let (code, body) = d.curl("POST", &format!("/containers/{id}/wait?condition=removed"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"StatusCode\":7"), "{body}");
    let (code, body) = d.curl("POST", &format!("/containers/{id}/wait"));
    assert_eq!(code, 404, "{body}");
    let (code, _) = d.curl("POST", "/containers/..%2F..%2Fetc/wait?condition=removed");
    assert_eq!(code, 404);
}
