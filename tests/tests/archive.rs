//! A container's filesystem end to end through the stock docker CLI: `docker cp` both
//! ways (files, directories, tar streams, running, stopped and never started
//! containers), escapes through symlinks and crafted archives, `docker diff`,
//! `docker export` and `docker commit`.
//!
//! The image is the busybox fixture brought in with `docker import`; every container
//! goes when the test's Daemon is dropped, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::*;

/// The docker CLI's raw stdout (a tar).
fn docker_bytes(d: &Daemon, args: &[&str]) -> Vec<u8> {
    let o = d.docker(args);
    assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
    o.stdout
}

/// `tar` with `args` reading the archive from stdin; its stdout.
fn tar_of(archive: &[u8], args: &[&str]) -> String {
    let mut cmd = Command::new("tar");
    cmd.args(args);
    ok(&with_stdin(cmd, archive))
}

/// One ustar entry (header and padded data) with a name written as is, so names a
/// well-behaved tar writer refuses (`../x`) can be made.
fn tar_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn end_of_tar(mut t: Vec<u8>) -> Vec<u8> {
    t.extend_from_slice(&[0u8; 1024]);
    t
}

/// `PUT /containers/{c}/archive?path=..` with `body`: (status, body).
fn put_archive(d: &Daemon, c: &str, path: &str, body: &[u8]) -> (u16, String) {
    let file = d.dir.join(unique("put.tar"));
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-X",
            "PUT",
        ])
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg("-T")
        .arg(&file)
        .arg(format!("http://berth/containers/{c}/archive?path={path}"))
        .output()
        .unwrap();
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The decoded `X-Docker-Container-Path-Stat` of `HEAD .../archive?path=..`.
fn path_stat(d: &Daemon, c: &str, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-I", "--max-time", "10", "--unix-socket"])
        .arg(&d.socket)
        .arg(format!("http://berth/containers/{c}/archive?path={path}"))
        .output()
        .unwrap();
    let head = stdout(&out);
    let b64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no stat header: {head}"));
    let mut cmd = Command::new("base64");
    cmd.arg("-d");
    let json = ok(&with_stdin(cmd, b64.as_bytes()));
    serde_json::from_str(&json).unwrap()
}

/// Every path below `dir` whose file name is `name`.
fn find_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name() == name {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            find_named(&p, name, out);
        }
    }
}

/// Mounts below the daemon's private directory that are not container rootfs mounts.
fn stray_mounts(d: &Daemon) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let dir = d.dir.display().to_string();
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&dir) && !m.ends_with("/rootfs"))
        .map(str::to_string)
        .collect()
}

