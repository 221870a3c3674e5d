//! berthd's system endpoints, driven by the stock docker CLI and raw HTTP.

use e2e::*;

/// `docker version` negotiates with berthd and shows its engine.
#[test]
fn docker_version_and_info() {
    let d = Daemon::start();
    let out = ok(&d.docker(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]));
    assert_eq!(out.trim(), "1.50 1.41 linux");
    let info = ok(&d.docker(&[
        "info",
        "--format",
        "{{.Driver}} {{.OSType}} {{.DockerRootDir}}",
    ]));
    assert_eq!(
        info.trim(),
        format!("overlay2 linux {}", d.dir.join("data").display())
    );
}

/// /_ping answers OK (GET) and empty (HEAD) with the API version header.
#[test]
fn ping() {
    let d = Daemon::start();
    assert_eq!(d.curl("GET", "/_ping"), (200, "OK".into()));
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://berth/_ping")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("api-version: 1.50"), "{head}");
    // HEAD (curl -I): status and headers, no body.
    let out = std::process::Command::new("curl")
        .args(["-s", "-I", "--max-time", "5", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://berth/_ping")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
}

/// Errors come in Docker's shape: unknown paths 404, versions out of range 400.
#[test]
fn errors_have_dockers_shape() {
    let d = Daemon::start();
    assert_eq!(
        d.curl("GET", "/nope"),
        (404, r#"{"message":"page not found"}"#.into())
    );
    let (code, body) = d.curl("GET", "/v1.12/info");
    assert_eq!(code, 400);
    assert!(body.contains("client version 1.12 is too old"), "{body}");
    let (code, body) = d.curl("GET", "/v1.99/version");
    assert_eq!(code, 400);
    assert!(body.contains("too new"), "{body}");
    assert_eq!(d.curl("GET", "/v1.43/version").0, 200);
}

/// The socket is private (0600) unless the berth group exists (then 0660).
#[test]
fn socket_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    let group = std::process::Command::new("getent")
        .args(["group", "berth"])
        .status()
        .unwrap()
        .success();
    assert_eq!(mode, if group { 0o660 } else { 0o600 });
}

/// daemon.json with an unknown key is refused at start, with a message naming it.
#[test]
fn bad_daemon_json_is_refused() {
    let dir = std::path::PathBuf::from("/tmp").join(unique("berthd-conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("daemon.json");
    std::fs::write(&conf, r#"{"bogus-key": 1}"#).unwrap();
    let out = std::process::Command::new(bin("berthd"))
        .arg("-H")
        .arg(format!("unix://{}/s.sock", dir.display()))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bogus-key"), "{err}");
}

/// A second daemon on a live socket is refused; the first keeps serving.
#[test]
fn socket_in_use_is_refused() {
    let d = Daemon::start();
    let out = std::process::Command::new(bin("berthd"))
        .arg("-H")
        .arg(d.host())
        .arg("--data-root")
        .arg(d.dir.join("data2"))
        .arg("--config-file")
        .arg("/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert_eq!(d.curl("GET", "/_ping").0, 200);
}
