//! berth's own container commands end to end against a private berthd: run (attached,
//! detached, interactive, with a TTY), create/start/stop/kill/restart/rm/wait/rename,
//! pause, ps, logs, exec, attach, inspect, cp, diff, commit, export, top, events,
//! system df, `--help`, and the errors and exit codes docker gives.
//!
//! The image is the busybox fixture brought in with `docker import`; every container
//! is removed when the test's Daemon is dropped.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use e2e::*;

/// `berth ARGS` under `script`, so it has a terminal; `input` is typed after a pause.
fn berth_tty(d: &Daemon, args: &str, input: &[u8]) -> Output {
    let cmd = format!("{} -H {} {args}", bin("berth").display(), d.host());
    let mut child = Command::new("timeout")
        .args(["20", "script", "-qec", &cmd, "/dev/null"])
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if !input.is_empty() {
        std::thread::sleep(Duration::from_millis(800));
        stdin.write_all(input).unwrap();
        std::thread::sleep(Duration::from_millis(800));
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Asserts that `o` exited with `want` and wrote exactly `err` to stderr.
#[track_caller]
fn fails_with(o: &Output, want: i32, err: &str) {
    assert_eq!(code(o), want, "{o:?}");
    assert_eq!(stderr(o), err);
}

/// Asserts that `o` failed as docker does for a missing container `name`.
#[track_caller]
fn no_such_container(o: &Output, name: &str) {
    fails_with(
        o,
        1,
        &format!("Error response from daemon: No such container: {name}\n"),
    );
}

/// Attached run: output split to stdout/stderr, the container's exit code, 127 for a
/// missing executable, 125 for daemon errors, and the flags that shape the process.
#[test]
fn run_attached_exit_codes_and_flags() {
    let d = Daemon::with_busybox();
    let o = d.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(ok(&o), "hello\n");

    let o = d.berth(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{o:?}");
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    let o = d.berth(&["run", "busybox", "nope"]);
    assert_eq!(code(&o), 127, "{o:?}");
    let err = stderr(&o);
    assert!(
        err.starts_with("Error response from daemon: ")
            && err.contains("executable file not found"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let o = d.berth(&["run", "--name", "dup", "busybox", "true"]);
    ok(&o);
    let o = d.berth(&["run", "--name", "dup", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        stderr(&o).starts_with("Error response from daemon: Conflict."),
        "{}",
        stderr(&o)
    );

    let o = d.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        stderr(&o).contains("conflicting options: cannot specify both --restart and --rm"),
        "{o:?}"
    );

    let o = d.berth(&[
        "run",
        "--name",
        "flags",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1:2",
        "--hostname",
        "hn",
        "-l",
        "k=v",
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(ok(&o), "1 /tmp 1:2 hn\n");
    let labels = ok(&d.berth(&["inspect", "-f", "{{.Config.Labels.k}}", "flags"]));
    assert_eq!(labels, "v\n");

    // --rm waits for removal: the container is gone when run returns.
    ok(&d.berth(&["run", "--rm", "--name", "gone", "busybox", "true"]));
    let o = d.berth(&["container", "inspect", "gone"]);
    no_such_container(&o, "gone");
}

/// `-i` sends stdin and half-closes it at EOF; `-d` prints the ID.
#[test]
fn run_interactive_and_detached() {
    let d = Daemon::with_busybox();
    let o = d.berth_in(&["run", "-i", "--rm", "busybox", "cat"], b"piped\n");
    assert_eq!(ok(&o), "piped\n");

    let id = ok(&d.berth(&["run", "-d", "--name", "bg", "busybox", "sleep", "30"]));
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let running = ok(&d.berth(&["inspect", "-f", "{{.State.Running}}", "bg"]));
    assert_eq!(running, "true\n");
}

/// With `-t` the output is the TTY's, and the exit code still comes through.
#[test]
fn run_and_exec_with_tty() {
    let d = Daemon::with_busybox();
    let o = berth_tty(&d, "run -t --rm busybox sh -c 'tty; exit 5'", b"");
    assert_eq!(code(&o), 5, "{o:?}");
    assert!(stdout(&o).contains("/dev/pts/"), "{o:?}");

    ok(&d.berth(&["run", "-d", "--name", "tt", "busybox", "sleep", "30"]));
    let o = berth_tty(&d, "exec -it tt sh", b"echo in-$((1+1))\nexit 6\n");
    assert_eq!(code(&o), 6, "{o:?}");
    assert!(stdout(&o).contains("in-2"), "{o:?}");

    // Without a terminal, -it is refused as docker does.
    let o = d.berth(&["run", "-it", "busybox", "true"]);
    fails_with(&o, 1, "the input device is not a TTY\n");
}

/// create, start, stop, kill, restart, wait, rm, rename and their errors.
#[test]
fn lifecycle_commands() {
    let d = Daemon::with_busybox();
    let id = ok(&d.berth(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]));
    assert_eq!(id.trim().len(), 64);
    assert_eq!(ok(&d.berth(&["start", "c1"])), "c1\n");
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "c1"])),
        "running\n"
    );
    assert_eq!(ok(&d.berth(&["stop", "-t", "1", "c1"])), "c1\n");
    assert_eq!(ok(&d.berth(&["wait", "c1"])), "7\n");

    assert_eq!(ok(&d.berth(&["container", "start", "c1"])), "c1\n");
    assert_eq!(ok(&d.berth(&["kill", "c1"])), "c1\n");
    assert_eq!(ok(&d.berth(&["wait", "c1"])), "137\n");
    assert_eq!(ok(&d.berth(&["start", "c1"])), "c1\n");
    assert_eq!(ok(&d.berth(&["kill", "-s", "TERM", "c1"])), "c1\n");
    assert_eq!(ok(&d.berth(&["container", "wait", "c1"])), "7\n");

    let o = d.berth(&["stop", "nope"]);
    no_such_container(&o, "nope");
    let o = d.berth(&["start", "nope"]);
    fails_with(&o, 1, "Error response from daemon: No such container: nope\nError: failed to start containers: nope\n");
    let o = d.berth(&["kill", "c1"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is not running"), "{o:?}");

    // rm: a running container needs -f; several names, errors after.
    ok(&d.berth(&["run", "-d", "--name", "r1", "busybox", "sleep", "30"]));
    let o = d.berth(&["rm", "r1"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{o:?}"
    );
    let o = d.berth(&["rm", "-f", "r1", "nope", "c1"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "r1\nc1\n");
    assert_eq!(
        stderr(&o),
        "Error response from daemon: No such container: nope\n"
    );
    assert_eq!(ok(&d.berth(&["ps", "-aq"])), "");

    // create errors exit 1, as docker's.
    let o = d.berth(&["create", "busybox:nope", "true"]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stderr(&o).contains("Error response from daemon: "), "{o:?}");
}

/// restart, rename, pause/unpause (endpoints landing separately).
#[test]
fn restart_rename_pause() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&["run", "-d", "--name", "pp", "busybox", "sleep", "30"]));
    let started = |d: &Daemon| ok(&d.berth(&["inspect", "-f", "{{.State.StartedAt}}", "pp"]));
    let before = started(&d);
    assert_eq!(ok(&d.berth(&["restart", "-t", "1", "pp"])), "pp\n");
    assert_ne!(started(&d), before);
    assert_eq!(ok(&d.berth(&["pause", "pp"])), "pp\n");
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "pp"])),
        "paused\n"
    );
    assert_eq!(ok(&d.berth(&["unpause", "pp"])), "pp\n");
    assert_eq!(ok(&d.berth(&["rename", "pp", "qq"])), "");
    assert_eq!(
        ok(&d.berth(&["ps", "--format", "{{.Names}} {{.State}}"])),
        "qq running\n"
    );
    let o = d.berth(&["rename", "nope", "xx"]);
    no_such_container(&o, "nope");
}

