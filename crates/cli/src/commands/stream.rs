//! The terminal side of a hijacked connection (run, start -a, attach, exec): stdin to
//! the container, its output to stdout/stderr (demultiplexed unless it has a TTY),
//! raw mode for the local terminal, window-size changes as resizes, client-side detach
//! keys and signal forwarding, as docker's `hijackedIOStreamer` does.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::client::{query, Client, Hijacked};
use crate::error::{Error, Result};

/// The detach sequence: `spec` parsed, or docker's default (ctrl-p,ctrl-q).
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    match spec {
        Some(k) => api::detach::parse(k).map_err(Error::msg),
        None => Ok(api::detach::DEFAULT.to_vec()),
    }
}

/// The query of `POST /containers/{id}/attach`: every output stream, stdin when
/// `stdin`, and the detach keys when given.
pub fn attach_query(stdin: bool, detach_keys: Option<&str>) -> String {
    let mut aq = vec![("stream", "1"), ("stdout", "1"), ("stderr", "1")];
    if stdin {
        aq.push(("stdin", "1"));
    }
    if let Some(k) = detach_keys {
        aq.push(("detachKeys", k));
    }
    query(&aq)
}

/// Puts stdin in raw mode while alive; restores it when dropped.
pub struct RawGuard {
    saved: Option<rustix::termios::Termios>,
}

impl RawGuard {
    /// Raw mode when stdin is a terminal; nothing otherwise.
    pub fn stdin() -> RawGuard {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return RawGuard { saved: None };
        }
        let fd = stdin.as_fd();
        let Ok(saved) = rustix::termios::tcgetattr(fd) else {
            return RawGuard { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        // Docker keeps output processing so "\n" still returns the carriage.
        raw.output_modes
            .insert(rustix::termios::OutputModes::OPOST | rustix::termios::OutputModes::ONLCR);
        let _ = rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw);
        RawGuard { saved: Some(saved) }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// The local terminal's size (rows, columns), from stdout or stdin.
pub fn term_size() -> Option<(u16, u16)> {
    let from = |fd: std::os::fd::BorrowedFd<'_>| {
        rustix::termios::tcgetwinsize(fd)
            .ok()
            .filter(|w| w.ws_row > 0 && w.ws_col > 0)
            .map(|w| (w.ws_row, w.ws_col))
    };
    let out = io::stdout();
    let inp = io::stdin();
    from(out.as_fd()).or_else(|| from(inp.as_fd()))
}

/// What to resize when the window changes.
#[derive(Clone)]
pub enum ResizeTarget {
    /// `POST /containers/{id}/resize`.
    Container(String),
    /// `POST /exec/{id}/resize`.
    Exec(String),
}

impl ResizeTarget {
    fn path(&self, h: u16, w: u16) -> String {
        let (h, w) = (h.to_string(), w.to_string());
        let q = query(&[("h", &h), ("w", &w)]);
        match self {
            ResizeTarget::Container(id) => format!("/containers/{id}/resize{q}"),
            ResizeTarget::Exec(id) => format!("/exec/{id}/resize{q}"),
        }
    }

