//! Crashes: berthd killed with SIGKILL while containers run (live restore: they go on
//! in their shims, logging, attachable, stoppable) and in the middle of a `load`
//! (nothing half-made is left); `berth system check` is clean after both.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use e2e::*;

/// A docker CLI subprocess with piped stdio, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn docker_proc(d: &Daemon, args: &[&str]) -> Proc {
    Proc(
        d.docker_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn ticks(d: &Daemon, name: &str) -> usize {
    stdout(&d.docker(&["logs", name]))
        .lines()
        .filter(|l| l.starts_with("tick "))
        .count()
}

fn check_is_clean(d: &Daemon) {
    let out = ok(&d.berth(&["system", "check"]));
    assert!(out.contains("store is consistent"), "{out}");
}

#[test]
fn containers_outlive_a_daemon_crash() {
    let mut d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]));
    ok(&d.docker(&[
        "run", "-d", "--rm", "--name", "brief", "busybox", "sleep", "1",
    ]));
    ok(&d.docker(&["run", "-d", "-i", "--name", "talk", "busybox", "cat"]));
    // An attached run in flight when the daemon dies.
    let run = docker_proc(
        &d,
        &[
            "run",
            "--name",
            "during",
            "busybox",
            "sh",
            "-c",
            "sleep 2; echo done",
        ],
    );
    assert!(eventually(10, || ticks(&d, "live") >= 3));
    assert!(eventually(10, || stdout(&d.docker(&[
        "ps",
        "-q",
        "--filter",
        "name=during"
    ]))
    .len()
        > 1));
    let pid = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "live"]));
    let before = ticks(&d, "live");

    d.crash();
    drop(run);
    // `brief` exits and `during` finishes while nobody watches.
    std::thread::sleep(Duration::from_millis(2500));
    d.restart();

    let ps = ok(&d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.contains("live Up"), "{ps}");
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "live"])),
        pid
    );
    // The shim kept logging while the daemon was away.
    let after = ticks(&d, "live");
    assert!(after >= before + 10, "ticks before {before}, after {after}");
    assert!(stdout(&d.docker(&["logs", "live"])).starts_with("tick 0\n"));

    assert!(
        eventually(15, || !stdout(&d.docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}"
        ]))
        .contains("brief")),
        "--rm container not removed after the restart"
    );
    assert_eq!(ok(&d.docker(&["wait", "during"])).trim(), "0");
    assert_eq!(ok(&d.docker(&["logs", "during"])), "done\n");

    // Still attachable: what we write comes back from cat.
    let mut att = docker_proc(&d, &["attach", "talk"]);
    let mut stdin = att.0.stdin.take().unwrap();
    let out = att.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    // The attach may take a moment to be bridged: write until the echo comes.
    let until = Instant::now() + Duration::from_secs(10);
    let mut echoed = None;
    while echoed.is_none() && Instant::now() < until {
        let _ = stdin.write_all(b"hello\n");
        echoed = rx.recv_timeout(Duration::from_millis(300)).ok();
    }
    assert_eq!(echoed.as_deref(), Some("hello\n"));
    drop(att);

    assert_eq!(ok(&d.docker(&["exec", "live", "echo", "in"])), "in\n");
    let t = Instant::now();
    ok(&d.docker(&["stop", "-t", "1", "live"]));
    assert!(t.elapsed() < Duration::from_secs(8));
    assert_eq!(ok(&d.docker(&["wait", "live"])).trim(), "137");
    check_is_clean(&d);
}

#[test]
fn a_load_cut_by_a_crash_leaves_nothing_half_made() {
    let mut d = Daemon::with_busybox();
    // An image with a 32 MB layer of noise, saved to an archive.
    let src = d.dir.join("noise");
    std::fs::create_dir_all(&src).unwrap();
    let mut noise = vec![0u8; 32 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    std::fs::write(src.join("blob"), &noise).unwrap();
    let tarball = d.dir.join("noise-rootfs.tar");
    tar_dir(&src, &tarball);
    let o = d.docker(&["import", tarball.to_str().unwrap(), "noise:1"]);
    ok(&o);
    let archive = d.dir.join("noise.tar");
    ok(&d.docker(&["save", "-o", archive.to_str().unwrap(), "noise:1"]));
    ok(&d.docker(&["rmi", "noise:1"]));
    let data = std::fs::read(&archive).unwrap();

    // Half the archive, then the daemon dies.
    let mut load = docker_proc(&d, &["load"]);
    let mut stdin = load.0.stdin.take().unwrap();
    stdin.write_all(&data[..data.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.crash();
    drop(stdin);
    drop(load);

    d.restart();
    check_is_clean(&d);
    let images = ok(&d.docker(&["images", "--format", "{{.Repository}}"]));
    assert!(!images.contains("noise"), "{images}");
    // The whole archive loads afterwards.
    let out = ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]));
    assert!(out.contains("Loaded image: noise:1"), "{out}");
    check_is_clean(&d);
    ok(&d.docker(&["run", "--rm", "busybox", "true"]));
}
