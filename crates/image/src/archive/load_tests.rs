//! Load, save and import against archives built here with the tar crate.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use serde_json::json;

use super::*;
use crate::config::ImageConfig;
use crate::import::ImportOptions;
use crate::store::{ImageStore, StoreError};

/// An entry of a hand-made layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config_for(layers: &[Vec<u8>], cmd: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::sha256_of(l).to_string())
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": [cmd], "Hostname": ""},
        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop)"]},
        "docker_version": "20.10.0",
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

struct Img {
    layers: Vec<Vec<u8>>,
    tags: Vec<&'static str>,
    cmd: &'static str,
}

/// A legacy (pre-25) docker-archive: `<hex>.json`, `<id>/layer.tar`, `repositories`.
/// A layer shared with an earlier image is a symlink to the first copy, as Docker
/// writes it. Layer tars are gzip-compressed when `gzip_layers`.
fn legacy_archive(images: &[Img], gzip_layers: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut written: Vec<(Digest, String)> = Vec::new();
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    for img in images {
        let config = config_for(&img.layers, img.cmd);
        let id = Digest::sha256_of(&config);
        let mut layer_paths = Vec::new();
        for (i, l) in img.layers.iter().enumerate() {
            let d = Digest::sha256_of(l);
            // Legacy v1 layer ids are not digests of anything; any hex will do.
            let v1 = Digest::sha256_of(format!("{id}{i}").as_bytes());
            let path = format!("{}/layer.tar", v1.hex());
            if let Some((_, first)) = written.iter().find(|(w, _)| *w == d) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &path, format!("../{first}")).unwrap();
            } else {
                let data = if gzip_layers { gzip(l) } else { l.clone() };
                add(&mut b, &path, &data);
                add(&mut b, &format!("{}/VERSION", v1.hex()), b"1.0");
                written.push((d, path.clone()));
            }
            layer_paths.push(path);
        }
        let cname = format!("{}.json", id.hex());
        add(&mut b, &cname, &config);
        manifest.push(json!({"Config": cname, "RepoTags": img.tags, "Layers": layer_paths}));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut b, "repositories", br#"{"busybox":{"latest":"abc"}}"#);
    b.into_inner().unwrap()
}

fn two_layer_image() -> Img {
    let base = layer(&[
        E::Dir("etc/"),
        E::File("etc/os-release", b"ID=test\n"),
        E::File("etc/remove-me", b"gone\n"),
        E::Dir("bin/"),
        E::File("bin/tool", b"#!/bin/sh\necho tool\n"),
    ]);
    let top = layer(&[
        E::Dir("etc/"),
        E::File("etc/.wh.remove-me", b""),
        E::File("etc/added", b"new\n"),
        E::Symlink("bin/link", "tool"),
    ]);
    Img {
        layers: vec![base, top],
        tags: vec!["busybox:latest", "example.com/team/app:v1"],
        cmd: "sh",
    }
}

/// Asserts the store holds nothing: no blobs, snapshots, temp or ingest files.
fn assert_empty(root: &Path, store: &ImageStore) {
    assert_eq!(store.content().list().unwrap(), Vec::<Digest>::new());
    for d in ["snapshots", "tmp", "content/ingest"] {
        let left: Vec<_> = fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            // The snapshot store's lock files are not content.
            .filter(|p| !p.ends_with(".locks"))
            .collect();
        assert!(left.is_empty(), "{d} not empty: {left:?}");
    }
}

fn snapshot_dir(root: &Path, chain: &Digest) -> std::path::PathBuf {
    root.join("snapshots").join(chain.hex()).join("fs")
}

fn tar_dir(dir: &Path, out: &mut Vec<u8>) {
    crate::layer::tar_dir(dir, out).unwrap();
}

/// A fresh store in a temporary directory.
fn new_store() -> (tempfile::TempDir, ImageStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path()).unwrap();
    (tmp, store)
}

/// `two_layer_image` loaded from a legacy archive.
fn load_two_layer_image(store: &ImageStore) -> Vec<LoadedImage> {
    store
        .load(&legacy_archive(&[two_layer_image()], false)[..])
        .unwrap()
}

/// `save` of one image into a new archive.
fn save_one(store: &ImageStore, id: &Digest, tags: Vec<ImageRef>) -> Vec<u8> {
    let mut out = Vec::new();
    store.save(&[(id.clone(), tags)], &mut out).unwrap();
    out
}

