//! Verified blob downloads (every byte hashed, size enforced, interrupted transfers
//! resumed with `Range`) and streamed upload bodies.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use image::digest::Hasher;
use image::Digest;
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, Result};

/// A request that re-opens the blob at an offset: the body and how many leading bytes
/// of it to discard (when the server ignored `Range`).
pub(crate) type ResumeFuture = Pin<Box<dyn Future<Output = Result<(Incoming, u64)>> + Send>>;
pub(crate) type Resumer = Box<dyn Fn(u64) -> ResumeFuture + Send + Sync>;

enum State {
    Body(Incoming),
    /// Nothing left to receive: only the final check.
    Finish,
    Resuming(ResumeFuture),
    Done,
}

/// A blob download: yields the bytes as they arrive and fails, instead of ending, when
/// they do not add up to the expected size and digest. Reading to the end is what
/// verifies: the final read reports [`Error::DigestMismatch`] or [`Error::Truncated`].
///
/// Use [`BlobReader::next_chunk`] (no copy), the `AsyncRead` impl (errors are
/// `io::Error`s wrapping [`Error`]; recover them with [`Error::from_io`]), or
/// [`BlobReader::into_blocking`] for sync code.
pub struct BlobReader {
    digest: Digest,
    size: u64,
    offset: u64,
    received: u64,
    hasher: Option<Hasher>,
    skip: u64,
    state: State,
    pending: Bytes,
    resumer: Option<Resumer>,
    resumes_left: u32,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        digest: Digest,
        size: u64,
        offset: u64,
        hasher: Hasher,
        body: Option<Incoming>,
        skip: u64,
        resumer: Option<Resumer>,
        resumes: u32,
    ) -> BlobReader {
        BlobReader {
            digest,
            size,
            offset,
            received: offset,
            hasher: Some(hasher),
            skip,
            state: body.map(State::Body).unwrap_or(State::Finish),
            pending: Bytes::new(),
            resumer,
            resumes_left: resumes,
        }
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's full size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where this download started (non-zero when resumed by the caller).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the blob received so far, counting from 0 (so `offset` included).
    pub fn position(&self) -> u64 {
        self.received
    }

    /// The next piece of the blob, `None` at the verified end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Reads the rest of the blob into memory (for configs and other small blobs).
    pub async fn read_all(mut self) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(
            usize::try_from(self.size - self.offset)
                .unwrap_or(0)
                .min(16 << 20),
        );
        while let Some(c) = self.next_chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }

    /// A `std::io::Read` over this reader for sync code running outside the runtime's
    /// worker threads (e.g. in `spawn_blocking`): each read blocks on `handle`.
    pub fn into_blocking(self, handle: tokio::runtime::Handle) -> BlockingBlobReader {
        BlockingBlobReader {
            inner: self,
            handle,
            pending: Bytes::new(),
        }
    }

    fn finish_check(&mut self) -> Result<Option<Bytes>> {
        self.state = State::Done;
        if self.received < self.size {
            return Err(Error::Truncated {
                digest: self.digest.clone(),
                expected: self.size,
                received: self.received,
            });
        }
        match self.hasher.take().map(Hasher::finish) {
            Some(actual) if actual != self.digest => Err(Error::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            }),
            _ => Ok(None),
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Result<Option<Bytes>>> {
        self.state = State::Done;
        Poll::Ready(Err(e))
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(None)),
                State::Finish => return Poll::Ready(self.finish_check()),
                State::Resuming(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((body, skip))) => {
                        self.skip = skip;
                        self.state = State::Body(body);
                    }
                    Poll::Ready(Err(e)) => return self.fail(e),
                },
                State::Body(body) => match Pin::new(body).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(mut data) = frame.into_data() else {
                            continue; // trailers
                        };
                        if self.skip > 0 {
                            let n = (self.skip).min(data.len() as u64) as usize;
                            self.skip -= n as u64;
                            data = data.slice(n..);
                        }
                        if data.is_empty() {
                            continue;
                        }
                        if self.received + data.len() as u64 > self.size {
                            return self.fail(Error::TooLarge {
                                what: format!("blob {}", self.digest),
                                limit: self.size,
                            });
                        }
                        self.received += data.len() as u64;
                        if let Some(h) = self.hasher.as_mut() {
                            h.update(&data);
                        }
                        return Poll::Ready(Ok(Some(data)));
                    }
                    Poll::Ready(Some(Err(_)))
                        if self.resumes_left > 0
                            && self.resumer.is_some()
                            && self.received < self.size =>
                    {
                        self.resumes_left -= 1;
                        if let Some(r) = &self.resumer {
                            self.state = State::Resuming(r(self.received));
                        }
                    }
                    Poll::Ready(Some(Err(_))) | Poll::Ready(None) if self.received < self.size => {
                        let e = Error::Truncated {
                            digest: self.digest.clone(),
                            expected: self.size,
                            received: self.received,
                        };
                        return self.fail(e);
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return self.fail(Error::Interrupted {
                            what: format!("blob {}", self.digest),
                            message: e.to_string(),
                        })
                    }
                    Poll::Ready(None) => return Poll::Ready(self.finish_check()),
                },
            }
        }
    }
}

impl AsyncRead for BlobReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match this.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into_io())),
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(Some(b))) => this.pending = b,
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// A [`BlobReader`] as a blocking `std::io::Read` (see [`BlobReader::into_blocking`]).
#[derive(Debug)]
pub struct BlockingBlobReader {
    inner: BlobReader,
    handle: tokio::runtime::Handle,
    pending: Bytes,
}

impl io::Read for BlockingBlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            let next = self.handle.block_on(self.inner.next_chunk());
            match next {
                Ok(Some(b)) => self.pending = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(e.into_io()),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// An upload body read from an `AsyncRead`: exactly `size` bytes, hashed on the way, and
/// an error (so the registry never commits the upload) when the source is shorter,
/// longer, or does not hash to the digest.
pub(crate) struct ReaderBody<R> {
    reader: R,
    digest: Digest,
    remaining: u64,
    hasher: Option<Hasher>,
    buf: Vec<u8>,
}

impl<R> ReaderBody<R> {
    pub fn new(reader: R, digest: Digest, size: u64) -> Self {
        ReaderBody {
            reader,
            hasher: Some(Hasher::new(digest.algorithm())),
            digest,
            remaining: size,
            buf: vec![0; 256 * 1024],
        }
    }
}

impl<R: AsyncRead + Unpin> hyper::body::Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            // Bytes past the declared size are not sent; the digest decides.
            if let Some(h) = this.hasher.take() {
                let actual = h.finish();
                if actual != this.digest {
                    return Poll::Ready(Some(Err(Error::DigestMismatch {
                        expected: this.digest.clone(),
                        actual,
                    }
                    .into_io())));
                }
            }
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let mut rb = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.reader).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "upload source of {} ended {} bytes short",
                            this.digest, this.remaining
                        ),
                    ))));
                }
                let data = Bytes::copy_from_slice(rb.filled());
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&data);
                }
                this.remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.hasher.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
