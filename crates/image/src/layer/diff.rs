//! Producing layer tars from directories, and listing a container's changes.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{FileStat, Mode as FileMode, SFlag};

use super::sys::{self, file_type, is_whiteout, XattrTarget};
use super::walk::{self, same_inode};
use super::{
    Change, ChangeKind, Error, Result, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
};

/// Writes the layer tar of an overlay upper dir to `writer`, returning the writer.
///
/// New and changed entries are written as they are; overlayfs whiteouts (0/0 character
/// devices) become `.wh.<name>` entries and opaque directories
/// (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry right after them. Files that
/// share an inode become tar hardlinks to the first path. Order is a depth-first walk
/// with each directory's names sorted, ownership, modes, xattrs and whole-second mtimes
/// are kept and user/group names are left empty, so the same tree always gives the same
/// bytes (and DiffID). The upper dir must not be written to meanwhile (pause the
/// container): a file that changes size while read fails the diff.
pub fn diff<W: Write>(upper: &Path, writer: W) -> Result<W> {
    write_tree(upper, writer, true, &[])
}

/// [`diff`], leaving out the entries at the paths `skip` (relative to `upper`) and
/// everything below them: `docker commit` leaves out the mount points the engine made.
pub fn diff_skipping<W: Write>(upper: &Path, writer: W, skip: &[PathBuf]) -> Result<W> {
    write_tree(upper, writer, true, skip)
}

/// Writes a tar of the whole tree at `dir` (for base layers and `export`), as [`diff`]
/// does but without interpreting whiteouts. The root directory itself is not an entry.
pub fn tar_dir<W: Write>(dir: &Path, writer: W) -> Result<W> {
    write_tree(dir, writer, false, &[])
}

fn write_tree<W: Write>(dir: &Path, writer: W, overlay: bool, skip: &[PathBuf]) -> Result<W> {
    let mut tw = TarWriter {
        out: writer,
        links: HashMap::new(),
    };
    walk::walk(dir, |e| {
        if skip.iter().any(|s| s == e.rel) {
            return Ok(false);
        }
        tw.entry(e, overlay)
    })?;
    tw.finish(dir)
}

/// Writes a tar of one resource as `docker cp` archives it: the entry `name` of the
/// directory `parent` (whose `lstat` is `st`) under the tar name `prefix`, and, for a
/// directory, everything below it as `prefix/...`. An empty prefix stands for the root:
/// `/` and `/...`. Nothing is followed: a symlink is archived as a symlink.
pub(crate) fn tar_resource<W: Write>(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    prefix: &[u8],
    writer: W,
) -> Result<W> {
    let named = |rel: &Path| -> PathBuf {
        let mut b = prefix.to_vec();
        if !rel.as_os_str().is_empty() {
            b.push(b'/');
            b.extend_from_slice(rel.as_os_str().as_bytes());
        }
        PathBuf::from(OsStr::from_bytes(&b))
    };
    let mut tw = TarWriter {
        out: writer,
        links: HashMap::new(),
    };
    let top = named(Path::new(""));
    tw.entry(
        &walk::Entry {
            rel: &top,
            name,
            parent,
            st,
        },
        false,
    )?;
    if file_type(st) == SFlag::S_IFDIR {
        let dir = walk::open_dir_at(parent, name, st, &top)?;
        walk::walk_fd(dir, &mut PathBuf::new(), &mut |e| {
            let rel = named(e.rel);
            tw.entry(
                &walk::Entry {
                    rel: &rel,
                    name: e.name,
                    parent: e.parent,
                    st: e.st,
                },
                false,
            )
        })?;
    }
    tw.finish(&top)
}

struct TarWriter<W> {
    out: W,
    /// (dev, ino) → first path, for files with more than one link.
    links: HashMap<(u64, u64), Vec<u8>>,
}