/// ps: columns, -a -q -n -l --no-trunc --filter --format (table, json, template).
#[test]
fn ps_listing() {
    let d = Daemon::with_busybox();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "up",
        "-l",
        "role=web",
        "busybox",
        "sh",
        "-c",
        "sleep 30; echo a long command line",
    ]));
    let id = id.trim().to_string();
    ok(&d.berth(&["create", "--name", "new", "busybox", "true"]));

    let ps = ok(&d.berth(&["ps"]));
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 2, "{ps}");
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED"),
        "{ps}"
    );
    assert!(lines[0].ends_with("STATUS    PORTS     NAMES") || lines[0].contains("PORTS"));
    assert!(lines[1].starts_with(&id[..12]), "{ps}");
    assert!(
        lines[1].contains("\"sh -c ") && lines[1].contains("…\""),
        "{ps}"
    );
    assert!(lines[1].contains("Up ") && lines[1].ends_with("up"), "{ps}");

    // Same rows as docker's (minus the columns that move with the clock).
    let cols = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t{{.Labels}}\t{{.State}}";
    let docker_ps = ok(&d.docker(&["ps", "-a", "--format", cols]));
    let berth_ps = ok(&d.berth(&["ps", "-a", "--format", cols]));
    assert_eq!(berth_ps.lines().count(), 3, "{berth_ps}");
    assert_eq!(docker_ps, berth_ps);
    let docker_ps = ok(&d.docker(&["ps", "-a", "--no-trunc", "--format", "{{json .}}"]));
    let berth_ps = ok(&d.berth(&["ps", "-a", "--no-trunc", "--format", "{{json .}}"]));
    let keys = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            })
            .collect()
    };
    assert_eq!(keys(&docker_ps), keys(&berth_ps));

    assert_eq!(ok(&d.berth(&["ps", "-q"])), format!("{}\n", &id[..12]));
    assert_eq!(ok(&d.berth(&["ps", "-q", "--no-trunc"])), format!("{id}\n"));
    assert_eq!(ok(&d.berth(&["ps", "-aq"])).lines().count(), 2);
    assert_eq!(
        ok(&d.berth(&["ps", "-l", "--format", "{{.Names}}"])),
        "new\n"
    );
    assert_eq!(
        ok(&d.berth(&["container", "ls", "-n", "2", "--format", "{{.Names}}"])),
        "new\nup\n"
    );
    assert_eq!(
        ok(&d.berth(&[
            "container",
            "list",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}"
        ])),
        "new\n"
    );
    assert_eq!(
        ok(&d.berth(&[
            "ps",
            "-a",
            "-f",
            "label=role=web",
            "--format",
            "{{.Names}} {{.Labels}}"
        ])),
        "up role=web\n"
    );
    let table = ok(&d.berth(&["ps", "--format", "table {{.Names}}\t{{.State}}"]));
    assert_eq!(table, "NAMES     STATE\nup        running\n");
    let json = ok(&d.berth(&["ps", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Names"], "up");
    assert_eq!(v["ID"], &id[..12]);
    assert_eq!(v["State"], "running");
    let sized = ok(&d.berth(&["ps", "-s"]));
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");

    let o = d.berth(&["ps", "--filter", "bogus"]);
    assert_eq!(code(&o), 125, "{o:?}");
}

/// logs (tail, timestamps, since, follow) and inspect: containers first, then images.
#[test]
fn logs_and_inspect() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&[
        "run",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 0.2; echo three",
    ]));
    let o = d.berth(&["logs", "lg"]);
    assert_eq!(ok(&o), "one\nthree\n");
    assert_eq!(stderr(&o), "two\n");
    assert_eq!(ok(&d.berth(&["logs", "--tail", "1", "lg"])), "three\n");
    let ts = ok(&d.berth(&["logs", "-t", "lg"]));
    assert!(
        ts.lines()
            .all(|l| l.len() > 31 && l.as_bytes()[4] == b'-' && l.contains("Z ")),
        "{ts}"
    );
    assert_eq!(
        ok(&d.berth(&["logs", "--since", "1h", "lg"])),
        "one\nthree\n"
    );
    assert_eq!(
        ok(&d.berth(&["logs", "--since", "2099-01-01T00:00:00Z", "lg"])),
        ""
    );
    assert_eq!(ok(&d.berth(&["logs", "--until", "2000-01-01", "lg"])), "");

    // -f ends when the container does.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "fo",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]));
    assert_eq!(ok(&d.berth(&["logs", "-f", "fo"])), "a\nb\n");

    let o = d.berth(&["logs", "nope"]);
    no_such_container(&o, "nope");

    // inspect tries containers first, then images.
    assert_eq!(ok(&d.berth(&["inspect", "-f", "{{.Name}}", "lg"])), "/lg\n");
    let img = ok(&d.berth(&["inspect", "-f", "{{.Id}}", "busybox"]));
    assert!(img.starts_with("sha256:"), "{img}");
    let c = ok(&d.berth(&["container", "inspect", "lg"]));
    let v: serde_json::Value = serde_json::from_str(&c).unwrap();
    assert_eq!(v[0]["State"]["ExitCode"], 0);
    let o = d.berth(&["inspect", "--type", "container", "busybox"]);
    fails_with(&o, 1, "Error: No such container: busybox\n");
}

