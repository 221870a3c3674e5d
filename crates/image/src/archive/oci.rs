//! The OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), as a tar.
//!
//! Load follows `index.json` to manifests (through nested indexes, picking the host
//! platform), verifies every blob against its digest, and unpacks layers (plain or
//! gzip). Tags come from `io.containerd.image.name` (written by Docker 25+ and
//! containerd) or from an `org.opencontainers.image.ref.name` that is a full reference;
//! a bare `ref.name` such as `latest` names no repository and is not a tag.
//!
//! Save writes the layout Docker 25+ embeds in `docker save`: uncompressed layers named
//! by their diff ids, one OCI manifest per image, and one index entry per tag.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Value};

use super::{io_err, ArchiveError, Extracted, LoadedImage, Result};
use crate::config::{self, canonical_json, ImageConfig};
use crate::digest::{Digest, DigestingReader};
use crate::reference::ImageRef;
use crate::store::ImageStore;

/// Annotation with the image's full name (Docker 25+, containerd).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a manifest in an index.
pub const ANNOTATION_REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;

const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Loads an OCI layout tar (plain or gzip).
pub fn load(store: &ImageStore, reader: impl Read) -> Result<Vec<LoadedImage>> {
    let ex = Extracted::extract(store, reader)?;
    load_extracted(store, &ex)
}

/// Writes `images` as an OCI layout tar.
pub fn save(store: &ImageStore, images: &[(Digest, Vec<ImageRef>)], out: impl Write) -> Result<()> {
    let prepared = prepare(store, images)?;
    let mut b = tar::Builder::new(out);
    write_layout(&mut b, &prepared)?;
    b.into_inner()
        .map_err(io_err("write archive"))?
        .flush()
        .map_err(io_err("write archive"))?;
    Ok(())
}

fn bad(file: &str, message: impl ToString) -> ArchiveError {
    ArchiveError::BadMetadata {
        file: file.to_string(),
        message: message.to_string(),
    }
}

/// The path of a blob inside the layout.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn descriptor_digest(desc: &Descriptor, file: &str) -> Result<Digest> {
    Digest::try_from(desc.digest()).map_err(|e| bad(file, e))
}

/// Reads a small blob and checks its digest.
fn read_blob(ex: &Extracted, d: &Digest) -> Result<Vec<u8>> {
    let name = blob_path(d);
    let bytes = ex.read(&name)?;
    let actual = Digest::of(d.algorithm(), &bytes);
    if &actual != d {
        return Err(ArchiveError::DigestMismatch {
            file: name,
            expected: d.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn is_index(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageIndex) || mt.to_string() == MEDIA_DOCKER_LIST
}

fn is_manifest(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageManifest) || mt.to_string() == MEDIA_DOCKER_MANIFEST
}

/// Tags named by an index entry's annotations.
fn tags_of(desc: &Descriptor) -> Result<Vec<ImageRef>> {
    let Some(ann) = desc.annotations() else {
        return Ok(Vec::new());
    };
    let name = ann
        .get(ANNOTATION_IMAGE_NAME)
        .map(String::as_str)
        .or_else(|| {
            // A full reference in ref.name (skopeo, buildah) rather than a bare tag.
            ann.get(ANNOTATION_REF_NAME)
                .map(String::as_str)
                .filter(|r| r.contains(['/', ':', '@']))
        });
    match name {
        None => Ok(Vec::new()),
        Some(n) => {
            let r = ImageRef::parse(n).map_err(|e| ArchiveError::BadTag {
                tag: n.to_string(),
                message: e.to_string(),
            })?;
            // A digest-only name is not a tag to record.
            Ok(if r.tag().is_some() {
                vec![r]
            } else {
                Vec::new()
            })
        }
    }
}

/// Picks the manifest for the host platform from a multi-platform index.
fn pick_platform(index: &oci_spec::image::ImageIndex, file: &str) -> Result<Descriptor> {
    let (arch, os, _) = config::host_platform();
    let manifests: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| is_manifest(d.media_type()))
        .collect();
    let matching = manifests.iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.architecture().to_string() == arch && p.os().to_string() == os)
    });
    match (matching, manifests.as_slice()) {
        (Some(d), _) => Ok((*d).clone()),
        (None, [only]) => Ok((*only).clone()),
        _ => Err(bad(file, format!("no image for platform {os}/{arch}"))),
    }
}

