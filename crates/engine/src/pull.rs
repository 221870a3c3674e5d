//! Pull: a reference resolved on its registry, its layers downloaded in parallel and
//! unpacked as they stream, the image recorded with its tag and repository digest.
//!
//! Per layer, one pass over the network and the disk: the compressed bytes go through
//! the registry client's verifying reader into the content store (a crash-safe ingest)
//! and, at the same time, through the decompressor into the layer's unpacked directory.
//! Layers unpack side by side into private temp dirs (a snapshot needs its parent
//! first), and are then moved into the snapshot store in order. A layer whose snapshot
//! exists is never fetched again. On failure or cancellation everything the pull made
//! (snapshots, blobs, temp dirs) is removed and no image is recorded.
//!
//! Progress goes to the caller as [`Progress`] messages, the domain form of Docker's
//! JSON progress stream; the callback returns `false` once its reader is gone, which
//! cancels the operation.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use image::config::ImageConfig;
use image::reference::ImageRef;
use image::snapshot::Prepared;
use image::Digest;
use registry::{Credentials, Platform};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::images::set_tag;
use crate::store::{ImageRecord, Table, Tx, IMAGES, TAGS};
use crate::{Config, Engine};

/// Repository digests of an image, by image id: familiar `name@sha256:...`.
pub(crate) const REPO_DIGESTS: Table<Vec<String>> = Table::new("repo_digests");
/// Image ids by full digest reference (`docker.io/library/busybox@sha256:...`).
pub(crate) const DIGEST_REFS: Table<String> = Table::new("digest_refs");
/// The compressed form of a layer the content store holds, by diff id.
pub(crate) const LAYER_BLOBS: Table<LayerBlob> = Table::new("layer_blobs");

/// A compressed layer blob kept in the content store (from a pull or a push).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerBlob {
    /// The blob's digest (what manifests list).
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Bytes of the layer's files, uncompressed.
    #[serde(default)]
    pub unpacked_size: u64,
    /// Repositories (`domain/path`) known to hold it, for cross-repository mounts.
    #[serde(default)]
    pub repos: Vec<String>,
}

/// One progress message: what Docker sends as a JSON line of a pull or push stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The layer (12 hex digits) or tag the message is about; `None` for overall status.
    pub id: Option<String>,
    /// `Downloading`, `Pull complete`, `Digest: sha256:...`, ...
    pub status: String,
    /// Bytes done, for `Downloading`, `Extracting`, `Pushing`.
    pub current: Option<u64>,
    /// Bytes in all.
    pub total: Option<u64>,
    /// Extra data (push's `{"Tag","Digest","Size"}`).
    pub aux: Option<serde_json::Value>,
}

impl Progress {
    /// An overall status line.
    pub fn status(s: impl Into<String>) -> Progress {
        Progress {
            status: s.into(),
            ..Progress::default()
        }
    }

    /// A status line about `id`.
    pub fn of(id: &str, s: impl Into<String>) -> Progress {
        Progress {
            id: Some(id.to_string()),
            status: s.into(),
            ..Progress::default()
        }
    }

    fn bytes(id: &str, s: &str, current: u64, total: u64) -> Progress {
        Progress {
            id: Some(id.to_string()),
            status: s.to_string(),
            current: Some(current),
            total: Some(total),
            aux: None,
        }
    }
}

/// The progress callback: returns `false` when no one listens any more (cancels).
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) -> bool + Sync);

/// Sends progress and remembers a cancellation.
pub(crate) struct Reporter<'a> {
    f: ProgressFn<'a>,
    cancelled: AtomicBool,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(f: ProgressFn<'a>) -> Reporter<'a> {
        Reporter {
            f,
            cancelled: AtomicBool::new(false),
        }
    }

    pub(crate) fn send(&self, p: Progress) {
        if !(self.f)(p) {
            self.cancel();
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.cancelled() {
            return Err(Error::Internal(
                "operation cancelled: the client went away".into(),
            ));
        }
        Ok(())
    }
}

/// What a pull may be told.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
    /// Credentials for the registry.
    pub credentials: Credentials,
}