/// exec: output, exit code, -e -w -u, -i stdin, -d, errors.
#[test]
fn exec_commands() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "30"]));
    let o = d.berth(&["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(code(&o), 4, "{o:?}");
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = d.berth(&[
        "container",
        "exec",
        "-e",
        "X=y",
        "-w",
        "/etc",
        "-u",
        "7",
        "ex",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(ok(&o), "y /etc 7\n");
    let o = d.berth_in(&["exec", "-i", "ex", "cat"], b"through\n");
    assert_eq!(ok(&o), "through\n");
    assert_eq!(ok(&d.berth(&["exec", "-d", "ex", "touch", "/tmp/d"])), "");
    assert!(eventually(5, || d
        .berth(&["exec", "ex", "test", "-f", "/tmp/d"])
        .status
        .success()));

    let o = d.berth(&["exec", "ex", "nope"]);
    assert_eq!(code(&o), 127, "{o:?}");
    let o = d.berth(&["exec", "nope", "true"]);
    no_such_container(&o, "nope");
}

/// start -a and attach: the container's output and exit code.
#[test]
fn start_attached_and_attach() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&[
        "create",
        "--name",
        "aa",
        "busybox",
        "sh",
        "-c",
        "echo from-a; exit 9",
    ]));
    let o = d.berth(&["start", "-a", "aa"]);
    assert_eq!(code(&o), 9, "{o:?}");
    assert_eq!(stdout(&o), "from-a\n");

    ok(&d.berth(&["create", "-i", "--name", "ai", "busybox", "cat"]));
    let o = d.berth_in(&["start", "-ai", "ai"], b"echoed\n");
    assert_eq!(ok(&o), "echoed\n");

    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "bb",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo late; exit 2",
    ]));
    let o = d.berth(&["attach", "bb"]);
    assert_eq!(code(&o), 2, "{o:?}");
    assert_eq!(stdout(&o), "late\n");

    let o = d.berth(&["attach", "aa"]);
    fails_with(
        &o,
        1,
        "You cannot attach to a stopped container, start it first\n",
    );
}

