//! End-to-end tests of berth-shim with the built-in runtime (and runc when installed).
//! Run as root: they create real containers.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use shim::client::Client;
use shim::frame::{STDERR, STDOUT};
use shim::proto::{AttachOptions, Status};

/// An attach stream on a new client.
fn attach(f: &Fixture, opts: AttachOptions) -> UnixStream {
    f.client().attach(opts).unwrap()
}

/// Attach options for stdin, stdout and stderr.
fn all_streams() -> AttachOptions {
    AttachOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    }
}

/// A new client that has started the container.
fn started(f: &Fixture) -> Client {
    let mut c = f.client();
    c.start().unwrap();
    c
}

#[test]
fn logs_lines_with_stream_and_time_and_records_exit_code() {
    let mut f = Fixture::new(
        "logs",
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; printf partial; exit 3",
        ],
    );
    let s = f.spawn();
    assert!(s.shim_pid > 0 && s.container_pid > 0);
    let mut c = f.client();
    assert_eq!(c.state().unwrap().status, Status::Created);
    c.start().unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(exit.code, 3);
    assert!(!exit.oom_killed);
    assert!(exit.finished_at.ends_with('Z'), "{}", exit.finished_at);

    let file = f.exit_file().expect("exit file written");
    assert_eq!(file["code"], 3);
    assert_eq!(file["oom_killed"], false);
    assert_eq!(file["finished_at"], exit.finished_at.as_str());

    let entries = f.log_entries();
    let of = |stream: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["stream"] == stream)
            .map(|e| e["log"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(of("stdout"), vec!["out1\n", "out2\n", "partial"]);
    assert_eq!(of("stderr"), vec!["err1\n"]);
    for e in &entries {
        let t = e["time"].as_str().unwrap();
        assert!(
            log::time::parse_rfc3339(t.as_bytes()).is_some(),
            "time {t:?} is RFC 3339"
        );
    }

    let st = c.state().unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.pid, 0);
    assert_eq!(st.exit.unwrap().code, 3);
    assert!(st.started_at.is_some());
    // The runtime's state and cgroup are gone once the exit is recorded.
    assert!(!f.opts.runtime_root.join(&f.id).exists());
    // A second wait answers at once.
    assert_eq!(c.wait().unwrap().code, 3);
    assert!(c.start().is_err(), "an exited container cannot start");
    c.shutdown().unwrap();
    assert!(
        eventually(5, || !alive(s.shim_pid)),
        "shim exits on shutdown"
    );
    assert!(!f.opts.socket.exists(), "socket removed");
}

#[test]
fn kill_records_128_plus_signal() {
    let mut f = Fixture::new("kill9", &["sleep", "1000"]);
    f.spawn();
    let mut c = started(&f);
    assert_eq!(c.state().unwrap().status, Status::Running);
    assert!(c.shutdown().is_err(), "shutdown refused while running");
    c.kill(9, false).unwrap();
    assert_eq!(c.wait().unwrap().code, 137);
    assert_eq!(f.exit_file().unwrap()["code"], 137);
    assert!(c.kill(9, false).is_err(), "kill after exit is an error");

    // SIGTERM kills an init only outside a pid namespace (a namespace's init ignores
    // signals it has no handler for).
    let mut g = Fixture::new("kill15", &["sleep", "1000"]);
    g.no_pid_namespace();
    g.spawn();
    let mut c = started(&g);
    c.kill(15, false).unwrap();
    assert_eq!(c.wait().unwrap().code, 143);
}

#[test]
fn attach_gets_frames_and_stdin_reaches_the_container() {
    let mut f = Fixture::new("attach", &["cat"]);
    f.opts.stdin = true;
    f.spawn();
    let mut a = attach(&f, all_streams());
    let mut c = started(&f);
    a.write_all(b"hello shim\n").unwrap();
    let frames = read_frames(&mut a, |fr| {
        stream_text(fr, STDOUT).contains("hello shim\n")
    });
    assert_eq!(stream_text(&frames, STDOUT), "hello shim\n");
    a.write_all(b"second\n").unwrap();
    let frames = read_frames(&mut a, |fr| stream_text(fr, STDOUT).contains("second\n"));
    assert_eq!(frames[0], (STDOUT, b"second\n".to_vec()));
    // EOF on stdin ends cat; the attach stream ends with the container.
    c.close_stdin().unwrap();
    assert_eq!(c.wait().unwrap().code, 0);
    let rest = read_frames(&mut a, |_| false);
    assert!(rest.is_empty(), "{rest:?}");
    let logged: Vec<_> = f
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(logged, vec!["hello shim\n", "second\n"]);
}

