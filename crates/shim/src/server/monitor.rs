//! The event loop: one thread, one poll(2) over the control socket, its clients, the
//! container's output and a signalfd for SIGCHLD.
//!
//! Output is read in 64 KiB chunks and goes first to the log driver, then to each
//! attached client's send buffer. A client that does not read fast enough loses frames
//! (whole frames, so the stream stays parseable) once its buffer holds
//! [`CLIENT_BUFFER`] bytes: logging never waits for an attach client. Input from attach
//! clients is buffered up to [`STDIN_BUFFER`] bytes for the container's stdin; beyond
//! that the shim stops reading from them, so a container that does not read its stdin
//! slows its writers down instead of growing the shim.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::args::Args;
use super::backend::Backend;
use super::logger::Logger;
use crate::frame;
use crate::proto::{AttachOptions, ErrorReply, Exit, Request, State, Status};
use log::Stream;

/// Bytes read from the container per read(2).
const CHUNK: usize = 64 * 1024;
/// Most bytes queued for one client before its frames are dropped.
pub const CLIENT_BUFFER: usize = 1024 * 1024;
/// Most bytes queued for the container's stdin before clients are not read.
pub const STDIN_BUFFER: usize = 256 * 1024;
/// Longest request line.
const MAX_REQUEST: usize = 64 * 1024;
/// How long output is drained after the init exited, if something else holds the pipes.
const DRAIN: Duration = Duration::from_secs(2);
/// How long an exec's output waits for its first attach.
const HOLD_MAX: Duration = Duration::from_secs(60);
/// How long the shim tries to flush answers before it exits on `shutdown`.
const FLUSH_ON_EXIT: Duration = Duration::from_secs(1);
/// How long after the last request the shim sheds the pages it faulted in for it.
const TRIM_AFTER: Duration = Duration::from_secs(2);
/// How much of the json-file log `attach` with `logs` replays, from its end.
const REPLAY_MAX: u64 = 1024 * 1024;

/// The shim's ends of the container's stdio.
pub struct Stdio {
    /// Where attach clients' input goes (a pipe or the pty master); `None` without
    /// `--stdin`.
    pub stdin: Option<OwnedFd>,
    /// The container's stdout, or the pty master.
    pub stdout: Option<OwnedFd>,
    /// The container's stderr; `None` with a terminal.
    pub stderr: Option<OwnedFd>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Reading request lines.
    Control,
    /// A `wait` is pending; further requests wait behind it.
    Waiting,
    /// An attach stream.
    Attached(AttachOptions),
}

/// One client connection.
struct Conn {
    sock: UnixStream,
    mode: Mode,
    /// Bytes of requests not yet processed.
    inbuf: Vec<u8>,
    /// Bytes to send; `out[sent..]` is pending.
    out: Vec<u8>,
    sent: usize,
    /// The client shut its sending side down.
    read_closed: bool,
    /// Close once `out` is flushed.
    close_when_flushed: bool,
    dead: bool,
}

