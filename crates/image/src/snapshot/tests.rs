//! Snapshot store and overlay mount tests. They need root and overlayfs; every mount
//! is held by a `MountGuard`, so it is unmounted on failure too.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::layer::tests::{assert_same_tree, sha256_hex, TarBuilder, E};
use crate::layer::{self, ChangeKind, Mode};

fn hex_id(n: u8) -> String {
    format!("sha256:{}", hex::encode([n; 32]))
}

fn apply_tar(tar: &[u8]) -> impl FnOnce(&Path) -> Result<layer::Applied, layer::Error> + '_ {
    move |dir| layer::apply(tar, dir, Mode::Overlay)
}

#[test]
fn snapshot_chain_ids_follow_the_oci_definition() {
    let d1 = hex_id(1);
    let d2 = hex_id(2);
    let ids = chain_ids(&[&d1, &d2]);
    assert_eq!(ids[0], d1);
    assert_eq!(ids[1], sha256_hex(format!("{d1} {d2}").as_bytes()));
    assert_eq!(chain_id(Some(&d1), &d2), ids[1]);
}

#[test]
fn snapshot_prepare_reuse_lowers_size_list_remove() {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshots::open(t.path()).unwrap();
    let l1 = TarBuilder::new()
        .file("a", b"12345")
        .hardlink("b", "a")
        .file("c", b"123")
        .finish();
    let l2 = TarBuilder::new().file(".wh.a", b"").finish();
    let c1 = sha256_hex(&l1);
    let c2 = chain_id(Some(&c1), &sha256_hex(&l2));

    // A parent must exist first.
    assert!(matches!(
        s.prepare(&c2, Some(&c1), apply_tar(&l2)),
        Err(Error::ParentMissing { .. })
    ));
    let Prepared::Created(applied) = s.prepare(&c1, None, apply_tar(&l1)).unwrap() else {
        panic!("not created")
    };
    assert_eq!(applied.diff_id, c1);
    // Reused, never applied twice.
    assert_eq!(
        s.prepare(&c1, None, |_: &Path| -> Result<(), std::io::Error> {
            panic!("applied twice")
        })
        .unwrap(),
        Prepared::Existing
    );
    s.prepare(&c2, Some(&c1), apply_tar(&l2)).unwrap();

    assert_eq!(s.parent(&c2).unwrap().as_deref(), Some(c1.as_str()));
    assert_eq!(s.parent(&c1).unwrap(), None);
    assert_eq!(
        s.lowers(&c2).unwrap(),
        vec![s.fs_path(&c2).unwrap(), s.fs_path(&c1).unwrap()]
    );
    let mut want = vec![c1.clone(), c2.clone()];
    want.sort();
    assert_eq!(s.list().unwrap(), want);
    assert_eq!(s.size(&c1).unwrap(), 8, "hardlinked file counted once");
    assert_eq!(s.size(&c2).unwrap(), 0);

    assert!(matches!(s.remove(&c1), Err(Error::InUse { .. })));
    s.remove(&c2).unwrap();
    s.remove(&c1).unwrap();
    assert!(s.list().unwrap().is_empty());
    assert!(matches!(s.remove(&c1), Err(Error::NotFound(_))));
    assert!(matches!(
        s.prepare("sha256:nothex", None, apply_tar(&l1)),
        Err(Error::InvalidChainId(_))
    ));
    // Nothing else is left behind: no temp dirs, no lock files.
    assert_eq!(fs::read_dir(t.path().join("snapshots")).unwrap().count(), 0);
}

#[test]
fn snapshot_failed_apply_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshots::open(t.path()).unwrap();
    let bad = TarBuilder::new()
        .file("ok", b"x")
        .file("../evil", b"x")
        .finish();
    let err = s.prepare(&hex_id(9), None, apply_tar(&bad)).unwrap_err();
    assert!(matches!(err, Error::Apply { .. }), "{err}");
    assert!(err.to_string().contains(".."), "{err}");
    assert_eq!(fs::read_dir(t.path().join("snapshots")).unwrap().count(), 0);
}

