//! Hijacked connections (`Upgrade: tcp`, status 101), as attach and exec start use
//! them: after the answer the connection carries the container's output one way and
//! its stdin the other.

use std::os::unix::net::UnixStream;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::server::{full, Body};

/// What to bridge the client to once the connection is upgraded.
pub enum Source {
    /// A live stream (a shim's attach socket): copied both ways.
    Live(UnixStream),
    /// Bytes to send before closing (a replayed log).
    Bytes(Vec<u8>),
    /// A failure after the 101: told on the stream, as dockerd does.
    Failed(String),
}

/// Whether the client asked to upgrade the connection.
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"))
}

/// Takes the upgrade handle out of `req` (before its body is read).
pub fn on_upgrade(req: &mut Request<Incoming>) -> OnUpgrade {
    hyper::upgrade::on(req)
}

/// How the client's input is handled on an attach stream.
pub struct Input {
    /// The sequence that detaches the client (the process goes on, its stdin stays
    /// open); `None`: no detaching.
    pub detach_keys: Option<Vec<u8>>,
    /// Runs (on a blocking thread) when the client's input ends without a detach:
    /// Docker's `StdinOnce` closes the process's stdin then.
    pub on_eof: Option<Box<dyn FnOnce() + Send>>,
}

/// Answers 101 and, once the client has the answer, runs `open` on a blocking thread
/// and bridges the connection to what it returns.
pub fn upgrade<F>(on: OnUpgrade, tty: bool, input: Input, open: F) -> Response<Body>
where
    F: FnOnce() -> Source + Send + 'static,
{
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else {
            return;
        };
        let Ok(source) = tokio::task::spawn_blocking(open).await else {
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let (cr, mut cw) = tokio::io::split(client);
        let shim = match source {
            Source::Live(s) => s,
            Source::Bytes(bytes) => {
                let _ = cw.write_all(&bytes).await;
                let _ = cw.shutdown().await;
                return;
            }
            Source::Failed(msg) => {
                let text = format!("{msg}\r\n");
                let mut out = Vec::new();
                if tty {
                    out.extend_from_slice(text.as_bytes());
                } else {
                    // One stdout frame of Docker's stdcopy format.
                    out.extend_from_slice(&[1, 0, 0, 0]);
                    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
                let _ = cw.write_all(&out).await;
                let _ = cw.shutdown().await;
                return;
            }
        };
        let Some(shim) = shim
            .set_nonblocking(true)
            .ok()
            .and_then(|()| tokio::net::UnixStream::from_std(shim).ok())
        else {
            return;
        };
        let (mut sr, sw) = shim.into_split();
        let (detached_tx, mut detached_rx) = tokio::sync::oneshot::channel::<()>();
        let pump = tokio::spawn(async move {
            if pump_input(cr, sw, input.detach_keys).await {
                let _ = detached_tx.send(());
            } else if let Some(f) = input.on_eof {
                let _ = tokio::task::spawn_blocking(f).await;
            }
        });
        // Output flows until the process's streams end or the client detaches.
        tokio::select! {
            _ = tokio::io::copy(&mut sr, &mut cw) => {}
            Ok(()) = &mut detached_rx => {}
        }
        let _ = cw.shutdown().await;
        pump.abort();
    });
    Response::builder()
        .status(101)
        .header("Content-Type", content_type(tty))
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(full(Bytes::new()))
        .expect("valid response")
}

/// Copies the client's input to the shim until EOF (false) or the detach keys (true);
/// the keys themselves are not passed on, a partial match is once it fails.
async fn pump_input(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    keys: Option<Vec<u8>>,
) -> bool {
    let mut scan = keys.filter(|k| !k.is_empty()).map(Detach::new);
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        out.clear();
        let detached = match scan.as_mut() {
            Some(d) => d.feed(&buf[..n], &mut out),
            None => {
                out.extend_from_slice(&buf[..n]);
                false
            }
        };
        if to.write_all(&out).await.is_err() {
            return false;
        }
        if detached {
            return true;
        }
    }
}

/// Finds the detach sequence in a byte stream.
struct Detach {
    keys: Vec<u8>,
    matched: usize,
}

impl Detach {
    fn new(keys: Vec<u8>) -> Detach {
        Detach { keys, matched: 0 }
    }

    /// Appends to `out` what passes through; true once the whole sequence was seen.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            // The held prefix was ordinary input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// The detach keys of a request (`detachKeys`); empty gives Docker's default.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, api::ApiError> {
    if spec.is_empty() {
        return Ok(api::detach::DEFAULT.to_vec());
    }
    api::detach::parse(spec).map_err(api::ApiError::bad_request)
}

/// Docker's content type for a stream: raw for a terminal, else multiplexed frames.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_detach_keys_are_the_default() {
        assert_eq!(parse_detach_keys("").unwrap(), api::detach::DEFAULT);
        assert_eq!(parse_detach_keys("ctrl-").unwrap_err().status, 400);
    }

    #[test]
    fn detach_sequence_is_found_across_chunks_and_partial_matches_pass() {
        let mut d = Detach::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!d.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        out.clear();
        // ctrl-p then x: both pass through.
        assert!(!d.feed(b"x\x10\x10", &mut out));
        assert_eq!(out, b"\x10x\x10");
        out.clear();
        assert!(d.feed(b"\x11rest", &mut out));
        assert!(out.is_empty());
    }
}