#[test]
fn attach_separates_stdout_and_stderr_and_several_clients_see_it() {
    let mut f = Fixture::new(
        "attach2",
        &["sh", "-c", "read x; echo to-out; echo to-err >&2"],
    );
    f.opts.stdin = true;
    f.spawn();
    let opts = AttachOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut a = attach(&f, opts.clone());
    let mut b = attach(&f, opts);
    let mut only_err = attach(
        &f,
        AttachOptions {
            stderr: true,
            ..Default::default()
        },
    );
    // A client that detaches does not affect the container or the others.
    drop(f.client().attach(AttachOptions {
        stdout: true,
        ..Default::default()
    }));
    let mut input = attach(
        &f,
        AttachOptions {
            stdin: true,
            ..Default::default()
        },
    );
    let mut c = started(&f);
    input.write_all(b"go\n").unwrap();
    for s in [&mut a, &mut b] {
        let frames = read_frames(s, |_| false);
        assert_eq!(stream_text(&frames, STDOUT), "to-out\n");
        assert_eq!(stream_text(&frames, STDERR), "to-err\n");
    }
    let frames = read_frames(&mut only_err, |_| false);
    assert_eq!(frames, vec![(STDERR, b"to-err\n".to_vec())]);
    assert_eq!(c.wait().unwrap().code, 0);
}

#[test]
fn attach_with_logs_replays_the_log_first() {
    let mut f = Fixture::new("replay", &["sh", "-c", "echo early; read x; echo late"]);
    f.opts.stdin = true;
    f.spawn();
    let _c = started(&f);
    assert!(eventually(10, || f.log_entries().len() == 1));
    let mut a = attach(
        &f,
        AttachOptions {
            stdin: true,
            stdout: true,
            logs: true,
            ..Default::default()
        },
    );
    a.write_all(b"\n").unwrap();
    let frames = read_frames(&mut a, |_| false);
    assert_eq!(stream_text(&frames, STDOUT), "early\nlate\n");
}

#[test]
fn tty_attach_is_raw_and_resize_works() {
    let mut f = Fixture::new("tty", &["sh", "-c", "read x; stty size; echo done"]);
    f.tty();
    f.opts.stdin = true;
    f.spawn();
    let mut c = f.client();
    c.resize(33, 101).unwrap();
    let mut a = attach(&f, all_streams());
    c.start().unwrap();
    a.write_all(b"go\r").unwrap();
    let out = read_until(&mut a, "done");
    assert!(out.contains("33 101"), "{out:?}");
    // Raw bytes: the terminal's echo and CRLF, no frame headers.
    assert!(out.contains("go\r\n"), "{out:?}");
    assert!(!out.as_bytes().contains(&0u8), "{out:?}");
    assert_eq!(c.wait().unwrap().code, 0);
    assert!(f
        .log_entries()
        .iter()
        .any(|e| e["log"] == "33 101\r\n" && e["stream"] == "stdout"));

    let mut g = Fixture::new("notty", &["true"]);
    g.spawn();
    assert!(
        g.client().resize(10, 10).is_err(),
        "resize without a terminal"
    );
}

#[test]
fn the_shim_outlives_its_caller() {
    let mut f = Fixture::new("outlive", &["sleep", "1000"]);
    // The caller is a shell that runs the shim and exits.
    let line_file = f.dir.join("startup");
    let cmd = f.opts.command();
    let mut argv = vec![cmd.get_program().to_owned()];
    argv.extend(cmd.get_args().map(|a| a.to_owned()));
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let script = format!("{} > '{}'", quoted.join(" "), line_file.display());
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(sh.success());
    let line = std::fs::read_to_string(&line_file).unwrap();
    let s = shim::client::parse_startup(line.trim()).unwrap();
    f.spawned = Some(s);
    let ppid = std::fs::read_to_string(format!("/proc/{}/stat", s.shim_pid))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u32>()
        .unwrap();
    assert_ne!(ppid, std::process::id(), "the shim is not our child");
    let mut c = started(&f);
    std::thread::sleep(Duration::from_millis(200));
    let st = c.state().unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.pid, s.container_pid);
    assert!(alive(s.container_pid));
}

#[test]
fn a_second_client_after_the_first_disconnected() {
    let mut f = Fixture::new("clients", &["sleep", "1000"]);
    f.spawn();
    {
        let mut c = f.client();
        c.start().unwrap();
    }
    {
        let mut c = f.client();
        assert_eq!(c.state().unwrap().status, Status::Running);
        // Leave with a wait pending: the shim must not mind.
        c.stream()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(c.wait().is_err());
    }
    let mut c = f.client();
    c.pause().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Paused);
    c.resume().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    // Bad input gets an error answer and the connection stays usable.
    let mut raw = f.client();
    raw.stream()
        .try_clone()
        .unwrap()
        .write_all(b"{\"op\":\"bogus\"}\n")
        .unwrap();
    assert!(
        raw.state().is_err(),
        "the bogus request's error comes first"
    );
    assert_eq!(raw.state().unwrap().status, Status::Running);
}

