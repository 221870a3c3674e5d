//! The metadata store: `<data-root>/berth.db`, one embedded [redb] database holding the
//! engine's records (images and tags now; containers, networks and volumes as they land).
//!
//! Each table maps a string key to a serde_json value. A [`Table`] is a typed name, used
//! either for single calls on the [`Store`] (each its own transaction) or inside
//! [`Store::transaction`], where several changes (say, a tag moved from one image to
//! another and both image records updated) commit together or not at all.
//!
//! Crash safety is redb's: a transaction that returned from commit is durable, one that
//! did not is invisible, and the file always opens.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A typed table: string keys, values of type `T` stored as JSON.
pub struct Table<T> {
    name: &'static str,
    _value: PhantomData<fn() -> T>,
}

// Manual impls: a derive would require `T: Clone`/`Copy`, which a name does not need.
impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Table<T> {}

impl<T> Table<T> {
    /// A table named `name`; the name is the table's identity in the file.
    pub const fn new(name: &'static str) -> Table<T> {
        Table {
            name,
            _value: PhantomData,
        }
    }

    fn def(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name)
    }
}

/// An image as the engine records it (its config lives in the image store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id, `sha256:<hex>`.
    pub id: String,
    /// Full references tagged to this image (`docker.io/library/busybox:latest`), sorted.
    pub tags: Vec<String>,
    /// When the image was created, RFC 3339 (from its config).
    pub created: String,
    /// Bytes of its layers, uncompressed.
    pub size: u64,
    /// The image it was built on, for built or committed images.
    #[serde(default)]
    pub parent: Option<String>,
    /// When a tag was last added, RFC 3339.
    #[serde(default)]
    pub last_tag_time: Option<String>,
}

/// Images by id.
pub const IMAGES: Table<ImageRecord> = Table::new("images");
/// Image ids by full reference (`docker.io/library/busybox:latest`).
pub const TAGS: Table<String> = Table::new("tags");

fn db_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("metadata store: {what}: {e}"))
}

fn decode<T: DeserializeOwned>(table: &str, key: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| db_err(&format!("{table}/{key}"), e))
}

/// The metadata database.
pub struct Store {
    db: redb::Database,
    /// Counts commits (and [`Store::notify`] calls), so that waiters for a state
    /// (a container started, exited, removed) wake at once instead of polling.
    changes: Mutex<u64>,
    changed: Condvar,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let db = redb::Database::create(path)
            .map_err(|e| db_err(&format!("open {}", path.display()), e))?;
        Ok(Store {
            db,
            changes: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    /// The current change count, to pass to [`Store::wait_change`].
    pub fn generation(&self) -> u64 {
        *self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the waiters of [`Store::wait_change`] (also for changes outside the
    /// database).
    pub fn notify(&self) {
        let mut n = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        self.changed.notify_all();
    }

    /// Waits until something changed since `generation`, or `timeout` passed.
    pub fn wait_change(&self, generation: u64, timeout: Duration) {
        let n = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(n, timeout, |n| *n == generation);
    }

    /// The value under `key`.
    pub fn get<T: DeserializeOwned>(&self, table: Table<T>, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read().map_err(|e| db_err("begin read", e))?;
        let t = match tx.open_table(table.def()) {
            Ok(t) => t,
            // Nothing was ever written to it.
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(table.name, e)),
        };
        let v = t.get(key).map_err(|e| db_err(table.name, e))?;
        v.map(|g| decode(table.name, key, g.value())).transpose()
    }

    /// Every `(key, value)`, in key order.
    pub fn list<T: DeserializeOwned>(&self, table: Table<T>) -> Result<Vec<(String, T)>> {
        let tx = self.db.begin_read().map_err(|e| db_err("begin read", e))?;
        let t = match tx.open_table(table.def()) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(table.name, e)),
        };
        collect(table.name, &t)
    }

    /// Stores `value` under `key` (its own transaction).
    pub fn put<T: Serialize>(&self, table: Table<T>, key: &str, value: &T) -> Result<()> {
        self.transaction(|tx| tx.put(table, key, value))
    }

    /// Removes `key`; whether it was there (its own transaction).
    pub fn delete<T>(&self, table: Table<T>, key: &str) -> Result<bool> {
        self.transaction(|tx| tx.delete(table, key))
    }

    /// Runs `f` in one write transaction: committed if `f` returns `Ok`, rolled back
    /// (nothing written) if it returns `Err`. Write transactions are serialised by redb,
    /// so `f` sees a consistent state and no other writer interleaves.
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        let wtx = self
            .db
            .begin_write()
            .map_err(|e| db_err("begin write", e))?;
        let mut tx = Tx { tx: &wtx };
        match f(&mut tx) {
            Ok(r) => {
                wtx.commit().map_err(|e| db_err("commit", e))?;
                self.notify();
                Ok(r)
            }
            Err(e) => {
                // Dropping would abort too; aborting explicitly says so.
                let _ = wtx.abort();
                Err(e)
            }
        }
    }
}

