//! Image archives: `docker save`/`docker load` (docker-archive, [`docker`]) and the OCI
//! image layout ([`oci`]).
//!
//! Loading first extracts the archive into a private directory under the store's
//! `tmp/` (as Docker does): `docker save` writes `manifest.json` after the blobs, so
//! the stream cannot be interpreted in one pass, and extracting keeps layers on disk
//! rather than in memory. Extraction refuses members that would land outside the
//! directory and records symlinks and hard links instead of creating them, resolving
//! them itself when the manifest names a path. Everything a load creates in the store
//! is recorded and removed again if the load fails.
//!
//! Layer tars for save come from the content store, or are produced from snapshots by
//! `crate::layer::diff`; `crate::layer::tar_dir` tars a whole directory.

pub mod docker;
pub mod oci;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::config::{ConfigError, ImageConfig};
use crate::content::ContentError;
use crate::digest::Digest;
use crate::reference::ImageRef;
use crate::store::{ImageStore, StoreError};

/// Errors of load and save.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input is not a (possibly gzip-compressed) tar stream.
    #[error("invalid archive: not a tar file: {0}")]
    NotATar(io::Error),
    /// The tar stream ends in the middle of a member.
    #[error("invalid archive: unexpected end of archive (truncated?): {0}")]
    Truncated(io::Error),
    /// A member or manifest path would escape the archive.
    #[error("invalid archive: unsafe path {0:?}")]
    UnsafePath(String),
    /// Neither `manifest.json` nor `index.json` is present.
    #[error(
        "invalid archive: no manifest.json or index.json found (not a docker save or OCI archive)"
    )]
    NoManifest,
    /// A file the manifest names is missing.
    #[error("invalid archive: {0:?} is referenced by the manifest but not in the archive")]
    MissingFile(String),
    /// `manifest.json`, `index.json` or another metadata file is malformed.
    #[error("invalid archive: {file}: {message}")]
    BadMetadata {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A config is malformed.
    #[error("invalid archive: {file}: {source}")]
    BadConfig {
        /// The config's path in the archive.
        file: String,
        /// The parse error.
        #[source]
        source: ConfigError,
    },
    /// A blob does not hash to the digest it is named or referenced by.
    #[error("invalid archive: {file}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob's path in the archive.
        file: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// Number of layers and of `rootfs.diff_ids` differ.
    #[error("invalid archive: image {image} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCount {
        /// The image's config path.
        image: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff ids in the config.
        diff_ids: usize,
    },
    /// A tag in the archive does not parse.
    #[error("invalid archive: invalid tag {tag:?}: {message}")]
    BadTag {
        /// The tag as written.
        tag: String,
        /// Why it is invalid.
        message: String,
    },
    /// The image to save is not in the store.
    #[error("No such image: {0}")]
    NoSuchImage(Digest),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// I/O while reading or writing the archive.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl From<ContentError> for ArchiveError {
    fn from(e: ContentError) -> Self {
        ArchiveError::Store(StoreError::Content(e))
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

type Result<T> = std::result::Result<T, ArchiveError>;

/// The largest manifest, index or config a load reads (Docker's own limit for
/// manifests is 4 MiB; configs with long histories are bigger but nowhere near this).
const MAX_METADATA_SIZE: u64 = 64 << 20;

/// An image a load (or import) added to the store. The caller records the tags.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The image id (config digest).
    pub id: Digest,
    /// The config.
    pub config: ImageConfig,
    /// Tags the archive gave the image (normalised); may be empty.
    pub tags: Vec<ImageRef>,
    /// `(diff_id, chain_id)` of each layer, bottom first.
    pub layers: Vec<(Digest, Digest)>,
}

/// Loads an archive of either format, detected by its content: a docker-archive
/// (`manifest.json`, including Docker 25+'s combined layout) or an OCI image layout.
/// Plain or gzip-compressed tar.
pub fn load(store: &ImageStore, reader: impl Read) -> Result<Vec<LoadedImage>> {
    let ex = Extracted::extract(store, reader)?;
    if ex.exists("manifest.json") {
        docker::load_extracted(store, &ex)
    } else if ex.exists("index.json") {
        oci::load_extracted(store, &ex)
    } else {
        Err(ArchiveError::NoManifest)
    }
}

/// An archive extracted into a private directory, removed on drop.
#[derive(Debug)]
pub(crate) struct Extracted {
    dir: PathBuf,
    /// Symlinks and hard links, by normalised member path: the normalised target.
    links: HashMap<String, String>,
}

