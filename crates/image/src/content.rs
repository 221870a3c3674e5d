//! The content store: blobs addressed by digest under `<root>/content/blobs/<alg>/<hex>`.
//!
//! Writes are crash-safe: content goes to a temp file in `<root>/content/ingest/`, is
//! fsynced and checked against its digest, then renamed into place and the directory
//! fsynced. A crash leaves at worst a stale ingest file, removed at the next open; a
//! blob path either does not exist or holds the full, verified content.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::digest::{Algorithm, Digest, DigestingWriter, Hasher};

/// Names of kept partial downloads in the ingest directory: `partial-<alg>-<hex>`.
const PARTIAL_PREFIX: &str = "partial-";

/// Partial downloads untouched for this long are removed when the store opens.
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The blob is not in the store.
    #[error("content {0} not found")]
    NotFound(Digest),
    /// Written content did not hash to the expected digest.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of what was actually written.
        actual: Digest,
    },
    /// A stored blob no longer hashes to its name.
    #[error("content {expected} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The blob's name.
        expected: Digest,
        /// The digest of its content.
        actual: Digest,
    },
    /// An I/O error, with the path involved.
    #[error("content store: {context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ContentError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
        let context = context.into();
        move |source| ContentError::Io { context, source }
    }
}

type Result<T> = std::result::Result<T, ContentError>;