#[test]
fn load_legacy_two_layers_two_tags() {
    let (tmp, store) = new_store();
    let img = two_layer_image();
    let config = config_for(&img.layers, "sh");
    let loaded = store.load(&legacy_archive(&[img], false)[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!(l.id, Digest::sha256_of(&config));
    let tags: Vec<String> = l.tags.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        tags,
        [
            "docker.io/library/busybox:latest",
            "example.com/team/app:v1"
        ]
    );
    assert_eq!(l.layers.len(), 2);
    assert_eq!(
        l.layers[0].0, l.layers[0].1,
        "first chain id is the diff id"
    );
    assert_eq!(
        l.config.chain_ids(),
        l.layers.iter().map(|x| x.1.clone()).collect::<Vec<_>>()
    );
    // Config bytes are kept exactly, Docker-only fields included.
    assert_eq!(store.content().read(&l.id).unwrap(), config);
    assert_eq!(
        store.config(&l.id).unwrap().string_field("docker_version"),
        Some("20.10.0")
    );
    // Layers unpacked, and their tars kept under their diff ids.
    let base = snapshot_dir(tmp.path(), &l.layers[0].1);
    assert_eq!(fs::read(base.join("etc/os-release")).unwrap(), b"ID=test\n");
    let top = snapshot_dir(tmp.path(), &l.layers[1].1);
    assert!(top.join("etc/added").is_file());
    // The whiteout is an overlay whiteout (0/0 character device) in the snapshot.
    use std::os::unix::fs::FileTypeExt;
    let wh = fs::symlink_metadata(top.join("etc/remove-me")).unwrap();
    assert!(wh.file_type().is_char_device());
    for (diff, _) in &l.layers {
        store.content().verify(diff).unwrap();
    }
    assert!(store.has_image(&l.id));
    // Loading again is idempotent.
    let again = load_two_layer_image(&store);
    assert_eq!(again[0].id, l.id);
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn load_gzip_archive_with_gzip_layers_and_shared_layers() {
    let (_tmp, store) = new_store();
    let a = two_layer_image();
    // A second image on the same base layer: written as a symlink in the archive.
    let b = Img {
        layers: vec![a.layers[0].clone(), layer(&[E::File("extra", b"x")])],
        tags: vec!["other:1"],
        cmd: "other",
    };
    let archive = gzip(&legacy_archive(&[a, b], true));
    let loaded = store.load(&archive[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].layers[0], loaded[1].layers[0]);
    assert_eq!(loaded[1].tags[0].familiar(), "other:1");
    // Diff ids are of the uncompressed tars, which is what the store keeps.
    for l in &loaded {
        for (diff, _) in &l.layers {
            store.content().verify(diff).unwrap();
        }
    }
}

#[test]
fn save_load_round_trip_is_stable() {
    let (_tmp, store) = new_store();
    let loaded = load_two_layer_image(&store);
    let l = &loaded[0];
    let out = save_one(&store, &l.id, l.tags.clone());

    // The archive has Docker 25+'s shape.
    let mut names = Vec::new();
    let mut files = std::collections::HashMap::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        names.push(name.clone());
        files.insert(name, data);
    }
    for want in [
        "blobs/",
        "blobs/sha256/",
        "index.json",
        "manifest.json",
        "oci-layout",
        "repositories",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        manifest[0]["Config"],
        format!("blobs/sha256/{}", l.id.hex())
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        json!(["busybox:latest", "example.com/team/app:v1"])
    );
    assert_eq!(
        manifest[0]["Layers"][1],
        format!("blobs/sha256/{}", l.layers[1].0.hex())
    );
    let repos: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repos["busybox"]["latest"], l.layers[1].0.hex());
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    // Every blob is named by its digest.
    for (name, data) in &files {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::sha256_of(data).hex(), hex);
        }
    }

    // Load the saved archive into a fresh store: same ids, diff ids and tags.
    let (_tmp2, store2) = new_store();
    let back = store2.load(&out[..]).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, l.id);
    assert_eq!(back[0].layers, l.layers);
    assert_eq!(back[0].tags, l.tags);
    // And saving again gives the same bytes.
    assert_eq!(out, save_one(&store2, &l.id, l.tags.clone()));

    // The same archive read as a pure OCI layout (what e.g. skopeo reads).
    let (_tmp3, store3) = new_store();
    let oci_loaded = oci::load(&store3, &out[..]).unwrap();
    assert_eq!(oci_loaded[0].id, l.id);
    assert_eq!(oci_loaded[0].tags, l.tags);
}