/// cp both ways, diff, commit, export, top (endpoints landing separately).
#[test]
fn cp_diff_commit_export_top() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "fs",
        "busybox",
        "sh",
        "-c",
        "echo data > /made; sleep 30",
    ]));
    assert!(eventually(5, || d
        .berth(&["exec", "fs", "test", "-f", "/made"])
        .status
        .success()));

    let local = d.dir.join("cp-out");
    std::fs::create_dir_all(&local).unwrap();
    ok(&d.berth(&["cp", "fs:/made", local.join("copy").to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(local.join("copy")).unwrap(),
        "data\n"
    );
    ok(&d.berth(&["cp", "fs:/made", local.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(local.join("made")).unwrap(),
        "data\n"
    );

    let src = d.dir.join("to-container.txt");
    std::fs::write(&src, "incoming\n").unwrap();
    ok(&d.berth(&["container", "cp", src.to_str().unwrap(), "fs:/tmp/"]));
    assert_eq!(
        ok(&d.berth(&["exec", "fs", "cat", "/tmp/to-container.txt"])),
        "incoming\n"
    );
    ok(&d.berth(&["cp", src.to_str().unwrap(), "fs:/renamed"]));
    assert_eq!(
        ok(&d.berth(&["exec", "fs", "cat", "/renamed"])),
        "incoming\n"
    );
    let o = d.berth(&["cp", "/a", "/b"]);
    fails_with(&o, 1, "must specify at least one container source\n");

    let diff = ok(&d.berth(&["diff", "fs"]));
    assert!(diff.lines().any(|l| l == "A /made"), "{diff}");

    let top = ok(&d.berth(&["top", "fs"]));
    assert!(top.starts_with("UID "), "{top}");
    assert!(top.contains("sleep 30"), "{top}");

    let tar = d.dir.join("fs.tar");
    ok(&d.berth(&["export", "-o", tar.to_str().unwrap(), "fs"]));
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert!(ok(&list)
        .lines()
        .any(|l| l.trim_start_matches("./") == "made"));

    let img = ok(&d.berth(&["commit", "-m", "msg", "fs", "snap:v1"]));
    assert!(img.starts_with("sha256:"), "{img}");
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "snap:v1", "cat", "/made"])),
        "data\n"
    );
}

