//! Tests of layer apply, diff and changes. They need root (chown, mknod, trusted.*
//! xattrs), as the daemon does.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::sys::{lgetxattr_path, XattrTarget};
use super::*;

// ---------------------------------------------------------------- tar building

/// Builds tars entry by entry with raw headers, so that names the `tar` crate's safe
/// API refuses (`..`, absolute paths) can be written.
pub(crate) struct TarBuilder {
    out: Vec<u8>,
}

pub(crate) struct E<'a> {
    pub name: &'a str,
    pub etype: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: &'a str,
    pub data: &'a [u8],
    pub dev: (u32, u32),
    pub xattrs: &'a [(&'a str, &'a [u8])],
}

impl Default for E<'_> {
    fn default() -> Self {
        E {
            name: "",
            etype: tar::EntryType::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: "",
            data: b"",
            dev: (0, 0),
            xattrs: &[],
        }
    }
}

impl TarBuilder {
    pub(crate) fn new() -> Self {
        TarBuilder { out: Vec::new() }
    }

    pub(crate) fn entry(&mut self, e: E<'_>) -> &mut Self {
        if !e.xattrs.is_empty() {
            let mut b = tar::Builder::new(Vec::new());
            b.append_pax_extensions(e.xattrs.iter().map(|(k, v)| {
                (
                    Box::leak(format!("SCHILY.xattr.{k}").into_boxed_str()) as &str,
                    *v,
                )
            }))
            .unwrap();
            let bytes = b.into_inner().unwrap();
            // into_inner appended the two end blocks: drop them.
            self.out.extend_from_slice(&bytes[..bytes.len() - 1024]);
        }
        let mut h = tar::Header::new_gnu();
        assert!(e.name.len() <= 100 && e.link.len() <= 100);
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.etype);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if matches!(e.etype, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(e.data);
        let rem = e.data.len() % 512;
        if rem != 0 {
            self.out.extend(std::iter::repeat_n(0u8, 512 - rem));
        }
        self
    }

    pub(crate) fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(E {
            name,
            etype: tar::EntryType::Directory,
            mode: 0o755,
            ..E::default()
        })
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(E {
            name,
            data,
            ..E::default()
        })
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(E {
            name,
            etype: tar::EntryType::Symlink,
            mode: 0o777,
            link: target,
            ..E::default()
        })
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(E {
            name,
            etype: tar::EntryType::Link,
            link: target,
            ..E::default()
        })
    }

    pub(crate) fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(E {
            name,
            etype: tar::EntryType::Char,
            mode: 0o666,
            dev: (major, minor),
            ..E::default()
        })
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

// ---------------------------------------------------------------- tree comparison

/// Everything about an entry that a layer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desc {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub content: Vec<u8>,
    pub rdev: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// A description of every entry below `root` (not the root itself), for comparisons.
/// Dir mtimes are left out when `dir_mtimes` is false.
pub(crate) fn describe(root: &Path, dir_mtimes: bool) -> BTreeMap<PathBuf, Desc> {
    let mut out = BTreeMap::new();
    walk::walk(root, |e| {
        let st = e.st;
        let full = root.join(e.rel);
        let md = fs::symlink_metadata(&full).unwrap();
        let ft = md.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(&full)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_file() {
            ("file", fs::read(&full).unwrap())
        } else if ft.is_char_device() {
            ("char", Vec::new())
        } else if ft.is_block_device() {
            ("block", Vec::new())
        } else if ft.is_fifo() {
            ("fifo", Vec::new())
        } else {
            ("other", Vec::new())
        };
        let xt = XattrTarget::Path(sys::proc_path(e.parent, e.name).unwrap());
        let mut xattrs = Vec::new();
        for k in xt.list().unwrap() {
            if k.starts_with(OVERLAY_XATTR_PREFIX) {
                continue;
            }
            xattrs.push((k.clone(), xt.get(&k).unwrap().unwrap_or_default()));
        }
        out.insert(
            e.rel.to_owned(),
            Desc {
                kind,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                mtime: (kind != "dir" || dir_mtimes).then_some(st.st_mtime),
                content,
                rdev: st.st_rdev,
                xattrs,
            },
        );
        Ok(true)
    })
    .unwrap();
    out
}

