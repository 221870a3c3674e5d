//! The docker-archive format of `docker save` / `docker load`.
//!
//! `manifest.json` lists the images: `[{"Config": ..., "RepoTags": [...], "Layers": [...]}]`
//! with paths either in the legacy form (`<hex>.json`, `<id>/layer.tar`, possibly
//! symlinks between layer directories) or in Docker 25+'s (`blobs/sha256/<hex>`, the
//! archive being an OCI layout at the same time). `repositories` and legacy per-layer
//! `json`/`VERSION` files are accepted and ignored, as Docker does when `manifest.json`
//! is present. Pre-1.10 archives without `manifest.json` are not supported.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::oci::{self, append_bytes};
use super::{io_err, ArchiveError, Extracted, LoadedImage, Result};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::reference::ImageRef;
use crate::store::ImageStore;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestItem {
    /// Path of the config in the archive.
    pub config: String,
    /// Familiar `name:tag` strings; `null` for an untagged image.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    pub layers: Vec<String>,
    /// Legacy parent image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Foreign layer descriptors (Windows); kept for completeness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_sources: Option<Value>,
}

/// Loads a docker-archive (plain or gzip tar). Accepts an OCI layout tar too.
pub fn load(store: &ImageStore, reader: impl Read) -> Result<Vec<LoadedImage>> {
    super::load(store, reader)
}

fn bad(file: &str, message: impl ToString) -> ArchiveError {
    ArchiveError::BadMetadata {
        file: file.to_string(),
        message: message.to_string(),
    }
}

/// The digest a config's path claims for it: `<hex>.json` or `blobs/sha256/<hex>`.
fn digest_in_name(path: &str) -> Option<Digest> {
    let base = path.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    if path.ends_with(".json") || path.contains("blobs/sha256/") {
        Digest::from_sha256_hex(hex).ok()
    } else {
        None
    }
}

pub(crate) fn load_extracted(store: &ImageStore, ex: &Extracted) -> Result<Vec<LoadedImage>> {
    let items: Vec<ManifestItem> =
        serde_json::from_slice(&ex.read("manifest.json")?).map_err(|e| bad("manifest.json", e))?;
    if items.is_empty() {
        return Err(bad("manifest.json", "no images listed"));
    }
    let mut txn = store.txn();
    let mut out = Vec::new();
    for item in items {
        let raw = ex.read(&item.config)?;
        let config = ImageConfig::from_bytes(raw).map_err(|source| ArchiveError::BadConfig {
            file: item.config.clone(),
            source,
        })?;
        if let Some(named) = digest_in_name(&item.config) {
            if &named != config.id() {
                return Err(ArchiveError::DigestMismatch {
                    file: item.config.clone(),
                    expected: named,
                    actual: config.id().clone(),
                });
            }
        }
        let diff_ids = config.diff_ids().to_vec();
        if item.layers.len() != diff_ids.len() {
            return Err(ArchiveError::LayerCount {
                image: item.config.clone(),
                layers: item.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut tags = Vec::new();
        for t in item.repo_tags.iter().flatten() {
            let r = ImageRef::parse(t).map_err(|e| ArchiveError::BadTag {
                tag: t.clone(),
                message: e.to_string(),
            })?;
            if r.tag().is_none() {
                return Err(ArchiveError::BadTag {
                    tag: t.clone(),
                    message: "must be a tag, not a digest".into(),
                });
            }
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
        let chain_ids = config.chain_ids();
        for (i, name) in item.layers.iter().enumerate() {
            let file = ex.open(name)?;
            let parent = i.checked_sub(1).map(|p| &chain_ids[p]);
            store.unpack_layer(&mut txn, name, &diff_ids[i], &chain_ids[i], parent, file)?;
        }
        store.put_config(&mut txn, &config)?;
        out.push(LoadedImage {
            id: config.id().clone(),
            tags,
            layers: diff_ids.into_iter().zip(chain_ids).collect(),
            config,
        });
    }
    txn.commit();
    Ok(out)
}

/// Writes `images` (id and the tags to record for it) as Docker 25+'s `docker save`
/// does: an OCI layout (`blobs/sha256/`, `index.json`, `oci-layout`) plus
/// `manifest.json` and `repositories` pointing into it. Layers are uncompressed tars
/// named by their diff ids.
pub fn save(store: &ImageStore, images: &[(Digest, Vec<ImageRef>)], out: impl Write) -> Result<()> {
    let prepared = oci::prepare(store, images)?;
    let mut manifest = Vec::new();
    // name → tag → top layer (hex), as the legacy `repositories` file has it.
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in &prepared {
        let tags: Vec<&ImageRef> = img.tags.iter().filter(|t| t.tag().is_some()).collect();
        manifest.push(ManifestItem {
            config: oci::blob_path(img.config.id()),
            repo_tags: (!tags.is_empty()).then(|| tags.iter().map(|t| t.familiar()).collect()),
            layers: img
                .layers
                .iter()
                .map(|(d, _, _)| oci::blob_path(d))
                .collect(),
            parent: None,
            layer_sources: None,
        });
        if let Some((top, _, _)) = img.layers.last() {
            for t in &tags {
                repositories.entry(t.name()).or_default().insert(
                    t.tag().unwrap_or_default().to_string(),
                    top.hex().to_string(),
                );
            }
        }
    }
    let mut b = tar::Builder::new(out);
    oci::write_blobs(&mut b, &prepared)?;
    append_bytes(&mut b, "index.json", &oci::index_json(&prepared))?;
    let manifest = serde_json::to_vec(&manifest).map_err(|e| bad("manifest.json", e))?;
    append_bytes(&mut b, "manifest.json", &manifest)?;
    append_bytes(&mut b, "oci-layout", oci::OCI_LAYOUT)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories).map_err(|e| bad("repositories", e))?;
        append_bytes(&mut b, "repositories", &repos)?;
    }
    b.finish().map_err(io_err("write archive"))?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io_err("write archive"))?;
    Ok(())
}