/// Distinguishes ingest files written concurrently by one process.
static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A directory of blobs addressed by digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `<root>/content`, and removes ingest
    /// files left behind by processes that no longer run (crashed writes).
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let base = root.as_ref().join("content");
        let store = ContentStore {
            blobs: base.join("blobs"),
            ingest: base.join("ingest"),
        };
        for dir in [
            store.blobs.join(Algorithm::Sha256.as_str()),
            store.blobs.join(Algorithm::Sha512.as_str()),
            store.ingest.clone(),
        ] {
            fs::create_dir_all(&dir)
                .map_err(ContentError::io(format!("create {}", dir.display())))?;
        }
        store.clean_ingest()?;
        Ok(store)
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Starts a streaming write; call [`Ingest::commit`] to store the blob.
    pub fn ingest(&self, algorithm: Algorithm) -> Result<Ingest<'_>> {
        let name = format!(
            "{}-{}",
            std::process::id(),
            INGEST_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.ingest.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(ContentError::io(format!("create {}", path.display())))?;
        Ok(Ingest {
            store: self,
            path,
            writer: Some(DigestingWriter::with_algorithm(file, algorithm)),
        })
    }

    /// The kept partial download of blob `digest` (`size` bytes), created empty if there
    /// is none: what it holds is re-hashed, so that the download can go on from
    /// [`Partial::offset`]. `None` when another writer holds it (a concurrent download
    /// of the same blob). A partial is not a blob: [`list`](Self::list) does not see it.
    pub fn partial(&self, digest: &Digest, size: u64) -> Result<Option<Partial<'_>>> {
        let path = self.ingest.join(format!(
            "{PARTIAL_PREFIX}{}-{}",
            digest.algorithm(),
            digest.hex()
        ));
        let ctx = || format!("open {}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(ContentError::io(ctx()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(ContentError::io(ctx())(e)),
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut len = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(ContentError::io(ctx()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        if len > size {
            // Not a prefix of this blob: start over.
            file.set_len(0).map_err(ContentError::io(ctx()))?;
            hasher = Hasher::new(digest.algorithm());
            len = 0;
        }
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(len))
            .map_err(ContentError::io(ctx()))?;
        Ok(Some(Partial {
            store: self,
            path,
            file,
            hasher,
            len,
            offset: len,
        }))
    }

    /// Stores everything `reader` yields. With `expected`, the content must hash to it,
    /// or the write fails and nothing is stored. Returns the blob's digest.
    pub fn write(&self, expected: Option<&Digest>, mut reader: impl Read) -> Result<Digest> {
        if let Some(d) = expected {
            // Content-addressed: an existing blob already holds exactly this content.
            if self.exists(d) {
                io::copy(&mut reader, &mut io::sink())
                    .map_err(ContentError::io(format!("read content for {d}")))?;
                return Ok(d.clone());
            }
        }
        let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut ingest = self.ingest(alg)?;
        io::copy(&mut reader, &mut ingest)
            .map_err(ContentError::io("write content to ingest file"))?;
        ingest.commit(expected)
    }

    /// Stores `bytes`, returning its sha256 digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        self.write(None, bytes)
    }

    /// Opens the blob for reading. (Named `open_blob` because `open` opens the store.)
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| self.map_missing(digest, e, "open"))
    }

    /// Reads the whole blob (for small blobs: configs, manifests).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(digest)).map_err(|e| self.map_missing(digest, e, "read"))
    }

    /// Whether the blob is stored.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        fs::metadata(self.path(digest))
            .map(|m| m.len())
            .map_err(|e| self.map_missing(digest, e, "stat"))
    }

    /// Removes the blob. Removing a missing blob is an error ([`ContentError::NotFound`]).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        fs::remove_file(self.path(digest)).map_err(|e| self.map_missing(digest, e, "delete"))
    }

    /// Every stored blob, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.blobs.join(alg.as_str());
            let entries =
                fs::read_dir(&dir).map_err(ContentError::io(format!("list {}", dir.display())))?;
            for entry in entries {
                let entry = entry.map_err(ContentError::io(format!("list {}", dir.display())))?;
                let name = entry.file_name();
                // Foreign files (editor droppings, half-deleted junk) are not blobs.
                if let Some(d) = name
                    .to_str()
                    .and_then(|n| Digest::parse(&format!("{alg}:{n}")).ok())
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hashes the blob and checks it still matches its name.
    pub fn verify(&self, digest: &Digest) -> Result<()> {
        let mut file = self.open_blob(digest)?;
        let mut w = DigestingWriter::with_algorithm(io::sink(), digest.algorithm());
        io::copy(&mut file, &mut w).map_err(ContentError::io(format!("read {digest}")))?;
        let (actual, _, _) = w.finish();
        if &actual != digest {
            return Err(ContentError::Corrupt {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn map_missing(&self, digest: &Digest, e: io::Error, what: &str) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound(digest.clone())
        } else {
            ContentError::Io {
                context: format!("{what} {}", self.path(digest).display()),
                source: e,
            }
        }
    }

    /// Renames the synced, verified file `from` into place as blob `digest`, durably.
    fn move_in(&self, from: &Path, digest: &Digest) -> Result<()> {
        let dest = self.path(digest);
        fs::rename(from, &dest).map_err(ContentError::io(format!(
            "rename {} to {}",
            from.display(),
            dest.display()
        )))?;
        // Make the rename durable: the blob must survive a crash once we return.
        let dir = dest.parent().expect("blob path has a parent");
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(ContentError::io(format!("fsync {}", dir.display())))
    }

    /// Removes ingest files whose writer process is gone. Files of this process and of
    /// live processes are kept: they may be writes in progress.
    fn clean_ingest(&self) -> Result<()> {
        let entries = fs::read_dir(&self.ingest)
            .map_err(ContentError::io(format!("list {}", self.ingest.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| n.starts_with(PARTIAL_PREFIX)) {
                // Kept for resuming, unless nobody came back for it.
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_none_or(|a| a > PARTIAL_MAX_AGE) {
                    let _ = fs::remove_file(entry.path());
                }
                continue;
            }
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            let alive = match pid {
                Some(p) => p == std::process::id() || Path::new(&format!("/proc/{p}")).exists(),
                None => false,
            };
            if !alive {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// A blob being written. Dropped without [`commit`](Ingest::commit), it leaves nothing.
#[derive(Debug)]
pub struct Ingest<'a> {
    store: &'a ContentStore,
    path: PathBuf,
    writer: Option<DigestingWriter<File>>,
}

impl Ingest<'_> {
    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(0, DigestingWriter::bytes_written)
    }

    /// The digest of what has been written so far.
    pub fn digest(&self) -> Digest {
        self.writer.as_ref().expect("ingest in progress").digest()
    }

    /// Syncs the data, checks it against `expected` (if given) and moves it into the
    /// store. On a mismatch nothing is stored.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let writer = self.writer.take().expect("ingest committed twice");
        let (actual, _, file) = writer.finish();
        file.sync_all()
            .map_err(ContentError::io(format!("fsync {}", self.path.display())))?;
        drop(file);
        if let Some(expected) = expected {
            if expected != &actual {
                return Err(ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        self.store.move_in(&self.path, &actual)?;
        Ok(actual)
    }
}

impl Write for Ingest<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("ingest in progress").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("ingest in progress").flush()
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        // After a successful commit the file has been renamed; otherwise discard it.
        let _ = fs::remove_file(&self.path);
    }
}

/// A kept partial download (see [`ContentStore::partial`]): written to, it grows; on
/// drop it stays for a later download to resume; [`commit`](Partial::commit) stores it
/// as a blob, [`discard`](Partial::discard) removes it.
#[derive(Debug)]
pub struct Partial<'a> {
    store: &'a ContentStore,
    path: PathBuf,
    file: File,
    hasher: Hasher,
    len: u64,
    offset: u64,
}

impl Partial<'_> {
    /// How many bytes it held when opened: where the download resumes.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The hash state over everything written so far (at open: over the first
    /// [`offset`](Self::offset) bytes).
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// Bytes held now.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader over the first [`offset`](Self::offset) bytes (those it held at open).
    pub fn prefix(&self) -> io::Result<io::Take<File>> {
        Ok(File::open(&self.path)?.take(self.offset))
    }

    /// Syncs, checks against `expected` and moves it into the store; on a mismatch it
    /// is removed and nothing is stored.
    pub fn commit(mut self, expected: &Digest) -> Result<Digest> {
        let actual = self.hasher.clone().finish();
        if &actual != expected {
            self.len = 0; // removed on drop
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.file
            .sync_all()
            .map_err(ContentError::io(format!("fsync {}", self.path.display())))?;
        self.store.move_in(&self.path, &actual)?;
        self.len = u64::MAX; // moved: nothing to remove
        Ok(actual)
    }

    /// Removes it (its content is wrong: no use resuming it).
    pub fn discard(mut self) {
        self.len = 0; // removed on drop
    }
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        // Nothing received: nothing to resume.
        if self.len == 0 {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Write for Partial<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest_is_empty(root: &Path) -> bool {
        fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn write_read_list_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let d = cs.put_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert!(tmp
            .path()
            .join("content/blobs/sha256")
            .join(d.hex())
            .is_file());
        assert!(cs.exists(&d));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.size(&d).unwrap(), 5);
        let mut s = String::new();
        cs.open_blob(&d).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        cs.verify(&d).unwrap();
        // Writing the same content again is a no-op.
        assert_eq!(cs.write(Some(&d), &b"hello"[..]).unwrap(), d);
        let d2 = cs.put_bytes(b"world").unwrap();
        let mut want = vec![d.clone(), d2.clone()];
        want.sort();
        assert_eq!(cs.list().unwrap(), want);
        cs.delete(&d).unwrap();
        assert!(!cs.exists(&d));
        assert!(matches!(cs.delete(&d), Err(ContentError::NotFound(_))));
        assert!(matches!(cs.read(&d), Err(ContentError::NotFound(_))));
        assert_eq!(cs.list().unwrap(), vec![d2]);
        assert!(ingest_is_empty(tmp.path()));
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let wrong = Digest::sha256_of(b"other");
        let err = cs.write(Some(&wrong), &b"hello"[..]).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("digest mismatch"));
        assert!(cs.list().unwrap().is_empty());
        assert!(ingest_is_empty(tmp.path()));
    }

    #[test]
    fn sha512_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let d = Digest::of(Algorithm::Sha512, b"abc");
        assert_eq!(cs.write(Some(&d), &b"abc"[..]).unwrap(), d);
        cs.verify(&d).unwrap();
        assert_eq!(cs.list().unwrap(), vec![d]);
    }

    #[test]
    fn verify_detects_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let d = cs.put_bytes(b"hello").unwrap();
        fs::write(cs.path(&d), b"jello").unwrap();
        let err = cs.verify(&d).unwrap_err();
        assert!(matches!(err, ContentError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn stale_ingest_is_cleaned_and_dropped_ingest_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        {
            let mut w = cs.ingest(Algorithm::Sha256).unwrap();
            w.write_all(b"partial").unwrap();
        }
        assert!(ingest_is_empty(tmp.path()));
        // A crashed writer (a pid that cannot be running) and junk.
        let ingest = tmp.path().join("content/ingest");
        fs::write(ingest.join("4294967295-0"), b"x").unwrap();
        fs::write(ingest.join("junk"), b"x").unwrap();
        // An in-progress write of this process survives a second open.
        let mut live = cs.ingest(Algorithm::Sha256).unwrap();
        live.write_all(b"live").unwrap();
        let cs2 = ContentStore::open(tmp.path()).unwrap();
        assert_eq!(fs::read_dir(&ingest).unwrap().count(), 1);
        let d = live.commit(None).unwrap();
        assert!(cs2.exists(&d));
        assert!(ingest_is_empty(tmp.path()));
    }

    #[test]
    fn partials_resume_are_locked_kept_and_aged_out() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let data = b"hello partial world".to_vec();
        let d = Digest::sha256_of(&data);
        {
            let mut p = cs.partial(&d, data.len() as u64).unwrap().unwrap();
            assert_eq!(p.offset(), 0);
            // A second writer of the same blob is told to go its own way.
            assert!(cs.partial(&d, data.len() as u64).unwrap().is_none());
            p.write_all(&data[..5]).unwrap();
        }
        // Kept across a reopen (a daemon restart), not a blob.
        let cs = ContentStore::open(tmp.path()).unwrap();
        assert!(cs.list().unwrap().is_empty());
        let mut p = cs.partial(&d, data.len() as u64).unwrap().unwrap();
        assert_eq!(p.offset(), 5);
        let mut prefix = Vec::new();
        p.prefix().unwrap().read_to_end(&mut prefix).unwrap();
        assert_eq!(prefix, &data[..5]);
        let mut h = p.hasher();
        h.update(&data[5..]);
        assert_eq!(h.finish(), d);
        p.write_all(&data[5..]).unwrap();
        assert_eq!(p.commit(&d).unwrap(), d);
        assert_eq!(cs.read(&d).unwrap(), data);
        assert!(ingest_is_empty(tmp.path()));

        // Wrong content is not stored, and not kept.
        let other = Digest::sha256_of(b"other");
        let mut p = cs.partial(&other, 5).unwrap().unwrap();
        p.write_all(b"wrong").unwrap();
        assert!(p.commit(&other).is_err());
        assert!(ingest_is_empty(tmp.path()));

        // Old partials go when the store opens.
        let mut p = cs.partial(&other, 5).unwrap().unwrap();
        p.write_all(b"ot").unwrap();
        drop(p);
        let f = fs::read_dir(tmp.path().join("content/ingest"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let old = SystemTime::now() - PARTIAL_MAX_AGE - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        ContentStore::open(tmp.path()).unwrap();
        assert!(ingest_is_empty(tmp.path()));
    }
}