/// `docker cp` into and out of a running container: a file, a directory, a tar stream
/// from stdin, a tar stream to stdout; the stat header as Docker encodes it.
#[test]
fn cp_both_ways_running() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]));
    let work = d.dir.join("work");
    std::fs::create_dir_all(work.join("tree/sub")).unwrap();
    std::fs::write(work.join("hello.txt"), "hello from the host\n").unwrap();
    std::fs::write(work.join("tree/sub/deep"), "deep\n").unwrap();

    // A file to a new name, and into an existing directory.
    let f = work.join("hello.txt");
    ok(&d.docker(&["cp", f.to_str().unwrap(), "box:/tmp/renamed"]));
    ok(&d.docker(&["cp", f.to_str().unwrap(), "box:/tmp/"]));
    let t = docker_bytes(&d, &["cp", "box:/tmp/renamed", "-"]);
    assert_eq!(tar_of(&t, &["-t"]), "renamed\n");
    assert_eq!(tar_of(&t, &["-xO"]), "hello from the host\n");
    let t = docker_bytes(&d, &["cp", "box:/tmp/hello.txt", "-"]);
    assert_eq!(tar_of(&t, &["-xO"]), "hello from the host\n");

    // A directory, and back out to a new host directory.
    ok(&d.docker(&["cp", work.join("tree").to_str().unwrap(), "box:/srv"]));
    let back = work.join("back");
    ok(&d.docker(&["cp", "box:/srv", back.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(back.join("sub/deep")).unwrap(),
        "deep\n"
    );
    let t = docker_bytes(&d, &["cp", "box:/srv", "-"]);
    let names = tar_of(&t, &["-t"]);
    assert_eq!(names, "srv/\nsrv/sub/\nsrv/sub/deep\n", "{names}");
    // `dir/.` is the directory's content.
    let t = docker_bytes(&d, &["cp", "box:/srv/.", "-"]);
    assert!(tar_of(&t, &["-t"]).contains("./sub/deep"));

    // A tar stream from stdin unpacks into a directory.
    let mut stream = tar_entry("streamed/", b'5', "", b"");
    stream.extend(tar_entry("streamed/a.txt", b'0', "", b"via stdin\n"));
    let o = d.docker_in(&["cp", "-", "box:/tmp"], &end_of_tar(stream));
    ok(&o);
    let t = docker_bytes(&d, &["cp", "box:/tmp/streamed/a.txt", "-"]);
    assert_eq!(tar_of(&t, &["-xO"]), "via stdin\n");

    // The stat header: Go's FileMode bits, the requested name.
    let s = path_stat(&d, "box", "/srv/");
    assert_eq!(s["name"], "srv");
    assert_ne!(s["mode"].as_u64().unwrap() & (1 << 31), 0, "{s}");
    let s = path_stat(&d, "box", "/tmp/renamed");
    assert_eq!(s["size"], 20);
    assert_eq!(s["mode"], 0o644);
    assert!(s["mtime"].as_str().unwrap().ends_with('Z'), "{s}");
}

/// A container that never ran has no rootfs mounted: cp mounts it for the copy only,
/// and what was copied is there when it runs. A stopped one takes copies too.
#[test]
fn cp_into_created_and_stopped_containers() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["create", "--name", "fresh", "busybox", "cat", "/in/file"]));
    let work = d.dir.join("work");
    std::fs::create_dir_all(work.join("in")).unwrap();
    std::fs::write(work.join("in/file"), "copied before start\n").unwrap();
    ok(&d.docker(&["cp", work.join("in").to_str().unwrap(), "fresh:/in"]));
    assert!(stray_mounts(&d).is_empty(), "{:?}", stray_mounts(&d));
    let mounts = d.dir.join("exec/mounts");
    let left: Vec<_> = std::fs::read_dir(&mounts)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let t = docker_bytes(&d, &["cp", "fresh:/in/file", "-"]);
    assert_eq!(tar_of(&t, &["-xO"]), "copied before start\n");
    assert!(stray_mounts(&d).is_empty());
    assert_eq!(
        ok(&d.docker(&["start", "-a", "fresh"])),
        "copied before start\n"
    );

    // Stopped now: copies in and out still work.
    ok(&d.docker(&["wait", "fresh"]));
    std::fs::write(work.join("later"), "after exit\n").unwrap();
    ok(&d.docker(&["cp", work.join("later").to_str().unwrap(), "fresh:/later"]));
    let t = docker_bytes(&d, &["cp", "fresh:/later", "-"]);
    assert_eq!(tar_of(&t, &["-xO"]), "after exit\n");
}

/// Docker's errors: a missing path, a missing container, an empty path, a file as the
/// extraction point, a read-only rootfs.
#[test]
fn cp_errors_as_docker() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["create", "--name", "cc", "busybox", "true"]));
    let out = d.dir.join("out");
    let o = d.docker(&["cp", "cc:/no/such/file", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Could not find the file /no/such/file in container cc"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["cp", "nosuch:/etc/passwd", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );

    let (code, body) = d.curl("GET", "/containers/cc/archive?path=/nope");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("Could not find the file /nope in container cc"));
    let (code, body) = d.curl("GET", "/containers/cc/archive");
    assert_eq!((code, body.contains("Path cannot be empty")), (400, true));
    let (code, _) = d.curl("HEAD", "/containers/cc/archive?path=/nope");
    assert_eq!(code, 404);

    let file = d.dir.join("f");
    std::fs::write(&file, "x").unwrap();
    let o = d.docker(&["cp", file.to_str().unwrap(), "cc:/etc/passwd/x"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("extraction point is not a directory"),
        "{}",
        stderr(&o)
    );

    ok(&d.docker(&["create", "--read-only", "--name", "ro", "busybox", "true"]));
    let o = d.docker(&["cp", file.to_str().unwrap(), "ro:/f"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container rootfs is marked read-only"),
        "{}",
        stderr(&o)
    );
}

/// Symlinks in the container resolve inside it, whatever they point at: copying to or
/// from `/esc/...` with `/esc -> /../../etc` reaches the container's /etc, never the
/// host's.
#[test]
fn cp_through_symlinks_stays_inside() {
    let d = Daemon::with_busybox();
    let marker = unique("escaped");
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "ln -s /../../etc /esc; ln -s ../../../../../../../../tmp /rel; sleep 300",
    ]));
    // Wait for the links.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.docker(&["cp", "trap:/rel", "-"]).status.code() != Some(0) {
        assert!(std::time::Instant::now() < until, "links never appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let s = path_stat(&d, "trap", "/esc");
    assert_eq!(s["linkTarget"], "/etc", "{s}");
    assert_ne!(s["mode"].as_u64().unwrap() & (1 << 27), 0, "a symlink: {s}");

    let file = d.dir.join(&marker);
    std::fs::write(&file, "inside\n").unwrap();
    ok(&d.docker(&["cp", file.to_str().unwrap(), "trap:/esc/"]));
    ok(&d.docker(&["cp", file.to_str().unwrap(), "trap:/rel/"]));
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "wrote the host's /etc"
    );
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "wrote the host's /tmp"
    );
    for p in ["/etc", "/tmp"] {
        let t = docker_bytes(&d, &["cp", &format!("trap:{p}/{marker}"), "-"]);
        assert_eq!(tar_of(&t, &["-xO"]), "inside\n");
    }

    // Reading through the link gives the container's passwd, not the host's.
    let t = docker_bytes(&d, &["cp", "trap:/esc/passwd", "-"]);
    let fixture = std::fs::read_to_string(Path::new(BUSYBOX).join("etc/passwd")).unwrap();
    assert_eq!(tar_of(&t, &["-xO"]), fixture);
    // The link itself is archived as a link.
    let t = docker_bytes(&d, &["cp", "trap:/esc", "-"]);
    assert!(tar_of(&t, &["-tv"]).contains("esc -> /../../etc"));
}

