//! Push: an image's layers (gzip; a compressed blob the content store already holds
//! from a pull or an earlier push goes as it is), its config and a Docker v2 schema 2
//! manifest. Layers go in parallel; the registry is asked first (`HEAD`) so present
//! blobs are skipped, and a blob known in another repository of the same registry is
//! mounted from there instead of uploaded.
//!
//! Layers that exist only uncompressed (load, import, commit) are gzipped once into
//! the content store (one pass, crash-safe) and remembered, so the next push of any
//! image sharing them sends the same bytes without compressing again.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use image::digest::{Algorithm, DigestingWriter};
use image::reference::ImageRef;
use image::Digest;
use registry::{BlobPush, Credentials};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, Result};
use crate::pull::{add_repo_digest, short, LayerBlob, Progress, ProgressFn, Reporter, LAYER_BLOBS};
use crate::store::TAGS;
use crate::Engine;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What a push may be told.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Credentials for the registry.
    pub credentials: Credentials,
}

/// A registry error in dockerd's words for a push.
fn push_err(e: registry::Error) -> Error {
    match &e {
        registry::Error::Http {
            code: Some(code),
            message,
            ..
        } => Error::Internal(format!(
            "{}: {message}",
            code.to_lowercase().replace('_', " ")
        )),
        // Docker's words: the registry's code, "denied" for a repository not ours.
        registry::Error::Unauthorized {
            message,
            code: Some(code),
            ..
        } if code == "DENIED" => Error::Internal(format!("denied: {message}")),
        registry::Error::Unauthorized { message, .. } => {
            Error::Internal(format!("unauthorized: {message}"))
        }
        registry::Error::InvalidInput(m) => Error::InvalidParameter(m.clone()),
        _ => Error::Internal(e.to_string()),
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = buf.filled().len() - before;
        self.n.fetch_add(got as u64, Ordering::Relaxed);
        r
    }
}

/// A layer ready to go: its compressed blob in the content store.
struct Ready {
    digest: Digest,
    size: u64,
}