impl Conn {
    fn new(sock: UnixStream) -> Conn {
        Conn {
            sock,
            mode: Mode::Control,
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            read_closed: false,
            close_when_flushed: false,
            dead: false,
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Queues `data` unless the client is too far behind; false if it was dropped.
    fn queue(&mut self, data: &[&[u8]]) -> bool {
        let len: usize = data.iter().map(|d| d.len()).sum();
        if self.pending() + len > CLIENT_BUFFER {
            return false;
        }
        for d in data {
            self.out.extend_from_slice(d);
        }
        true
    }

    fn reply(&mut self, json: &str) {
        // Answers are never dropped: a client gets them, however slow it is.
        self.out.extend_from_slice(json.as_bytes());
        self.out.push(b'\n');
    }

    /// Sends what the socket takes without blocking.
    fn flush(&mut self) {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > CHUNK {
                // A burst for a slow client must not stay allocated.
                self.out = Vec::new();
            }
            if self.close_when_flushed {
                self.dead = true;
            }
        } else if self.sent > CLIENT_BUFFER / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
    }

    fn wants_output(&self, stream: Stream) -> bool {
        match &self.mode {
            Mode::Attached(o) if !self.close_when_flushed => match stream {
                Stream::Stdout => o.stdout,
                Stream::Stderr => o.stderr,
            },
            _ => false,
        }
    }
}

/// What the loop watches, in the order of the poll set.
#[derive(Clone, Copy)]
enum Source {
    Listener,
    Signals,
    Output(usize),
    Stdin,
    Conn(usize),
}

/// The container, as the shim keeps it.
pub struct Monitor {
    backend: Box<dyn Backend>,
    pid: i32,
    tty: bool,
    exit_file: PathBuf,
    socket: PathBuf,
    linger: Duration,
    listener: UnixListener,
    signals: SignalFd,
    /// stdout, stderr (a terminal has only the first).
    outputs: [Option<OwnedFd>; 2],
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    stdin_closing: bool,
    /// The pty master, for resize.
    master: Option<OwnedFd>,
    log: Option<Logger>,
    conns: Vec<Conn>,
    buf: Vec<u8>,
    started_at: Option<String>,
    paused: bool,
    /// The init was reaped: its code and when; the exit is recorded once output drained.
    reaped: Option<(i32, SystemTime, Instant)>,
    oom_killed: bool,
    exit: Option<Exit>,
    shutdown: bool,
    /// Since when no client has been connected, once the exit is recorded.
    idle_since: Option<Instant>,
    /// When to call [`super::memory::trim`] next.
    trim_at: Option<Instant>,
    /// `delete` failed when the exit was recorded; `shutdown` tries again.
    delete_failed: bool,
    /// Exec mode: the output is not read (the pipes fill and the process blocks) until
    /// the first attach, so that a client attaching right after the start misses
    /// nothing; at the latest until this deadline (a caller that went away).
    hold: Option<Instant>,
    /// (device, inode) of the socket we bound: a later shim of the same container may
    /// have bound the path again, and its socket is not ours to remove.
    socket_id: Option<(u64, u64)>,
}

/// Go's RFC3339Nano, as Docker writes times.
fn now_rfc3339(t: SystemTime) -> String {
    log::time::format_rfc3339_nano(t)
}

fn error_json(msg: impl std::fmt::Display) -> String {
    serde_json::to_string(&ErrorReply {
        error: msg.to_string(),
    })
    .unwrap_or_else(|_| r#"{"error":"internal"}"#.into())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(error_json)
}

impl Monitor {
    /// Takes over a created container.
    pub fn new(
        backend: Box<dyn Backend>,
        pid: i32,
        stdio: Stdio,
        listener: UnixListener,
        signals: SignalFd,
        log: Option<Logger>,
        args: &Args,
    ) -> Monitor {
        let master = if args.tty {
            stdio.stdout.as_ref().and_then(|m| m.try_clone().ok())
        } else {
            None
        };
        Monitor {
            backend,
            pid,
            tty: args.tty,
            exit_file: args.exit_file.clone(),
            socket: args.socket.clone(),
            linger: args.linger,
            listener,
            signals,
            outputs: [stdio.stdout, stdio.stderr],
            stdin: stdio.stdin,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            master,
            log,
            conns: Vec::new(),
            buf: Vec::new(),
            started_at: None,
            paused: false,
            reaped: None,
            oom_killed: false,
            exit: None,
            shutdown: false,
            idle_since: None,
            trim_at: None,
            delete_failed: false,
            hold: None,
            socket_id: file_id(&args.socket),
        }
    }

    /// The process runs already (an exec): it counts as started, and its output waits
    /// for the first attach.
    pub fn exec_mode(&mut self) {
        self.started_at = Some(now_rfc3339(SystemTime::now()));
        self.hold = Some(Instant::now() + HOLD_MAX);
    }

    /// Whether output is held; drops the hold once its deadline passed.
    fn holding(&mut self) -> bool {
        if self.hold.is_some_and(|t| Instant::now() >= t) {
            self.hold = None;
        }
        self.hold.is_some()
    }

    /// Host pid of the container's init.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Serves until the exit rule says to go (see the [`super`] docs).
    pub fn run(&mut self) {
        self.buf = vec![0u8; CHUNK];
        let mut shutdown_at: Option<Instant> = None;
        loop {
            if self.shutdown {
                let at = *shutdown_at.get_or_insert_with(Instant::now);
                let flushed = self.conns.iter().all(|c| c.pending() == 0);
                if flushed || at.elapsed() > FLUSH_ON_EXIT {
                    break;
                }
            }
            if self.exit.is_some() && !self.shutdown {
                if self.conns.is_empty() {
                    let since = *self.idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.linger {
                        break;
                    }
                } else {
                    self.idle_since = None;
                }
            }
            if self.trim_at.is_some_and(|t| t <= Instant::now()) {
                self.trim_at = None;
                super::memory::trim();
            }
            for (src, rev) in self.poll_once() {
                self.handle(src, rev);
            }
            self.conns.retain(|c| !c.dead);
            self.maybe_record_exit();
        }
        if file_id(&self.socket) == self.socket_id {
            let _ = std::fs::remove_file(&self.socket);
        }
    }

    /// Polls once; returns the sources that are ready.
    fn poll_once(&mut self) -> Vec<(Source, PollFlags)> {
        let holding = self.holding();
        let mut srcs = Vec::with_capacity(5 + self.conns.len());
        let mut fds: Vec<PollFd> = Vec::with_capacity(5 + self.conns.len());
        let rd = PollFlags::POLLIN;
        if !self.shutdown {
            srcs.push(Source::Listener);
            fds.push(PollFd::new(self.listener.as_fd(), rd));
        }
        srcs.push(Source::Signals);
        fds.push(PollFd::new(self.signals.as_fd(), rd));
        for (i, o) in self.outputs.iter().enumerate() {
            if holding {
                break;
            }
            if let Some(fd) = o {
                srcs.push(Source::Output(i));
                fds.push(PollFd::new(fd.as_fd(), rd));
            }
        }
        if let Some(fd) = &self.stdin {
            if !self.stdin_buf.is_empty() {
                srcs.push(Source::Stdin);
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
        }
        let stdin_room = self.stdin_buf.len() < STDIN_BUFFER;
        for (i, c) in self.conns.iter().enumerate() {
            let mut ev = PollFlags::empty();
            let readable = !c.read_closed
                && match &c.mode {
                    Mode::Attached(o) => !o.stdin || stdin_room || self.stdin.is_none(),
                    _ => c.inbuf.len() < MAX_REQUEST,
                };
            if readable {
                ev |= rd;
            }
            if c.pending() > 0 {
                ev |= PollFlags::POLLOUT;
            }
            srcs.push(Source::Conn(i));
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        let timeout = self.timeout();
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
        srcs.into_iter()
            .zip(fds.iter())
            .filter_map(|(s, f)| {
                let r = f.revents().unwrap_or(PollFlags::empty());
                (!r.is_empty()).then_some((s, r))
            })
            .collect()
    }

    /// How long poll may sleep: until the drain deadline or the linger deadline.
    fn timeout(&self) -> PollTimeout {
        let mut until: Option<Instant> = None;
        if let Some((_, _, at)) = self.reaped {
            if self.exit.is_none() {
                until = Some(at + DRAIN);
            }
        }
        if let Some(t) = self.hold {
            // Nothing drains while held.
            until = Some(t);
        }
        if self.exit.is_some() && self.conns.is_empty() {
            let since = self.idle_since.unwrap_or_else(Instant::now);
            let t = since + self.linger;
            until = Some(until.map_or(t, |u| u.min(t)));
        }
        if let Some(t) = self.trim_at {
            until = Some(until.map_or(t, |u| u.min(t)));
        }
        if self.shutdown {
            until = Some(Instant::now() + Duration::from_millis(50));
        }
        match until {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::NONE)
            }
        }
    }

    fn handle(&mut self, src: Source, rev: PollFlags) {
        match src {
            Source::Listener => self.accept(),
            Source::Signals => {
                while let Ok(Some(_)) = self.signals.read_signal() {}
                self.reap();
            }
            Source::Output(i) => {
                self.read_output(i);
            }
            Source::Stdin => self.write_stdin(),
            Source::Conn(i) => self.serve(i, rev),
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    if s.set_nonblocking(true).is_ok() {
                        self.conns.push(Conn::new(s));
                        self.idle_since = None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Reaps every exited child (we are a subreaper: orphans of the container come to
    /// us too) and notes the init's exit.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == self.pid => self.reaped_init(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == self.pid => {
                    self.reaped_init(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return,
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn reaped_init(&mut self, code: i32) {
        if self.reaped.is_some() {
            return;
        }
        // The OOM count lives in the cgroup, which `delete` removes: read it now.
        self.oom_killed = self.backend.oom_killed();
        self.reaped = Some((code, SystemTime::now(), Instant::now()));
        crate::trace::mark("shim: reaped");
        self.paused = false;
    }

    /// Reads one chunk from output `i`; true if it got data.
    fn read_output(&mut self, i: usize) -> bool {
        let Some(fd) = &self.outputs[i] else {
            return false;
        };
        match nix::unistd::read(fd.as_fd(), &mut self.buf) {
            Ok(0) | Err(nix::Error::EIO) => self.close_output(i),
            Ok(n) => {
                self.dispatch(i, n);
                return true;
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(_) => self.close_output(i),
        }
        false
    }

    fn stream(i: usize) -> Stream {
        if i == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        }
    }

    /// EOF (or, for a terminal, EIO once every slave is closed) on an output.
    fn close_output(&mut self, i: usize) {
        self.outputs[i] = None;
        if let Some(log) = self.log.as_mut() {
            log.stream_ended();
        }
    }

    /// Sends `buf[..n]`, read from output `i`, to the log and the attached clients.
    fn dispatch(&mut self, i: usize, n: usize) {
        let stream = Self::stream(i);
        let data = &self.buf[..n];
        if let Some(log) = self.log.as_mut() {
            log.write(stream, data, SystemTime::now());
        }
        let kind = if i == 0 { frame::STDOUT } else { frame::STDERR };
        let header = frame::header(kind, n);
        for c in self.conns.iter_mut().filter(|c| c.wants_output(stream)) {
            let queued = if self.tty {
                c.queue(&[data])
            } else {
                c.queue(&[&header, data])
            };
            if queued {
                c.flush();
            }
        }
    }

    fn write_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => break,
                Err(_) => {
                    // The container closed its stdin (EPIPE): nothing more goes there.
                    self.stdin = None;
                    self.stdin_buf = Vec::new();
                    return;
                }
            }
        }
        if self.stdin_buf.is_empty() {
            if self.stdin_buf.capacity() > CHUNK {
                self.stdin_buf = Vec::new();
            }
            if self.stdin_closing {
                self.close_stdin_now();
            }
        }
    }

    fn close_stdin_now(&mut self) {
        if let Some(fd) = self.stdin.take() {
            if self.tty {
                // Closing our copy of the master does nothing for the container; the
                // terminal's end-of-file character does what a closed pipe would.
                let _ = nix::unistd::write(&fd, &[4u8]);
            }
        }
        self.stdin_buf = Vec::new();
    }

    /// Input from an attach client.
    fn feed_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_none() || self.stdin_closing {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.write_stdin();
    }

    fn serve(&mut self, i: usize, rev: PollFlags) {
        if rev.contains(PollFlags::POLLOUT) {
            self.conns[i].flush();
        }
        if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.read_conn(i);
        }
        if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
            && (self.conns[i].read_closed || rev.contains(PollFlags::POLLERR))
        {
            self.conns[i].dead = true;
        }
    }

    fn read_conn(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.read_closed {
            return;
        }
        let n = match c.sock.read(&mut self.buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => {
                c.dead = true;
                return;
            }
        };
        if n == 0 {
            c.read_closed = true;
            let mut close_stdin = false;
            match &c.mode {
                Mode::Attached(o) => {
                    close_stdin = o.stdin && o.stdin_once;
                    // An attach client without output has nothing left to do.
                    if !o.stdout && !o.stderr {
                        c.dead = true;
                    }
                }
                // A control client that stopped sending is done once answered (a
                // pending wait still gets its answer).
                Mode::Control => c.close_when_flushed = true,
                Mode::Waiting => {}
            }
            if c.close_when_flushed && c.pending() == 0 {
                c.dead = true;
            }
            if close_stdin {
                self.stdin_closing = true;
                if self.stdin_buf.is_empty() {
                    self.close_stdin_now();
                }
            }
            return;
        }
        if let Mode::Attached(o) = &c.mode {
            if o.stdin {
                let data = self.buf[..n].to_vec();
                self.feed_stdin(&data);
            }
            return;
        }
        c.inbuf.extend_from_slice(&self.buf[..n]);
        self.process_requests(i);
    }

    /// Answers the complete request lines of connection `i`, until one makes it wait or
    /// attach.
    fn process_requests(&mut self, i: usize) {
        while self.conns[i].mode == Mode::Control {
            let c = &mut self.conns[i];
            let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') else {
                if c.inbuf.len() >= MAX_REQUEST {
                    c.reply(&error_json("request line too long"));
                    c.close_when_flushed = true;
                    c.inbuf = Vec::new();
                }
                break;
            };
            let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let answer = match serde_json::from_slice::<Request>(line) {
                Ok(req) => {
                    // Requests run code (the runtime's state and spec parsing, hooks)
                    // that the loop does not need resident afterwards: shed it once
                    // things are quiet again.
                    self.trim_at
                        .get_or_insert_with(|| Instant::now() + TRIM_AFTER);
                    self.request(i, req)
                }
                Err(e) => Some(error_json(format!("bad request: {e}"))),
            };
            let c = &mut self.conns[i];
            if let Some(a) = answer {
                c.reply(&a);
            }
            if let Mode::Attached(o) = &c.mode {
                // Whatever followed the attach line is already stdin.
                let rest = std::mem::take(&mut c.inbuf);
                if o.stdin && !rest.is_empty() {
                    self.feed_stdin(&rest);
                }
            }
            self.conns[i].flush();
        }
    }

    fn status(&self) -> Status {
        if self.reaped.is_some() || self.exit.is_some() {
            Status::Stopped
        } else if self.started_at.is_none() {
            Status::Created
        } else if self.paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Handles one request; `None` when the answer comes later (wait).
    fn request(&mut self, i: usize, req: Request) -> Option<String> {
        let stopped = self.status() == Status::Stopped;
        let empty = || Some("{}".to_string());
        let fail = |m: &str| Some(error_json(m));
        let result = |r: crate::Result<()>| match r {
            Ok(()) => empty(),
            Err(e) => Some(error_json(e)),
        };
        match req {
            Request::Start => {
                if stopped {
                    return fail("the container has exited");
                }
                if self.started_at.is_some() {
                    return fail("the container is already started");
                }
                let r = self.backend.start();
                crate::trace::mark("shim: started");
                if r.is_ok() {
                    self.started_at = Some(now_rfc3339(SystemTime::now()));
                }
                result(r)
            }
            Request::State => Some(to_json(&State {
                status: self.status(),
                pid: if stopped { 0 } else { self.pid },
                exit: self.exit.clone(),
                started_at: self.started_at.clone(),
            })),
            Request::Kill { signal, all } => {
                if stopped {
                    return fail("the container is not running");
                }
                if !(1..=64).contains(&signal) {
                    return fail(&format!("invalid signal {signal}"));
                }
                result(self.backend.kill(signal, all))
            }
            Request::Pause => {
                if self.status() != Status::Running {
                    return fail("the container is not running");
                }
                let r = self.backend.pause();
                self.paused = r.is_ok();
                result(r)
            }
            Request::Resume => {
                if self.status() != Status::Paused {
                    return fail("the container is not paused");
                }
                let r = self.backend.resume();
                if r.is_ok() {
                    self.paused = false;
                }
                result(r)
            }
            Request::Resize { height, width } => match &self.master {
                None if !self.tty => fail("the container has no terminal"),
                None => fail("the container's terminal is closed"),
                Some(m) => {
                    runtime::tty::set_size(m.as_raw_fd(), height, width);
                    empty()
                }
            },
            Request::Wait => match &self.exit {
                Some(e) => Some(to_json(e)),
                None => {
                    self.conns[i].mode = Mode::Waiting;
                    None
                }
            },
            Request::CloseStdin => {
                self.stdin_closing = true;
                if self.stdin_buf.is_empty() {
                    self.close_stdin_now();
                }
                empty()
            }
            Request::Attach(o) => {
                // Until the exit is recorded the output may still be flowing.
                if self.exit.is_some() {
                    return fail("the container has exited");
                }
                self.hold = None;
                if o.stdin && self.stdin.is_none() {
                    return fail(
                        "the container's stdin is not open (created without --stdin, or closed)",
                    );
                }
                let mut answer = "{}\n".as_bytes().to_vec();
                if o.logs {
                    self.replay(&o, &mut answer);
                }
                let c = &mut self.conns[i];
                c.out.extend_from_slice(&answer);
                c.mode = Mode::Attached(o);
                None
            }
            Request::Shutdown => {
                if self.exit.is_none() {
                    return fail("the container has not exited: kill it and wait first");
                }
                if self.delete_failed {
                    // Leaving would orphan the cgroup and runtime state.
                    if let Err(e) = self.backend.delete() {
                        return fail(&format!("deleting the container: {e}"));
                    }
                    self.delete_failed = false;
                }
                self.shutdown = true;
                empty()
            }
        }
    }

    /// Appends the tail of the json-file log, as the attach stream would have carried it.
    fn replay(&mut self, o: &AttachOptions, out: &mut Vec<u8>) {
        // The writer hands every chunk to the kernel before it returns: the file holds
        // everything logged so far, and the client is added before the next chunk.
        let Some(path) = self.log.as_ref().and_then(|l| l.replay_file()) else {
            return;
        };
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        // A log rotated since the offset was taken is shorter: replay its tail.
        let from = if o.log_offset <= len { o.log_offset } else { 0 };
        let skip = len.saturating_sub(REPLAY_MAX).max(from);
        let mut text = Vec::new();
        use std::io::Seek;
        if f.seek(std::io::SeekFrom::Start(skip)).is_err() || f.read_to_end(&mut text).is_err() {
            return;
        }
        let mut lines = text.split(|&b| b == b'\n');
        if skip > 0 && skip != from {
            // Starting mid-file: the first line is a fragment (an offset taken from
            // the file's size is a line boundary).
            lines.next();
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            log: String,
            stream: String,
        }
        for l in lines.filter(|l| !l.is_empty()) {
            let Ok(e) = serde_json::from_slice::<Entry>(l) else {
                continue;
            };
            let (want, kind) = match e.stream.as_str() {
                "stderr" => (o.stderr, frame::STDERR),
                _ => (o.stdout, frame::STDOUT),
            };
            if !want {
                continue;
            }
            if self.tty {
                out.extend_from_slice(e.log.as_bytes());
            } else {
                frame::encode_into(out, kind, e.log.as_bytes());
            }
        }
    }

    /// Once the init is reaped and its output drained (EOF on every output, or the
    /// drain time is up): flush the log, write the exit file, delete the container and
    /// answer the waiters.
    fn maybe_record_exit(&mut self) {
        let Some((code, finished, at)) = self.reaped else {
            return;
        };
        if self.exit.is_some() || self.holding() {
            return;
        }
        let drained = self.outputs.iter().all(Option::is_none);
        if !drained && at.elapsed() < DRAIN {
            return;
        }
        for i in 0..2 {
            if self.outputs[i].is_some() {
                // Whatever is buffered in the pipe still goes to the log.
                let mut budget = 64;
                while budget > 0 && self.read_output(i) {
                    budget -= 1;
                }
                if self.outputs[i].is_some() {
                    self.close_output(i);
                }
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.close();
        }
        let exit = Exit {
            code,
            oom_killed: self.oom_killed,
            finished_at: now_rfc3339(finished),
        };
        // A failure to write the exit file has no one to report to; berthd then sees
        // the shim's State/Wait answers while it lives.
        let _ = write_exit_file(&self.exit_file, &exit);
        crate::trace::mark("shim: exit recorded");
        self.delete_failed = self.backend.delete().is_err();
        self.stdin = None;
        self.stdin_buf = Vec::new();
        self.master = None;
        let answer = to_json(&exit);
        self.exit = Some(exit);
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            match c.mode {
                Mode::Waiting => {
                    c.reply(&answer);
                    c.mode = Mode::Control;
                    self.process_requests(i);
                }
                Mode::Attached(_) => c.close_when_flushed = true,
                Mode::Control => {}
            }
            let c = &mut self.conns[i];
            c.flush();
            if c.close_when_flushed && c.pending() == 0 {
                c.dead = true;
            }
        }
        self.conns.retain(|c| !c.dead);
    }
}

/// The (device, inode) of `path`.
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Writes the exit file atomically: a temp file, fsync, rename.
pub fn write_exit_file(path: &std::path::Path, exit: &Exit) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    serde_json::to_writer(&mut f, exit)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