fn header_for(st: &FileStat, etype: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(etype);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn path_bytes(rel: &Path, dir: bool) -> Vec<u8> {
    let mut b = rel.as_os_str().as_bytes().to_vec();
    if dir {
        b.push(b'/');
    }
    b
}

/// The xattrs of an entry worth keeping in a layer, sorted by name.
fn xattrs(target: XattrTarget<'_>, rel: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for key in target
        .list()
        .map_err(|e| Error::io("list xattrs of", rel, e))?
    {
        if key.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(v) = target
            .get(&key)
            .map_err(|e| Error::io("read xattr of", rel, e))?
        {
            out.push((key, v));
        }
    }
    Ok(out)
}

impl<W: Write> TarWriter<W> {
    /// Ends the archive with its two zero blocks and returns the writer.
    fn finish(mut self, what: &Path) -> Result<W> {
        self.out
            .write_all(&[0u8; 1024])
            .map_err(|e| Error::io("write tar", what, e))?;
        self.out
            .flush()
            .map_err(|e| Error::io("write tar", what, e))?;
        Ok(self.out)
    }

    fn entry(&mut self, e: &walk::Entry<'_>, overlay: bool) -> Result<bool> {
        let st = e.st;
        let rel = e.rel;
        let ft = file_type(st);

        if overlay && is_whiteout(st) {
            let mut name = rel.parent().unwrap_or(Path::new("")).to_owned();
            let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
            wh.extend_from_slice(e.name.as_bytes());
            name.push(OsStr::from_bytes(&wh));
            let mut h = header_for(st, tar::EntryType::Regular);
            h.set_mode(0o600);
            self.write(rel, h, &path_bytes(&name, false), None, &[], io::empty())?;
            return Ok(false);
        }

        if ft != SFlag::S_IFDIR && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let h = header_for(st, tar::EntryType::Link);
                self.write(
                    rel,
                    h,
                    &path_bytes(rel, false),
                    Some(&first),
                    &[],
                    io::empty(),
                )?;
                return Ok(false);
            }
            self.links.insert(key, path_bytes(rel, false));
        }

        match ft {
            SFlag::S_IFDIR => {
                let dir = walk::open_dir_at(e.parent, e.name, st, rel)?;
                let x = xattrs(XattrTarget::Fd(dir.as_fd()), rel)?;
                let h = header_for(st, tar::EntryType::Directory);
                self.write(rel, h, &path_bytes(rel, true), None, &x, io::empty())?;
                if overlay && opaque(dir.as_fd(), rel)? {
                    // Docker writes the marker right after its directory, inheriting
                    // the directory's ownership and permission bits.
                    let mut h = header_for(st, tar::EntryType::Regular);
                    h.set_mode(st.st_mode & 0o777);
                    let name = rel.join(WHITEOUT_OPAQUE);
                    self.write(rel, h, &path_bytes(&name, false), None, &[], io::empty())?;
                }
            }
            SFlag::S_IFREG => {
                let fd = openat(
                    e.parent,
                    e.name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    FileMode::empty(),
                )
                .map_err(|err| Error::nix("open", rel, err))?;
                same_inode(fd.as_fd(), st, rel)?;
                let x = xattrs(XattrTarget::Fd(fd.as_fd()), rel)?;
                let mut h = header_for(st, tar::EntryType::Regular);
                let size = st.st_size as u64;
                h.set_size(size);
                let file = File::from(fd);
                self.write(rel, h, &path_bytes(rel, false), None, &x, file.take(size))?;
            }
            SFlag::S_IFLNK => {
                let target =
                    readlinkat(e.parent, e.name).map_err(|err| Error::nix("readlink", rel, err))?;
                let x = xattrs(
                    XattrTarget::Path(
                        sys::proc_path(e.parent, e.name)
                            .map_err(|err| Error::io("xattrs of", rel, err))?,
                    ),
                    rel,
                )?;
                let h = header_for(st, tar::EntryType::Symlink);
                self.write(
                    rel,
                    h,
                    &path_bytes(rel, false),
                    Some(target.as_bytes()),
                    &x,
                    io::empty(),
                )?;
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let etype = match ft {
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    SFlag::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header_for(st, etype);
                if ft != SFlag::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev))
                        .map_err(|err| Error::io("device number of", rel, err))?;
                    h.set_device_minor(libc::minor(st.st_rdev))
                        .map_err(|err| Error::io("device number of", rel, err))?;
                }
                let x = xattrs(
                    XattrTarget::Path(
                        sys::proc_path(e.parent, e.name)
                            .map_err(|err| Error::io("xattrs of", rel, err))?,
                    ),
                    rel,
                )?;
                self.write(rel, h, &path_bytes(rel, false), None, &x, io::empty())?;
            }
            // Sockets are not content (Docker skips them too).
            _ => {}
        }
        Ok(true)
    }

    /// Writes one entry: PAX xattr records, GNU long name/link records when needed,
    /// the header and the data padded to the block size.
    fn write(
        &mut self,
        rel: &Path,
        mut h: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        mut data: impl Read,
    ) -> Result<()> {
        let werr = |e| Error::io("write tar entry for", rel, e);
        if !xattrs.is_empty() {
            let mut pax = Vec::new();
            for (k, v) in xattrs {
                pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
            }
            let mut ph = tar::Header::new_ustar();
            ph.as_old_mut().name[..16].copy_from_slice(b"PaxHeaders/entry");
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_mode(0o644);
            self.raw(&mut ph, &pax).map_err(werr)?;
        }
        if let Some(link) = link {
            if link.len() > 100 {
                self.long(b'K', link).map_err(werr)?;
            }
            let n = link.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > 100 {
            self.long(b'L', name).map_err(werr)?;
        }
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(werr)?;
        let size = h.entry_size().map_err(werr)?;
        let copied = io::copy(&mut data, &mut self.out).map_err(werr)?;
        if copied != size {
            return Err(werr(io::Error::other(format!(
                "file changed size while being read ({size} -> {copied} bytes)"
            ))));
        }
        pad(&mut self.out, size).map_err(werr)
    }

    /// A GNU long name (`L`) or long link name (`K`) record.
    fn long(&mut self, kind: u8, value: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_mode(0o644);
        let mut data = value.to_vec();
        data.push(0);
        self.raw(&mut h, &data)
    }

    fn raw(&mut self, h: &mut tar::Header, data: &[u8]) -> io::Result<()> {
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(data)?;
        pad(&mut self.out, data.len() as u64)
    }
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

/// One PAX record: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn opaque(dir: BorrowedFd<'_>, rel: &Path) -> Result<bool> {
    Ok(XattrTarget::Fd(dir)
        .get(OVERLAY_OPAQUE_XATTR)
        .map_err(|e| Error::io("read xattr of", rel, e))?
        .as_deref()
        == Some(b"y"))
}

