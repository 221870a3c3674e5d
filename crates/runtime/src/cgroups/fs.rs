//! Reading and writing cgroup files with errors that name the file.

use std::io::{self, Write};
use std::path::Path;

use super::{CgroupError, Result};

/// Read a whole cgroup file.
pub(super) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a cgroup file, `None` if it does not exist.
pub(super) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Read a single-value file as a number; `None` if missing or `max`.
pub(super) fn read_u64(path: &Path) -> Result<Option<u64>> {
    match read_opt(path)? {
        Some(s) if s.trim() == "max" => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            reason: format!("expected a number, got {:?}", s.trim()),
        }),
        None => Ok(None),
    }
}

/// Write `value` to an existing cgroup file in a single write(2).
pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}
