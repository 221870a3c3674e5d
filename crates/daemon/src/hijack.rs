//! Hijacked connections (`Upgrade: tcp`, status 101), as attach and exec start use
//! them: after the answer the connection carries the container's output one way and
//! its stdin the other.

use std::os::unix::net::UnixStream;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;

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

/// Answers 101 and, once the client has the answer, runs `open` on a blocking thread
/// and bridges the connection to what it returns.
pub fn upgrade<F>(on: OnUpgrade, tty: bool, open: F) -> Response<Body>
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
        let (mut cr, mut cw) = tokio::io::split(client);
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
        let (mut sr, mut sw) = shim.into_split();
        let input = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            // The client closed its side: the process sees EOF on stdin.
            let _ = sw.shutdown().await;
        });
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
        input.abort();
    });
    Response::builder()
        .status(101)
        .header("Content-Type", content_type(tty))
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(full(Bytes::new()))
        .expect("valid response")
}

/// Docker's content type for a stream: raw for a terminal, else multiplexed frames.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}
