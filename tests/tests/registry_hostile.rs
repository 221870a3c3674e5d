//! A hostile registry ([`e2e::hostile`], in this process) against a private berthd driven
//! by the stock docker CLI: every lie gives a clear error, leaves no image, tag, blob or
//! temp file, and the daemon stays up; a pull cut mid-layer resumes where it stopped; a
//! push the registry does not allow is refused in Docker's words.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use e2e::hostile::{Hostile, DENIED};
use e2e::registry::{Registry, RegistryOpts};
use e2e::*;

fn failed(o: &std::process::Output) -> String {
    assert_eq!(code(o), 1, "should fail: {}{}", stdout(o), stderr(o));
    eprintln!("expected failure: {}{}", stdout(o), stderr(o));
    stderr(o)
}

/// File names in `dir` (none if it does not exist).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What the data root holds that a pull could leave behind.
#[derive(Debug, PartialEq)]
struct Leftovers {
    blobs: BTreeSet<String>,
    snapshots: BTreeSet<String>,
    tmp: BTreeSet<String>,
    ingest: BTreeSet<String>,
    images: String,
}

fn leftovers(d: &Daemon) -> Leftovers {
    let data = d.dir.join("data");
    Leftovers {
        blobs: names(&data.join("content/blobs/sha256")),
        snapshots: names(&data.join("snapshots")),
        tmp: names(&data.join("tmp")),
        ingest: names(&data.join("content/ingest")),
        images: ok(&d.docker(&[
            "images",
            "-a",
            "--no-trunc",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}",
        ])),
    }
}

#[test]
fn hostile_registry_pulls_fail_cleanly_and_the_daemon_stays_up() {
    let h = Hostile::start();
    let reg = Registry::start(RegistryOpts::default());
    let d = Daemon::with_busybox();
    let before = leftovers(&d);
    let (layer, layer_digest) = h.layer();
    for (repo, why) in [
        ("bad", "digest mismatch"),
        ("trunc", "truncated"),
        ("wrongmt", "text/html"),
        ("loop", "redirect"),
        ("noauth", "no usable way to authenticate"),
    ] {
        let img = format!("{}/{repo}", h.host());
        let e = failed(&d.docker(&["pull", &img]));
        assert!(
            e.to_lowercase().contains(why),
            "{repo}: the error should say {why:?}: {e}"
        );
        assert_ne!(code(&d.docker(&["image", "inspect", &img])), 0, "{repo}");
        let mut after = leftovers(&d);
        if repo == "trunc" {
            // A cut download is kept to be resumed (not a blob; `system check` is
            // clean): exactly the half that came.
            let partial = format!("partial-{}", layer_digest.replace(':', "-"));
            assert_eq!(after.ingest, BTreeSet::from([partial.clone()]), "{repo}");
            let p = d.dir.join("data/content/ingest").join(&partial);
            let len = std::fs::metadata(&p).unwrap().len();
            assert_eq!(len, layer.len() as u64 / 2, "{repo}: partial size");
            d.assert_check_clean();
            std::fs::remove_file(p).unwrap();
            after.ingest.clear();
        }
        assert_eq!(after, before, "{repo}: the pull left something behind");
        d.assert_check_clean();
        ok(&d.docker(&["version"]));
    }

    // Still serving: an honest pull from the same server and one from a real registry.
    let good = format!("{}/good", h.host());
    ok(&d.docker(&["pull", &good]));
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&d.docker(&["image", "inspect", &good]))).unwrap();
    assert_eq!(inspected[0]["Id"], h.config_digest());
    assert_eq!(inspected[0]["RootFS"]["Layers"][0], layer_digest);
    let bb = format!("{}/me/bb:1", reg.host());
    ok(&d.docker(&["tag", "busybox", &bb]));
    ok(&d.docker(&["push", &bb]));
    ok(&d.docker(&["rmi", "busybox", &bb]));
    ok(&d.docker(&["pull", &bb]));
    ok(&d.docker(&["run", "--rm", &bb, "true"]));
    assert!(names(&d.dir.join("data/content/ingest")).is_empty());
    d.assert_check_clean();
}

#[test]
fn a_cut_pull_resumes_where_it_stopped() {
    const CUT: u64 = 1_000_000;
    let h = Hostile::start();
    let mut d = Daemon::start();
    let img = format!("{}/cut", h.host());
    let (layer, layer_digest) = h.layer();
    let total = layer.len() as u64;
    let ingest = d.dir.join("data/content/ingest");
    let partial = ingest.join(format!("partial-{}", layer_digest.replace(':', "-")));

    h.set_cut(Some(CUT));
    let e = failed(&d.docker(&["pull", &img]));
    assert!(e.contains("truncated"), "{e}");
    assert_eq!(h.layer_bytes_served(), CUT);
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), CUT);
    assert_ne!(code(&d.docker(&["image", "inspect", &img])), 0);
    d.assert_check_clean();

    // A restart keeps a fresh partial and removes a stale one.
    let stale = ingest.join(format!("partial-sha256-{}", "0".repeat(64)));
    std::fs::write(&stale, b"old").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(25 * 3600))
        .unwrap();
    d.stop();
    d.restart();
    assert!(!stale.exists(), "a partial older than 24 h stays");
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), CUT);

    // The next pull asks for the rest only, and unpacks the whole layer.
    h.set_cut(None);
    let ranges = h.ranges_seen().len();
    let out = ok(&d.docker(&["pull", &img]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        h.layer_bytes_served() - CUT,
        total - CUT,
        "the second pull fetched more than the rest"
    );
    assert_eq!(h.ranges_seen()[ranges..], [format!("bytes={CUT}-")]);
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&d.docker(&["image", "inspect", &img]))).unwrap();
    assert_eq!(inspected[0]["RootFS"]["Layers"][0], layer_digest);
    assert!(names(&ingest).is_empty(), "{:?}", names(&ingest));
    assert!(d
        .dir
        .join("data/content/blobs")
        .join(layer_digest.replace(':', "/"))
        .is_file());
    d.assert_check_clean();
}

#[test]
fn a_push_to_a_repository_the_user_may_not_push_to_is_denied() {
    let h = Hostile::start();
    let d = Daemon::with_busybox();
    let img = format!("{}/ro:1", h.host());
    ok(&d.docker(&["tag", "busybox", &img]));
    let e = failed(&d.docker(&["push", &img]));
    assert!(e.contains(&format!("denied: {DENIED}")), "{e}");
    ok(&d.docker(&["version"]));
}
