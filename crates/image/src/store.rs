//! [`ImageStore`]: the content store, the layer snapshots and the archive formats under
//! one data root, with the primitives the engine builds image operations from.
//!
//! Layout under the root: `content/` (see [`crate::content`]), `snapshots/` (unpacked
//! layers, keyed by chain id) and `tmp/` (extracted archives, regenerated layer tars;
//! private, emptied of dead processes' leftovers at open).
//!
//! Layer tars that come in through load and import are kept, uncompressed, in the
//! content store under their diff id: `docker save` can then write exactly the bytes
//! whose digests the config lists, which a tar regenerated from an unpacked snapshot
//! would not reproduce (Docker keeps tar-split metadata for the same reason).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::archive::{self, ArchiveError, LoadedImage};
use crate::config::{ConfigError, ImageConfig};
use crate::content::{ContentError, ContentStore, Ingest};
use crate::digest::{Algorithm, Digest, DigestingReader};
use crate::import::{self, ImportError, ImportOptions};
use crate::layer;
use crate::reference::ImageRef;
use crate::snapshot::{self, Prepared, Snapshots};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A content store error.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A stored config does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No config with this id is stored.
    #[error("No such image: {0}")]
    ImageNotFound(Digest),
    /// A layer's content does not match the diff id the config gives it.
    #[error("layer {layer}: digest mismatch: the image config says {expected}, the layer's content is {actual}")]
    LayerDigestMismatch {
        /// The layer's name in the archive (or its diff id).
        layer: String,
        /// The diff id from the config.
        expected: Digest,
        /// The digest of the uncompressed layer tar.
        actual: Digest,
    },
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    /// Unpacking or producing a layer failed.
    #[error("layer {layer}: {source}")]
    Layer {
        /// The layer's name or chain id.
        layer: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A layer of the image cannot be written out.
    #[error("layer {0} cannot be saved: its tar is not in the content store and the snapshot does not reproduce it")]
    LayerNotReproducible(Digest),
    /// Other I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

type Result<T> = std::result::Result<T, StoreError>;

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Images on disk: content store, snapshots and temp space under one root.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    snapshots: Snapshots,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root` (the data root).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let content = ContentStore::open(&root)?;
        let snapshots = Snapshots::open(&root)?;
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(format!("create {}", tmp.display())))?;
        clean_dead(&tmp);
        Ok(ImageStore {
            root,
            content,
            snapshots,
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The layer snapshots (for container mounts).
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The config of image `id`.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        let raw = self.content.read(id).map_err(|e| match e {
            ContentError::NotFound(d) => StoreError::ImageNotFound(d),
            e => e.into(),
        })?;
        Ok(ImageConfig::from_bytes(raw)?)
    }

    /// Whether image `id`'s config and every layer snapshot are present.
    pub fn has_image(&self, id: &Digest) -> bool {
        match self.config(id) {
            Ok(c) => c.chain_ids().iter().all(|c| self.has_layer(c)),
            Err(_) => false,
        }
    }

    /// Whether the snapshot of the layer stack `chain_id` exists.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.snapshots.exists(chain_id.as_str()).unwrap_or(false)
    }

    /// Everything image `id` holds in the store: its config, diff ids (layer tars) and
    /// chain ids (snapshots). The union over the images that remain is the `keep` set of
    /// [`remove_image`](Self::remove_image).
    pub fn image_refs(&self, id: &Digest) -> Result<HashSet<Digest>> {
        let c = self.config(id)?;
        let mut s: HashSet<Digest> = c.diff_ids().iter().cloned().collect();
        s.extend(c.chain_ids());
        s.insert(id.clone());
        Ok(s)
    }

    /// Removes image `id`'s config, layer tars and snapshots, except those in `keep`
    /// (what other images still use; reference counting is the engine's). Returns what
    /// was removed. Snapshots go top layer first, so no parent goes before its child.
    pub fn remove_image(&self, id: &Digest, keep: &HashSet<Digest>) -> Result<Vec<Digest>> {
        let c = self.config(id)?;
        let mut removed = Vec::new();
        for chain in c.chain_ids().iter().rev() {
            if !keep.contains(chain) && self.has_layer(chain) {
                self.snapshots.remove(chain.as_str())?;
                removed.push(chain.clone());
            }
        }
        for diff in c.diff_ids() {
            if !keep.contains(diff) && self.content.exists(diff) {
                self.content.delete(diff)?;
                removed.push(diff.clone());
            }
        }
        if !keep.contains(id) {
            self.content.delete(id)?;
            removed.push(id.clone());
        }
        Ok(removed)
    }

    /// Loads a `docker save` archive or an OCI layout tar (plain or gzip).
    pub fn load(&self, reader: impl Read) -> std::result::Result<Vec<LoadedImage>, ArchiveError> {
        archive::load(self, reader)
    }

    /// Writes images as `docker save` (Docker 25+) does; each with the tags to record.
    pub fn save(
        &self,
        images: &[(Digest, Vec<ImageRef>)],
        out: impl Write,
    ) -> std::result::Result<(), ArchiveError> {
        archive::docker::save(self, images, out)
    }

    /// Writes images as an OCI image layout tar.
    pub fn save_oci(
        &self,
        images: &[(Digest, Vec<ImageRef>)],
        out: impl Write,
    ) -> std::result::Result<(), ArchiveError> {
        archive::oci::save(self, images, out)
    }

    /// Creates a single-layer image from a root filesystem tar (`docker import`).
    pub fn import(
        &self,
        reader: impl Read,
        opts: &ImportOptions,
    ) -> std::result::Result<LoadedImage, ImportError> {
        import::import(self, reader, opts)
    }

    /// A new private directory under `tmp/`; the caller removes it.
    pub(crate) fn temp_dir(&self, what: &str) -> Result<PathBuf> {
        let p = self.root.join("tmp").join(format!(
            "{}-{}-{what}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&p).map_err(io_err(format!("create {}", p.display())))?;
        Ok(p)
    }

    /// Unpacks one layer as snapshot `chain_id` on `parent`, and keeps its uncompressed
    /// tar in the content store, in one pass over `reader` (tar, gzip or zstd). The tar must
    /// hash to `diff_id`, or nothing is kept. What is created is recorded in `txn`.
    /// Layers already present are not read again.
    pub(crate) fn unpack_layer(
        &self,
        txn: &mut Txn<'_>,
        name: &str,
        diff_id: &Digest,
        chain_id: &Digest,
        parent: Option<&Digest>,
        reader: impl Read,
    ) -> Result<()> {
        let have_snapshot = self.has_layer(chain_id);
        let have_blob = self.content.exists(diff_id);
        if have_snapshot && have_blob {
            return Ok(());
        }
        // gzip and zstd are undone here rather than by layer::apply, so that the
        // content store gets the uncompressed tar, whose digest is the diff id.
        let (_, input) =
            layer::compress::decompress(reader).map_err(io_err(format!("read layer {name}")))?;
        let mut ingest = if have_blob {
            None
        } else {
            Some(self.content.ingest(Algorithm::Sha256)?)
        };
        let mut tee = Tee {
            inner: DigestingReader::new(input),
            copy: ingest.as_mut(),
        };
        let check = |tee: &mut Tee<'_, '_, _>| -> Result<()> {
            // Hash to the end, past the tar's end-of-archive blocks.
            io::copy(tee, &mut io::sink()).map_err(io_err(format!("read layer {name}")))?;
            let actual = tee.inner.digest();
            if &actual != diff_id {
                return Err(StoreError::LayerDigestMismatch {
                    layer: name.to_string(),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            Ok(())
        };
        if have_snapshot {
            check(&mut tee)?;
        } else {
            let prepared = self.snapshots.prepare(
                chain_id.as_str(),
                parent.map(Digest::as_str),
                |dir| -> Result<()> {
                    layer::apply(&mut tee, dir, layer::Mode::Overlay).map_err(|e| {
                        StoreError::Layer {
                            layer: name.to_string(),
                            source: Box::new(e),
                        }
                    })?;
                    check(&mut tee)
                },
            );
            match prepared {
                Ok(Prepared::Created(())) => txn.snapshots.push(chain_id.clone()),
                // Made meanwhile by a concurrent load: still check what we were given.
                Ok(Prepared::Existing) => check(&mut tee)?,
                // Our own error, passed through the snapshot store: give it back as is.
                Err(snapshot::Error::Apply { source, .. }) => {
                    return Err(match source.downcast::<StoreError>() {
                        Ok(e) => *e,
                        Err(source) => StoreError::Layer {
                            layer: name.to_string(),
                            source,
                        },
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        drop(tee);
        if let Some(ingest) = ingest {
            ingest.commit(Some(diff_id))?;
            txn.blobs.push(diff_id.clone());
        }
        Ok(())
    }

    /// The uncompressed tar of layer `diff_id` (snapshot `chain_id`): from
    /// the content store, or regenerated from the snapshot and kept if it reproduces
    /// the diff id. Returns the blob's path and size.
    pub(crate) fn layer_tar(&self, diff_id: &Digest, chain_id: &Digest) -> Result<(PathBuf, u64)> {
        if !self.content.exists(diff_id) {
            let mut ingest = self.content.ingest(Algorithm::Sha256)?;
            // Overlay whiteouts in the snapshot become `.wh.` entries again.
            let dir = self.snapshots.fs_path(chain_id.as_str())?;
            layer::diff(&dir, &mut ingest).map_err(|e| StoreError::Layer {
                layer: chain_id.to_string(),
                source: Box::new(e),
            })?;
            ingest.commit(Some(diff_id)).map_err(|e| match e {
                ContentError::DigestMismatch { .. } => {
                    StoreError::LayerNotReproducible(diff_id.clone())
                }
                e => e.into(),
            })?;
        }
        Ok((self.content.path(diff_id), self.content.size(diff_id)?))
    }

    /// Stores config bytes, recording them in `txn` if new.
    pub(crate) fn put_config(&self, txn: &mut Txn<'_>, config: &ImageConfig) -> Result<()> {
        if !self.content.exists(config.id()) {
            self.content.write(Some(config.id()), config.raw())?;
            txn.blobs.push(config.id().clone());
        }
        Ok(())
    }

    /// Starts recording what an operation creates, to undo it if the operation fails.
    pub(crate) fn txn(&self) -> Txn<'_> {
        Txn {
            store: self,
            blobs: Vec::new(),
            snapshots: Vec::new(),
            committed: false,
        }
    }
}

/// What an operation created; removed on drop unless committed.
#[derive(Debug)]
pub(crate) struct Txn<'a> {
    store: &'a ImageStore,
    blobs: Vec<Digest>,
    snapshots: Vec<Digest>,
    committed: bool,
}

impl Txn<'_> {
    /// Records a blob the operation created itself.
    pub(crate) fn record_blob(&mut self, d: &Digest) {
        self.blobs.push(d.clone());
    }

    /// Keeps everything.
    pub(crate) fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for s in self.snapshots.iter().rev() {
            let _ = self.store.snapshots.remove(s.as_str());
        }
        for b in &self.blobs {
            let _ = self.store.content.delete(b);
        }
    }
}

/// Reads through `inner`, copying everything read into `copy`.
struct Tee<'i, 's, R> {
    inner: DigestingReader<R>,
    copy: Option<&'i mut Ingest<'s>>,
}

impl<R: Read> Read for Tee<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = self.copy.as_mut() {
            w.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// Removes entries named `<pid>-...` whose process is gone.
fn clean_dead(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let p = e.path();
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
    }
}