/// The registry client for `config`.
pub(crate) fn registry_client(config: &Config) -> Result<registry::Client> {
    let rc = registry::RegistryConfig {
        certs_dir: config.certs_dir.clone(),
        insecure_registries: config.insecure_registries.clone(),
        registry_mirrors: config.registry_mirrors.clone(),
        loopback_insecure: config.registry_loopback_insecure,
        ..registry::RegistryConfig::default()
    };
    registry::Client::new(rc)
        .map_err(|e| Error::InvalidParameter(format!("registry configuration: {e}")))
}

/// The short id Docker shows for a digest.
pub(crate) fn short(d: &Digest) -> String {
    d.hex()[..12.min(d.hex().len())].to_string()
}

/// A registry error in dockerd's words for a pull of `r`.
pub(crate) fn pull_err(e: registry::Error, r: &ImageRef) -> Error {
    use registry::Error as R;
    match &e {
        R::Http {
            code: Some(code),
            message,
            status,
            ..
        } => {
            let cause = format!("{}: {message}", code.to_lowercase().replace('_', " "));
            match code.as_str() {
                "DENIED" | "UNAUTHORIZED" => Error::NotFound(format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login': {cause}",
                    r.name()
                )),
                "MANIFEST_UNKNOWN" => Error::NotFound(format!(
                    "manifest for {} not found: {cause}",
                    r.familiar()
                )),
                "NAME_UNKNOWN" => {
                    Error::NotFound(format!("repository {} not found: {cause}", r.name()))
                }
                _ if *status == 404 => Error::NotFound(cause),
                _ => Error::Internal(cause),
            }
        }
        R::Http { status: 404, .. } => Error::NotFound(format!(
            "manifest for {} not found: manifest unknown: {e}",
            r.familiar()
        )),
        R::Unauthorized { message, .. } => Error::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {message}",
            r.name()
        )),
        R::InvalidInput(m) => Error::InvalidParameter(m.clone()),
        _ => Error::Internal(e.to_string()),
    }
}

/// A directory under `<data-root>/tmp` named as the image store names its own, so that
/// what a crash leaves is removed at the next start; removed on drop.
pub(crate) struct TempDir(PathBuf);

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    pub(crate) fn new(data_root: &Path, what: &str) -> Result<TempDir> {
        let p = data_root.join("tmp").join(format!(
            "{}-b{}-{what}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).map_err(|e| Error::io("creating", &p, e))?;
        Ok(TempDir(p))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Reads the download, copies it into the ingest, counts, reports, and stops when the
/// operation is cancelled.
struct Tap<'a, 'i, R> {
    inner: R,
    copy: Option<&'i mut dyn Write>,
    done: u64,
    total: u64,
    reported: u64,
    id: &'a str,
    rep: &'a Reporter<'a>,
}

impl<R: Read> Read for Tap<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rep.cancelled() {
            // Not `Interrupted`: `io::copy` and `read_exact` retry that forever.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "pull cancelled: the client went away",
            ));
        }
        let n = self.inner.read(buf)?;
        if let Some(w) = self.copy.as_mut() {
            w.write_all(&buf[..n])?;
        }
        self.done += n as u64;
        if self.done - self.reported >= 256 << 10 || (n > 0 && self.done == self.total) {
            self.reported = self.done;
            self.rep.send(Progress::bytes(
                self.id,
                "Downloading",
                self.done,
                self.total,
            ));
        }
        Ok(n)
    }
}

/// A layer unpacked into a temp dir, waiting to become a snapshot.
struct Fetched {
    tmp: TempDir,
    unpacked_size: u64,
    /// The compressed blob was written by this pull.
    new_blob: bool,
}

/// Slots of results the workers fill and the committer waits on, in layer order.
struct Slots {
    results: Mutex<Vec<Option<Result<Fetched>>>>,
    ready: Condvar,
}

