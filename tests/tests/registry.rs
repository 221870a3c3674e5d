//! pull, push and login end to end: the stock docker CLI against a private berthd and a
//! real registry (Debian's `docker-registry`) on 127.0.0.1: plain HTTP on loopback,
//! and htpasswd basic auth behind TLS with a CA from the daemon's certs dir.

use e2e::registry::{Pki, Registry, RegistryOpts};
use e2e::*;

fn inspect(d: &Daemon, name: &str) -> serde_json::Value {
    let out = ok(&d.docker(&["image", "inspect", name]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn layers(d: &Daemon, name: &str) -> Vec<String> {
    inspect(d, name)["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn failed(o: &std::process::Output) -> String {
    assert_ne!(code(o), 0, "should fail: {}", stdout(o));
    eprintln!("expected failure: {}{}", stdout(o), stderr(o));
    stderr(o)
}

#[test]
fn push_pull_run_over_plain_http_on_loopback() {
    let reg = Registry::start(RegistryOpts::default());
    let d = Daemon::with_busybox();
    let host = reg.host();
    let bb = format!("{host}/me/bb:1");
    let base_layers = layers(&d, "busybox");

    ok(&d.docker(&["tag", "busybox", &bb]));
    let out = ok(&d.docker(&["push", &bb]));
    assert!(
        out.contains(&format!("The push refers to repository [{host}/me/bb]")),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // Pushed again: the registry has every blob.
    let out = ok(&d.docker(&["push", &bb]));
    assert!(out.contains("Layer already exists"), "{out}");

    // Gone locally, pulled back, run.
    ok(&d.docker(&["rmi", "busybox", &bb]));
    assert!(d.docker(&["image", "inspect", &bb]).status.code() != Some(0));
    let out = ok(&d.docker(&["pull", &bb]));
    assert!(out.contains("1: Pulling from me/bb"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {bb}")),
        "{out}"
    );
    assert_eq!(layers(&d, &bb), base_layers);
    let info = inspect(&d, &bb);
    let digest = info["RepoDigests"][0].as_str().unwrap().to_string();
    assert!(
        digest.starts_with(&format!("{host}/me/bb@sha256:")),
        "{info}"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", &bb, "echo", "pulled"])).trim(),
        "pulled"
    );

    // Again: up to date, nothing fetched.
    let out = ok(&d.docker(&["pull", &bb]));
    assert!(
        out.contains(&format!("Status: Image is up to date for {bb}")),
        "{out}"
    );
    assert!(
        !out.contains("Download") && !out.contains("Pull complete"),
        "{out}"
    );
    // By digest.
    let out = ok(&d.docker(&["pull", &digest]));
    assert!(out.contains("Image is up to date"), "{out}");
    ok(&d.docker(&["image", "inspect", &digest]));

    // A committed image on top: its base layer is mounted or already there.
    ok(&d.docker(&["run", "--name", "c1", &bb, "sh", "-c", "echo built > /f"]));
    let built = format!("{host}/me/built:1");
    ok(&d.docker(&["commit", "c1", &built]));
    ok(&d.docker(&["rm", "c1"]));
    let built_layers = layers(&d, &built);
    assert_eq!(built_layers.len(), 2);
    let out = ok(&d.docker(&["push", &built]));
    assert!(
        out.contains("Mounted from me/bb") || out.contains("Layer already exists"),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    ok(&d.docker(&["rmi", &built]));
    let out = ok(&d.docker(&["pull", &built]));
    assert!(out.contains("Already exists"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(layers(&d, &built), built_layers);
    assert_eq!(
        ok(&d.docker(&["run", "--rm", &built, "cat", "/f"])).trim(),
        "built"
    );

    // --all-tags.
    ok(&d.docker(&["tag", &bb, &format!("{host}/me/bb:2")]));
    ok(&d.docker(&["push", &format!("{host}/me/bb:2")]));
    ok(&d.docker(&["rmi", "-f", &bb, &format!("{host}/me/bb:2")]));
    let out = ok(&d.docker(&["pull", "--all-tags", &format!("{host}/me/bb")]));
    assert!(out.contains("Pulling from me/bb"), "{out}");
    ok(&d.docker(&["image", "inspect", &bb]));
    ok(&d.docker(&["image", "inspect", &format!("{host}/me/bb:2")]));

    // Errors as dockerd words them.
    let e = failed(&d.docker(&["pull", &format!("{host}/me/bb:nosuch")]));
    assert!(
        e.contains(&format!(
            "manifest for {host}/me/bb:nosuch not found: manifest unknown"
        )),
        "{e}"
    );
    let e = failed(&d.docker(&["pull", &format!("{host}/no/such:1")]));
    assert!(e.contains("not found"), "{e}");
    // A bad reference (the CLI checks its own; the API answers 400).
    let (status, body) = d.curl("POST", "/images/create?fromImage=bad%20name&tag=1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid reference format"), "{body}");
    // The raw stream: Docker's progress messages.
    ok(&d.docker(&["rmi", "-f", &built]));
    let (status, body) = d.curl(
        "POST",
        &format!("/images/create?fromImage={host}/me/built&tag=1"),
    );
    assert_eq!(status, 200, "{body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |status: &str| lines.iter().any(|l| l["status"] == status);
    assert!(
        has("Already exists") && has("Pulling fs layer") && has("Pull complete"),
        "{body}"
    );
    assert!(
        lines.iter().any(|l| l["status"] == "Downloading"
            && l["progressDetail"]["total"].as_u64().is_some()
            && l["progress"].as_str().is_some_and(|p| p.starts_with('['))
            && l["id"].as_str().is_some_and(|i| i.len() == 12)),
        "{body}"
    );
    let e = failed(&d.docker(&["push", &format!("{host}/me/missing:1")]));
    assert!(e.contains("An image does not exist locally"), "{e}");
    d.assert_check_clean();
}

#[test]
fn login_and_tls_with_the_certs_dir() {
    let pki = Pki::new();
    let htpasswd = pki.htpasswd("alice", "s3cret");
    let auth_reg = Registry::start(RegistryOpts {
        tls: pki.tls(),
        htpasswd: Some(htpasswd),
    });
    let other = Registry::start(RegistryOpts {
        tls: pki.tls(),
        htpasswd: None,
    });
    let certs = Scratch::new("certs");
    pki.install_ca(&certs.0, &auth_reg.host());
    // Loopback is trusted by Docker's rules; turned off so TLS is verified here.
    let d = Daemon::start_with_json(
        &serde_json::json!({
            "certs-dir": certs.0,
            "registry-loopback-insecure": false,
            "max-concurrent-downloads": 2,
        })
        .to_string(),
    );
    d.import_busybox("busybox:latest");
    let host = auth_reg.host();

    // Wrong password: Docker's message, exit 1.
    let e = failed(&d.docker(&["login", &host, "-u", "alice", "-p", "wrong"]));
    assert!(e.contains("401 Unauthorized"), "{e}");
    // Not logged in: the push is refused.
    let img = format!("{host}/alice/bb:1");
    ok(&d.docker(&["tag", "busybox", &img]));
    let e = failed(&d.docker(&["push", &img]));
    assert!(e.contains("unauthorized"), "{e}");
    // Logged in: push and pull with the stored credentials.
    let out = ok(&d.docker(&["login", &host, "-u", "alice", "-p", "s3cret"]));
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = ok(&d.docker(&["push", &img]));
    assert!(out.contains("digest: sha256:"), "{out}");
    ok(&d.docker(&["rmi", &img]));
    let out = ok(&d.docker(&["pull", &img]));
    assert!(out.contains("Downloaded newer image"), "{out}");

    // A TLS registry whose CA is not in the certs dir is refused, saying how to fix it.
    let o = d.docker(&["pull", &format!("{}/x/y:1", other.host())]);
    let e = failed(&o);
    assert!(
        e.contains("ca.crt") && e.contains("insecure-registries"),
        "{e}"
    );
    d.assert_check_clean();
}

#[test]
fn a_pull_the_client_abandons_leaves_nothing() {
    let reg = Registry::start(RegistryOpts::default());
    let d = Daemon::start();
    let s = Scratch::new("bigimg");
    std::fs::create_dir_all(s.path("root")).unwrap();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 48000000 /dev/urandom > {}/big && tar -C {} -cf {} .",
            s.path("root").display(),
            s.path("root").display(),
            s.path("big.tar").display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let img = format!("{}/me/big:1", reg.host());
    ok(&d.docker(&["import", s.path("big.tar").to_str().unwrap(), &img]));
    ok(&d.docker(&["push", &img]));
    ok(&d.docker(&["rmi", &img]));
    // The client goes away mid-download.
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "0.5", "-X", "POST", "--unix-socket"])
        .arg(&d.socket)
        .arg(format!(
            "http://berth/images/create?fromImage={}/me/big&tag=1",
            reg.host()
        ))
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("Pulling fs layer"),
        "{}",
        stdout(&out)
    );
    let data = d.dir.join("data");
    let empty = |p: &str| {
        std::fs::read_dir(data.join(p))
            .map(|mut r| r.next().is_none())
            .unwrap_or(true)
    };
    // Only the partial downloads stay, kept to be resumed: no blob, no temp file.
    let only_partials = || {
        std::fs::read_dir(data.join("content/ingest"))
            .map(|r| {
                r.flatten()
                    .all(|e| e.file_name().to_string_lossy().starts_with("partial-"))
            })
            .unwrap_or(true)
    };
    assert!(
        eventually(10, || empty("tmp") && only_partials() && empty("snapshots")),
        "leftovers after a cancelled pull"
    );
    assert!(d.docker(&["image", "inspect", &img]).status.code() != Some(0));
    d.assert_check_clean();
    // And the next pull works.
    ok(&d.docker(&["pull", &img]));
}