pub(crate) fn assert_same_tree(a: &Path, b: &Path, dir_mtimes: bool) {
    let da = describe(a, dir_mtimes);
    let db = describe(b, dir_mtimes);
    let ka: Vec<_> = da.keys().collect();
    let kb: Vec<_> = db.keys().collect();
    assert_eq!(ka, kb, "entries differ between {a:?} and {b:?}");
    for (k, va) in &da {
        assert_eq!(Some(va), db.get(k), "entry {k:?} differs");
    }
}

/// Lists everything below a directory with contents, to prove nothing changed there.
pub(crate) fn snapshot_outside(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        let data = if md.is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        out.push((p, data));
    }
    out.sort();
    out
}

/// A temp dir with `target/` and `outside/` (holding `secret`).
fn sandbox() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let outside = t.path().join("outside");
    fs::create_dir(&target).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    (t, target, outside)
}

fn lst(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

// ---------------------------------------------------------------- apply

fn rich_layer() -> Vec<u8> {
    let cap: &[u8] = &[
        0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]; // VFS_CAP_REVISION_2, cap_net_bind_service permitted
    let mut t = TarBuilder::new();
    t.entry(E {
        name: "./",
        etype: tar::EntryType::Directory,
        mode: 0o755,
        ..E::default()
    })
    .entry(E {
        name: "etc/",
        etype: tar::EntryType::Directory,
        mode: 0o750,
        uid: 1000,
        gid: 1001,
        mtime: 1_500_000_000,
        ..E::default()
    })
    .entry(E {
        name: "etc/passwd",
        data: b"root:x:0:0\n",
        mode: 0o644,
        mtime: 1_400_000_000,
        ..E::default()
    })
    .entry(E {
        name: "bin/",
        etype: tar::EntryType::Directory,
        mode: 0o755,
        ..E::default()
    })
    .entry(E {
        name: "bin/su",
        data: b"#!su",
        mode: 0o4755,
        uid: 0,
        gid: 0,
        ..E::default()
    })
    .entry(E {
        name: "bin/ping",
        data: b"#!ping",
        mode: 0o755,
        xattrs: &[("security.capability", cap), ("user.note", b"hi")],
        ..E::default()
    })
    .entry(E {
        name: "tmp/",
        etype: tar::EntryType::Directory,
        mode: 0o1777,
        ..E::default()
    })
    .entry(E {
        name: "bin/sh",
        etype: tar::EntryType::Symlink,
        link: "/bin/busybox",
        uid: 7,
        gid: 8,
        mtime: 1_300_000_000,
        mode: 0o777,
        ..E::default()
    })
    .entry(E {
        name: "bin/busybox",
        data: b"busybox",
        mode: 0o2755,
        uid: 5,
        gid: 6,
        ..E::default()
    })
    .hardlink("bin/ls", "bin/busybox")
    .chardev("dev/null", 1, 3)
    .entry(E {
        name: "dev/fifo",
        etype: tar::EntryType::Fifo,
        mode: 0o600,
        ..E::default()
    })
    // A dir entry listed after content inside it: its mtime still wins.
    .entry(E {
        name: "bin/",
        etype: tar::EntryType::Directory,
        mode: 0o755,
        mtime: 1_234_567_890,
        ..E::default()
    })
    .entry(E {
        name: "opt/a.txt",
        data: b"implicit parent",
        ..E::default()
    });
    t.finish()
}

#[test]
fn layer_apply_all_entry_types_and_metadata() {
    let (_t, target, _) = sandbox();
    let tar = rich_layer();
    let applied = apply(&tar[..], &target, Mode::Overlay).unwrap();
    assert_eq!(applied.diff_id, sha256_hex(&tar));
    assert_eq!(
        applied.size,
        (b"root:x:0:0\n".len() + 4 + 6 + 7 + 15) as u64
    );

    let etc = lst(&target.join("etc"));
    assert!(etc.is_dir());
    assert_eq!(
        (etc.mode() & 0o7777, etc.uid(), etc.gid(), etc.mtime()),
        (0o750, 1000, 1001, 1_500_000_000)
    );
    assert_eq!(
        fs::read(target.join("etc/passwd")).unwrap(),
        b"root:x:0:0\n"
    );
    assert_eq!(lst(&target.join("etc/passwd")).mtime(), 1_400_000_000);
    assert_eq!(lst(&target.join("bin/su")).mode() & 0o7777, 0o4755);
    assert_eq!(lst(&target.join("tmp")).mode() & 0o7777, 0o1777);
    let bb = lst(&target.join("bin/busybox"));
    assert_eq!((bb.mode() & 0o7777, bb.uid(), bb.gid()), (0o2755, 5, 6));
    // Hardlink: same inode.
    assert_eq!(lst(&target.join("bin/ls")).ino(), bb.ino());
    assert_eq!(bb.nlink(), 2);
    // Symlink: target verbatim, owner and mtime of the link itself.
    let sh = lst(&target.join("bin/sh"));
    assert!(sh.file_type().is_symlink());
    assert_eq!(
        fs::read_link(target.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!((sh.uid(), sh.gid(), sh.mtime()), (7, 8, 1_300_000_000));
    // Devices and fifos.
    let null = lst(&target.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(lst(&target.join("dev/fifo")).file_type().is_fifo());
    // Implicit parents are made 0755.
    assert_eq!(lst(&target.join("opt")).mode() & 0o7777, 0o755);
    // xattrs, incl. file capabilities (set after chown, which would clear them).
    let ping = target.join("bin/ping");
    assert_eq!(
        lgetxattr_path(&ping, "user.note").unwrap().as_deref(),
        Some(&b"hi"[..])
    );
    assert!(lgetxattr_path(&ping, "security.capability")
        .unwrap()
        .is_some());
    // Directory mtime fixed up after its children were made.
    assert_eq!(lst(&target.join("bin")).mtime(), 1_234_567_890);
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
}

#[test]
fn layer_apply_gzip_and_zstd_give_the_plain_diff_id() {
    let tar = rich_layer();
    let want = sha256_hex(&tar);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let (_t, target, _) = sandbox();
    assert_eq!(
        apply(&gz[..], &target, Mode::Overlay).unwrap().diff_id,
        want
    );

    // Two zstd frames plus a skippable frame, as zstd:chunked layers have.
    let (a, b) = tar.split_at(3000);
    let mut zst = ruzstd::encoding::compress_to_vec(a, ruzstd::encoding::CompressionLevel::Fastest);
    zst.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
    zst.extend_from_slice(&3u32.to_le_bytes());
    zst.extend_from_slice(b"xyz");
    zst.extend(ruzstd::encoding::compress_to_vec(
        b,
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let (_t2, target2, _) = sandbox();
    let applied = apply(&zst[..], &target2, Mode::Overlay).unwrap();
    assert_eq!(applied.diff_id, want);
    assert_same_tree(&target, &target2, true);
}

#[test]
fn layer_apply_hashes_trailing_bytes_and_reads_in_small_chunks() {
    let mut tar = TarBuilder::new().file("a", b"x").finish();
    tar.extend_from_slice(&[0u8; 4096]); // extra padding blocks after the end marker
    /// Hands out one byte per read, to exercise short reads in magic detection.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let (_t, target, _) = sandbox();
    let applied = apply(Trickle(&tar), &target, Mode::Flatten).unwrap();
    assert_eq!(applied.diff_id, sha256_hex(&tar));
}

#[test]
fn layer_apply_overlay_mode_whiteouts() {
    let (_t, target, _) = sandbox();
    let tar = TarBuilder::new()
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file(".wh.gone", b"")
        .file("sub/.wh.x", b"")
        .finish();
    let applied = apply(&tar[..], &target, Mode::Overlay).unwrap();
    for p in ["gone", "sub/x"] {
        let md = lst(&target.join(p));
        assert!(md.file_type().is_char_device(), "{p}");
        assert_eq!(md.rdev(), 0);
    }
    assert_eq!(
        lgetxattr_path(&target.join("d"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!target.join("d/.wh..wh..opq").exists());
    assert!(!target.join(".wh.gone").exists());
    assert!(applied.warnings.is_empty());
}

#[test]
fn layer_apply_flatten_mode_whiteouts() {
    let (_t, target, _) = sandbox();
    let base = TarBuilder::new()
        .file("keep", b"k")
        .file("gone", b"g")
        .dir("gonedir/")
        .file("gonedir/f", b"f")
        .dir("d/")
        .file("d/old", b"o")
        .dir("d/sub/")
        .file("d/sub/old2", b"o2")
        .finish();
    apply(&base[..], &target, Mode::Flatten).unwrap();
    // The opaque marker comes after d/sub/: what the layer unpacked survives, the
    // rest of the old content of d (also below d/sub) goes.
    let layer = TarBuilder::new()
        .file(".wh.gone", b"")
        .file(".wh.gonedir", b"")
        .dir("d/")
        .dir("d/sub/")
        .file("d/sub/new", b"n")
        .file("d/.wh..wh..opq", b"")
        .file(".wh.never-existed", b"")
        .finish();
    apply(&layer[..], &target, Mode::Flatten).unwrap();
    assert!(target.join("keep").exists());
    assert!(!target.join("gone").exists());
    assert!(!target.join("gonedir").exists());
    assert!(!target.join("d/old").exists());
    assert!(!target.join("d/sub/old2").exists());
    assert_eq!(fs::read(target.join("d/sub/new")).unwrap(), b"n");
}

#[test]
fn layer_apply_replaces_entries_of_other_types() {
    let (_t, target, _) = sandbox();
    let base = TarBuilder::new()
        .dir("a/")
        .file("a/x", b"x")
        .file("b", b"b")
        .symlink("c", "b")
        .finish();
    apply(&base[..], &target, Mode::Flatten).unwrap();
    let layer = TarBuilder::new()
        .file("a", b"now a file")
        .dir("b/")
        .file("c", b"now a file")
        .finish();
    apply(&layer[..], &target, Mode::Flatten).unwrap();
    assert_eq!(fs::read(target.join("a")).unwrap(), b"now a file");
    assert!(lst(&target.join("b")).is_dir());
    assert!(lst(&target.join("c")).is_file());
}

#[test]
fn layer_apply_skips_overlay_private_xattrs_and_aufs_metadata() {
    let (_t, target, _) = sandbox();
    let tar = TarBuilder::new()
        .entry(E {
            name: "d/",
            etype: tar::EntryType::Directory,
            mode: 0o755,
            xattrs: &[
                ("trusted.overlay.opaque", b"y"),
                ("trusted.overlay.redirect", b"/x"),
            ],
            ..E::default()
        })
        .file(".wh..wh.plnk/123.456", b"x")
        .finish();
    let applied = apply(&tar[..], &target, Mode::Overlay).unwrap();
    assert_eq!(
        lgetxattr_path(&target.join("d"), OVERLAY_OPAQUE_XATTR).unwrap(),
        None
    );
    assert!(!target.join(".wh..wh.plnk").exists());
    assert_eq!(applied.warnings.len(), 3, "{:?}", applied.warnings);
}

// ---------------------------------------------------------------- apply: escapes (S2)

#[test]
fn layer_escape_dotdot_is_refused() {
    for name in ["../escaped", "a/../../escaped", "./../escaped"] {
        let (t, target, outside) = sandbox();
        let before = snapshot_outside(t.path());
        let tar = TarBuilder::new().file(name, b"pwned").finish();
        let err = apply(&tar[..], &target, Mode::Flatten).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{name}: {err}");
        assert!(err.to_string().contains(".."), "{err}");
        assert_eq!(snapshot_outside(t.path()), before);
        assert_eq!(snapshot_outside(&outside).len(), 1);
    }
}

#[test]
fn layer_escape_absolute_paths_are_made_relative() {
    let (t, target, _) = sandbox();
    let abs = format!("{}/abs", t.path().display());
    let tar = TarBuilder::new()
        .file("/etc/berth-test-abs", b"x")
        .file(&abs, b"y")
        .finish();
    apply(&tar[..], &target, Mode::Flatten).unwrap();
    assert!(target.join("etc/berth-test-abs").is_file());
    assert!(!Path::new("/etc/berth-test-abs").exists());
    assert!(target.join(abs.trim_start_matches('/')).is_file());
    assert!(!t.path().join("abs").exists());
}

#[test]
fn layer_escape_through_symlinked_parents_stays_inside() {
    let (t, target, outside) = sandbox();
    let before = snapshot_outside(&outside);
    let abs_out = outside.display().to_string();
    // While the symlinks' targets don't exist inside the target, writing through them
    // fails (as in Docker's chrooted unpack) and nothing appears outside.
    for link in [
        abs_out.as_str(),
        "../outside",
        "../../../../../../../../tmp",
    ] {
        let tar = TarBuilder::new()
            .symlink("dangling", link)
            .file("dangling/pwned", b"0")
            .finish();
        let err = apply(&tar[..], &target, Mode::Flatten).unwrap_err();
        assert!(matches!(err, Error::Resolve { .. }), "{link}: {err}");
        assert_eq!(
            snapshot_outside(&outside),
            before,
            "nothing written outside"
        );
        fs::remove_file(target.join("dangling")).unwrap();
    }
    // Once they exist inside, writes land where a chroot would put them.
    let mirror = format!("{}/", abs_out.trim_start_matches('/'));
    let tar = TarBuilder::new()
        .dir(&mirror)
        .dir("outside/")
        .symlink("abs", &abs_out)
        .symlink("rel", "../../../../../../../..")
        .symlink("dotdot", "../outside")
        .file("abs/pwned", b"1")
        .file("rel/pwned", b"2")
        .file("dotdot/pwned", b"3")
        .dir("abs/newdir/")
        .chardev("abs/null", 1, 3)
        .symlink("abs/link", "/")
        .finish();
    apply(&tar[..], &target, Mode::Flatten).unwrap();
    assert_eq!(
        snapshot_outside(&outside),
        before,
        "nothing written outside"
    );
    assert!(!t.path().join("pwned").exists());
    // The writes landed where a chroot would put them: inside the target.
    let inside_abs = target.join(abs_out.trim_start_matches('/'));
    assert_eq!(fs::read(inside_abs.join("pwned")).unwrap(), b"1");
    assert!(inside_abs.join("newdir").is_dir());
    assert!(lst(&inside_abs.join("null")).file_type().is_char_device());
    assert_eq!(fs::read(target.join("pwned")).unwrap(), b"2");
    assert_eq!(fs::read(target.join("outside/pwned")).unwrap(), b"3");
}

#[test]
fn layer_escape_whiteouts_through_symlinks_delete_nothing_outside() {
    for mode in [Mode::Flatten, Mode::Overlay] {
        let (_t, target, outside) = sandbox();
        fs::create_dir(outside.join("dir")).unwrap();
        fs::write(outside.join("dir/f"), b"f").unwrap();
        let before = snapshot_outside(&outside);
        let tar = TarBuilder::new()
            .symlink("l", &outside.display().to_string())
            .file("l/.wh.secret", b"")
            .file("l/dir/.wh..wh..opq", b"")
            .file(".wh.l", b"") // removes the symlink itself, not what it points to
            .finish();
        let _ = apply(&tar[..], &target, mode);
        assert_eq!(snapshot_outside(&outside), before, "{mode:?}");
        assert_eq!(fs::read(outside.join("dir/f")).unwrap(), b"f");
        assert_eq!(
            lgetxattr_path(&outside.join("dir"), OVERLAY_OPAQUE_XATTR).unwrap(),
            None
        );
    }
}

#[test]
fn layer_escape_hardlinks_outside_are_refused() {
    let (t, target, outside) = sandbox();
    let secret = outside.join("secret");
    let nlink = lst(&secret).nlink();
    let abs_secret = secret.display().to_string();
    let cases: Vec<(Vec<u8>, bool)> = vec![
        // `..` in the link target: refused as an unsafe path.
        (
            TarBuilder::new()
                .hardlink("h", "../outside/secret")
                .finish(),
            true,
        ),
        // Absolute target: taken inside the target, where it does not exist.
        (TarBuilder::new().hardlink("h", &abs_secret).finish(), false),
        // Through a symlinked parent: resolved inside, does not exist.
        (
            TarBuilder::new()
                .symlink("o", &outside.display().to_string())
                .hardlink("h", "o/secret")
                .finish(),
            false,
        ),
    ];
    for (tar, dotdot) in cases {
        let err = apply(&tar[..], &target, Mode::Flatten).unwrap_err();
        if dotdot {
            assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        } else {
            assert!(matches!(err, Error::BadHardlink { .. }), "{err}");
        }
        assert_eq!(lst(&secret).nlink(), nlink);
    }
    // A hardlink to a symlink that points outside links the symlink: writing the new
    // name later replaces it, it never writes through.
    let tar = TarBuilder::new()
        .symlink("s", &abs_secret)
        .hardlink("h2", "s")
        .file("h2", b"overwrite?")
        .file("s", b"overwrite?")
        .finish();
    apply(&tar[..], &target, Mode::Flatten).unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"secret");
    assert_eq!(lst(&secret).nlink(), nlink);
    assert!(!t.path().join("h2").exists());
    // A hardlink to a directory is refused.
    let tar = TarBuilder::new().dir("dd/").hardlink("h3", "dd").finish();
    assert!(matches!(
        apply(&tar[..], &target, Mode::Flatten).unwrap_err(),
        Error::BadHardlink { .. }
    ));
}

#[test]
fn layer_escape_existing_symlink_at_final_component_is_replaced_not_followed() {
    let (_t, target, outside) = sandbox();
    let secret = outside.join("secret");
    std::os::unix::fs::symlink(&secret, target.join("victim")).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("vdir")).unwrap();
    let tar = TarBuilder::new()
        .file("victim", b"pwned")
        .entry(E {
            name: "vdir",
            etype: tar::EntryType::Directory,
            mode: 0o777,
            ..E::default()
        })
        .finish();
    apply(&tar[..], &target, Mode::Flatten).unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"secret");
    assert_eq!(fs::read(target.join("victim")).unwrap(), b"pwned");
    assert!(lst(&target.join("vdir")).is_dir());
    assert_ne!(lst(&outside).mode() & 0o777, 0o777);
}

#[test]
fn layer_apply_root_entry_must_be_a_dir() {
    let (_t, target, _) = sandbox();
    let tar = TarBuilder::new().file("./", b"x").finish();
    assert!(matches!(
        apply(&tar[..], &target, Mode::Flatten).unwrap_err(),
        Error::UnsafePath { .. }
    ));
}

// ---------------------------------------------------------------- diff / tar_dir

fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, String)> {
    let mut ar = tar::Archive::new(tar);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            (name, e.header().entry_type(), link)
        })
        .collect()
}

/// Builds an overlay-style upper dir by hand.
fn fake_upper(root: &Path) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/hosts"), b"127.0.0.1 x\n").unwrap();
    fs::hard_link(root.join("etc/hosts"), root.join("etc/hosts.bak")).unwrap();
    nix::sys::stat::mknod(
        &root.join("etc/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    fs::create_dir(root.join("opq")).unwrap();
    sys::fsetxattr(
        std::os::fd::AsFd::as_fd(&fs::File::open(root.join("opq")).unwrap()),
        OVERLAY_OPAQUE_XATTR,
        b"y",
    )
    .unwrap();
    fs::write(root.join("opq/new"), b"n").unwrap();
    let long = "l".repeat(150);
    fs::write(root.join(&long), b"long name").unwrap();
    std::os::unix::fs::symlink("x".repeat(120), root.join("longlink")).unwrap();
    fs::write(root.join("suid"), b"s").unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4711)).unwrap();
    std::os::unix::fs::chown(root.join("suid"), Some(12), Some(34)).unwrap();
    fs::write(root.join("xattr"), b"x").unwrap();
    sys::fsetxattr(
        std::os::fd::AsFd::as_fd(&fs::File::open(root.join("xattr")).unwrap()),
        "user.k",
        b"v\0bin",
    )
    .unwrap();
}

#[test]
fn layer_diff_converts_whiteouts_and_keeps_links() {
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    fake_upper(&upper);
    let tar = diff(&upper, Vec::new()).unwrap();
    let es = entries(&tar);
    let names: Vec<&str> = es.iter().map(|e| e.0.as_str()).collect();
    let long = "l".repeat(150);
    assert_eq!(
        names,
        vec![
            "etc/",
            "etc/.wh.gone",
            "etc/hosts",
            "etc/hosts.bak",
            &long,
            "longlink",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new",
            "suid",
            "xattr",
        ]
    );
    let bak = es.iter().find(|e| e.0 == "etc/hosts.bak").unwrap();
    assert_eq!((bak.1, bak.2.as_str()), (tar::EntryType::Link, "etc/hosts"));
    let ll = es.iter().find(|e| e.0 == "longlink").unwrap();
    assert_eq!(ll.2, "x".repeat(120));
    // Deterministic.
    assert_eq!(tar, diff(&upper, Vec::new()).unwrap());

    // Applying the diff in overlay mode gives back the upper dir.
    let back = t.path().join("back");
    fs::create_dir(&back).unwrap();
    let applied = apply(&tar[..], &back, Mode::Overlay).unwrap();
    assert_eq!(applied.diff_id, sha256_hex(&tar));
    assert_same_tree(&upper, &back, true);
    assert_eq!(
        lgetxattr_path(&back.join("opq"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        lst(&back.join("etc/hosts")).ino(),
        lst(&back.join("etc/hosts.bak")).ino()
    );
}

#[test]
fn layer_tar_dir_round_trips_through_flatten_apply() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    apply(&rich_layer()[..], &src, Mode::Flatten).unwrap();
    let tar = tar_dir(&src, Vec::new()).unwrap();
    let dst = t.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply(&tar[..], &dst, Mode::Flatten).unwrap();
    assert_same_tree(&src, &dst, true);
    // The names follow Docker's layout: relative, dirs with a trailing slash.
    let es = entries(&tar);
    assert!(es.iter().any(|e| e.0 == "bin/"));
    assert!(es
        .iter()
        .all(|e| !e.0.starts_with('/') && !e.0.starts_with("./")));
}

// ---------------------------------------------------------------- changes

#[test]
fn layer_changes_against_lowers() {
    let t = tempfile::tempdir().unwrap();
    let l1 = t.path().join("l1");
    let l2 = t.path().join("l2");
    fs::create_dir_all(l1.join("etc")).unwrap();
    fs::write(l1.join("etc/hosts"), b"").unwrap();
    fs::write(l1.join("etc/gone"), b"").unwrap();
    fs::write(l1.join("etc/hidden-by-l2"), b"").unwrap();
    fs::create_dir_all(l1.join("opq/sub")).unwrap();
    fs::write(l1.join("opq/old"), b"").unwrap();
    fs::write(l1.join("opq/kept"), b"").unwrap();
    fs::create_dir_all(l2.join("etc")).unwrap();
    nix::sys::stat::mknod(
        &l2.join("etc/hidden-by-l2"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();

    let upper = t.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/hosts"), b"new").unwrap();
    fs::write(upper.join("etc/added"), b"new").unwrap();
    fs::create_dir_all(upper.join("newdir/deep")).unwrap();
    fs::write(upper.join("newdir/deep/f"), b"").unwrap();
    for wh in ["etc/gone", "etc/hidden-by-l2", "etc/never"] {
        nix::sys::stat::mknod(
            &upper.join(wh),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    }
    fs::create_dir(upper.join("opq")).unwrap();
    sys::fsetxattr(
        std::os::fd::AsFd::as_fd(&fs::File::open(upper.join("opq")).unwrap()),
        OVERLAY_OPAQUE_XATTR,
        b"y",
    )
    .unwrap();
    fs::write(upper.join("opq/kept"), b"recreated").unwrap();

    let got = changes(&upper, &[l2, l1]).unwrap();
    let got: Vec<String> = got
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path.display()))
        .collect();
    assert_eq!(
        got,
        vec![
            "C /etc",
            "A /etc/added",
            "D /etc/gone",
            "C /etc/hosts",
            "A /newdir",
            "A /newdir/deep",
            "A /newdir/deep/f",
            "C /opq",
            "C /opq/kept",
            "D /opq/old",
            "D /opq/sub",
        ]
    );
}

#[test]
fn layer_tar_dir_apply_diff_reproduces_the_bytes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"data").unwrap();
    let tar = tar_dir(&src, Vec::new()).unwrap();
    let snap = t.path().join("snap");
    fs::create_dir(&snap).unwrap();
    apply(&tar[..], &snap, Mode::Overlay).unwrap();
    let again = diff(&snap, Vec::new()).unwrap();
    assert_eq!(entries(&tar), entries(&again));
    assert!(tar == again, "bytes differ");
}

#[test]
fn layer_apply_reads_empty_numeric_fields_as_zero() {
    // Headers as the tar crate's `new_gnu` leaves them: uid/gid/mtime unset.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o640);
    h.set_size(1);
    b.append_data(&mut h, "f", &b"x"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let (_t, target, _) = sandbox();
    apply(&tar[..], &target, Mode::Flatten).unwrap();
    let md = lst(&target.join("f"));
    assert_eq!((md.uid(), md.mode() & 0o777, md.mtime()), (0, 0o640, 0));
}

/// A rough speed check: `cargo test --release -p berth-image layer_apply_speed --
/// --ignored --nocapture` (about 0.8 s for 20k files here).
#[test]
#[ignore]
fn layer_apply_speed() {
    let mut b = tar::Builder::new(Vec::new());
    for d in 0..200 {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("d{d}/"), std::io::empty())
            .unwrap();
        for f in 0..100 {
            let data = vec![b'x'; 2000];
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, format!("d{d}/f{f}"), &data[..])
                .unwrap();
        }
    }
    let tar = b.into_inner().unwrap();
    let t = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    apply(&tar[..], t.path(), Mode::Overlay).unwrap();
    eprintln!(
        "apply 20k files ({} MB): {:?}",
        tar.len() / 1_000_000,
        start.elapsed()
    );
    let start = std::time::Instant::now();
    let out = diff(t.path(), std::io::sink()).unwrap();
    let _ = out;
    eprintln!("diff 20k files: {:?}", start.elapsed());
}