/// events (bounded by --until) and system df.
#[test]
fn events_and_system_df() {
    let d = Daemon::with_busybox();
    ok(&d.berth(&["run", "--name", "ev", "busybox", "true"]));
    std::thread::sleep(Duration::from_millis(1100));
    let o = d.berth(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=container",
    ]);
    let ev = ok(&o);
    let start = ev
        .lines()
        .find(|l| l.contains(" container start "))
        .unwrap_or_else(|| panic!("{ev}"));
    assert!(start.contains("name=ev"), "{start}");
    assert_eq!(start.as_bytes()[10], b'T', "{start}");
    let json = ok(&d.berth(&[
        "system",
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--format",
        "{{.Action}}",
        "--filter",
        "event=die",
    ]));
    assert_eq!(json, "die\n");

    let df = ok(&d.berth(&["system", "df"]));
    let lines: Vec<&str> = df.lines().collect();
    assert_eq!(
        lines[0], "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE",
        "{df}"
    );
    assert!(lines[1].starts_with("Images          1 "), "{df}");
    assert!(lines[2].starts_with("Containers      1 "), "{df}");
    let v = ok(&d.berth(&["system", "df", "-v"]));
    assert!(v.starts_with("Images space usage:"), "{v}");
    assert!(v.contains("ev"), "{v}");
}

/// Every container command answers --help with its usage, without a daemon.
#[test]
fn help_for_every_command() {
    let cmds: &[&[&str]] = &[
        &["run"],
        &["create"],
        &["start"],
        &["stop"],
        &["kill"],
        &["restart"],
        &["rm"],
        &["ps"],
        &["logs"],
        &["wait"],
        &["rename"],
        &["top"],
        &["pause"],
        &["unpause"],
        &["attach"],
        &["exec"],
        &["cp"],
        &["diff"],
        &["commit"],
        &["export"],
        &["inspect"],
        &["events"],
        &["system", "df"],
        &["container"],
        &["container", "ls"],
        &["container", "run"],
        &["container", "exec"],
        &["container", "inspect"],
    ];
    for c in cmds {
        let mut args = c.to_vec();
        args.push("--help");
        let o = Command::new(bin("berth"))
            .args(&args)
            .env("BERTH_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        let out = stdout(&o);
        assert!(out.starts_with("Usage:  berth "), "{args:?}: {out}");
    }
    let o = Command::new(bin("berth"))
        .args(["run", "--bogus", "x"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).starts_with("unknown flag: --bogus"), "{o:?}");
}