/// Lists a container's filesystem changes from its overlay `upper` dir, as
/// `docker diff` shows them, sorted by path.
///
/// `lowers` are the image's layer dirs in overlay format, top first (as
/// `Snapshots::lowers` returns them); a path is *Modified* if it exists in their merged
/// view, else *Added*. A whiteout is *Deleted* when it hides something of the image;
/// an opaque directory that replaced one of the image is *Modified* and the image's
/// entries in it that the container did not recreate are *Deleted*. Below an added
/// directory every entry is listed as added.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk::walk(upper, |e| {
        let abs = Path::new("/").join(e.rel);
        if is_whiteout(e.st) {
            if lower_exists(lowers, e.rel) {
                out.push(Change {
                    path: abs,
                    kind: ChangeKind::Deleted,
                });
            }
            return Ok(false);
        }
        let in_lower = lower_exists(lowers, e.rel);
        out.push(Change {
            path: abs.clone(),
            kind: if in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
        });
        if in_lower && file_type(e.st) == SFlag::S_IFDIR {
            let dir = walk::open_dir_at(e.parent, e.name, e.st, e.rel)?;
            if opaque(dir.as_fd(), e.rel)? {
                let present: BTreeSet<_> =
                    walk::read_names(dir.as_fd(), e.rel)?.into_iter().collect();
                for name in lower_children(lowers, e.rel) {
                    if !present.contains(&name) {
                        out.push(Change {
                            path: abs.join(&name),
                            kind: ChangeKind::Deleted,
                        });
                    }
                }
            }
        }
        Ok(true)
    })?;
    out.sort();
    Ok(out)
}

fn lstat(p: &Path) -> Option<FileStat> {
    nix::sys::stat::lstat(p).ok()
}

fn is_opaque_path(p: &Path) -> bool {
    sys::lgetxattr_path(p, OVERLAY_OPAQUE_XATTR)
        .ok()
        .flatten()
        .as_deref()
        == Some(b"y")
}

/// Whether `rel` exists in the merged view of overlay-format `lowers` (top first),
/// honouring whiteouts, opaque directories and non-directories that hide what is
/// below them. The lowers are berth's own snapshots, so plain path lookups are fine.
pub(crate) fn lower_exists(lowers: &[PathBuf], rel: &Path) -> bool {
    let comps: Vec<_> = rel.components().collect();
    if comps.is_empty() {
        return true;
    }
    for layer in lowers {
        let mut p = layer.clone();
        let mut opaque_above = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let Some(st) = lstat(&p) else {
                if opaque_above {
                    return false;
                }
                break; // not in this layer: look below
            };
            if is_whiteout(&st) {
                return false;
            }
            if i + 1 == comps.len() {
                return true;
            }
            if file_type(&st) != SFlag::S_IFDIR {
                return false; // a non-directory here hides the rest of the path
            }
            if is_opaque_path(&p) {
                opaque_above = true;
            }
        }
    }
    false
}

/// The names visible in directory `rel` of the merged lowers.
fn lower_children(lowers: &[PathBuf], rel: &Path) -> BTreeSet<std::ffi::OsString> {
    let mut names = BTreeSet::new();
    for layer in lowers {
        if let Ok(rd) = std::fs::read_dir(layer.join(rel)) {
            names.extend(rd.flatten().map(|d| d.file_name()));
        }
    }
    names.retain(|n| lower_exists(lowers, &rel.join(n)));
    names
}