/// What a pull created, removed again unless it succeeds.
#[derive(Default)]
struct Created {
    blobs: Vec<Digest>,
    snapshots: Vec<Digest>,
}

impl Engine {
    /// `POST /images/create?fromImage=&tag=`: pulls `from_image` with `tag` (a tag or a
    /// digest); an empty tag on a reference without one pulls every tag of the
    /// repository (`--all-tags`). Returns the ids of the images pulled.
    pub fn pull_image(
        &self,
        from_image: &str,
        tag: &str,
        opts: &PullOptions,
        progress: ProgressFn<'_>,
    ) -> Result<Vec<String>> {
        let bad = |e: image::reference::ReferenceError| Error::InvalidParameter(e.to_string());
        let reference = if tag.is_empty() {
            from_image.to_string()
        } else if tag.contains(':') {
            format!("{from_image}@{tag}")
        } else {
            format!("{from_image}:{tag}")
        };
        let named = ImageRef::parse_named(&reference).map_err(bad)?;
        let platform = match &opts.platform {
            Some(p) if !p.is_empty() => p
                .parse::<Platform>()
                .map_err(|e| Error::InvalidParameter(e.to_string()))?,
            _ => Platform::host(),
        };
        let rep = Reporter::new(progress);
        let handle = tokio::runtime::Handle::current();
        if named.tag().is_none() && named.digest().is_none() {
            let repo = self.registry.repository(&named, opts.credentials.clone());
            let tags = handle
                .block_on(repo.tags())
                .map_err(|e| pull_err(e, &named))?;
            let mut ids = Vec::new();
            for t in tags {
                rep.check()?;
                let r = named.with_tag(&t).map_err(bad)?;
                ids.push(self.pull_one(&r, opts, &platform, &rep, &handle)?);
            }
            return Ok(ids);
        }
        let r = ImageRef::parse(&reference).map_err(bad)?;
        Ok(vec![self.pull_one(&r, opts, &platform, &rep, &handle)?])
    }

