//! `docker exec`, pause/unpause, restart, rename, top and `ps --filter` end to end
//! through the stock docker CLI against a private berthd, with Docker's error cases.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::*;

/// Exit codes, env, user, workdir, stdin, detached execs and a missing program.
#[test]
fn exec_runs_in_the_container() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "300",
    ]));
    assert_eq!(ok(&d.docker(&["exec", "box", "echo", "hello"])), "hello\n");
    for code in [0, 4, 77] {
        let o = d.docker(&["exec", "box", "sh", "-c", &format!("exit {code}")]);
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    }
    // Separate streams, and the container's environment under the exec's.
    let o = d.docker(&[
        "exec",
        "-e",
        "FOO=bar",
        "box",
        "sh",
        "-c",
        "echo $FOO$FROM_RUN; echo err >&2",
    ]);
    assert_eq!(stdout(&o), "bar1\n");
    assert_eq!(stderr(&o), "err\n");
    let o = ok(&d.docker(&[
        "exec",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "id -u; id -g; pwd",
    ]));
    assert_eq!(o, "1000\n1000\n/tmp\n");
    // The exec shares the container's pid namespace: sleep is PID 1.
    assert_eq!(
        ok(&d.docker(&["exec", "box", "cat", "/proc/1/cmdline"])),
        "sleep\x00300\x00"
    );

    let out = d.docker_in(&["exec", "-i", "box", "sh", "-c", "tr a-z A-Z"], b"shout\n");
    assert_eq!(stdout(&out), "SHOUT\n");

    ok(&d.docker(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; echo done > /tmp/flag",
    ]));
    assert!(eventually(10, || stdout(&d.docker(&[
        "exec",
        "box",
        "cat",
        "/tmp/flag"
    ])) == "done\n"));

    let o = d.docker(&["exec", "box", "nosuchprogram"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("executable file not found in $PATH"),
        "{} / {}",
        stdout(&o),
        stderr(&o)
    );
    let o = d.docker(&["exec", "box", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stdout(&o));

    // The exec API's own shapes: inspect after the end, an unknown id.
    let (code, body) = d.curl("GET", "/exec/0123456789abcdef/json");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such exec instance"), "{body}");
}

/// A terminal: the exec sees a tty of the size the client gave.
#[test]
fn exec_with_a_terminal() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["run", "-d", "--name", "tt", "busybox", "sleep", "300"]));
    // `script` gives the docker CLI a terminal of 33x111.
    let cmd = format!(
        "stty rows 33 cols 111; DOCKER_HOST={} DOCKER_CONFIG={} docker exec -it tt sh -c 'tty; stty size; exit 3'",
        d.host(),
        d.dir.join("docker-config").display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 111"), "{out}");
    assert_eq!(o.status.code(), Some(3), "{out}");
}

