//! Images end to end: load, save, import, list, inspect, history, tag, remove and prune
//! through the stock docker CLI against a private berthd.
//!
//! The image is built here from the busybox fixture (scripts/fixtures.sh): a
//! docker-archive with one layer, a config and manifest.json, as `docker save` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    ok(&out)
}

fn sha256_file(p: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(p));
    out.split_whitespace().next().unwrap().to_string()
}

/// Tars the fixture rootfs as a layer; returns its path and diff id hex.
fn busybox_layer(s: &Scratch) -> (PathBuf, String) {
    assert!(
        Path::new(BUSYBOX).join("bin/busybox").exists(),
        "busybox fixture missing: run scripts/fixtures.sh"
    );
    let layer = s.path("layer.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(BUSYBOX)
        .arg("--exclude=./.complete")
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    let hex = sha256_file(&layer);
    (layer, hex)
}

/// A docker-archive of busybox tagged `tags`, with `label` on its config; returns the
/// archive's path and the image id it must load as.
fn busybox_archive(s: &Scratch, tags: &[&str], label: &str) -> (PathBuf, String) {
    let (layer, diff) = busybox_layer(s);
    let dir = s.path(&unique("archive"));
    std::fs::create_dir_all(dir.join("layer")).unwrap();
    std::fs::rename(&layer, dir.join("layer/layer.tar")).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Labels": {"test.label": label}
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:busybox in / "},
            {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true}
        ]
    });
    let raw = serde_json::to_vec(&config).unwrap();
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, &raw).unwrap();
    let id = sha256_file(&cfg_path);
    std::fs::rename(&cfg_path, dir.join(format!("{id}.json"))).unwrap();
    let manifest = serde_json::json!([{
        "Config": format!("{id}.json"),
        "RepoTags": tags,
        "Layers": ["layer/layer.tar"]
    }]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = s.path(&unique("busybox").to_string()).with_extension("tar");
    tar_dir(&dir, &archive);
    (archive, format!("sha256:{id}"))
}

fn load(d: &Daemon, archive: &Path) -> String {
    ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]))
}

/// Output lines, trimmed, without empty ones.
fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `docker load`, `docker images`, `docker image inspect`, `docker history`.
#[test]
fn load_list_inspect_history() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let (archive, id) = busybox_archive(&s, &["busybox:latest"], "one");
    let out = load(&d, &archive);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");

    let out = ok(&d.docker(&["images"]));
    let rows = lines(&out);
    assert!(
        rows[0].starts_with("REPOSITORY") && rows[0].contains("IMAGE ID"),
        "{out}"
    );
    let row: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(row[0], "busybox", "{out}");
    assert_eq!(row[1], "latest", "{out}");
    assert_eq!(row[2], &id["sha256:".len()..][..12], "{out}");
    assert_eq!(rows.len(), 2, "{out}");

    let layer_hex = {
        let (_, hex) = busybox_layer(&s);
        hex
    };
    let out = ok(&d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.RootFS.Layers}} {{.Os}} {{.Config.Cmd}} {{index .Config.Labels \"test.label\"}}",
        "busybox",
    ]));
    assert_eq!(
        out.trim(),
        format!("{id} [sha256:{layer_hex}] linux [sh] one")
    );
    // By short id and by `sha256:` prefix too.
    let short = &id["sha256:".len()..][..6];
    let by_short = ok(&d.docker(&["image", "inspect", "--format", "{{.Id}}", short]));
    assert_eq!(by_short.trim(), id);
    let by_prefix = ok(&d.docker(&["image", "inspect", "--format", "{{.Id}}", &id[..20]]));
    assert_eq!(by_prefix.trim(), id);

    let out = ok(&d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "busybox",
    ]));
    let rows = lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with(&format!("{id}|")), "{out}");
    assert!(rows[0].contains("CMD"), "{out}");
    assert!(rows[0].ends_with("|0B"), "{out}");
    assert!(rows[1].starts_with("<missing>|"), "{out}");
    assert!(rows[1].contains("ADD file:busybox"), "{out}");
    assert!(rows[1].ends_with("MB"), "{out}");

    // info counts the image.
    let n = ok(&d.docker(&["info", "--format", "{{.Images}}"]));
    assert_eq!(n.trim(), "1");
}