    fn pull_one(
        &self,
        r: &ImageRef,
        opts: &PullOptions,
        platform: &Platform,
        rep: &Reporter<'_>,
        handle: &tokio::runtime::Handle,
    ) -> Result<String> {
        let repo = self.registry.repository(r, opts.credentials.clone());
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let resolved = handle
            .block_on(repo.resolve(&reference, platform))
            .map_err(|e| pull_err(e, r))?;
        rep.send(Progress::of(
            &reference,
            format!("Pulling from {}", r.repository()),
        ));
        rep.check()?;
        let m = &resolved.manifest;
        let raw_config = if self.images.content().exists(&m.config.digest) {
            self.images
                .content()
                .read(&m.config.digest)
                .map_err(|e| Error::Internal(e.to_string()))?
        } else {
            handle
                .block_on(repo.fetch_blob_bytes(&m.config.digest, m.config.size))
                .map_err(|e| pull_err(e, r))?
                .to_vec()
        };
        let config = ImageConfig::from_bytes(raw_config)
            .map_err(|e| Error::InvalidParameter(format!("image config: {e}")))?;
        let diff_ids = config.diff_ids().to_vec();
        if diff_ids.len() != m.layers.len() {
            return Err(Error::InvalidParameter(format!(
                "the manifest lists {} layers, the image config {}",
                m.layers.len(),
                diff_ids.len()
            )));
        }
        let id = config.id().clone();
        let repo_digest = format!("{}@{}", r.name(), resolved.top.digest);
        let digest_key = format!("{}@{}", r.full_name(), resolved.top.digest);

        // Shared with loads: removals wait until the image is recorded.
        let _g = self.image_read_lock();
        let had_image = self.db.get(IMAGES, id.as_str())?.is_some() && self.images.has_image(&id);
        let tag_key = r
            .tag()
            .filter(|_| r.digest().is_none())
            .map(|_| r.to_string());
        let up_to_date = had_image
            && match &tag_key {
                Some(k) => self.db.get(TAGS, k)?.as_deref() == Some(id.as_str()),
                None => true,
            };

        let mut created = Created::default();
        let result = (|| -> Result<Vec<u64>> {
            if had_image {
                return Ok(Vec::new());
            }
            let sizes = self.fetch_layers(
                &repo,
                r,
                &resolved.manifest.layers,
                &diff_ids,
                rep,
                handle,
                &mut created,
            )?;
            if !self.images.content().exists(&id) {
                self.images
                    .content()
                    .write(Some(&id), config.raw())
                    .map_err(|e| Error::Internal(e.to_string()))?;
                created.blobs.push(id.clone());
            }
            Ok(sizes)
        })();
        let sizes = match result {
            Ok(s) => s,
            Err(e) => {
                self.undo(&created);
                return Err(e);
            }
        };
        rep.send(Progress::status(format!("Digest: {}", resolved.top.digest)));
        let repo_name = r.full_name();
        let recorded = self.db.transaction(|tx| {
            if tx.get(IMAGES, id.as_str())?.is_none() {
                let size = diff_ids.iter().zip(&sizes).map(|(_, s)| *s).sum::<u64>();
                let rec = ImageRecord {
                    id: id.to_string(),
                    tags: Vec::new(),
                    created: config.string_field("created").unwrap_or("").to_string(),
                    size,
                    parent: None,
                    last_tag_time: None,
                };
                tx.put(IMAGES, id.as_str(), &rec)?;
            }
            if tag_key.is_some() {
                set_tag(tx, r, &id)?;
            }
            add_repo_digest(tx, &id, &repo_digest, &digest_key)?;
            for (i, (diff, desc)) in diff_ids.iter().zip(&resolved.manifest.layers).enumerate() {
                let mut lb = tx.get(LAYER_BLOBS, diff.as_str())?.unwrap_or_default();
                if lb.digest != desc.digest.as_str() {
                    if !self.images.content().exists(&desc.digest) {
                        continue;
                    }
                    lb = LayerBlob {
                        digest: desc.digest.to_string(),
                        size: desc.size,
                        media_type: desc.media_type.clone(),
                        unpacked_size: sizes.get(i).copied().unwrap_or(0),
                        repos: Vec::new(),
                    };
                }
                if !lb.repos.contains(&repo_name) {
                    lb.repos.push(repo_name.clone());
                }
                tx.put(LAYER_BLOBS, diff.as_str(), &lb)?;
            }
            Ok(())
        });
        if let Err(e) = recorded {
            self.undo(&created);
            return Err(e);
        }
        let shown = match r.digest() {
            Some(_) => repo_digest.clone(),
            None => r.familiar(),
        };
        if up_to_date {
            rep.send(Progress::status(format!(
                "Status: Image is up to date for {shown}"
            )));
        } else {
            rep.send(Progress::status(format!(
                "Status: Downloaded newer image for {shown}"
            )));
        }
        self.emit_image(&shown, &r.name(), "pull");
        Ok(id.to_string())
    }

    /// Removes what a failed pull made.
    fn undo(&self, created: &Created) {
        for s in created.snapshots.iter().rev() {
            let _ = self.images.snapshots().remove(s.as_str());
        }
        for b in &created.blobs {
            let _ = self.images.content().delete(b);
        }
    }