/// Exec into a stopped or paused container, with no command, into no container.
#[test]
fn exec_errors() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["create", "--name", "idle", "busybox", "sleep", "300"]));
    let o = d.docker(&["exec", "idle", "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));

    let o = d.docker(&["exec", "nosuch", "true"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );

    ok(&d.docker(&["start", "idle"]));
    ok(&d.docker(&["pause", "idle"]));
    let o = d.docker(&["exec", "idle", "true"]);
    assert!(
        stderr(&o).contains("is paused, unpause the container before exec"),
        "{}",
        stderr(&o)
    );
    ok(&d.docker(&["unpause", "idle"]));
    let (code, body) = d.curl("POST", "/containers/idle/exec");
    assert_eq!(code, 400, "{body}");
}

/// pause freezes the processes, ps and inspect say so, unpause resumes them; the
/// errors are Docker's.
#[test]
fn pause_and_unpause() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "while true; do date +%s%N >> /tmp/ticks; sleep 0.05; done",
    ]));
    let ticks = || {
        stdout(&d.docker(&["exec", "ticker", "wc", "-l", "/tmp/ticks"]))
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(eventually(10, || ticks() > 2));
    ok(&d.docker(&["pause", "ticker"]));
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "ticker",
    ]));
    assert_eq!(st.trim(), "paused true true");
    assert!(ok(&d.docker(&["ps"])).contains("(Paused)"));
    let paused = ok(&d.docker(&["ps", "--filter", "status=paused", "--format", "{{.Names}}"]));
    assert_eq!(paused.trim(), "ticker");
    let o = d.docker(&["pause", "ticker"]);
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));

    // Frozen: the log does not grow (read from the host: an exec would be refused).
    let log = d.dir.join("data/containers");
    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "ticker"]));
    let file = log.join(id.trim()).join("rootfs/tmp/ticks");
    let before = std::fs::read(&file).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read(&file).unwrap().len(),
        before,
        "ticks while paused"
    );

    ok(&d.docker(&["unpause", "ticker"]));
    assert!(eventually(10, || std::fs::read(&file).unwrap().len() > before));
    let o = d.docker(&["unpause", "ticker"]);
    assert!(stderr(&o).contains("is not paused"), "{}", stderr(&o));

    // A paused container still stops (thawed after the signal).
    ok(&d.docker(&["pause", "ticker"]));
    let t = Instant::now();
    ok(&d.docker(&["stop", "-t", "1", "ticker"]));
    assert!(t.elapsed() < Duration::from_secs(8));
    let o = d.docker(&["pause", "ticker"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

/// restart runs the command again (new pid, same container), rename keeps the id,
/// top lists the processes.
#[test]
fn restart_rename_top() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "r1",
        "busybox",
        "sh",
        "-c",
        "echo run; sleep 300",
    ]));
    let pid1 = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "r1"]));
    ok(&d.docker(&["restart", "-t", "1", "r1"]));
    let pid2 = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}} {{.State.Running}}", "r1"]));
    assert_ne!(pid1.trim(), pid2.split(' ').next().unwrap());
    assert!(pid2.trim().ends_with("true"), "{pid2}");
    assert!(eventually(10, || ok(&d.docker(&["logs", "r1"])) == "run\nrun\n"));
    // Restarting twice in a row: the first run's shim must not take the socket along.
    ok(&d.docker(&["restart", "-t", "0", "r1"]));
    std::thread::sleep(Duration::from_millis(200));
    ok(&d.docker(&["restart", "-t", "0", "r1"]));
    ok(&d.docker(&["exec", "r1", "true"]));

    let top = ok(&d.docker(&["top", "r1"]));
    assert!(top.contains("PID") && top.contains("sleep 300"), "{top}");
    let top = ok(&d.docker(&["top", "r1", "-o", "pid,comm"]));
    assert!(
        top.lines().any(|l| l.trim_end().ends_with("sleep")),
        "{top}"
    );

    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "r1"]));
    ok(&d.docker(&["rename", "r1", "r2"]));
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.Id}} {{.Name}}", "r2"])),
        format!("{} /r2\n", id.trim())
    );
    let o = d.docker(&["inspect", "r1"]);
    assert!(!o.status.success());
    ok(&d.docker(&["create", "--name", "other", "busybox", "true"]));
    let o = d.docker(&["rename", "r2", "other"]);
    assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
    let o = d.docker(&["rename", "r2", "r2"]);
    assert!(stderr(&o).contains("same name"), "{}", stderr(&o));
    let o = d.docker(&["rename", "r2", "bad name"]);
    assert!(
        stderr(&o).contains("Invalid container name"),
        "{}",
        stderr(&o)
    );

    // `start -a` of an exited container shows this run's output only.
    ok(&d.docker(&["run", "--name", "again", "busybox", "echo", "once"]));
    assert_eq!(ok(&d.docker(&["start", "-a", "again"])), "once\n");
    assert_eq!(ok(&d.docker(&["logs", "again"])), "once\nonce\n");

    let o = d.docker(&["top", "other"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

/// `ps` filters as dockerd applies them, and its errors.
#[test]
fn ps_filters() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web-1",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "300",
    ]));
    let o = d.docker(&[
        "run",
        "--name",
        "job-3",
        "-l",
        "tier=back",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    ok(&d.docker(&["create", "--name", "fresh", "busybox", "true"]));
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = ok(&d.docker(&a)).lines().map(str::to_string).collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names(&[]), "web-1");
    assert_eq!(names(&["-a"]), "fresh,job-3,web-1");
    assert_eq!(names(&["-a", "--filter", "status=exited"]), "job-3");
    assert_eq!(names(&["--filter", "status=created"]), "fresh");
    assert_eq!(names(&["-a", "--filter", "exited=3"]), "job-3");
    assert_eq!(names(&["-a", "--filter", "label=tier=front"]), "web-1");
    assert_eq!(names(&["-a", "--filter", "label=tier"]), "job-3,web-1");
    assert_eq!(names(&["-a", "--filter", "name=^job"]), "job-3");
    assert_eq!(
        names(&["-a", "--filter", "ancestor=busybox"]),
        "fresh,job-3,web-1"
    );
    assert_eq!(names(&["-a", "--filter", "ancestor=nosuch"]), "");
    assert_eq!(names(&["-a", "--filter", "since=job-3"]), "fresh");
    assert_eq!(names(&["-a", "--filter", "before=job-3"]), "web-1");
    assert_eq!(names(&["-a", "-n", "1"]), "fresh");
    assert_eq!(names(&["-l"]), "fresh");

    let o = d.docker(&["ps", "--filter", "bogus=1"]);
    assert!(
        stderr(&o).contains("invalid filter 'bogus'"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["ps", "--filter", "status=sleepy"]);
    assert!(
        stderr(&o).contains("invalid filter 'status=sleepy'"),
        "{}",
        stderr(&o)
    );
}