/// `docker tag` to a name with a registry and path; reference and dangling filters;
/// untagging one of several tags.
#[test]
fn tag_and_filters() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let (archive, id) = busybox_archive(&s, &["busybox:latest"], "two");
    load(&d, &archive);
    ok(&d.docker(&["tag", "busybox:latest", "localhost:5000/x/y:1"]));
    let fmt = "{{.Repository}}:{{.Tag}}";
    let out = ok(&d.docker(&["images", "--format", fmt]));
    let mut got = lines(&out);
    got.sort();
    assert_eq!(got, ["busybox:latest", "localhost:5000/x/y:1"]);

    let out = ok(&d.docker(&[
        "images",
        "--filter",
        "reference=localhost:5000/*/*",
        "--format",
        fmt,
    ]));
    assert_eq!(lines(&out), ["localhost:5000/x/y:1"]);
    let out = ok(&d.docker(&["images", "--filter", "reference=busy*", "--format", fmt]));
    assert_eq!(lines(&out), ["busybox:latest"]);
    // `-q` prints one row per tag, as Docker does.
    let out = ok(&d.docker(&["images", "--filter", "label=test.label=two", "-q"]));
    let short = &id["sha256:".len()..][..12];
    assert_eq!(lines(&out), [short, short]);
    let out = ok(&d.docker(&["images", "--filter", "label=test.label=nope", "-q"]));
    assert!(lines(&out).is_empty(), "{out}");

    // Inspect by the new name, with slashes in the path.
    let out = ok(&d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{len .RepoTags}}",
        "localhost:5000/x/y:1",
    ]));
    assert_eq!(out.trim(), format!("{id} 2"));

    // Given by name, one of two tags is only untagged.
    let out = ok(&d.docker(&["rmi", "localhost:5000/x/y:1"]));
    assert_eq!(lines(&out), ["Untagged: localhost:5000/x/y:1"]);
    let out = ok(&d.docker(&["images", "--format", fmt]));
    assert_eq!(lines(&out), ["busybox:latest"]);

    // Moving the only tag to another image leaves the first one dangling.
    let imported = import_tar(&d, &s, &["--message", "other"], "busybox:latest");
    let out = ok(&d.docker(&["images", "--filter", "dangling=true", "-q", "--no-trunc"]));
    assert_eq!(lines(&out), std::slice::from_ref(&id));
    let out = ok(&d.docker(&["images", "--filter", "dangling=false", "-q", "--no-trunc"]));
    assert_eq!(lines(&out), [imported]);
}

/// Imports a tar of the fixture; returns the new image id.
fn import_tar(d: &Daemon, s: &Scratch, flags: &[&str], name: &str) -> String {
    let (layer, _) = busybox_layer(s);
    let mut args = vec!["import"];
    args.extend_from_slice(flags);
    args.push(layer.to_str().unwrap());
    if !name.is_empty() {
        args.push(name);
    }
    let out = ok(&d.docker(&args));
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    id
}

/// `docker save`, `docker rmi`, `docker load` again: the same image id comes back.
#[test]
fn save_remove_load_roundtrip() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let (archive, id) = busybox_archive(&s, &["busybox:latest"], "three");
    load(&d, &archive);
    let saved = s.path("saved.tar");
    ok(&d.docker(&["save", "-o", saved.to_str().unwrap(), "busybox:latest"]));
    let listing = run(Command::new("tar").arg("-tf").arg(&saved));
    assert!(listing.contains("manifest.json"), "{listing}");
    assert!(listing.contains("index.json"), "{listing}");

    let out = ok(&d.docker(&["rmi", "busybox:latest"]));
    let rows = lines(&out);
    assert_eq!(rows[0], "Untagged: busybox:latest", "{out}");
    assert_eq!(rows[1], format!("Deleted: {id}"), "{out}");
    assert!(lines(&ok(&d.docker(&["images", "-q"]))).is_empty());

    let out = load(&d, &saved);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let got = ok(&d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]));
    assert_eq!(got.trim(), id);

    // Saved by id: loads back untagged, reported by id.
    let by_id = s.path("by-id.tar");
    ok(&d.docker(&["save", "-o", by_id.to_str().unwrap(), &id]));
    ok(&d.docker(&["rmi", "busybox"]));
    let out = load(&d, &by_id);
    assert!(out.contains(&format!("Loaded image ID: {id}")), "{out}");

    // The raw endpoint streams a tar too (curl's output is the body).
    let (code, body) = d.curl("GET", "/images/nosuch/get");
    assert_eq!(code, 404, "{body}");
}