impl Extracted {
    /// Extracts `reader` (tar, maybe gzip) into a new directory of `store`'s tmp.
    pub(crate) fn extract(store: &ImageStore, reader: impl Read) -> Result<Self> {
        let dir = store.temp_dir("load")?;
        let mut ex = Extracted {
            dir,
            links: HashMap::new(),
        };
        let (_, input) =
            crate::layer::compress::decompress(reader).map_err(ArchiveError::NotATar)?;
        let mut archive = tar::Archive::new(input);
        let entries = archive.entries().map_err(ArchiveError::NotATar)?;
        let mut seen_any = false;
        for entry in entries {
            let mut entry = entry.map_err(|e| classify(e, seen_any))?;
            seen_any = true;
            let raw = entry.path().map_err(ArchiveError::NotATar)?.into_owned();
            let raw_str = raw.to_string_lossy().into_owned();
            let Some(rel) = normalise(&raw_str) else {
                return Err(ArchiveError::UnsafePath(raw_str));
            };
            if rel.is_empty() {
                continue;
            }
            let dest = ex.dir.join(&rel);
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    fs::create_dir_all(&dest).map_err(io_err(format!("extract {rel}")))?;
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).map_err(io_err(format!("extract {rel}")))?;
                    }
                    // A member may repeat (later wins, as in tar); never write through
                    // anything but a plain file we created.
                    let _ = fs::remove_file(&dest);
                    let mut f = File::create(&dest).map_err(io_err(format!("extract {rel}")))?;
                    io::copy(&mut entry, &mut f).map_err(|e| classify(e, true))?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(ArchiveError::NotATar)?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    // Relative to the link's directory; an absolute target is taken
                    // relative to the archive root.
                    let joined = if target.starts_with('/') {
                        target
                    } else {
                        match rel.rsplit_once('/') {
                            Some((parent, _)) => format!("{parent}/{target}"),
                            None => target,
                        }
                    };
                    // A link pointing outside the archive is left unresolved; a manifest
                    // naming it then finds no file.
                    if let Some(t) = resolve_dots(&joined) {
                        ex.links.insert(rel, t);
                    }
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(ArchiveError::NotATar)?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match normalise(&target) {
                        Some(t) => {
                            ex.links.insert(rel, t);
                        }
                        None => return Err(ArchiveError::UnsafePath(target)),
                    }
                }
                // Devices, fifos and the like have no place in an image archive.
                _ => {}
            }
        }
        Ok(ex)
    }

    /// Resolves a path named by a manifest to a regular file in the extracted tree.
    pub(crate) fn resolve(&self, name: &str) -> Result<PathBuf> {
        let mut path = normalise(name).ok_or_else(|| ArchiveError::UnsafePath(name.to_string()))?;
        // Follow recorded links, on the whole path or on a leading directory.
        for _ in 0..32 {
            if let Some(t) = self.links.get(&path) {
                path = t.clone();
                continue;
            }
            let mut replaced = false;
            let mut prefix = path.as_str();
            while let Some((p, _)) = prefix.rsplit_once('/') {
                if let Some(t) = self.links.get(p) {
                    path = format!("{t}{}", &path[p.len()..]);
                    replaced = true;
                    break;
                }
                prefix = p;
            }
            if !replaced {
                break;
            }
        }
        let full = self.dir.join(&path);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => Ok(full),
            _ => Err(ArchiveError::MissingFile(name.to_string())),
        }
    }

    /// Whether a regular file exists at `name`.
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    /// Reads a (small) metadata file: manifest, index or config.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.resolve(name)?;
        let len = fs::metadata(&p)
            .map_err(io_err(format!("stat {name}")))?
            .len();
        // Metadata is read into memory; a crafted archive must not make that unbounded.
        if len > MAX_METADATA_SIZE {
            return Err(ArchiveError::BadMetadata {
                file: name.to_string(),
                message: format!("too large ({len} bytes, at most {MAX_METADATA_SIZE})"),
            });
        }
        fs::read(&p).map_err(io_err(format!("read {name}")))
    }

    /// Opens a file for streaming.
    pub(crate) fn open(&self, name: &str) -> Result<File> {
        let p = self.resolve(name)?;
        File::open(&p).map_err(io_err(format!("open {name}")))
    }
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn classify(e: io::Error, seen_any: bool) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof && seen_any {
        ArchiveError::Truncated(e)
    } else if seen_any {
        // The tar crate reports a cut-off header as "failed to read entire block".
        if e.to_string().contains("entire block") {
            ArchiveError::Truncated(e)
        } else {
            ArchiveError::Io {
                context: "read archive".into(),
                source: e,
            }
        }
    } else {
        ArchiveError::NotATar(e)
    }
}

/// Lexically normalises an archive path: strips `./` and `/` prefixes and empty
/// components; `None` if it contains `..` (even one that would stay inside: such
/// archives are not written by any tool berth reads, and refusing is safest).
pub(crate) fn normalise(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Like [`normalise`], but `..` removes the previous component (for link targets);
/// `None` if the path climbs above the archive root.
fn resolve_dots(p: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_paths() {
        assert_eq!(normalise("./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalise("/a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalise("a/./b").as_deref(), Some("a/b"));
        assert_eq!(normalise("a/../b"), None);
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise(".").as_deref(), Some(""));
        assert_eq!(resolve_dots("a/../b/c").as_deref(), Some("b/c"));
        assert_eq!(resolve_dots("a/../../b"), None);
    }
}

#[cfg(test)]
mod load_tests;
