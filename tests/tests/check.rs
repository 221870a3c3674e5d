//! `berth system check` finds a corrupt blob and a missing layer snapshot, and passes on
//! a whole store.

use std::path::PathBuf;
use std::process::Command;

use e2e::*;

/// The largest file under `dir` (the layer tar among the blobs).
fn largest(dir: &std::path::Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .unwrap()
        .path()
}

#[test]
fn check_passes_then_finds_corruption() {
    let d = Daemon::start();
    let tar = d.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg("/var/cache/berth-fixtures/busybox")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the fixture (run scripts/fixtures.sh)");
    ok(&d.berth(&["import", tar.to_str().unwrap(), "check:1"]));
    let out = ok(&d.berth(&["system", "check"]));
    assert!(out.contains("store is consistent"), "{out}");
    assert!(out.contains("1 images"), "{out}");

    let snapshots = d.dir.join("data/snapshots");
    let snap = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("fs").is_dir())
        .expect("a layer snapshot")
        .path();
    let moved = snapshots.join(".moved-away");
    std::fs::rename(&snap, &moved).unwrap();
    let out = d.berth(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("is missing"), "{}", stdout(&out));
    std::fs::rename(&moved, &snap).unwrap();

    let blob = largest(&d.dir.join("data/content/blobs/sha256"));
    let mut data = std::fs::read(&blob).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&blob, data).unwrap();
    let out = d.berth(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("problem: blob sha256:"), "{text}");
    assert!(stderr(&out).contains("1 problem(s)"), "{}", stderr(&out));
}

/// Containers are checked too: a lost bundle is reported.
#[test]
fn check_covers_containers() {
    let d = Daemon::with_busybox();
    let id = ok(&d.docker(&["create", "--name", "c1", "busybox", "true"]));
    let out = ok(&d.berth(&["system", "check"]));
    assert!(
        out.contains("1 containers") && out.contains("store is consistent"),
        "{out}"
    );
    let config = d
        .dir
        .join("data/containers")
        .join(id.trim())
        .join("config.json");
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    let out = d.berth(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("bundle"), "{}", stdout(&out));
    std::fs::write(&config, saved).unwrap();
    ok(&d.berth(&["system", "check"]));
}