impl Engine {
    /// `POST /images/{name}/push?tag=`: pushes `name:tag`, or with an empty tag every
    /// tag of the repository `name` (or the tag `name` carries).
    pub fn push_image(
        &self,
        name: &str,
        tag: &str,
        opts: &PushOptions,
        progress: ProgressFn<'_>,
    ) -> Result<()> {
        let bad = |e: image::reference::ReferenceError| Error::InvalidParameter(e.to_string());
        let reference = if tag.is_empty() {
            name.to_string()
        } else {
            format!("{name}:{tag}")
        };
        let named = ImageRef::parse_named(&reference).map_err(bad)?;
        let rep = Reporter::new(progress);
        let handle = tokio::runtime::Handle::current();
        let refs: Vec<ImageRef> = if named.tag().is_none() && named.digest().is_none() {
            let mut v: Vec<ImageRef> = self
                .db
                .list(TAGS)?
                .into_iter()
                .filter_map(|(k, _)| ImageRef::parse_named(&k).ok())
                .filter(|r| r.without_tag_or_digest() == named)
                .collect();
            v.sort_by_key(|r| r.to_string());
            v
        } else {
            vec![named.clone()]
        };
        if refs.is_empty() {
            return Err(Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                named.name()
            )));
        }
        rep.send(Progress::status(format!(
            "The push refers to repository [{}]",
            named.name()
        )));
        for r in refs {
            rep.check()?;
            self.push_one(&r, opts, &rep, &handle)?;
        }
        Ok(())
    }

    fn push_one(
        &self,
        r: &ImageRef,
        opts: &PushOptions,
        rep: &Reporter<'_>,
        handle: &tokio::runtime::Handle,
    ) -> Result<()> {
        let res = self.resolve(&r.to_string()).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.name()
            )),
            e => e,
        })?;
        let config = self
            .images
            .config(&res.id)
            .map_err(crate::images::store_err)?;
        let diff_ids = config.diff_ids().to_vec();
        let chains = config.chain_ids();
        let repo = self
            .registry
            .repository(r, opts.credentials.clone())
            .for_push();
        let repo_name = r.full_name();
        // Docker lists the layers top first.
        for d in diff_ids.iter().rev() {
            rep.send(Progress::of(&short(d), "Preparing"));
        }
        let workers = self
            .config
            .max_concurrent_uploads
            .max(1)
            .min(diff_ids.len().max(1));
        for d in diff_ids.iter().rev().skip(workers) {
            rep.send(Progress::of(&short(d), "Waiting"));
        }
        let queue = Mutex::new((0..diff_ids.len()).rev().collect::<VecDeque<usize>>());
        let results: Mutex<Vec<Option<Result<Ready>>>> =
            Mutex::new((0..diff_ids.len()).map(|_| None).collect());
        let _g = self.image_read_lock();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some(i) = next else { break };
                    let res = if rep.cancelled() {
                        Err(Error::Internal("push cancelled".into()))
                    } else {
                        self.push_layer(&repo, r, &diff_ids[i], &chains[i], rep, handle)
                    };
                    if res.is_err() {
                        rep.cancel();
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(res);
                });
            }
        });
        let mut layers = Vec::new();
        for res in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let ready = res.unwrap_or_else(|| Err(Error::Internal("push cancelled".into())))?;
            layers.push(ready);
        }
        rep.check()?;
        let raw = Bytes::copy_from_slice(config.raw());
        handle
            .block_on(repo.push_blob_bytes(raw))
            .map_err(push_err)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "size": config.raw().len(),
                "digest": config.id().as_str(),
            },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": DOCKER_LAYER_GZIP,
                "size": l.size,
                "digest": l.digest.as_str(),
            })).collect::<Vec<_>>(),
        });
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        let size = bytes.len();
        let tag = r.tag().unwrap_or("latest").to_string();
        let digest = handle
            .block_on(repo.push_manifest(&tag, DOCKER_MANIFEST, Bytes::from(bytes)))
            .map_err(push_err)?;
        let repo_digest = format!("{}@{digest}", r.name());
        let key = format!("{repo_name}@{digest}");
        self.db.transaction(|tx| {
            add_repo_digest(tx, &res.id, &repo_digest, &key)?;
            for (d, l) in diff_ids.iter().zip(&layers) {
                if let Some(mut lb) = tx.get(LAYER_BLOBS, d.as_str())? {
                    if lb.digest == l.digest.as_str() && !lb.repos.contains(&repo_name) {
                        lb.repos.push(repo_name.clone());
                        tx.put(LAYER_BLOBS, d.as_str(), &lb)?;
                    }
                }
            }
            Ok(())
        })?;
        rep.send(Progress {
            status: format!("{tag}: digest: {digest} size: {size}"),
            ..Progress::default()
        });
        rep.send(Progress {
            aux: Some(serde_json::json!({"Tag": tag, "Digest": digest.as_str(), "Size": size})),
            ..Progress::default()
        });
        self.emit_image(&r.familiar(), &r.name(), "push");
        Ok(())
    }

    /// The gzip blob of layer `diff_id`: the one the content store holds, or made now.
    fn layer_blob(&self, diff_id: &Digest, chain_id: &Digest) -> Result<LayerBlob> {
        if let Some(lb) = self.db.get(LAYER_BLOBS, diff_id.as_str())? {
            let usable = lb.media_type.contains("gzip")
                && Digest::parse(&lb.digest).is_ok_and(|d| self.images.content().exists(&d));
            if usable {
                return Ok(lb);
            }
        }
        let content = self.images.content();
        let internal = |e: String| Error::Internal(format!("layer {diff_id}: {e}"));
        let ingest = content
            .ingest(Algorithm::Sha256)
            .map_err(|e| internal(e.to_string()))?;
        let gz = LayerGz::new(ingest).map_err(|e| internal(e.to_string()))?;
        let mut w = DigestingWriter::new(gz);
        if content.exists(diff_id) {
            let mut f = content
                .open_blob(diff_id)
                .map_err(|e| internal(e.to_string()))?;
            io::copy(&mut f, &mut w).map_err(|e| internal(e.to_string()))?;
        } else {
            let dir = self
                .images
                .snapshots()
                .fs_path(chain_id.as_str())
                .map_err(|e| internal(e.to_string()))?;
            w = image::layer::diff(&dir, w).map_err(|e| internal(e.to_string()))?;
        }
        w.flush().map_err(|e| internal(e.to_string()))?;
        let (actual, unpacked, gz) = w.finish();
        if &actual != diff_id {
            return Err(internal(format!(
                "its tar is not in the content store and the snapshot does not reproduce it (got {actual})"
            )));
        }
        let ingest = gz.finish().map_err(|e| internal(e.to_string()))?;
        let digest = ingest.commit(None).map_err(|e| internal(e.to_string()))?;
        let size = content.size(&digest).map_err(|e| internal(e.to_string()))?;
        let lb = LayerBlob {
            digest: digest.to_string(),
            size,
            media_type: DOCKER_LAYER_GZIP.into(),
            unpacked_size: unpacked,
            repos: Vec::new(),
        };
        self.db.put(LAYER_BLOBS, diff_id.as_str(), &lb)?;
        Ok(lb)
    }

    fn push_layer(
        &self,
        repo: &registry::Repository,
        r: &ImageRef,
        diff_id: &Digest,
        chain_id: &Digest,
        rep: &Reporter<'_>,
        handle: &tokio::runtime::Handle,
    ) -> Result<Ready> {
        let id = short(diff_id);
        let repo_name = r.full_name();
        let lb = self.layer_blob(diff_id, chain_id)?;
        let digest = Digest::parse(&lb.digest).map_err(|e| Error::Internal(e.to_string()))?;
        let domain = format!("{}/", r.domain());
        let mount_from = lb
            .repos
            .iter()
            .filter(|x| *x != &repo_name)
            .find_map(|x| x.strip_prefix(&domain))
            .map(str::to_string);
        let file = self
            .images
            .content()
            .open_blob(&digest)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let sent = Arc::new(AtomicU64::new(0));
        let source = Counted {
            inner: tokio::fs::File::from_std(file),
            n: sent.clone(),
        };
        let repo2 = repo.clone();
        let d2 = digest.clone();
        let from = mount_from.clone();
        let size = lb.size;
        let task =
            handle.spawn(async move { repo2.push_blob(&d2, size, source, from.as_deref()).await });
        let mut last = 0;
        while !task.is_finished() {
            if rep.cancelled() {
                task.abort();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            let n = sent.load(Ordering::Relaxed);
            if n != last && !task.is_finished() {
                last = n;
                rep.send(Progress {
                    id: Some(id.clone()),
                    status: "Pushing".into(),
                    current: Some(n),
                    total: Some(size),
                    aux: None,
                });
            }
        }
        let outcome = handle
            .block_on(task)
            .map_err(|_| Error::Internal("push cancelled".into()))?
            .map_err(push_err)?;
        match outcome {
            BlobPush::Exists => rep.send(Progress::of(&id, "Layer already exists")),
            BlobPush::Mounted => rep.send(Progress::of(
                &id,
                format!("Mounted from {}", mount_from.as_deref().unwrap_or("")),
            )),
            BlobPush::Uploaded => {
                rep.send(Progress {
                    id: Some(id.clone()),
                    status: "Pushing".into(),
                    current: Some(size),
                    total: Some(size),
                    aux: None,
                });
                rep.send(Progress::of(&id, "Pushed"))
            }
        }
        Ok(Ready { digest, size })
    }
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// The registry refused the credentials (HTTP 401 to the client).
    Unauthorized(String),
    /// Anything else.
    Other(Error),
}