#[test]
fn snapshot_concurrent_prepares_apply_once() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_owned();
    let calls = Arc::new(AtomicUsize::new(0));
    let id = hex_id(3);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (root, calls, id) = (root.clone(), calls.clone(), id.clone());
            std::thread::spawn(move || {
                // Each thread opens its own store, as separate processes would.
                let s = Snapshots::open(&root).unwrap();
                s.prepare(&id, None, |dir: &Path| -> std::io::Result<()> {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    fs::write(dir.join("f"), b"x")
                })
                .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Prepared::Created(())))
            .count(),
        1
    );
    let s = Snapshots::open(&root).unwrap();
    assert_eq!(s.list().unwrap(), vec![id.clone()]);
    assert_eq!(fs::read(s.fs_path(&id).unwrap().join("f")).unwrap(), b"x");
}

#[test]
fn snapshot_open_cleans_crash_leftovers() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("snapshots");
    let hex = hex::encode([4u8; 32]);
    fs::create_dir_all(dir.join(format!(".tmp-{hex}-1-1/fs/x"))).unwrap();
    fs::create_dir_all(dir.join(format!(".rm-{hex}-1-2/fs"))).unwrap();
    fs::write(dir.join(format!(".lock-{hex}")), b"").unwrap();
    let s = Snapshots::open(t.path()).unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert!(s.list().unwrap().is_empty());
}

// ---------------------------------------------------------------- overlay mounts

/// A temp dir whose mount points are unmounted before it is deleted, even when the
/// test fails (guards drop before the TempDir, which is declared first).
fn mountpoint(t: &Path, name: &str) -> PathBuf {
    let p = t.join(name);
    fs::create_dir_all(&p).unwrap();
    p
}

fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let dir = |name| E {
        name,
        etype: tar::EntryType::Directory,
        mode: 0o755,
        mtime: 1_500_000_000,
        ..E::default()
    };
    let l1 = TarBuilder::new()
        .entry(dir("etc/"))
        .file("etc/keep", b"k1")
        .file("etc/del", b"d")
        .entry(dir("opq/"))
        .file("opq/old1", b"o1")
        .entry(dir("opq/sub/"))
        .file("opq/sub/old2", b"o2")
        .entry(dir("bin/"))
        .entry(E {
            name: "bin/busybox",
            data: b"bb",
            mode: 0o755,
            ..E::default()
        })
        .hardlink("bin/ls", "bin/busybox")
        .symlink("bin/sh", "busybox")
        .entry(dir("lib/"))
        .file("lib/libc", b"libc")
        .finish();
    let l2 = TarBuilder::new()
        .entry(dir("etc/"))
        .file("etc/.wh.del", b"")
        .file("etc/keep", b"k2")
        .entry(dir("opq/"))
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"n")
        .finish();
    (l1, l2)
}

