//! Image operations: load, save, import, list, inspect, history, tag, remove, prune.
//!
//! Blobs and snapshots live in the image store (`crates/image`); which images exist and
//! which tags point where is recorded in the metadata store ([`crate::store`]). A tag
//! lives in two places that always change in one transaction: the `tags` table (ref →
//! id) and the image record's `tags` list. An image whose last tag moved elsewhere
//! stays, untagged ("dangling"), as in Docker.
//!
//! All methods block on disk; the daemon calls them from `spawn_blocking`.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::{PoisonError, RwLockReadGuard, RwLockWriteGuard};
use std::time::UNIX_EPOCH;

use image::archive::{ArchiveError, LoadedImage as StoreLoaded};
use image::config::ImageConfig;
use image::import::{ImportError, ImportOptions};
use image::reference::{self, ImageRef, ReferenceError};
use image::store::StoreError;
use image::Digest;

use crate::containers::now_rfc3339;
use crate::error::{Error, Result};
use crate::store::{ImageRecord, Tx, IMAGES, TAGS};
use crate::Engine;

/// An image a load added or found, with the tags the archive gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// `sha256:<hex>`.
    pub id: String,
    /// Familiar references (`busybox:latest`); empty for an untagged image.
    pub tags: Vec<String>,
}

/// Filters of [`Engine::list_images`]; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    /// Also list intermediate images (untagged parents of other images).
    pub all: bool,
    /// Only untagged images (`Some(true)`) or only tagged ones (`Some(false)`).
    pub dangling: Option<bool>,
    /// Globs on familiar references (`busy*`, `localhost:5000/*:1`); any may match.
    pub reference: Vec<String>,
    /// `key` or `key=value` on the image's labels; every one must match.
    pub label: Vec<String>,
}

/// One image in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// `sha256:<hex>`.
    pub id: String,
    /// The parent image id, or empty.
    pub parent_id: String,
    /// Familiar references; with a reference filter, only the matching ones.
    pub repo_tags: Vec<String>,
    /// Digest references (`name@sha256:...`); none until pull lands.
    pub repo_digests: Vec<String>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Bytes of the layers, uncompressed.
    pub size: u64,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
}

/// Everything `inspect` shows about an image.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    /// `sha256:<hex>`.
    pub id: String,
    /// Familiar references.
    pub repo_tags: Vec<String>,
    /// Digest references.
    pub repo_digests: Vec<String>,
    /// Parent image id, or empty.
    pub parent: String,
    /// The config's `comment`.
    pub comment: String,
    /// Creation time as the config has it (RFC 3339).
    pub created: String,
    /// The config's `author`.
    pub author: String,
    /// The config's `docker_version`.
    pub docker_version: String,
    /// The config's run configuration (`config`), as stored (image format, not API).
    pub config: serde_json::Value,
    /// Architecture, OS and variant.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Architecture variant (`v8`), if any.
    pub variant: Option<String>,
    /// Bytes of the layers, uncompressed.
    pub size: u64,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
    /// When a tag was last added, RFC 3339.
    pub last_tag_time: Option<String>,
}

/// One entry of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id for the top entry, `<missing>` for the others (as Docker).
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The command that made the entry.
    pub created_by: String,
    /// The image's tags, on the top entry only.
    pub tags: Vec<String>,
    /// Bytes the entry's layer adds; 0 for empty layers.
    pub size: u64,
    /// The entry's comment.
    pub comment: String,
}

/// What a removal did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag was removed (familiar form).
    Untagged(String),
    /// An image or layer was deleted (`sha256:...`).
    Deleted(String),
}

/// How an image name resolved.
pub(crate) struct Resolved {
    pub(crate) id: Digest,
    /// The tag it was found by; `None` when given by id.
    by_ref: Option<ImageRef>,
}

fn invalid_ref(e: ReferenceError) -> Error {
    Error::InvalidParameter(e.to_string())
}

fn no_such_image(name: &str) -> Error {
    // Docker names the normalised reference: `nosuch` → `nosuch:latest`.
    // A full hex id is shown as `sha256:<hex>`.
    let shown = match ImageRef::parse(name) {
        Ok(r) => r.familiar(),
        Err(_) => reference::parse_id(name)
            .map(|d| d.to_string())
            .unwrap_or_else(|| name.to_string()),
    };
    Error::NotFound(format!("No such image: {shown}"))
}