impl Engine {
    /// Checks `auth` against its registry as `docker login` does; returns the identity
    /// token the registry issued, if any.
    pub fn login(
        &self,
        auth: &registry::AuthConfig,
    ) -> std::result::Result<Option<String>, LoginError> {
        let server = if auth.serveraddress.is_empty() {
            "https://index.docker.io/v1/".to_string()
        } else {
            auth.serveraddress.clone()
        };
        let handle = tokio::runtime::Handle::current();
        let host = registry::normalize_server(&server);
        match handle.block_on(self.registry.login(&server, &auth.credentials())) {
            Ok(o) => Ok(o.identity_token),
            Err(e) if e.status() == Some(401) => Err(LoginError::Unauthorized(format!(
                "login attempt to https://{host}/v2/ failed with status: 401 Unauthorized"
            ))),
            Err(registry::Error::InvalidInput(m)) => {
                Err(LoginError::Other(Error::InvalidParameter(m)))
            }
            Err(e) => Err(LoginError::Other(Error::Internal(e.to_string()))),
        }
    }
}

/// A gzip writer for layers that adapts to the data: each 1 MiB of input is deflated at
/// level 1 (what `Compression::fast()` gives), except a chunk whose sampled byte entropy
/// says it is already compressed or random (media, archives, compressed binaries), which
/// goes out as deflate stored blocks written here: deflating such bytes costs ~10x the
/// CPU for nothing (the output is as large either way). One standard gzip member, one
/// deflate stream; any gunzip reads it.
pub(crate) struct LayerGz<W: Write> {
    inner: W,
    z: flate2::Compress,
    crc: flate2::Crc,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// The last chunk went as stored blocks.
    stored: bool,
}

const GZ_CHUNK: usize = 1 << 20;
const GZ_LEVEL: u32 = 1;