/// A write transaction in progress; reads see its own writes.
pub struct Tx<'a> {
    tx: &'a redb::WriteTransaction,
}

impl Tx<'_> {
    fn open<T>(&self, table: Table<T>) -> Result<redb::Table<'_, &'static str, &'static [u8]>> {
        self.tx
            .open_table(table.def())
            .map_err(|e| db_err(table.name, e))
    }

    /// The value under `key`.
    pub fn get<T: DeserializeOwned>(&self, table: Table<T>, key: &str) -> Result<Option<T>> {
        let t = self.open(table)?;
        let v = t.get(key).map_err(|e| db_err(table.name, e))?;
        v.map(|g| decode(table.name, key, g.value())).transpose()
    }

    /// Every `(key, value)`, in key order.
    pub fn list<T: DeserializeOwned>(&self, table: Table<T>) -> Result<Vec<(String, T)>> {
        let t = self.open(table)?;
        collect(table.name, &t)
    }

    /// Stores `value` under `key`.
    pub fn put<T: Serialize>(&mut self, table: Table<T>, key: &str, value: &T) -> Result<()> {
        let raw = serde_json::to_vec(value).map_err(|e| db_err(table.name, e))?;
        let mut t = self.open(table)?;
        t.insert(key, raw.as_slice())
            .map_err(|e| db_err(table.name, e))?;
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn delete<T>(&mut self, table: Table<T>, key: &str) -> Result<bool> {
        let mut t = self.open(table)?;
        let old = t.remove(key).map_err(|e| db_err(table.name, e))?;
        Ok(old.is_some())
    }
}

fn collect<T: DeserializeOwned>(
    name: &str,
    t: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for row in t.iter().map_err(|e| db_err(name, e))? {
        let (k, v) = row.map_err(|e| db_err(name, e))?;
        let key = k.value().to_string();
        let value = decode(name, &key, v.value())?;
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: Table<String> = Table::new("notes");

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("berth.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn put_get_list_delete() {
        let (_d, s) = store();
        assert_eq!(s.get(NOTES, "a").unwrap(), None);
        assert!(s.list(NOTES).unwrap().is_empty());
        s.put(NOTES, "b", &"two".to_string()).unwrap();
        s.put(NOTES, "a", &"one".to_string()).unwrap();
        assert_eq!(s.get(NOTES, "a").unwrap().as_deref(), Some("one"));
        let keys: Vec<String> = s.list(NOTES).unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(s.delete(NOTES, "a").unwrap());
        assert!(!s.delete(NOTES, "a").unwrap());
        assert_eq!(s.get(NOTES, "a").unwrap(), None);
    }

    #[test]
    fn failed_transaction_writes_nothing() {
        let (_d, s) = store();
        s.put(NOTES, "keep", &"x".to_string()).unwrap();
        let r: Result<()> = s.transaction(|tx| {
            tx.put(NOTES, "new", &"y".to_string())?;
            tx.delete(NOTES, "keep")?;
            // Reads inside see the transaction's own writes.
            assert_eq!(tx.get(NOTES, "new")?.as_deref(), Some("y"));
            Err(Error::Conflict("no".into()))
        });
        assert!(r.is_err());
        assert_eq!(s.get(NOTES, "new").unwrap(), None);
        assert_eq!(s.get(NOTES, "keep").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let s = Store::open(&path).unwrap();
            s.put(TAGS, "docker.io/library/a:latest", &"sha256:1".to_string())
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.get(TAGS, "docker.io/library/a:latest")
                .unwrap()
                .as_deref(),
            Some("sha256:1")
        );
    }

    #[test]
    fn records_of_another_type_are_an_error_not_a_panic() {
        let (_d, s) = store();
        const WRONG: Table<ImageRecord> = Table::new("notes");
        s.put(NOTES, "a", &"text".to_string()).unwrap();
        assert!(s.get(WRONG, "a").is_err());
    }
}