#[test]
fn the_shim_exits_on_its_own_after_the_exit_is_recorded() {
    let mut f = Fixture::new("linger", &["true"]);
    let s = f.spawn();
    let mut c = started(&f);
    assert_eq!(c.wait().unwrap().code, 0);
    drop(c);
    // Default linger is 10 s with no client connected.
    assert!(
        eventually(20, || !alive(s.shim_pid)),
        "shim lingers forever"
    );
    assert_eq!(f.exit_file().unwrap()["code"], 0);
}

#[test]
fn start_up_errors_reach_the_caller() {
    let mut f = Fixture::new("bad", &["true"]);
    std::fs::remove_file(f.opts.bundle.join("config.json")).unwrap();
    let err = shim::client::spawn(&f.opts).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    assert!(!f.opts.socket.exists());
    f.opts.id = "bad/id".into();
    assert!(shim::client::spawn(&f.opts).is_err());
}

#[test]
fn runc_through_its_command_line() {
    let Some(runc) = ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("runc not installed: skipped");
        return;
    };
    let mut f = Fixture::new("runc", &["sh", "-c", "echo via-runc; read x; echo bye >&2"]);
    f.opts.runtime = Some(runc.into());
    f.opts.stdin = true;
    let s = f.spawn();
    let mut a = attach(&f, all_streams());
    let mut c = started(&f);
    assert_eq!(c.state().unwrap().pid, s.container_pid);
    a.write_all(b"\n").unwrap();
    let frames = read_frames(&mut a, |_| false);
    assert_eq!(stream_text(&frames, STDOUT), "via-runc\n");
    assert_eq!(stream_text(&frames, STDERR), "bye\n");
    assert_eq!(c.wait().unwrap().code, 0);

    let mut g = Fixture::new("runc-kill", &["sleep", "1000"]);
    g.opts.runtime = Some(runc.into());
    g.spawn();
    let mut c = started(&g);
    c.kill(9, true).unwrap();
    assert_eq!(c.wait().unwrap().code, 137);
}

#[test]
fn the_container_gets_default_sigpipe() {
    // Rust ignores SIGPIPE; that must not leak into the container's programs.
    let mut f = Fixture::new("sigpipe", &["grep", "SigIgn", "/proc/self/status"]);
    f.spawn();
    let mut c = started(&f);
    assert_eq!(c.wait().unwrap().code, 0);
    let logged = f.log_entries()[0]["log"].as_str().unwrap().to_string();
    let mask = u64::from_str_radix(logged.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored: {logged:?}"
    );
}

#[test]
fn a_slow_attach_client_does_not_block_logging() {
    // ~8 MiB of output while an attached client reads nothing.
    let mut f = Fixture::new(
        "slow",
        &["sh", "-c", "i=0; while [ $i -lt 2048 ]; do head -c 4095 /dev/zero | tr '\\0' x; echo; i=$((i+1)); done"],
    );
    f.spawn();
    let _stuck = attach(
        &f,
        AttachOptions {
            stdout: true,
            ..Default::default()
        },
    );
    let mut c = started(&f);
    assert_eq!(c.wait().unwrap().code, 0);
    assert_eq!(f.log_entries().len(), 2048);
}

#[test]
fn log_options_reach_the_driver() {
    let mut f = Fixture::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    f.opts.log_opts = vec![
        ("max-size".into(), "1k".into()),
        ("max-file".into(), "2".into()),
    ];
    f.spawn();
    let mut c = started(&f);
    assert_eq!(c.wait().unwrap().code, 0);
    let mut rotated = f.log_path().as_os_str().to_owned();
    rotated.push(".1");
    assert!(std::path::Path::new(&rotated).exists(), "rotated file");
    assert!(std::fs::metadata(f.log_path()).unwrap().len() < 2048);

    let mut g = Fixture::new("badopt", &["true"]);
    g.opts.log_opts = vec![("max-size".into(), "lots".into())];
    let err = shim::client::spawn(&g.opts).unwrap_err();
    assert!(
        err.to_string().contains("max-size") || err.to_string().contains("lots"),
        "{err}"
    );
    assert!(
        !g.opts.runtime_root.join(&g.id).exists(),
        "no container left behind"
    );
}