#[test]
fn save_oci_and_untagged() {
    let (_tmp, store) = new_store();
    let loaded = load_two_layer_image(&store);
    let id = loaded[0].id.clone();
    let mut out = Vec::new();
    store.save_oci(&[(id.clone(), vec![])], &mut out).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(!names.contains(&"manifest.json".to_string()));
    let (_tmp2, store2) = new_store();
    let back = store2.load(&out[..]).unwrap();
    assert_eq!(back[0].id, id);
    assert!(back[0].tags.is_empty());
    // docker save of an untagged image: RepoTags null.
    let out = save_one(&store, &id, vec![]);
    let back = store2.load(&out[..]).unwrap();
    assert!(back[0].tags.is_empty());
    // Unknown image.
    let missing = Digest::sha256_of(b"nope");
    let err = store.save(&[(missing, vec![])], Vec::new()).unwrap_err();
    assert!(err.to_string().starts_with("No such image"), "{err}");
}

/// An OCI layout with gzip layers and a full name in `ref.name`, as skopeo writes.
#[test]
fn load_oci_layout_with_gzip_layers() {
    let layers = two_layer_image().layers;
    let config = config_for(&layers, "sh");
    let cd = Digest::sha256_of(&config);
    let gz: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": gz.iter().map(|g| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": Digest::sha256_of(g), "size": g.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "quay.io/x/y:2"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "bare-tag-only"}},
        ],
    }))
    .unwrap();
    let build = |corrupt_layer: bool| {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: String, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        };
        add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
        add("index.json".into(), &index);
        add(format!("blobs/sha256/{}", md.hex()), &manifest);
        add(format!("blobs/sha256/{}", cd.hex()), &config);
        for (i, g) in gz.iter().enumerate() {
            let mut g = g.clone();
            if corrupt_layer && i == 1 {
                // Another gzip mtime: the tar inside is fine, the blob digest is not.
                g[4] ^= 0xff;
            }
            add(
                format!("blobs/sha256/{}", Digest::sha256_of(&gz[i]).hex()),
                &g,
            );
        }
        b.into_inner().unwrap()
    };
    let (tmp, store) = new_store();
    let err = store.load(&build(true)[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
    assert_empty(tmp.path(), &store);
    let loaded = store.load(&build(false)[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, cd);
    assert_eq!(loaded[0].tags.len(), 1);
    assert_eq!(loaded[0].tags[0].to_string(), "quay.io/x/y:2");
    // Stored layer tars are the uncompressed ones, named by diff id.
    for (diff, _) in &loaded[0].layers {
        store.content().verify(diff).unwrap();
    }
}

/// `tamper` with manifest.json rewritten by `edit`.
fn tamper_manifest(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    tamper(
        |n, d| {
            if n == "manifest.json" {
                let mut m: serde_json::Value = serde_json::from_slice(&d).unwrap();
                edit(&mut m);
                Some(serde_json::to_vec(&m).unwrap())
            } else {
                Some(d)
            }
        },
        &[],
    )
}

/// `tamper` with the top layer's tar replaced by another (its digest no longer matches).
fn tamper_top_layer() -> Vec<u8> {
    let top = two_layer_image().layers[1].clone();
    tamper(
        |_, d| {
            Some(if d == top {
                layer(&[E::File("evil", b"x")])
            } else {
                d
            })
        },
        &[],
    )
}

/// Builds a docker-archive with one member replaced or added.
fn tamper(f: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let good = legacy_archive(&[two_layer_image()], false);
    let mut b = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(&good[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if h.entry_type() == tar::EntryType::Regular {
            let Some(data) = f(&name, data) else { continue };
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        } else {
            b.append(&h, &data[..]).unwrap();
        }
    }
    for (name, data) in extra {
        // Written raw: the tar crate refuses to build `..` paths itself.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn bad_archives_fail_cleanly() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a tar",
            b"this is not a tar archive at all\n".repeat(40),
            "not a tar file",
        ),
        ("empty", Vec::new(), "no manifest.json or index.json"),
        (
            "no manifest",
            tamper(|n, d| (n != "manifest.json").then_some(d), &[]),
            "no manifest.json",
        ),
        (
            "manifest names missing file",
            tamper_manifest(|m| m[0]["Layers"][1] = json!("nothere/layer.tar")),
            "\"nothere/layer.tar\" is referenced by the manifest but not in the archive",
        ),
        (
            "layer digest mismatch",
            tamper_top_layer(),
            "digest mismatch: the image config says",
        ),
        (
            "dotdot member",
            tamper(|_, d| Some(d), &[("../escape", b"x")]),
            "unsafe path \"../escape\"",
        ),
        (
            "manifest path with dotdot",
            tamper_manifest(|m| m[0]["Config"] = json!("../../etc/passwd")),
            "unsafe path",
        ),
        (
            "bad manifest json",
            tamper(
                |n, d| {
                    Some(if n == "manifest.json" {
                        b"{".to_vec()
                    } else {
                        d
                    })
                },
                &[],
            ),
            "manifest.json:",
        ),
    ];
    for (what, archive, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path()).unwrap();
        let err = store.load(&archive[..]).expect_err(what);
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert_empty(tmp.path(), &store);
    }
    // The mismatch error names the layer.
    let (_tmp, store) = new_store();
    let bad = tamper_top_layer();
    let err = store.load(&bad[..]).unwrap_err().to_string();
    assert!(err.contains("/layer.tar: digest mismatch"), "{err}");
}

#[test]
fn truncated_archives_fail_cleanly() {
    let good = legacy_archive(&[two_layer_image()], false);
    for cut in [100, 512, 1000, 1536, good.len() / 2, good.len() - 1100] {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path()).unwrap();
        let err = store
            .load(&good[..cut])
            .expect_err("truncated archive loaded");
        assert!(!err.to_string().is_empty());
        assert_empty(tmp.path(), &store);
    }
    let gz = gzip(&good);
    let (tmp, store) = new_store();
    let err = store.load(&gz[..gz.len() / 2]).unwrap_err();
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("end of"),
        "{err}"
    );
    assert_empty(tmp.path(), &store);
}