#[test]
fn snapshot_overlay_end_to_end_diff_changes_and_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&t.path().join("root")).unwrap();
    let (l1, l2) = two_layers();
    let c1 = sha256_hex(&l1);
    let c2 = chain_id(Some(&c1), &sha256_hex(&l2));
    s.prepare(&c1, None, apply_tar(&l1)).unwrap();
    s.prepare(&c2, Some(&c1), apply_tar(&l2)).unwrap();

    // The upper layer holds overlayfs whiteouts.
    let top = s.fs_path(&c2).unwrap();
    let del = fs::symlink_metadata(top.join("etc/del")).unwrap();
    assert!(del.file_type().is_char_device() && del.rdev() == 0);
    assert_eq!(
        layer::sys::lgetxattr_path(&top.join("opq"), layer::OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );

    let container = t.path().join("containers/c1");
    let rootfs = mountpoint(t.path(), "rootfs");
    let guard = s.mount_container(Some(&c2), &container, &rootfs).unwrap();

    // Merged view.
    assert_eq!(fs::read(rootfs.join("etc/keep")).unwrap(), b"k2");
    assert!(!rootfs.join("etc/del").exists());
    let opq: Vec<_> = fs::read_dir(rootfs.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opq, vec!["new"]);
    assert_eq!(fs::read(rootfs.join("bin/ls")).unwrap(), b"bb");

    // The same layers flattened give the same tree as the merged view.
    let flat = mountpoint(t.path(), "flat");
    layer::apply(&l1[..], &flat, Mode::Flatten).unwrap();
    layer::apply(&l2[..], &flat, Mode::Flatten).unwrap();
    assert_same_tree(&flat, &rootfs, false);

    // The container writes.
    fs::write(rootfs.join("etc/added"), b"a").unwrap();
    fs::write(rootfs.join("etc/keep"), b"k3").unwrap();
    fs::remove_file(rootfs.join("bin/sh")).unwrap();
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::remove_dir_all(rootfs.join("lib")).unwrap();
    fs::create_dir(rootfs.join("lib")).unwrap();
    fs::write(rootfs.join("lib/new"), b"new").unwrap();
    fs::create_dir_all(rootfs.join("newdir/deep")).unwrap();
    fs::write(rootfs.join("newdir/deep/f"), b"f").unwrap();
    let upper = container.join("upper");
    assert_eq!(fs::read(upper.join("etc/added")).unwrap(), b"a");

    // docker diff.
    let lowers = s.lowers(&c2).unwrap();
    let got: Vec<String> = layer::changes(&upper, &lowers)
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path.display()))
        .collect();
    assert_eq!(
        got,
        vec![
            "C /bin",
            "C /bin/busybox",
            "D /bin/sh",
            "C /etc",
            "A /etc/added",
            "C /etc/keep",
            "C /lib",
            "D /lib/libc",
            "A /lib/new",
            "A /newdir",
            "A /newdir/deep",
            "A /newdir/deep/f",
        ]
    );
    assert_eq!(ChangeKind::Deleted.letter(), 'D');

    // The layer diff of the upper dir.
    let tar = layer::diff(&upper, Vec::new()).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        names.push(String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap());
    }
    for want in [
        "bin/.wh.sh",
        "lib/.wh..wh..opq",
        "lib/new",
        "etc/added",
        "etc/keep",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing in {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.contains("libc")), "{names:?}");

    // Round trip: the diff applied in flatten mode on the flattened image gives the
    // container's merged view.
    layer::apply(&tar[..], &flat, Mode::Flatten).unwrap();
    assert_same_tree(&flat, &rootfs, true);

    guard.unmount().unwrap();
    assert!(fs::read_dir(&rootfs).unwrap().next().is_none());
    // Unmounting what is not mounted is fine.
    umount_container(&rootfs).unwrap();
}

#[test]
fn snapshot_mount_without_layers_uses_an_empty_lower() {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&t.path().join("root")).unwrap();
    let container = t.path().join("c");
    let rootfs = mountpoint(t.path(), "rootfs");
    let guard = s.mount_container(None, &container, &rootfs).unwrap();
    assert!(fs::read_dir(&rootfs).unwrap().next().is_none());
    fs::write(rootfs.join("hello"), b"hi").unwrap();
    assert_eq!(fs::read(container.join("upper/hello")).unwrap(), b"hi");
    drop(guard);
    assert!(!rootfs.join("hello").exists(), "unmounted on drop");
}

/// Many layers with long paths, past the 4096-byte option page, through both the new
/// mount API and the classic fallback.
#[test]
fn snapshot_mount_many_layers_past_the_option_page() {
    let t = tempfile::tempdir().unwrap();
    let long = "x".repeat(90);
    let mut lowers = Vec::new();
    for i in 0..130 {
        let d = t.path().join(format!("{long}{i:03}"));
        fs::create_dir(&d).unwrap();
        fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
        fs::write(d.join("top"), i.to_string()).unwrap();
        lowers.push(d);
    }
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096);
    for (n, method) in [MountMethod::Auto, MountMethod::Classic]
        .into_iter()
        .enumerate()
    {
        let upper = mountpoint(t.path(), &format!("upper{n}"));
        let work = mountpoint(t.path(), &format!("work{n}"));
        let target = mountpoint(t.path(), &format!("m{n}"));
        mount_overlay(&lowers, &upper, &work, &target, method).unwrap();
        let guard = MountGuard {
            target: Some(target.clone()),
        };
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info
            .lines()
            .find(|l| l.contains(target.to_str().unwrap()))
            .unwrap();
        // The fallback names layers by fd; the new API passes the real paths.
        assert_eq!(
            line.contains("/proc/self/fd/"),
            method == MountMethod::Classic,
            "{line}"
        );
        assert_eq!(fs::read_to_string(target.join("f0")).unwrap(), "0");
        assert_eq!(fs::read_to_string(target.join("f129")).unwrap(), "129");
        // Top first: the first lower wins.
        assert_eq!(fs::read_to_string(target.join("top")).unwrap(), "0");
        guard.unmount().unwrap();
    }
}