    /// Downloads and unpacks the layers that are missing; returns each layer's
    /// unpacked size.
    #[allow(clippy::too_many_arguments)]
    fn fetch_layers(
        &self,
        repo: &registry::Repository,
        r: &ImageRef,
        layers: &[registry::Descriptor],
        diff_ids: &[Digest],
        rep: &Reporter<'_>,
        handle: &tokio::runtime::Handle,
        created: &mut Created,
    ) -> Result<Vec<u64>> {
        let chains = image::config::chain_ids(diff_ids);
        let mut sizes = vec![0u64; layers.len()];
        let mut todo = VecDeque::new();
        for (i, desc) in layers.iter().enumerate() {
            let id = short(&desc.digest);
            if self.images.has_layer(&chains[i]) {
                sizes[i] = self.known_layer_size(&diff_ids[i]);
                rep.send(Progress::of(&id, "Already exists"));
            } else {
                rep.send(Progress::of(&id, "Pulling fs layer"));
                todo.push_back(i);
            }
        }
        let workers = self.config.max_concurrent_downloads.max(1).min(todo.len());
        for &i in todo.iter().skip(workers) {
            rep.send(Progress::of(&short(&layers[i].digest), "Waiting"));
        }
        let wanted: Vec<usize> = todo.iter().copied().collect();
        let queue = Mutex::new(todo);
        let slots = Slots {
            results: Mutex::new((0..layers.len()).map(|_| None).collect()),
            ready: Condvar::new(),
        };
        let outcome = std::thread::scope(|s| -> Result<()> {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some(i) = next else { break };
                    let res = if rep.cancelled() {
                        Err(Error::Internal("pull cancelled".into()))
                    } else {
                        // A panic must still fill the slot, or the committer waits forever.
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.fetch_layer(repo, r, &layers[i], &diff_ids[i], rep, handle)
                        }))
                        .unwrap_or_else(|_| Err(Error::Internal("layer download panicked".into())))
                    };
                    if res.is_err() {
                        // The pull fails: the others stop too.
                        rep.cancel();
                    }
                    let mut g = slots.results.lock().unwrap_or_else(|p| p.into_inner());
                    g[i] = Some(res);
                    slots.ready.notify_all();
                });
            }
            // Commit in order: each snapshot needs its parent.
            let mut first_err = None;
            for &i in &wanted {
                let res = {
                    let mut g = slots.results.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if let Some(res) = g[i].take() {
                            break res;
                        }
                        g = slots.ready.wait(g).unwrap_or_else(|p| p.into_inner());
                    }
                };
                let f = match res {
                    Ok(f) => f,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        continue;
                    }
                };
                if f.new_blob {
                    created.blobs.push(layers[i].digest.clone());
                }
                if first_err.is_some() {
                    continue;
                }
                sizes[i] = f.unpacked_size;
                let id = short(&layers[i].digest);
                rep.send(Progress::bytes(
                    &id,
                    "Extracting",
                    layers[i].size,
                    layers[i].size,
                ));
                let parent = (i > 0).then(|| chains[i - 1].as_str());
                let src = f.tmp.path().join("fs");
                let prepared = self.images.snapshots().prepare(
                    chains[i].as_str(),
                    parent,
                    |dir| -> io::Result<()> {
                        fs::remove_dir(dir)?;
                        fs::rename(&src, dir)
                    },
                );
                match prepared {
                    Ok(Prepared::Created(())) => created.snapshots.push(chains[i].clone()),
                    Ok(Prepared::Existing) => {}
                    Err(e) => {
                        rep.cancel();
                        first_err.get_or_insert(Error::Internal(format!(
                            "layer {}: {e}",
                            layers[i].digest
                        )));
                        continue;
                    }
                }
                rep.send(Progress::of(&id, "Pull complete"));
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        outcome?;
        Ok(sizes)
    }

    fn known_layer_size(&self, diff_id: &Digest) -> u64 {
        if let Ok(Some(lb)) = self.db.get(LAYER_BLOBS, diff_id.as_str()) {
            if lb.unpacked_size > 0 {
                return lb.unpacked_size;
            }
        }
        self.images.content().size(diff_id).unwrap_or(0)
    }

    /// Downloads one layer into the content store and unpacks it into a temp dir.
    fn fetch_layer(
        &self,
        repo: &registry::Repository,
        r: &ImageRef,
        desc: &registry::Descriptor,
        diff_id: &Digest,
        rep: &Reporter<'_>,
        handle: &tokio::runtime::Handle,
    ) -> Result<Fetched> {
        let id = short(&desc.digest);
        let tmp = TempDir::new(&self.config.data_root, "pull")?;
        let fs_dir = tmp.path().join("fs");
        fs::create_dir(&fs_dir).map_err(|e| Error::io("creating", &fs_dir, e))?;
        let content = self.images.content();
        let internal = |e: image::content::ContentError| Error::Internal(e.to_string());
        let have = content.exists(&desc.digest);
        // The blob goes to its kept partial download (resumed where a cut pull left
        // it), or, while another pull of the same blob holds that, to a plain ingest.
        let mut partial = match have {
            true => None,
            false => content.partial(&desc.digest, desc.size).map_err(internal)?,
        };
        let mut ingest = match (have, &partial) {
            (false, None) => Some(content.ingest(desc.digest.algorithm()).map_err(internal)?),
            _ => None,
        };
        let (offset, prefix_hash) = match &partial {
            Some(p) => (p.offset(), p.hasher()),
            None => (0, image::digest::Hasher::new(desc.digest.algorithm())),
        };
        let head: Box<dyn Read> = match &partial {
            Some(p) if offset > 0 => {
                rep.send(Progress::of(&id, format!("Resuming at {offset} bytes")));
                Box::new(p.prefix().map_err(|e| read_err(e, &desc.digest))?)
            }
            _ => Box::new(io::empty()),
        };
        let blob = handle
            .block_on(repo.fetch_blob_at(&desc.digest, desc.size, offset, prefix_hash))
            .map_err(|e| pull_err(e, r))?;
        let copy: Option<&mut dyn Write> = match (&mut partial, &mut ingest) {
            (Some(p), _) => Some(p),
            (None, Some(i)) => Some(i),
            (None, None) => None,
        };
        let mut tap = Tap {
            inner: blob.into_blocking(handle.clone()),
            copy,
            done: offset,
            total: desc.size,
            reported: offset,
            id: &id,
            rep,
        };
        let fail = |e: String| Error::Internal(format!("layer {}: {e}", desc.digest));
        // Unpacked as it streams: what the partial held, then the network.
        let mut src = head.chain(&mut tap);
        let read = match image::layer::apply(&mut src, &fs_dir, image::layer::Mode::Overlay) {
            // The verifying reader checks size and digest at its end.
            Ok(applied) => match io::copy(&mut src, &mut io::sink()) {
                Ok(_) => Ok(applied),
                Err(e) => Err((bad_download(&e), read_err(e, &desc.digest))),
            },
            Err(image::layer::Error::Tar(e)) => Err((
                bad_download(&e),
                layer_err(image::layer::Error::Tar(e), &desc.digest),
            )),
            // Not a layer: no use keeping it.
            Err(e) => Err((true, layer_err(e, &desc.digest))),
        };
        drop(src);
        drop(tap);
        let applied = match read {
            Ok(a) => a,
            Err((discard, e)) => {
                // A cut download is kept to resume; wrong bytes are not.
                if discard {
                    if let Some(p) = partial {
                        p.discard();
                    }
                }
                return Err(e);
            }
        };
        rep.send(Progress::of(&id, "Verifying Checksum"));
        if applied.diff_id != diff_id.as_str() {
            if let Some(p) = partial {
                p.discard();
            }
            return Err(Error::InvalidParameter(format!(
                "layer {}: digest mismatch: the image config says {diff_id}, the layer's content is {}",
                desc.digest, applied.diff_id
            )));
        }
        let new_blob = match (partial, ingest) {
            (Some(p), _) => {
                p.commit(&desc.digest).map_err(|e| fail(e.to_string()))?;
                true
            }
            (None, Some(ing)) => {
                ing.commit(Some(&desc.digest))
                    .map_err(|e| fail(e.to_string()))?;
                true
            }
            (None, None) => false,
        };
        rep.send(Progress::of(&id, "Download complete"));
        Ok(Fetched {
            tmp,
            unpacked_size: applied.size,
            new_blob,
        })
    }

    /// Repository digests recorded for image `id`.
    pub(crate) fn repo_digests(&self, id: &str) -> Vec<String> {
        self.db
            .get(REPO_DIGESTS, id)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The image a digest reference (`name@sha256:...`) was pulled as.
    pub(crate) fn image_by_digest_ref(&self, r: &ImageRef) -> Result<Option<String>> {
        let Some(d) = r.digest() else {
            return Ok(None);
        };
        self.db.get(DIGEST_REFS, &format!("{}@{d}", r.full_name()))
    }

    /// Forgets the digest references and compressed layer blobs of a deleted image
    /// (the blobs only when no remaining image uses the layer, per `keep`).
    pub(crate) fn forget_pulled(
        &self,
        id: &Digest,
        diff_ids: &[Digest],
        keep: &std::collections::HashSet<Digest>,
    ) {
        let mut blobs = Vec::new();
        let _ = self.db.transaction(|tx| {
            for rd in tx.get(REPO_DIGESTS, id.as_str())?.unwrap_or_default() {
                if let Ok(r) = ImageRef::parse(&rd) {
                    if let Some(d) = r.digest() {
                        let key = format!("{}@{d}", r.full_name());
                        if tx.get(DIGEST_REFS, &key)?.as_deref() == Some(id.as_str()) {
                            tx.delete(DIGEST_REFS, &key)?;
                        }
                    }
                }
            }
            tx.delete(REPO_DIGESTS, id.as_str())?;
            for d in diff_ids.iter().filter(|d| !keep.contains(*d)) {
                if let Some(lb) = tx.get(LAYER_BLOBS, d.as_str())? {
                    blobs.push(lb.digest);
                    tx.delete(LAYER_BLOBS, d.as_str())?;
                }
            }
            Ok(())
        });
        for b in blobs {
            if let Ok(d) = Digest::parse(&b) {
                let _ = self.images.content().delete(&d);
            }
        }
    }
}