/// Loads every image an extracted OCI layout's `index.json` names.
pub(crate) fn load_extracted(store: &ImageStore, ex: &Extracted) -> Result<Vec<LoadedImage>> {
    if ex.exists("oci-layout") {
        let v: Value =
            serde_json::from_slice(&ex.read("oci-layout")?).map_err(|e| bad("oci-layout", e))?;
        if v.get("imageLayoutVersion")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(bad("oci-layout", "missing imageLayoutVersion"));
        }
    }
    let index = config::parse_index(&ex.read("index.json")?).map_err(|e| bad("index.json", e))?;
    // Manifest digest → tags, in index order; several entries may name one manifest.
    let mut order: Vec<Digest> = Vec::new();
    let mut tags: BTreeMap<Digest, Vec<ImageRef>> = BTreeMap::new();
    for desc in index.manifests() {
        let mut target = desc.clone();
        if is_index(desc.media_type()) {
            let d = descriptor_digest(desc, "index.json")?;
            let nested =
                config::parse_index(&read_blob(ex, &d)?).map_err(|e| bad(&blob_path(&d), e))?;
            target = pick_platform(&nested, &blob_path(&d))?;
        } else if !is_manifest(desc.media_type()) {
            // Attestations, signatures and other artifacts are not images.
            continue;
        }
        let d = descriptor_digest(&target, "index.json")?;
        let entry = tags.entry(d.clone()).or_insert_with(|| {
            order.push(d.clone());
            Vec::new()
        });
        for t in tags_of(desc)? {
            if !entry.contains(&t) {
                entry.push(t);
            }
        }
    }
    if order.is_empty() {
        return Err(bad("index.json", "no image manifests"));
    }
    let mut txn = store.txn();
    let mut out = Vec::new();
    for d in order {
        let mpath = blob_path(&d);
        let manifest = config::parse_manifest(&read_blob(ex, &d)?).map_err(|e| bad(&mpath, e))?;
        let cdigest = descriptor_digest(manifest.config(), &mpath)?;
        let cpath = blob_path(&cdigest);
        let config = ImageConfig::from_bytes(read_blob(ex, &cdigest)?).map_err(|source| {
            ArchiveError::BadConfig {
                file: cpath.clone(),
                source,
            }
        })?;
        let diff_ids = config.diff_ids().to_vec();
        if manifest.layers().len() != diff_ids.len() {
            return Err(ArchiveError::LayerCount {
                image: mpath,
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let chain_ids = config.chain_ids();
        for (i, desc) in manifest.layers().iter().enumerate() {
            let ld = descriptor_digest(desc, &mpath)?;
            let lpath = blob_path(&ld);
            let mut reader = DigestingReader::with_algorithm(ex.open(&lpath)?, ld.algorithm());
            let parent = i.checked_sub(1).map(|p| &chain_ids[p]);
            store.unpack_layer(
                &mut txn,
                &lpath,
                &diff_ids[i],
                &chain_ids[i],
                parent,
                &mut reader,
            )?;
            let (actual, _) = reader.finish().map_err(io_err(format!("read {lpath}")))?;
            if actual != ld {
                return Err(ArchiveError::DigestMismatch {
                    file: lpath,
                    expected: ld,
                    actual,
                });
            }
        }
        store.put_config(&mut txn, &config)?;
        out.push(LoadedImage {
            id: config.id().clone(),
            tags: tags.remove(&d).unwrap_or_default(),
            layers: diff_ids.into_iter().zip(chain_ids).collect(),
            config,
        });
    }
    txn.commit();
    Ok(out)
}

/// An image ready to be written: its config, layer tars and OCI manifest.
pub(crate) struct Prepared {
    pub(crate) config: ImageConfig,
    pub(crate) tags: Vec<ImageRef>,
    /// `(diff_id, path of the tar, size)`, bottom first.
    pub(crate) layers: Vec<(Digest, PathBuf, u64)>,
    pub(crate) manifest: Vec<u8>,
    pub(crate) manifest_digest: Digest,
}

/// Gathers what saving `images` needs, regenerating layer tars where necessary.
pub(crate) fn prepare(
    store: &ImageStore,
    images: &[(Digest, Vec<ImageRef>)],
) -> Result<Vec<Prepared>> {
    let mut out = Vec::new();
    for (id, tags) in images {
        let config = store.config(id).map_err(|e| match e {
            crate::store::StoreError::ImageNotFound(d) => ArchiveError::NoSuchImage(d),
            e => e.into(),
        })?;
        let chain_ids = config.chain_ids();
        let mut layers = Vec::new();
        for (diff, chain) in config.diff_ids().iter().zip(&chain_ids) {
            let (path, size) = store.layer_tar(diff, chain)?;
            layers.push((diff.clone(), path, size));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {
                "mediaType": MediaType::ImageConfig.to_string(),
                "digest": id,
                "size": config.raw().len(),
            },
            "layers": layers.iter().map(|(d, _, size)| json!({
                "mediaType": MediaType::ImageLayer.to_string(),
                "digest": d,
                "size": size,
            })).collect::<Vec<_>>(),
        });
        let manifest = canonical_json(&manifest);
        out.push(Prepared {
            manifest_digest: Digest::sha256_of(&manifest),
            manifest,
            config,
            tags: tags.clone(),
            layers,
        });
    }
    Ok(out)
}

fn header(size: u64, mode: u32, ty: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(ty);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

pub(crate) fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut h = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
    b.append_data(&mut h, name, bytes)
        .map_err(io_err(format!("write {name}")))
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = header(0, 0o755, tar::EntryType::Directory);
    b.append_data(&mut h, name, io::empty())
        .map_err(io_err(format!("write {name}")))
}

/// Writes `blobs/`, `index.json` and `oci-layout` (in the order Docker does, around
/// which the docker-archive adds `manifest.json` and `repositories`).
pub(crate) fn write_blobs<W: Write>(b: &mut tar::Builder<W>, images: &[Prepared]) -> Result<()> {
    append_dir(b, "blobs/")?;
    append_dir(b, "blobs/sha256/")?;
    let mut written = std::collections::HashSet::new();
    for img in images {
        for (d, path, size) in &img.layers {
            if written.insert(d.clone()) {
                let name = blob_path(d);
                let f = File::open(path).map_err(io_err(format!("open {}", path.display())))?;
                let mut h = header(*size, 0o644, tar::EntryType::Regular);
                // The tar is streamed from the content store, never held in memory.
                b.append_data(&mut h, &name, f)
                    .map_err(io_err(format!("write {name}")))?;
            }
        }
        if written.insert(img.config.id().clone()) {
            append_bytes(b, &blob_path(img.config.id()), img.config.raw())?;
        }
        if written.insert(img.manifest_digest.clone()) {
            append_bytes(b, &blob_path(&img.manifest_digest), &img.manifest)?;
        }
    }
    Ok(())
}

/// The `index.json` of the saved images: one entry per tag (one for an untagged image).
pub(crate) fn index_json(images: &[Prepared]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for img in images {
        let entry = |ann: Option<Value>| {
            let mut e = json!({
                "mediaType": MediaType::ImageManifest.to_string(),
                "digest": img.manifest_digest,
                "size": img.manifest.len(),
            });
            if let Some(a) = ann {
                e["annotations"] = a;
            }
            e
        };
        let tagged: Vec<&ImageRef> = img.tags.iter().filter(|t| t.tag().is_some()).collect();
        if tagged.is_empty() {
            manifests.push(entry(None));
        }
        for t in tagged {
            manifests.push(entry(Some(json!({
                ANNOTATION_IMAGE_NAME: t.to_string(),
                ANNOTATION_REF_NAME: t.tag().unwrap_or_default(),
            }))));
        }
    }
    canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": MediaType::ImageIndex.to_string(),
        "manifests": manifests,
    }))
}

pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn write_layout<W: Write>(b: &mut tar::Builder<W>, images: &[Prepared]) -> Result<()> {
    write_blobs(b, images)?;
    append_bytes(b, "index.json", &index_json(images))?;
    append_bytes(b, "oci-layout", OCI_LAYOUT)?;
    b.finish().map_err(io_err("write archive"))
}
