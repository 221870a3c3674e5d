//! Bridges between hyper's async bodies and the engine's blocking `Read`/`Write`:
//! a request body read from a blocking thread, and a response body written from one.
//! Both go through bounded channels, so neither side buffers more than a few chunks.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use crate::server::Body;

/// Chunks in flight between the async and the blocking side.
const DEPTH: usize = 8;
/// Bytes a [`ChannelWriter`] collects before sending a chunk.
const CHUNK: usize = 64 << 10;

/// A request body as a blocking [`Read`], for use inside `spawn_blocking`.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
}

/// Starts forwarding `body` and returns its blocking reader.
pub fn body_reader(mut body: Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        let mut reader_gone = false;
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue, // trailers
                },
                Err(e) => Err(io::Error::other(e)),
            };
            let failed = item.is_err();
            // Once the reader has stopped (say, on a bad archive), the rest is read
            // and dropped so the client can finish sending and read the error.
            if !reader_gone && tx.send(item).await.is_err() {
                reader_gone = true;
            }
            if failed {
                break;
            }
        }
    });
    BodyReader {
        rx,
        buf: Bytes::new(),
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A blocking [`Write`] whose bytes become a streamed response body. Writing fails
/// with `BrokenPipe` once the client is gone, which stops the writer's work.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer sending into `tx`.
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A response body fed by a channel; an `Err` item aborts the response, so a client
/// never takes a cut-off stream for a complete one.
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(b) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// A streamed body: `first`, then what arrives on `rx`.
pub fn channel_body(first: Option<Bytes>, rx: mpsc::Receiver<io::Result<Bytes>>) -> Body {
    ChannelBody { first, rx }.boxed()
}

/// Streams what `produce` writes (on a blocking thread) as a 200 response of
/// `content_type`. An error before the first byte is the response's error (a 404
/// stays a 404); after it, the stream is cut, as dockerd does.
pub async fn blocking_body<F>(
    content_type: &'static str,
    produce: F,
) -> Result<hyper::Response<Body>, api::ApiError>
where
    F: FnOnce(ChannelWriter) -> engine::Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let err_tx = tx.clone();
    let task = tokio::task::spawn_blocking(move || {
        let r = produce(ChannelWriter::new(tx));
        if let Err(err) = &r {
            let _ = err_tx.blocking_send(Err(io::Error::other(err.to_string())));
        }
        r
    });
    let first = match rx.recv().await {
        Some(Ok(chunk)) => Some(chunk),
        _ => {
            task.await
                .map_err(|e| api::ApiError::internal(format!("engine task failed: {e}")))?
                .map_err(crate::error::from_engine)?;
            None
        }
    };
    Ok(hyper::Response::builder()
        .status(200)
        .header("Content-Type", content_type)
        .body(channel_body(first, rx))
        .expect("valid response"))
}