    /// Sends the current size once (after start, as docker's `MonitorTtySize`).
    pub fn resize_now(&self, client: &Client) {
        if let Some((h, w)) = term_size() {
            let _ = client.block_on(client.request_async(Method::POST, &self.path(h, w), None));
        }
    }
}

/// How a stream is pumped.
pub struct StreamOpts {
    /// The container (or exec) has a TTY: output is raw, not multiplexed.
    pub tty: bool,
    /// Send local stdin.
    pub stdin: bool,
    /// Client-side detach sequence (honoured only with a TTY and stdin, as docker).
    pub detach_keys: Vec<u8>,
    /// Resize on SIGWINCH.
    pub resize: Option<ResizeTarget>,
    /// Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to this container.
    pub sig_proxy: Option<String>,
}

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The daemon closed the output.
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

enum Input {
    Data(Vec<u8>),
    Detach,
}

/// Reads stdin on its own thread (reads block), cutting the stream at the detach
/// sequence. A partial sequence followed by something else is passed on whole.
fn stdin_reader(keys: Vec<u8>) -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let mut out = Vec::with_capacity(n + matched);
            for &b in &buf[..n] {
                if keys.is_empty() {
                    out.push(b);
                    continue;
                }
                if b == keys[matched] {
                    matched += 1;
                    if matched == keys.len() {
                        if !out.is_empty() {
                            let _ = tx.blocking_send(Input::Data(std::mem::take(&mut out)));
                        }
                        let _ = tx.blocking_send(Input::Detach);
                        return;
                    }
                    continue;
                }
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
                if b == keys[0] {
                    matched = 1;
                } else {
                    out.push(b);
                }
            }
            if !out.is_empty() && tx.blocking_send(Input::Data(out)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Splits docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, size BE).
struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while self.buf.len() - at >= 8 {
            let h = &self.buf[at..at + 8];
            let size = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - at - 8 < size {
                break;
            }
            let stream = h[0];
            let payload = &self.buf[at + 8..at + 8 + size];
            match stream {
                2 | 3 => {
                    let mut e = io::stderr().lock();
                    e.write_all(payload)?;
                    e.flush()?;
                }
                _ => {
                    let mut o = io::stdout().lock();
                    o.write_all(payload)?;
                    o.flush()?;
                }
            }
            at += 8 + size;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

/// Reads `r` to its end in chunks of up to 32 KiB, handing each to `f`.
pub fn for_each_chunk(
    r: &mut impl Read,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

/// Copies a multiplexed stream read whole (logs) to stdout and stderr.
pub fn demux_read(r: &mut impl Read) -> io::Result<()> {
    let mut d = Demux { buf: Vec::new() };
    for_each_chunk(r, |b| d.feed(b))
}

/// [`pump`] for a started container or exec: the terminal size is sent first (with a
/// TTY), and the terminal leaves raw mode (`raw` is dropped) once the stream ends.
pub fn pump_started(
    client: &Client,
    h: Hijacked,
    raw: Option<RawGuard>,
    opts: StreamOpts,
) -> Result<Ended> {
    if let Some(r) = &opts.resize {
        r.resize_now(client);
    }
    let ended = pump(client, h, opts);
    drop(raw);
    ended
}

/// Pumps a hijacked connection until the output ends or the user detaches.
pub fn pump(client: &Client, h: Hijacked, opts: StreamOpts) -> Result<Ended> {
    let tty = opts.tty
        || h.headers
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t == "application/vnd.docker.raw-stream");
    let keys = if opts.tty && opts.stdin && io::stdin().is_terminal() {
        opts.detach_keys.clone()
    } else {
        Vec::new()
    };
    client.block_on(async move {
        let (mut rd, mut wr) = tokio::io::split(h.io);
        let mut input = if opts.stdin {
            Some(stdin_reader(keys))
        } else {
            None
        };
        let mut winch = match &opts.resize {
            Some(_) => signal(SignalKind::window_change()).ok(),
            None => None,
        };
        let mut sigs = Vec::new();
        if opts.sig_proxy.is_some() {
            for (k, name) in [
                (SignalKind::interrupt(), "SIGINT"),
                (SignalKind::terminate(), "SIGTERM"),
                (SignalKind::hangup(), "SIGHUP"),
                (SignalKind::quit(), "SIGQUIT"),
                (SignalKind::user_defined1(), "SIGUSR1"),
                (SignalKind::user_defined2(), "SIGUSR2"),
            ] {
                if let Ok(s) = signal(k) {
                    sigs.push((s, name));
                }
            }
        }
        let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<&'static str>();
        // Each signal stream feeds one channel, so select! needs one branch for all.
        let forwarders = tokio::task::LocalSet::new();
        for (mut s, name) in sigs {
            let tx = sig_tx.clone();
            forwarders.spawn_local(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        return;
                    }
                }
            });
        }
        let mut demux = Demux { buf: Vec::new() };
        let mut buf = vec![0u8; 32 * 1024];
        forwarders
            .run_until(async {
                loop {
                    tokio::select! {
                        r = rd.read(&mut buf) => {
                            let n = match r {
                                Ok(0) | Err(_) => return Ok(Ended::Eof),
                                Ok(n) => n,
                            };
                            if tty {
                                let mut o = io::stdout().lock();
                                o.write_all(&buf[..n])?;
                                o.flush()?;
                            } else {
                                demux.feed(&buf[..n])?;
                            }
                        }
                        m = async { input.as_mut().expect("guarded").recv().await }, if input.is_some() => {
                            match m {
                                Some(Input::Data(d)) => {
                                    if wr.write_all(&d).await.is_err() {
                                        input = None;
                                    }
                                }
                                Some(Input::Detach) => return Ok(Ended::Detached),
                                None => {
                                    // EOF on stdin: half-close, so the container sees it.
                                    let _ = wr.shutdown().await;
                                    input = None;
                                }
                            }
                        }
                        _ = async { winch.as_mut().expect("guarded").recv().await }, if winch.is_some() => {
                            if let (Some(t), Some((h, w))) = (&opts.resize, term_size()) {
                                let _ = client.request_async(Method::POST, &t.path(h, w), None).await;
                            }
                        }
                        Some(name) = sig_rx.recv() => {
                            if let Some(id) = &opts.sig_proxy {
                                let q = query(&[("signal", name)]);
                                let _ = client
                                    .request_async(Method::POST, &format!("/containers/{id}/kill{q}"), None)
                                    .await;
                            }
                        }
                    }
                }
            })
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_partial_frames() {
        let mut d = Demux { buf: Vec::new() };
        d.feed(&[1, 0, 0, 0, 0, 0, 0, 2, b'h']).unwrap();
        assert_eq!(d.buf.len(), 9);
        d.feed(b"i").unwrap();
        assert!(d.buf.is_empty());
    }
}
