//! Terminals: the pty master reaches whoever listens on `--console-socket` (SCM_RIGHTS),
//! and the container's process has the slave as its stdio and controlling terminal.

mod common;
mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use support::*;

const SEC: Duration = Duration::from_secs(1);

/// A console socket listening in a private directory.
struct Console {
    dir: TempDir,
    listener: UnixListener,
}

impl Console {
    fn new() -> Console {
        let dir = TempDir::new("console");
        let listener = UnixListener::bind(dir.join("sock")).unwrap();
        Console { dir, listener }
    }

    fn path(&self) -> String {
        self.dir.join("sock").to_string_lossy().into_owned()
    }

    /// Accepts the runtime's connection and receives the pty master from it.
    fn receive(&self) -> Pty {
        self.listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + 10 * SEC;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < until,
                        "nobody connected to the console socket"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(10 * SEC)).unwrap();
        let master = runtime::tty::recv_fd(conn.as_raw_fd()).expect("receiving the pty master");
        Pty::new(std::fs::File::from(master))
    }
}

/// The master side of the container's pty; a thread collects what the container writes.
struct Pty {
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn new(master: std::fs::File) -> Pty {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the slave side is closed everywhere.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { master, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal output contains `s`.
    #[track_caller]
    fn expect(&self, s: &str) {
        assert!(
            wait_for(10 * SEC, || self.text().contains(s)),
            "terminal never showed {s:?}; got {:?}",
            self.text()
        );
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }
}

/// A process with a terminal gets a working pty through the console socket: it is a tty,
/// has the requested window size, and reads what we type.
#[test]
fn console_socket_receives_a_working_pty() {
    let rt = Runtime::new("tty");
    let console = Console::new();
    let mut b = Bundle::new("tty");
    b.edit(|s| {
        s["process"]["terminal"] = json!(true);
        s["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    b.sh("tty; test -t 0 && test -t 1 && echo isatty; stty size; read line; echo got:$line");
    let id = unique("tty");
    let mut cmd = rt.cmd();
    cmd.args(["create", "--console-socket", &console.path(), "-b"])
        .arg(&b.dir)
        .arg(&id);
    ok(&detached(&mut cmd));
    let mut pty = console.receive();
    assert!(
        !pty.text().contains("isatty"),
        "the process ran before start"
    );
    ok(&rt.exec(&["start", &id]));
    pty.expect("/dev/pts/0");
    pty.expect("isatty");
    pty.expect("33 101");
    pty.send("hello\n");
    pty.expect("got:hello");
    rt.wait_status(&id, "stopped");
    assert!(!pty.text().contains("not a tty"), "{}", pty.text());
}

/// `create` of a process with a terminal and no console socket fails and says why.
#[test]
fn terminal_without_console_socket_fails_clearly() {
    let rt = Runtime::new("tty");
    let mut b = Bundle::new("notty");
    b.edit(|s| s["process"]["terminal"] = json!(true));
    b.args(&["true"]);
    let id = unique("notty");
    let mut cmd = rt.cmd();
    cmd.args(["create", "-b"]).arg(&b.dir).arg(&id);
    let out = detached(&mut cmd);
    assert!(
        !out.status.success(),
        "create with a terminal and no socket"
    );
    assert!(
        stderr(&out).contains("console socket"),
        "unclear error: {}",
        stderr(&out)
    );
    assert!(!rt.exists(&id), "state left behind");
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let until = Instant::now() + 10 * SEC;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("exec did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `exec -t --console-socket` gives the exec'd process its own working pty, and exec
/// returns its exit code.
#[test]
fn exec_with_tty_through_console_socket() {
    let rt = Runtime::new("tty");
    let console = Console::new();
    let mut b = Bundle::new("exectty");
    b.args(&["sleep", "100"]);
    let id = unique("exectty");
    let mut cmd = rt.cmd();
    cmd.args(["run", "-d", "-b"]).arg(&b.dir).arg(&id);
    ok(&detached(&mut cmd));
    let logs = TempDir::new("exectty");
    let mut child = rt
        .cmd()
        .args(["exec", "-t", "--console-socket", &console.path(), &id])
        .args([
            "sh",
            "-c",
            "tty; test -t 0 && echo isatty; read line; echo got:$line; exit 6",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(logs.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut pty = console.receive();
    pty.expect("/dev/pts/");
    pty.expect("isatty");
    pty.send("world\n");
    pty.expect("got:world");
    let st = wait_child(&mut child);
    assert_eq!(st.code(), Some(6), "stderr: {}", logs.read("stderr"));
    assert_eq!(
        rt.status(&id),
        "running",
        "exec's exit stopped the container"
    );
}

/// `exec -t -d` without a console socket is refused (nobody could get the terminal).
#[test]
fn detached_exec_tty_needs_console_socket() {
    let rt = Runtime::new("tty");
    let mut b = Bundle::new("exectty-d");
    b.args(&["sleep", "100"]);
    let id = unique("exectty-d");
    let mut cmd = rt.cmd();
    cmd.args(["run", "-d", "-b"]).arg(&b.dir).arg(&id);
    ok(&detached(&mut cmd));
    let out = rt.exec(&["exec", "-t", "-d", &id, "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("console socket"),
        "unclear error: {}",
        stderr(&out)
    );
}