#[test]
fn failure_in_second_image_undoes_the_first() {
    let a = two_layer_image();
    let b = Img {
        layers: vec![layer(&[E::File("b", b"b")])],
        tags: vec!["b:1"],
        cmd: "b",
    };
    let b_layer = b.layers[0].clone();
    let good = legacy_archive(&[a, b], false);
    let bad = {
        let mut out = tar::Builder::new(Vec::new());
        for e in tar::Archive::new(&good[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if data == b_layer {
                data = layer(&[E::File("c", b"c")]);
                h.set_size(data.len() as u64);
                h.set_cksum();
            }
            out.append(&h, &data[..]).unwrap();
        }
        out.into_inner().unwrap()
    };
    let (tmp, store) = new_store();
    assert!(store.load(&bad[..]).is_err());
    assert_empty(tmp.path(), &store);
}

#[test]
fn busybox_fixture_round_trip() {
    let rootfs = Path::new("/var/cache/berth-fixtures/busybox");
    if !rootfs.join("bin").exists() {
        eprintln!("skipping: {} not present", rootfs.display());
        return;
    }
    let mut layer_tar = Vec::new();
    tar_dir(rootfs, &mut layer_tar);
    let img = Img {
        layers: vec![layer_tar],
        tags: vec!["busybox:latest"],
        cmd: "sh",
    };
    let (tmp, store) = new_store();
    let loaded = store
        .load(&gzip(&legacy_archive(&[img], false))[..])
        .unwrap();
    let l = &loaded[0];
    let snap = snapshot_dir(tmp.path(), &l.layers[0].1);
    assert!(fs::symlink_metadata(snap.join("bin/busybox")).is_ok());
    let out = save_one(&store, &l.id, l.tags.clone());
    let (_tmp2, store2) = new_store();
    let back = store2.load(&out[..]).unwrap();
    assert_eq!(back[0].id, l.id);
    assert_eq!(back[0].layers, l.layers);
    assert_eq!(back[0].tags[0].familiar(), "busybox:latest");
}

#[test]
fn save_regenerates_a_missing_layer_tar_when_reproducible() {
    // A layer written by tar_dir is reproduced exactly from its snapshot.
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("d")).unwrap();
    fs::write(src.path().join("d/f"), b"data").unwrap();
    let mut l = Vec::new();
    tar_dir(src.path(), &mut l);
    let img = Img {
        layers: vec![l],
        tags: vec!["r:1"],
        cmd: "x",
    };
    let (_tmp, store) = new_store();
    let loaded = store.load(&legacy_archive(&[img], false)[..]).unwrap();
    let (diff, _) = loaded[0].layers[0].clone();
    store.content().delete(&diff).unwrap();
    save_one(&store, &loaded[0].id, vec![]);
    assert!(store.content().exists(&diff));
    // A hand-made layer is not reproduced byte for byte: a clear error instead.
    let loaded = load_two_layer_image(&store);
    let (diff, _) = loaded[0].layers[0].clone();
    store.content().delete(&diff).unwrap();
    let err = store
        .save(&[(loaded[0].id.clone(), vec![])], Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("cannot be saved"), "{err}");
}