/// A crafted archive cannot write outside the directory it is unpacked into: `..`
/// names and hardlinks out of it are refused, an absolute name lands inside.
#[test]
fn put_archive_refuses_escapes() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&["create", "--name", "tt", "busybox", "true"]));
    let evil = unique("evil");

    let body = end_of_tar(tar_entry(&format!("../../{evil}"), b'0', "", b"bad\n"));
    let (code, msg) = put_archive(&d, "tt", "/tmp", &body);
    assert_eq!(code, 500, "{msg}");
    assert!(msg.contains("is outside of"), "{msg}");

    let body = end_of_tar(tar_entry(&evil, b'1', "../../../etc/shadow", b""));
    let (code, msg) = put_archive(&d, "tt", "/tmp", &body);
    assert_eq!(code, 500, "{msg}");

    let mut found = Vec::new();
    find_named(&d.dir, &evil, &mut found);
    assert!(found.is_empty(), "{found:?}");
    for p in ["/", "/tmp", "/var/cache"] {
        assert!(!Path::new(p).join(&evil).exists());
    }

    // An absolute name is taken relative to the directory.
    let body = end_of_tar(tar_entry(&format!("/{evil}-abs"), b'0', "", b"ok\n"));
    let (code, msg) = put_archive(&d, "tt", "/tmp", &body);
    assert_eq!(code, 200, "{msg}");
    let t = docker_bytes(&d, &["cp", &format!("tt:/tmp/{evil}-abs"), "-"]);
    assert_eq!(tar_of(&t, &["-xO"]), "ok\n");
    assert!(!Path::new("/").join(format!("{evil}-abs")).exists());

    // noOverwriteDirNonDir (docker cp sets it): a file may not replace a directory.
    let body = end_of_tar(tar_entry("tmp", b'0', "", b"x"));
    let (code, msg) = put_archive(&d, "tt", "/&noOverwriteDirNonDir=1", &body);
    assert_eq!(code, 500, "{msg}");
    assert!(
        msg.contains(r#"cannot overwrite directory \"/tmp\" with non-directory \"/\""#),
        "{msg}"
    );
}

