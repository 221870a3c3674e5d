//! Attach and detach: Ctrl-P Ctrl-Q leaves the container running (with a terminal, and
//! found by the daemon in a plain stdin stream too), other keys pass through, and a
//! client's EOF closes the stdin of a `StdinOnce` container only without a terminal.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use e2e::*;

/// Drives the docker CLI on a pseudo-terminal: types `echo typed`, then the bytes
/// given in argv[1] (hex), and reports what came back and whether the CLI exited.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select
keys = bytes.fromhex(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp("docker", ["docker"] + sys.argv[2:])
def read_for(t):
    out = b''; end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try: d = os.read(fd, 4096)
            except OSError: break
            if not d: break
            out += d
    return out
time.sleep(1.0)
os.write(fd, b"echo typed\n")
out = read_for(1.0)
os.write(fd, keys)
# Exited, or still running after a few seconds.
wp = 0
end = time.time() + float(os.environ.get("WAIT", "6"))
while not wp and time.time() < end:
    out += read_for(0.2)
    wp, st = os.waitpid(pid, os.WNOHANG)
print("exited" if wp else "running")
print(out.decode(errors="replace"))
if not wp:
    os.kill(pid, 9)
"#;

/// `wait`: how long the CLI gets to exit after the keys.
fn drive(d: &Daemon, keys_hex: &str, args: &[&str]) -> String {
    drive_for(d, keys_hex, args, 6)
}

fn drive_for(d: &Daemon, keys_hex: &str, args: &[&str], wait: u64) -> String {
    let o = Command::new("python3")
        .env("WAIT", wait.to_string())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .arg("-c")
        .arg(PTY_DRIVER)
        .arg(keys_hex)
        .args(args)
        .output()
        .unwrap();
    ok(&o)
}

fn status(d: &Daemon, name: &str) -> String {
    ok(&d.docker(&["inspect", "-f", "{{.State.Status}}", name]))
        .trim()
        .to_string()
}

#[test]
fn detach_from_a_terminal() {
    let d = Daemon::with_busybox();
    let out = drive(
        &d,
        "1011",
        &["run", "-it", "--name", "shell", "busybox", "sh"],
    );
    assert!(out.starts_with("exited"), "{out}");
    assert!(out.contains("typed"), "{out}");
    assert_eq!(status(&d, "shell"), "running");

    // Attach again, detach with other keys: ctrl-p ctrl-q now pass through.
    let out = drive_for(
        &d,
        "1011",
        &["attach", "--detach-keys", "ctrl-a,x", "shell"],
        2,
    );
    assert!(out.starts_with("running"), "{out}");
    let out = drive(
        &d,
        "0178",
        &["attach", "--detach-keys", "ctrl-a,x", "shell"],
    );
    assert!(out.starts_with("exited"), "{out}");
    assert_eq!(status(&d, "shell"), "running");

    // An exec detaches the same way and keeps running.
    let out = drive(&d, "1011", &["exec", "-it", "shell", "sh"]);
    assert!(out.starts_with("exited"), "{out}");
    let top = ok(&d.docker(&["top", "shell"]));
    assert_eq!(
        top.lines().filter(|l| l.ends_with(" sh")).count(),
        2,
        "{top}"
    );

    // A bad key spec is Docker's 400.
    let (code, body) = d.curl(
        "POST",
        "/containers/shell/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-",
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Invalid detach keys (ctrl-) provided"),
        "{body}"
    );
}

#[test]
fn detach_keys_in_a_plain_stream_and_stdin_once() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["run", "-d", "-i", "--name", "echoer", "busybox", "cat"]));
    // A raw hijacked attach, as the API gives it (the docker CLI does its own key
    // handling on a terminal).
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /containers/echoer/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
          Host: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.write_all(b"one\n").unwrap();
    let mut frame = [0u8; 12];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x01\0\0\0\0\0\0\x04one\n");
    // The daemon finds the keys: the stream ends, the container goes on.
    s.write_all(b"x\x10\x11").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the daemon closes the stream");
    // What came before the keys still reached cat; its echo may or may not make it
    // out before the stream closes.
    assert!(
        rest.is_empty() || rest == b"\x01\0\0\0\0\0\0\x01x",
        "{rest:?}"
    );
    assert_eq!(status(&d, "echoer"), "running");

    // `run -i` without -d has StdinOnce: the client's EOF ends cat.
    let o = d.docker_in(&["run", "-i", "--name", "once", "busybox", "cat"], b"bye\n");
    assert_eq!(stdout(&o), "bye\n");
    assert!(eventually(10, || status(&d, "once") == "exited"));
    std::thread::sleep(Duration::from_millis(10));
}