/// Adds `repo_digest` (familiar) to image `id` and points `key` (full) at it.
pub(crate) fn add_repo_digest(
    tx: &mut Tx<'_>,
    id: &Digest,
    repo_digest: &str,
    key: &str,
) -> Result<()> {
    if let Some(old) = tx.get(DIGEST_REFS, key)? {
        if old != id.as_str() {
            let mut v = tx.get(REPO_DIGESTS, &old)?.unwrap_or_default();
            v.retain(|x| x != repo_digest);
            tx.put(REPO_DIGESTS, &old, &v)?;
        }
    }
    let mut v = tx.get(REPO_DIGESTS, id.as_str())?.unwrap_or_default();
    // One digest per repository, as Docker keeps it.
    let name = repo_digest.split('@').next().unwrap_or("");
    v.retain(|x| x.split('@').next() != Some(name));
    v.push(repo_digest.to_string());
    v.sort();
    tx.put(REPO_DIGESTS, id.as_str(), &v)?;
    tx.put(DIGEST_REFS, key, &id.to_string())
}

/// An error reading a layer download: the registry's own when it carries one.
fn read_err(e: io::Error, digest: &Digest) -> Error {
    match registry::Error::from_io(e) {
        registry::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
            Error::Internal(e.to_string())
        }
        e => Error::Internal(format!("layer {digest}: {e}")),
    }
}

/// Whether a failed layer download got bytes that are wrong (so its partial download
/// is worthless), rather than being cut short (kept, to resume).
fn bad_download(e: &io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|i| i.downcast_ref::<registry::Error>()),
        Some(registry::Error::DigestMismatch { .. } | registry::Error::TooLarge { .. })
    )
}

fn layer_err(e: image::layer::Error, digest: &Digest) -> Error {
    let msg = e.to_string();
    // A registry error (digest mismatch, truncation) surfaces as the tar's I/O error.
    if let image::layer::Error::Tar(io) = e {
        return read_err(io, digest);
    }
    Error::Internal(format!("layer {digest}: {msg}"))
}