impl<W: Write> LayerGz<W> {
    pub(crate) fn new(mut inner: W) -> io::Result<LayerGz<W>> {
        // mtime 0, no flags, OS unknown: what flate2's GzEncoder writes.
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(LayerGz {
            inner,
            z: flate2::Compress::new(flate2::Compression::new(GZ_LEVEL), false),
            crc: flate2::Crc::new(),
            buf: Vec::with_capacity(GZ_CHUNK),
            out: Vec::with_capacity(256 << 10),
            stored: false,
        })
    }

    /// Deflates `input` with `flush`, writing all the output.
    fn deflate(&mut self, mut input: &[u8], flush: flate2::FlushCompress) -> io::Result<()> {
        use flate2::{FlushCompress, Status};
        loop {
            let before = self.z.total_in();
            self.out.clear();
            let st = self
                .z
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            input = &input[(self.z.total_in() - before) as usize..];
            self.inner.write_all(&self.out)?;
            let full = self.out.len() == self.out.capacity();
            let done = match flush {
                FlushCompress::Finish => st == Status::StreamEnd,
                FlushCompress::None => input.is_empty(),
                _ => input.is_empty() && !full,
            };
            if done {
                return Ok(());
            }
        }
    }

    fn chunk(&mut self, last: bool) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        self.crc.update(&buf);
        if high_entropy(&buf) {
            if !self.stored {
                // A full flush: byte-aligned, and the compressor's history reset, so
                // nothing it deflates later refers back across the stored blocks.
                self.deflate(&[], flate2::FlushCompress::Full)?;
                self.stored = true;
            }
            for part in buf.chunks(0xffff) {
                let len = part.len() as u16;
                let mut head = [0u8; 5]; // BFINAL 0, BTYPE 00, LEN, NLEN
                head[1..3].copy_from_slice(&len.to_le_bytes());
                head[3..5].copy_from_slice(&(!len).to_le_bytes());
                self.inner.write_all(&head)?;
                self.inner.write_all(part)?;
            }
            if last {
                self.deflate(&[], flate2::FlushCompress::Finish)?;
            }
        } else {
            self.stored = false;
            let flush = if last {
                flate2::FlushCompress::Finish
            } else {
                flate2::FlushCompress::None
            };
            self.deflate(&buf, flush)?;
        }
        self.buf = buf;
        self.buf.clear();
        Ok(())
    }

    /// Ends the gzip member (the last chunk, the CRC and size trailer); returns the
    /// inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.chunk(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for LayerGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(GZ_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == GZ_CHUNK {
            self.chunk(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-member would cut blocks short; `finish` ends the stream.
        Ok(())
    }
}

/// Whether `chunk` looks incompressible: the Shannon entropy of 16 samples of 4 KiB
/// spread over it is above 7.9 bits per byte (text, tar headers, code and most binaries
/// are well below; compressed or random bytes are at ~7.99).
fn high_entropy(chunk: &[u8]) -> bool {
    const SAMPLE: usize = 4096;
    const SAMPLES: usize = 16;
    if chunk.len() < SAMPLE * SAMPLES {
        return false;
    }
    let mut hist = [0u32; 256];
    let step = chunk.len() / SAMPLES;
    for i in 0..SAMPLES {
        for &b in &chunk[i * step..i * step + SAMPLE] {
            hist[b as usize] += 1;
        }
    }
    let n = (SAMPLE * SAMPLES) as f64;
    let h: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    h > 7.9
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(data: &[u8]) -> usize {
        let mut gz = LayerGz::new(Vec::new()).unwrap();
        for part in data.chunks(8191) {
            gz.write_all(part).unwrap();
        }
        let out = gz.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data, "round trip");
        out.len()
    }

    #[test]
    fn layer_gz_round_trips_mixed_data() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        let text: Vec<u8> = b"hello layer "
            .iter()
            .cycle()
            .take(3 << 20)
            .copied()
            .collect();
        let random: Vec<u8> = (0..(3 << 20) + 12345).map(|_| noise()).collect();
        let mut mixed = text.clone();
        mixed.extend_from_slice(&random);
        mixed.extend_from_slice(&text);
        assert_eq!(roundtrip(&[]), 20);
        assert!(roundtrip(&text) < text.len() / 50);
        let n = roundtrip(&random);
        assert!(n < random.len() + random.len() / 100);
        let n = roundtrip(&mixed);
        assert!(
            n < random.len() + random.len() / 20,
            "text still compressed: {n}"
        );
    }
}