/// `docker diff`: A, C and D lines in path order, Docker's Kind numbers in the API, and
/// nothing for the mount points the engine itself makes.
#[test]
fn diff_lists_changes() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "echo x > /newfile; echo >> /etc/passwd; rm /etc/group; mkdir -p /usr/new/dir",
    ]));
    let out = ok(&d.docker(&["diff", "changer"]));
    assert_eq!(
        out,
        "C /etc\nD /etc/group\nC /etc/passwd\nA /newfile\nC /usr\nA /usr/new\nA /usr/new/dir\n"
    );
    let (code, body) = d.curl("GET", "/containers/changer/changes");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Path"].as_str().unwrap().to_string(),
                c["Kind"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("/etc/group".into(), 2)), "{kinds:?}");
    assert!(kinds.contains(&("/newfile".into(), 1)), "{kinds:?}");
    assert!(kinds.contains(&("/etc/passwd".into(), 0)), "{kinds:?}");

    ok(&d.docker(&["create", "--name", "idle", "busybox", "true"]));
    assert_eq!(ok(&d.docker(&["diff", "idle"])), "");
    ok(&d.docker(&["start", "-a", "idle"]));
    assert_eq!(
        ok(&d.docker(&["diff", "idle"])),
        "",
        "only mount points changed"
    );
    let o = d.docker(&["diff", "nosuch"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
}

/// `docker export` streams the whole filesystem, the container's changes included.
#[test]
fn export_whole_filesystem() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo e > /exported",
    ]));
    let t = docker_bytes(&d, &["export", "ex"]);
    let names = tar_of(&t, &["-t"]);
    for want in ["bin/busybox\n", "etc/passwd\n", "exported\n"] {
        assert!(names.contains(want), "{want} missing from export");
    }
    let mut cmd = Command::new("tar");
    cmd.args(["-xO", "exported"]);
    assert_eq!(ok(&with_stdin(cmd, &t)), "e\n");
    // `-o file` and a container never started.
    ok(&d.docker(&["create", "--name", "never", "busybox", "true"]));
    let file = d.dir.join("never.tar");
    ok(&d.docker(&["export", "-o", file.to_str().unwrap(), "never"]));
    let t = std::fs::read(&file).unwrap();
    assert!(tar_of(&t, &["-t"]).contains("bin/busybox\n"));
    assert!(stray_mounts(&d).is_empty(), "{:?}", stray_mounts(&d));
    let o = d.docker(&["export", "nosuch"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
}

/// `docker commit -c -m -a`: the image runs with the committed file and the new CMD,
/// history and inspect show message, author and parent; a running container is
/// committed (paused meanwhile) and keeps running.
#[test]
fn commit_makes_a_runnable_image() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /file",
    ]));
    let id = ok(&d.docker(&[
        "commit",
        "-c",
        r#"CMD ["cat", "/file"]"#,
        "-c",
        "ENV MARK=1",
        "-m",
        "my message",
        "-a",
        "Jane Doe <jane@example.com>",
        "src",
        "snap:v1",
    ]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(ok(&d.docker(&["run", "--rm", "snap:v1"])), "committed\n");
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "snap:v1", "cat", "/file"])),
        "committed\n"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "snap:v1", "sh", "-c", "echo $MARK"])),
        "1\n"
    );
    let info = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.Id}}|{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}",
        "snap:v1",
    ]));
    assert_eq!(
        info.trim(),
        format!(
            "{}|my message|Jane Doe <jane@example.com>|[\"cat\",\"/file\"]|2",
            id.trim()
        )
    );
    let parent = ok(&d.docker(&["inspect", "-f", "{{.Parent}}", "snap:v1"]));
    let base = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "busybox"]));
    assert_eq!(parent.trim(), base.trim());
    let hist = ok(&d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:v1",
    ]));
    assert_eq!(
        hist.lines().next().unwrap(),
        "sh -c echo committed > /file|my message"
    );
    // The base image is now a parent: removing it conflicts.
    let o = d.docker(&["rmi", "busybox"]);
    assert!(!o.status.success());

    // A running container, paused for the commit, runs on.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /l; sleep 300",
    ]));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.docker(&["cp", "live:/l", "-"]).status.code() != Some(0) {
        assert!(std::time::Instant::now() < until, "/l never appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ok(&d.docker(&["commit", "live", "live:1"]));
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.State.Status}}", "live"])).trim(),
        "running"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "live:1", "cat", "/l"])),
        "live\n"
    );
    ok(&d.docker(&["commit", "--pause=false", "live"]));

    // No changes: no new layer, only a history entry.
    ok(&d.docker(&["create", "--name", "same", "busybox", "true"]));
    ok(&d.docker(&["commit", "same", "same:1"]));
    let layers = ok(&d.docker(&["inspect", "-f", "{{len .RootFS.Layers}}", "same:1"]));
    assert_eq!(layers.trim(), "1");

    let o = d.docker(&["commit", "nosuch"]);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["commit", "-c", "RUN echo", "src"]);
    assert!(
        stderr(&o).contains("run is not a valid change command"),
        "{}",
        stderr(&o)
    );
    let (code, body) = d.curl("POST", "/commit?container=src&repo=Bad%20Name");
    assert_eq!(code, 400, "{body}");
}