/// `docker import` with `--change` and `--message`.
#[test]
fn import_with_changes_and_message() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let name = format!("{}:v1", unique("imported"));
    let id = import_tar(
        &d,
        &s,
        &[
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "ENV A=b",
            "--message",
            "hello there",
        ],
        &name,
    );
    let out = ok(&d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}|{{.Config.Cmd}}|{{.Config.Env}}|{{.Comment}}",
        &name,
    ]));
    assert_eq!(out.trim(), format!("{id}|[sh]|[A=b]|hello there"));
    let out = ok(&d.docker(&["history", "--format", "{{.Comment}}", &name]));
    assert_eq!(lines(&out), ["hello there"]);

    // A change Docker does not allow is refused, and nothing is stored.
    let (layer, _) = busybox_layer(&s);
    let out = d.docker(&["import", "--change", "RUN true", layer.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("run is not a valid change command"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lines(&ok(&d.docker(&["images", "-q"]))).len(), 1);
}

/// `docker rmi` conflicts and errors, in Docker's words.
#[test]
fn remove_conflicts_and_errors() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let (archive, id) = busybox_archive(&s, &["busybox:latest", "busybox:other"], "four");
    load(&d, &archive);
    let short = &id["sha256:".len()..][..12];

    let out = d.docker(&["rmi", short]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    // Forced: every tag goes, then the image.
    let out = ok(&d.docker(&["rmi", "-f", short]));
    let rows = lines(&out);
    assert!(
        rows.contains(&"Untagged: busybox:latest".to_string()),
        "{out}"
    );
    assert!(
        rows.contains(&"Untagged: busybox:other".to_string()),
        "{out}"
    );
    assert!(rows.contains(&format!("Deleted: {id}")), "{out}");

    let out = d.docker(&["rmi", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: No such image: nosuch:latest"
    );
    let (code, body) = d.curl("DELETE", "/images/nosuch");
    assert_eq!(code, 404);
    assert_eq!(body, r#"{"message":"No such image: nosuch:latest"}"#);
    let (code, body) = d.curl("GET", "/images/UPPER/json");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid reference format"), "{body}");
    let (code, _) = d.curl("POST", "/images/nosuch/tag?repo=a&tag=b");
    assert_eq!(code, 404);
}

/// A bad archive is refused with a clear message, and nothing is stored.
#[test]
fn load_bad_archives() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let junk = s.path("junk.tar");
    std::fs::write(&junk, b"this is not a tar file at all").unwrap();
    let out = d.docker(&["load", "-i", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid archive"), "{}", stderr(&out));

    // A tar without manifest.json.
    let empty_dir = s.path("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    std::fs::write(empty_dir.join("hello"), b"hi").unwrap();
    let notimage = s.path("notimage.tar");
    tar_dir(&empty_dir, &notimage);
    let out = d.docker(&["load", "-i", notimage.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no manifest.json"),
        "{}",
        stderr(&out)
    );

    // A layer whose content does not match the config's diff id.
    let (archive, _) = busybox_archive(&s, &["bad:1"], "five");
    let x = s.path("x");
    std::fs::create_dir_all(&x).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&archive));
    std::fs::write(x.join("layer/layer.tar"), b"").unwrap();
    tar_dir(&x, &archive);
    let out = d.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", stdout(&out));

    assert!(lines(&ok(&d.docker(&["images", "-a", "-q"]))).is_empty());
    let blobs = d.dir.join("data/content/blobs/sha256");
    let n = std::fs::read_dir(&blobs).map(|r| r.count()).unwrap_or(0);
    assert_eq!(n, 0, "blobs left behind in {}", blobs.display());
}

/// `docker image prune` removes dangling images; `-a` every unused one.
#[test]
fn prune_dangling_and_all() {
    let d = Daemon::start();
    let s = Scratch::new("images-test");
    let (archive, old) = busybox_archive(&s, &["pruneme:latest"], "six");
    load(&d, &archive);
    // Moving the tag leaves `old` dangling.
    let new = import_tar(&d, &s, &[], "pruneme:latest");

    let out = ok(&d.docker(&["image", "prune", "-f"]));
    assert!(out.contains(&format!("deleted: {old}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let left = lines(&ok(&d.docker(&["images", "-q", "--no-trunc"])));
    assert_eq!(left, std::slice::from_ref(&new));

    let out = ok(&d.docker(&["image", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: pruneme:latest"), "{out}");
    assert!(out.contains(&format!("deleted: {new}")), "{out}");
    assert!(lines(&ok(&d.docker(&["images", "-a", "-q"]))).is_empty());
}