#[test]
fn remove_image_keeps_shared_parts() {
    let (tmp, store) = new_store();
    let a = two_layer_image();
    let b = Img {
        layers: vec![a.layers[0].clone(), layer(&[E::File("extra", b"x")])],
        tags: vec!["other:1"],
        cmd: "other",
    };
    let loaded = store.load(&legacy_archive(&[a, b], false)[..]).unwrap();
    let (a, b) = (&loaded[0], &loaded[1]);
    let keep = store.image_refs(&b.id).unwrap();
    let removed: HashSet<Digest> = store
        .remove_image(&a.id, &keep)
        .unwrap()
        .into_iter()
        .collect();
    assert!(removed.contains(&a.id));
    assert!(removed.contains(&a.layers[1].1));
    assert!(!removed.contains(&a.layers[0].1), "shared base layer kept");
    assert!(store.has_image(&b.id));
    assert!(!store.has_image(&a.id));
    store.remove_image(&b.id, &HashSet::new()).unwrap();
    assert_empty(tmp.path(), &store);
    assert!(matches!(
        store.config(&a.id),
        Err(StoreError::ImageNotFound(_))
    ));
}

#[test]
fn import_rootfs_with_changes() {
    let (tmp, store) = new_store();
    let rootfs = layer(&[
        E::Dir("bin/"),
        E::File("bin/app", b"app"),
        E::Symlink("bin/alias", "app"),
    ]);
    let opts = ImportOptions {
        changes: vec![
            "CMD [\"/bin/app\"]".into(),
            "ENV A=1".into(),
            "EXPOSE 8080".into(),
        ],
        message: None,
        source: None,
        author: None,
    };
    let img = store.import(&gzip(&rootfs)[..], &opts).unwrap();
    assert_eq!(
        img.layers,
        vec![(Digest::sha256_of(&rootfs), Digest::sha256_of(&rootfs))]
    );
    let c: &ImageConfig = &img.config;
    assert_eq!(
        c.run_config().cmd.as_deref(),
        Some(&["/bin/app".to_string()][..])
    );
    assert_eq!(
        c.run_config().env.as_deref(),
        Some(&["A=1".to_string()][..])
    );
    assert_eq!(c.string_field("comment"), Some("Imported from -"));
    assert_eq!(c.history()[0].comment().as_deref(), Some("Imported from -"));
    assert!(store.has_image(&img.id));
    assert!(snapshot_dir(tmp.path(), &img.layers[0].1)
        .join("bin/app")
        .is_file());
    // The imported image saves and loads like any other.
    let out = save_one(&store, &img.id, vec![]);
    let tmp2 = tempfile::tempdir().unwrap();
    let back = ImageStore::open(tmp2.path())
        .unwrap()
        .load(&out[..])
        .unwrap();
    assert_eq!(back[0].id, img.id);
    // With a message.
    let opts = ImportOptions {
        message: Some("hello".into()),
        ..Default::default()
    };
    let img2 = store.import(&rootfs[..], &opts).unwrap();
    assert_eq!(img2.config.string_field("comment"), Some("hello"));
}

#[test]
fn import_failures_leave_nothing() {
    let (tmp, store) = new_store();
    let rootfs = layer(&[E::File("f", b"x")]);
    let opts = ImportOptions {
        changes: vec!["RUN rm -rf /".into()],
        ..Default::default()
    };
    let err = store.import(&rootfs[..], &opts).unwrap_err();
    assert_eq!(err.to_string(), "run is not a valid change command");
    let err = store
        .import(&b"not a tar at all"[..], &ImportOptions::default())
        .unwrap_err();
    assert!(!err.to_string().is_empty());
    let err = store
        .import(&b""[..], &ImportOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("empty input"), "{err}");
    assert_empty(tmp.path(), &store);
}