pub(crate) fn store_err(e: StoreError) -> Error {
    match e {
        // Bad layer content comes from the client's archive.
        StoreError::LayerDigestMismatch { .. } | StoreError::Layer { .. } => {
            Error::InvalidParameter(e.to_string())
        }
        StoreError::ImageNotFound(d) => Error::NotFound(format!("No such image: {d}")),
        e => Error::Internal(e.to_string()),
    }
}

fn archive_err(e: ArchiveError) -> Error {
    match e {
        ArchiveError::Store(s) => store_err(s),
        ArchiveError::NoSuchImage(d) => Error::NotFound(format!("No such image: {d}")),
        // Writing the archive failed: for save, the client went away.
        e @ ArchiveError::Io { .. } => Error::Internal(e.to_string()),
        // Everything else is about the archive the client sent.
        e => Error::InvalidParameter(e.to_string()),
    }
}

fn import_err(e: ImportError) -> Error {
    match e {
        ImportError::Store(s) => store_err(s),
        e => Error::InvalidParameter(e.to_string()),
    }
}

/// Seconds since the epoch of an RFC 3339 time; 0 when absent or unreadable.
fn unix_secs(t: Option<&str>) -> i64 {
    t.and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn familiar(full: &str) -> String {
    ImageRef::parse_named(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// Go's `path.Match`, which Docker's reference filter uses: `*` is any run of non-`/`
/// characters, `?` one non-`/` character, `[...]` a class (`[!...]`/`[^...]` negated,
/// ranges `a-z`), `\` escapes. A malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed including ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let lo = *p.get(i)?;
            if lo == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if lo == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                lo
            };
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
                hi = p[i + 1];
                if hi == '\\' {
                    hi = *p.get(i + 2)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&k| k == 0 || s[k - 1] != '/')
                .any(|k| go(&p[1..], &s[k..])),
            Some('?') => s.first().is_some_and(|&c| c != '/') && go(&p[1..], &s[1..]),
            Some('[') => match s.first() {
                Some(&c) if c != '/' => match class(&p[1..], c) {
                    Some((true, n)) => go(&p[1 + n..], &s[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some('\\') => p.len() > 1 && s.first() == Some(&p[1]) && go(&p[2..], &s[1..]),
            Some(&c) => s.first() == Some(&c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    go(&p, &s)
}

/// Docker's `FamiliarMatch`: the pattern against `name:tag`, then against `name`.
fn reference_matches(pattern: &str, r: &ImageRef) -> bool {
    glob_match(pattern, &r.familiar()) || glob_match(pattern, &r.name())
}

/// Whether the image's labels satisfy `key` or `key=value`.
fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

fn labels_of(c: &ImageConfig) -> BTreeMap<String, String> {
    c.run_config().labels.clone().unwrap_or_default()
}

/// Points tag `r` at image `id`, moving it off any other image (which may be left
/// dangling), and updates both image records.
pub(crate) fn set_tag(tx: &mut Tx<'_>, r: &ImageRef, id: &Digest) -> Result<()> {
    let key = r.to_string();
    let now = now_rfc3339();
    if let Some(old) = tx.get(TAGS, &key)? {
        if old == id.as_str() {
            return Ok(());
        }
        if let Some(mut rec) = tx.get(IMAGES, &old)? {
            rec.tags.retain(|t| t != &key);
            tx.put(IMAGES, &old, &rec)?;
        }
    }
    let mut rec = tx
        .get(IMAGES, id.as_str())?
        .ok_or_else(|| Error::NotFound(format!("No such image: {id}")))?;
    rec.tags.push(key.clone());
    rec.tags.sort();
    rec.tags.dedup();
    rec.last_tag_time = Some(now);
    tx.put(IMAGES, id.as_str(), &rec)?;
    tx.put(TAGS, &key, &id.to_string())
}

/// Removes tag `key` (full form) from the tags table and its image's record.
fn drop_tag(tx: &mut Tx<'_>, key: &str) -> Result<()> {
    if let Some(id) = tx.get(TAGS, key)? {
        if let Some(mut rec) = tx.get(IMAGES, &id)? {
            rec.tags.retain(|t| t != key);
            tx.put(IMAGES, &id, &rec)?;
        }
    }
    tx.delete(TAGS, key)?;
    Ok(())
}

impl Engine {
    pub(crate) fn image_read_lock(&self) -> RwLockReadGuard<'_, ()> {
        self.image_lock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn image_write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.image_lock
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Which container uses image `id` (its short id), if any.
    ///
    /// [`remove_image`](Self::remove_image) and [`prune_images`](Self::prune_images)
    /// refuse (`image is being used by stopped container <short>`) or, forced, go
    /// ahead, as Docker does.
    pub fn image_in_use(&self, id: &str) -> Option<String> {
        self.container_using_image(id)
    }

    /// Finds an image by full or familiar reference, by `sha256:` id or by a unique
    /// prefix of its hex id. A name that is a valid reference is tried as a tag first,
    /// as Docker does (`abc` may be a repository or an id prefix).
    pub(crate) fn resolve(&self, name: &str) -> Result<Resolved> {
        let id_like = reference::is_id_like(name);
        if !id_like || !name.starts_with("sha256:") {
            match ImageRef::parse(name) {
                Ok(r) => {
                    if r.digest().is_some() {
                        // Digest references are recorded by pull and push.
                        if let Some(id) = self.image_by_digest_ref(&r)? {
                            let id =
                                Digest::parse(&id).map_err(|e| Error::Internal(e.to_string()))?;
                            return Ok(Resolved { id, by_ref: None });
                        }
                        return Err(no_such_image(name));
                    }
                    if let Some(id) = self.db.get(TAGS, &r.to_string())? {
                        let id = Digest::parse(&id).map_err(|e| Error::Internal(e.to_string()))?;
                        return Ok(Resolved {
                            id,
                            by_ref: Some(r),
                        });
                    }
                }
                Err(e) if !id_like => return Err(invalid_ref(e)),
                Err(_) => {}
            }
        }
        if id_like {
            let prefix = name.strip_prefix("sha256:").unwrap_or(name);
            let mut found = self
                .db
                .list(IMAGES)?
                .into_iter()
                .filter(|(id, _)| id.strip_prefix("sha256:").unwrap_or(id).starts_with(prefix));
            // An ambiguous prefix names no image, as in Docker.
            if let (Some((id, _)), None) = (found.next(), found.next()) {
                let id = Digest::parse(&id).map_err(|e| Error::Internal(e.to_string()))?;
                return Ok(Resolved { id, by_ref: None });
            }
        }
        Err(no_such_image(name))
    }

    fn record(&self, id: &Digest) -> Result<ImageRecord> {
        self.db
            .get(IMAGES, id.as_str())?
            .ok_or_else(|| Error::NotFound(format!("No such image: {id}")))
    }

    /// Bytes of the image's layer tars (what Docker reports as its size).
    fn layers_size(&self, c: &ImageConfig) -> u64 {
        c.diff_ids()
            .iter()
            .map(|d| self.images.content().size(d).unwrap_or(0))
            .sum()
    }

    /// Records images a load or import put in the store, and their tags.
    fn record_images(&self, loaded: &[StoreLoaded]) -> Result<()> {
        self.db.transaction(|tx| {
            for img in loaded {
                if tx.get(IMAGES, img.id.as_str())?.is_none() {
                    let rec = ImageRecord {
                        id: img.id.to_string(),
                        tags: Vec::new(),
                        created: img.config.string_field("created").unwrap_or("").to_string(),
                        size: self.layers_size(&img.config),
                        parent: None,
                        last_tag_time: None,
                    };
                    tx.put(IMAGES, img.id.as_str(), &rec)?;
                }
                for t in img.tags.iter().filter(|t| t.tag().is_some()) {
                    set_tag(tx, t, &img.id)?;
                }
            }
            Ok(())
        })
    }

    /// Loads a `docker save` archive or OCI layout tar (plain or gzip). Tags in the
    /// archive move to the loaded images. On a bad archive nothing is stored.
    pub fn load_images(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        // Shared: loads only add, and may run side by side; removals wait.
        let _g = self.image_read_lock();
        let loaded = self.images.load(reader).map_err(archive_err)?;
        self.record_images(&loaded)?;
        self.emit_images(loaded.iter().map(|l| l.id.as_str()), "load");
        Ok(loaded
            .iter()
            .map(|l| LoadedImage {
                id: l.id.to_string(),
                tags: l
                    .tags
                    .iter()
                    .filter(|t| t.tag().is_some())
                    .map(|t| t.familiar())
                    .collect(),
            })
            .collect())
    }

    /// Writes `names` as a `docker save` archive. A name with a tag saves that tag, a
    /// bare repository name every tag of that repository, an id the image untagged.
    /// Every name is resolved before the first byte is written, so an unknown one fails
    /// cleanly.
    pub fn save_images(&self, names: &[String], out: impl Write) -> Result<()> {
        if names.is_empty() {
            return Err(Error::InvalidParameter("no images given to save".into()));
        }
        let _g = self.image_read_lock();
        let mut plan: Vec<(Digest, Vec<ImageRef>)> = Vec::new();
        let mut add = |id: Digest, tag: Option<ImageRef>| {
            let i = match plan.iter().position(|(d, _)| d == &id) {
                Some(i) => i,
                None => {
                    plan.push((id, Vec::new()));
                    plan.len() - 1
                }
            };
            if let Some(t) = tag {
                if !plan[i].1.contains(&t) {
                    plan[i].1.push(t);
                }
            }
        };
        let tags = self.db.list(TAGS)?;
        for name in names {
            // `docker save busybox` means every tag of busybox.
            let bare = (!reference::is_id_like(name))
                .then(|| ImageRef::parse_named(name).ok())
                .flatten()
                .filter(|r| r.tag().is_none() && r.digest().is_none());
            if let Some(repo) = bare {
                let mut any = false;
                for (key, id) in &tags {
                    let Ok(r) = ImageRef::parse_named(key) else {
                        continue;
                    };
                    if r.without_tag_or_digest() == repo {
                        let id = Digest::parse(id).map_err(|e| Error::Internal(e.to_string()))?;
                        add(id, Some(r));
                        any = true;
                    }
                }
                if any {
                    continue;
                }
            }
            let res = self.resolve(name)?;
            add(res.id, res.by_ref);
        }
        self.images.save(&plan, out).map_err(archive_err)?;
        self.emit_images(plan.iter().map(|(d, _)| d.as_str()), "save");
        Ok(())
    }

    /// Creates an image from a root filesystem tar (`docker import`), applying
    /// Dockerfile `changes` and the commit `message`, tagged `reference` if given.
    /// Returns the image id.
    pub fn import_image(
        &self,
        reader: impl Read,
        changes: Vec<String>,
        message: Option<String>,
        reference: Option<&str>,
    ) -> Result<String> {
        // A bad name fails before the upload is read.
        let tag = reference
            .filter(|r| !r.is_empty())
            .map(ImageRef::parse)
            .transpose()
            .map_err(invalid_ref)?;
        let _g = self.image_read_lock();
        let opts = ImportOptions {
            changes,
            message,
            source: Some("-".into()),
            author: None,
        };
        let mut loaded = self.images.import(reader, &opts).map_err(import_err)?;
        loaded.tags = tag.into_iter().collect();
        self.record_images(std::slice::from_ref(&loaded))?;
        self.emit_imported(&loaded);
        Ok(loaded.id.to_string())
    }

    /// The images that pass `filters`, newest first.
    pub fn list_images(&self, filters: &ListFilters) -> Result<Vec<ImageSummary>> {
        let records = self.db.list(IMAGES)?;
        let parents: HashSet<String> = records
            .iter()
            .filter_map(|(_, r)| r.parent.clone())
            .collect();
        let mut out = Vec::new();
        for (id, rec) in records {
            let Ok(digest) = Digest::parse(&id) else {
                continue;
            };
            // A record whose config is gone is damage for `system check`, not a listing.
            let Ok(config) = self.images.config(&digest) else {
                continue;
            };
            let dangling = rec.tags.is_empty();
            if filters.dangling.is_some_and(|d| d != dangling) {
                continue;
            }
            // Untagged parents are intermediate images, hidden unless `all`.
            if dangling && !filters.all && parents.contains(&id) {
                continue;
            }
            let labels = labels_of(&config);
            if !filters.label.iter().all(|l| label_matches(l, &labels)) {
                continue;
            }
            let mut tags: Vec<ImageRef> = rec
                .tags
                .iter()
                .filter_map(|t| ImageRef::parse_named(t).ok())
                .collect();
            if !filters.reference.is_empty() {
                tags.retain(|t| filters.reference.iter().any(|p| reference_matches(p, t)));
                // Docker leaves out untagged images under a reference filter, too.
                if tags.is_empty() {
                    continue;
                }
            }
            let repo_digests = self.repo_digests(&id);
            out.push(ImageSummary {
                id,
                parent_id: rec.parent.clone().unwrap_or_default(),
                repo_tags: tags.iter().map(ImageRef::familiar).collect(),
                repo_digests,
                created: unix_secs(Some(&rec.created)),
                size: rec.size,
                labels,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The details of image `name`.
    pub fn inspect_image(&self, name: &str) -> Result<ImageDetails> {
        let res = self.resolve(name)?;
        let rec = self.record(&res.id)?;
        let c = self.images.config(&res.id).map_err(store_err)?;
        let s = |k: &str| c.string_field(k).unwrap_or_default().to_string();
        let config = c
            .json()
            .get("config")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let repo_digests = self.repo_digests(&rec.id);
        Ok(ImageDetails {
            id: rec.id,
            repo_tags: rec.tags.iter().map(|t| familiar(t)).collect(),
            repo_digests,
            parent: rec.parent.unwrap_or_default(),
            comment: s("comment"),
            created: s("created"),
            author: s("author"),
            docker_version: s("docker_version"),
            config,
            architecture: s("architecture"),
            os: s("os"),
            variant: c.string_field("variant").map(str::to_string),
            size: rec.size,
            layers: c.diff_ids().iter().map(|d| d.to_string()).collect(),
            last_tag_time: rec.last_tag_time,
        })
    }

    /// The history of image `name`, newest first.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let res = self.resolve(name)?;
        let rec = self.record(&res.id)?;
        let c = self.images.config(&res.id).map_err(store_err)?;
        let size = |d: &Digest| self.images.content().size(d).unwrap_or(0);
        let mut entries = Vec::new();
        let mut layers = c.diff_ids().iter();
        if c.history().is_empty() {
            // No history recorded: one entry per layer, as Docker shows it.
            for d in layers {
                entries.push(HistoryEntry {
                    id: "<missing>".into(),
                    created: unix_secs(Some(&rec.created)),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size: size(d),
                    comment: String::new(),
                });
            }
        } else {
            for h in c.history() {
                let layer_size = if h.empty_layer().unwrap_or(false) {
                    0
                } else {
                    layers.next().map(size).unwrap_or(0)
                };
                entries.push(HistoryEntry {
                    id: "<missing>".into(),
                    created: unix_secs(h.created().as_deref()),
                    created_by: h.created_by().clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size: layer_size,
                    comment: h.comment().clone().unwrap_or_default(),
                });
            }
        }
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = rec.id.clone();
            top.tags = rec.tags.iter().map(|t| familiar(t)).collect();
        }
        Ok(entries)
    }

    /// Tags image `source` as `target` (`repo[:tag]`, default tag `latest`), moving the
    /// tag off any image that had it.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        // Shared: a removal, which decides by the tags an image has, never sees them
        // change under it.
        let _g = self.image_read_lock();
        let res = self.resolve(source)?;
        let r = ImageRef::parse(target).map_err(invalid_ref)?;
        if r.digest().is_some() {
            return Err(Error::InvalidParameter(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        // The record is read inside the transaction, so a concurrent removal either
        // happened before (NotFound) or waits until the tag is in.
        self.db.transaction(|tx| set_tag(tx, &r, &res.id))?;
        self.emit_image(res.id.as_str(), &r.familiar(), "tag");
        Ok(())
    }

    /// Removes image `name` as `docker rmi` does: a tag given of an image with other
    /// tags is only untagged; otherwise the image goes, unless a conflict forbids it
    /// (several tags and given by id, used by a stopped container: overridden by
    /// `force`; dependent child images, a running container: never, though a forced
    /// tag of an image a running container uses is untagged). Unless `noprune`,
    /// untagged parents go too.
    pub fn remove_image(&self, name: &str, force: bool, noprune: bool) -> Result<Vec<Removed>> {
        let _g = self.image_write_lock();
        let res = self.resolve(name)?;
        let rec = self.record(&res.id)?;
        let short = res.id.short().to_string();
        let mut out = Vec::new();
        match &res.by_ref {
            Some(r) => {
                let key = r.to_string();
                if rec.tags.len() > 1 {
                    self.db.transaction(|tx| drop_tag(tx, &key))?;
                    out.push(Removed::Untagged(r.familiar()));
                    self.emit_image(res.id.as_str(), &r.familiar(), "untag");
                    return Ok(out);
                }
                if !force {
                    if let Some(c) = self.image_in_use(res.id.as_str()) {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to remove repository reference {:?} (must force) - container {c} is using its referenced image {short}",
                            name
                        )));
                    }
                } else if self
                    .running_container_using_image(res.id.as_str())
                    .is_some()
                {
                    // As dockerd: forced, the tag goes but a running container keeps
                    // its image (now dangling), without an error.
                    self.db.transaction(|tx| drop_tag(tx, &key))?;
                    out.push(Removed::Untagged(r.familiar()));
                    self.emit_image(res.id.as_str(), &r.familiar(), "untag");
                    return Ok(out);
                }
            }
            None => {
                if rec.tags.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
            }
        }
        self.check_delete(&res.id, force)?;
        self.delete_image(&res.id, &mut out)?;
        if !noprune {
            self.prune_parents(rec.parent.clone(), &mut out)?;
        }
        Ok(out)
    }

    /// The conflicts that stop image `id` from being deleted.
    fn check_delete(&self, id: &Digest, force: bool) -> Result<()> {
        let short = id.short();
        let has_children = self
            .db
            .list(IMAGES)?
            .iter()
            .any(|(_, r)| r.parent.as_deref() == Some(id.as_str()));
        if has_children {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
            )));
        }
        if let Some(c) = self.running_container_using_image(id.as_str()) {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {c}"
            )));
        }
        if !force {
            if let Some(c) = self.image_in_use(id.as_str()) {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {c}"
                )));
            }
        }
        Ok(())
    }

    /// Untags and deletes image `id` (record first, then its content), appending what
    /// was done to `out`. Returns the bytes of layer tars removed. Call with the write
    /// lock held.
    fn delete_image(&self, id: &Digest, out: &mut Vec<Removed>) -> Result<u64> {
        let tags = self.db.transaction(|tx| {
            let rec = tx.get(IMAGES, id.as_str())?;
            let tags = rec.map(|r| r.tags).unwrap_or_default();
            for t in &tags {
                tx.delete(TAGS, t)?;
            }
            tx.delete(IMAGES, id.as_str())?;
            Ok(tags)
        })?;
        out.extend(tags.iter().map(|t| Removed::Untagged(familiar(t))));
        self.emit_image_deleted(id.as_str(), &tags);
        out.push(Removed::Deleted(id.to_string()));
        // What the remaining images share stays.
        let mut keep = HashSet::new();
        for (other, _) in self.db.list(IMAGES)? {
            if let Ok(d) = Digest::parse(&other) {
                if let Ok(refs) = self.images.image_refs(&d) {
                    keep.extend(refs);
                }
            }
        }
        let config = self.images.config(id).ok();
        let reclaimed = config
            .as_ref()
            .map(|c| {
                c.diff_ids()
                    .iter()
                    .filter(|d| !keep.contains(*d))
                    .map(|d| self.images.content().size(d).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        if let Some(c) = &config {
            self.forget_pulled(id, c.diff_ids(), &keep);
        }
        match self.images.remove_image(id, &keep) {
            Ok(removed) => {
                // Docker lists the layers it removed after the image.
                let chains: HashSet<Digest> = config
                    .map(|c| c.chain_ids().into_iter().collect())
                    .unwrap_or_default();
                let mut seen = HashSet::new();
                for d in removed {
                    if chains.contains(&d) && seen.insert(d.clone()) {
                        out.push(Removed::Deleted(d.to_string()));
                    }
                }
            }
            // The record is gone, so the image is gone for every client; leftover
            // blobs are garbage for `system check`, not a reason to fail the removal.
            Err(e) => eprintln!("berthd: removing content of image {id}: {e}"),
        }
        Ok(reclaimed)
    }

    /// Deletes untagged, unused parents whose last child went, walking up the chain.
    fn prune_parents(&self, mut parent: Option<String>, out: &mut Vec<Removed>) -> Result<u64> {
        let mut reclaimed = 0;
        while let Some(p) = parent {
            let Ok(id) = Digest::parse(&p) else { break };
            let Some(rec) = self.db.get(IMAGES, &p)? else {
                break;
            };
            if !rec.tags.is_empty()
                || self.image_in_use(&p).is_some()
                || self.check_delete(&id, false).is_err()
            {
                break;
            }
            reclaimed += self.delete_image(&id, out)?;
            parent = rec.parent;
        }
        Ok(reclaimed)
    }

    /// Removes unused images: untagged ones, or with `all` every image no container
    /// uses; `labels` (`key` or `key=value`) narrow the set. Returns what was removed
    /// and the bytes reclaimed.
    pub fn prune_images(&self, all: bool, labels: &[String]) -> Result<(Vec<Removed>, u64)> {
        let _g = self.image_write_lock();
        let records = self.db.list(IMAGES)?;
        let parents: HashSet<String> = records
            .iter()
            .filter_map(|(_, r)| r.parent.clone())
            .collect();
        let mut out = Vec::new();
        let mut reclaimed = 0;
        for (id, rec) in records {
            // Only top images: their parents follow through prune_parents.
            if parents.contains(&id) || (!all && !rec.tags.is_empty()) {
                continue;
            }
            if self.image_in_use(&id).is_some() {
                continue;
            }
            let Ok(digest) = Digest::parse(&id) else {
                continue;
            };
            if !labels.is_empty() {
                let l = self
                    .images
                    .config(&digest)
                    .map(|c| labels_of(&c))
                    .unwrap_or_default();
                if !labels.iter().all(|f| label_matches(f, &l)) {
                    continue;
                }
            }
            reclaimed += self.delete_image(&digest, &mut out)?;
            reclaimed += self.prune_parents(rec.parent.clone(), &mut out)?;
        }
        self.emit_image_prune(reclaimed);
        Ok((out, reclaimed))
    }

    /// How many images are recorded (for `info`).
    pub fn image_count(&self) -> u64 {
        self.db.list(IMAGES).map(|v| v.len() as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(!glob_match("*", "localhost:5000/x"));
        assert!(glob_match("localhost:5000/*", "localhost:5000/x"));
        assert!(glob_match("localhost:5000/*:1", "localhost:5000/x:1"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[!b]usybox", "busybox"));
        assert!(!glob_match("[", "x"));
        assert!(glob_match("a\\*", "a*"));
    }

    #[test]
    fn label_filters() {
        let l = BTreeMap::from([("a".to_string(), "b".to_string())]);
        assert!(label_matches("a", &l));
        assert!(label_matches("a=b", &l));
        assert!(!label_matches("a=c", &l));
        assert!(!label_matches("c", &l));
    }

    #[test]
    fn unknown_images_are_named_as_docker_names_them() {
        assert_eq!(
            no_such_image("nosuch").to_string(),
            "No such image: nosuch:latest"
        );
        assert_eq!(
            no_such_image("abc123").to_string(),
            "No such image: abc123:latest"
        );
    }

    /// An engine on a private data root.
    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            ..crate::Config::default()
        };
        let e = Engine::open(config).unwrap();
        (dir, e)
    }

    fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    }

    /// A docker-archive of one image with one file `content`, tagged `tags`; and its id.
    fn archive(content: &str, tags: &[&str]) -> (Vec<u8>, String) {
        let mut layer = tar::Builder::new(Vec::new());
        append(&mut layer, "hello", content.as_bytes());
        let layer = layer.into_inner().unwrap();
        let diff = Digest::sha256_of(&layer);
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Labels": {"content": content}},
            "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
        });
        let raw = serde_json::to_vec(&config).unwrap();
        let id = Digest::sha256_of(&raw);
        let manifest = serde_json::json!([{
            "Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": ["l/layer.tar"]
        }]);
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, "l/layer.tar", &layer);
        append(&mut b, &format!("{}.json", id.hex()), &raw);
        append(&mut b, "manifest.json", manifest.to_string().as_bytes());
        (b.into_inner().unwrap(), id.to_string())
    }

    #[test]
    fn load_resolve_and_move_tags() {
        let (_d, e) = engine();
        let (a, id_a) = archive("a", &["busybox:latest", "localhost:5000/x/y:1"]);
        let loaded = e.load_images(a.as_slice()).unwrap();
        assert_eq!(loaded[0].id, id_a);
        assert_eq!(loaded[0].tags, ["busybox:latest", "localhost:5000/x/y:1"]);
        for name in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "localhost:5000/x/y:1",
            &id_a,
            &id_a["sha256:".len()..],
            &id_a["sha256:".len()..][..1],
            &id_a[..10],
        ] {
            assert_eq!(e.inspect_image(name).unwrap().id, id_a, "{name}");
        }
        assert!(matches!(e.inspect_image("nosuch"), Err(Error::NotFound(_))));
        assert!(matches!(
            e.inspect_image("UPPER"),
            Err(Error::InvalidParameter(m)) if m.starts_with("invalid reference format")
        ));

        // The same tag loaded with another image moves; `a` keeps its other tag.
        let (b, id_b) = archive("b", &["busybox:latest"]);
        e.load_images(b.as_slice()).unwrap();
        assert_eq!(e.inspect_image("busybox").unwrap().id, id_b);
        assert_eq!(
            e.inspect_image(&id_a).unwrap().repo_tags,
            ["localhost:5000/x/y:1"]
        );
        // Moving the last one leaves `a` dangling.
        e.tag_image(&id_b, "localhost:5000/x/y:1").unwrap();
        let dangling = e
            .list_images(&ListFilters {
                dangling: Some(true),
                ..ListFilters::default()
            })
            .unwrap();
        assert_eq!(dangling.len(), 1);
        assert_eq!(dangling[0].id, id_a);
        assert!(dangling[0].repo_tags.is_empty());
        let by_ref = e
            .list_images(&ListFilters {
                reference: vec!["localhost:5000/*/*".into()],
                ..ListFilters::default()
            })
            .unwrap();
        assert_eq!(by_ref.len(), 1);
        assert_eq!(by_ref[0].repo_tags, ["localhost:5000/x/y:1"]);
        let by_label = e
            .list_images(&ListFilters {
                label: vec!["content=a".into()],
                ..ListFilters::default()
            })
            .unwrap();
        assert_eq!(by_label.len(), 1);
        assert_eq!(by_label[0].id, id_a);
    }

    #[test]
    fn remove_as_docker_does() {
        let (_d, e) = engine();
        let (a, id) = archive("a", &["a:1", "b:1"]);
        e.load_images(a.as_slice()).unwrap();
        let short = &id["sha256:".len()..][..12];
        match e.remove_image(short, false, false) {
            Err(Error::Conflict(m)) => assert_eq!(
                m,
                format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.remove_image("a:1", false, false).unwrap(),
            [Removed::Untagged("a:1".into())]
        );
        let out = e.remove_image("b:1", false, false).unwrap();
        assert_eq!(out[0], Removed::Untagged("b:1".into()));
        assert_eq!(out[1], Removed::Deleted(id.clone()));
        assert!(matches!(e.inspect_image(&id), Err(Error::NotFound(_))));
        assert_eq!(e.image_count(), 0);
        // Its content went too: loading it again unpacks it afresh.
        let (a, _) = archive("a", &["a:1"]);
        e.load_images(a.as_slice()).unwrap();
        assert!(e.images.has_image(&Digest::parse(&id).unwrap()));
    }

    #[test]
    fn shared_layers_survive_removal_and_prune_counts() {
        let (_d, e) = engine();
        let (a, id) = archive("same", &["one:1"]);
        e.load_images(a.as_slice()).unwrap();
        e.tag_image("one:1", "two:1").unwrap();
        // Dangling only: nothing (both tags are on the image).
        let (gone, bytes) = e.prune_images(false, &[]).unwrap();
        assert!(gone.is_empty() && bytes == 0);
        let (gone, bytes) = e.prune_images(true, &[]).unwrap();
        assert!(gone.contains(&Removed::Deleted(id.clone())), "{gone:?}");
        assert!(bytes > 0);
        assert_eq!(e.image_count(), 0);
    }

    #[test]
    fn failed_load_records_nothing() {
        let (_d, e) = engine();
        assert!(matches!(
            e.load_images(&b"not a tar"[..]),
            Err(Error::InvalidParameter(_))
        ));
        assert_eq!(e.image_count(), 0);
    }
}
