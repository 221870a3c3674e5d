//! berth's own `login`, `logout`, `push`, `pull` and `run --pull` against a private
//! berthd and Debian's `docker-registry` on 127.0.0.1 (plain HTTP on loopback, which
//! berthd allows as dockerd does), with htpasswd basic auth for the login cases.
//! Credentials live in `DOCKER_CONFIG` below the test daemon's directory.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use e2e::registry::{Pki, Registry, RegistryOpts};
use e2e::{code, ok, stderr, stdout, with_stdin, Daemon};

/// A registry wanting basic auth for `user`:`password` (plain HTTP: loopback); the
/// [`Pki`] holds the htpasswd file and must live as long.
fn registry_with_htpasswd(user: &str, password: &str) -> (Registry, Pki) {
    let pki = Pki::new();
    let reg = Registry::start(RegistryOpts {
        htpasswd: Some(pki.htpasswd(user, password)),
        ..RegistryOpts::default()
    });
    (reg, pki)
}

/// The test's docker config directory (below the daemon's, removed with it).
fn config_dir(d: &Daemon) -> PathBuf {
    d.dir.join("docker-config")
}

/// `berth ARGS` with `DOCKER_CONFIG` set to the test's.
fn berth(d: &Daemon, args: &[&str]) -> Output {
    d.berth_cmd(args)
        .env("DOCKER_CONFIG", config_dir(d))
        .stdin(Stdio::null())
        .output()
        .expect("berth built")
}

fn berth_in(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut c = d.berth_cmd(args);
    c.env("DOCKER_CONFIG", config_dir(d));
    with_stdin(c, input)
}

/// The layer digests of an image (`.RootFS.Layers`).
fn layers(d: &Daemon, image: &str) -> String {
    ok(&berth(
        d,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            image,
        ],
    ))
    .trim()
    .to_string()
}

#[test]
fn push_remove_pull_and_run() {
    let d = Daemon::with_busybox();
    let reg = Registry::start(RegistryOpts::default());
    let image = format!("{}/berth/busybox:v1", reg.host());
    let before = layers(&d, "busybox:latest");

    ok(&berth(&d, &["tag", "busybox:latest", &image]));
    let out = berth(&d, &["push", &image]);
    let text = ok(&out);
    assert!(
        text.contains(&format!(
            "The push refers to repository [{}/berth/busybox]",
            reg.host()
        )),
        "{text}"
    );
    assert!(text.contains("v1: digest: sha256:"), "{text}");

    // -q: the reference alone.
    let out = berth(&d, &["push", "-q", &image]);
    assert_eq!(ok(&out), format!("{image}\n"));

    ok(&berth(&d, &["rmi", &image, "busybox:latest"]));
    assert!(!berth(&d, &["image", "inspect", &image]).status.success());

    let out = berth(&d, &["pull", &image]);
    let text = ok(&out);
    // Not a terminal: plain lines per layer, then docker's summary and the reference.
    assert!(text.contains("Pull complete"), "{text}");
    assert!(text.contains("Digest: sha256:"), "{text}");
    assert!(
        text.contains(&format!("Status: Downloaded newer image for {image}")),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some(image.as_str()), "{text}");
    assert_eq!(layers(&d, &image), before);

    let out = berth(&d, &["run", "--rm", &image, "echo", "pulled"]);
    assert_eq!(ok(&out), "pulled\n");

    // Pulled again: nothing to fetch.
    let text = ok(&berth(&d, &["pull", &image]));
    assert!(
        text.contains(&format!("Status: Image is up to date for {image}")),
        "{text}"
    );
}

#[test]
fn pull_quiet_all_tags_errors_and_run_pull_policies() {
    let d = Daemon::with_busybox();
    let reg = Registry::start(RegistryOpts::default());
    let repo = format!("{}/app", reg.host());
    let (v1, v2) = (format!("{repo}:v1"), format!("{repo}:v2"));
    for t in [&v1, &v2] {
        ok(&berth(&d, &["tag", "busybox:latest", t]));
        ok(&berth(&d, &["push", "-q", t]));
    }
    ok(&berth(&d, &["rmi", &v1, &v2]));

    // -q: nothing but the reference.
    assert_eq!(ok(&berth(&d, &["pull", "-q", &v1])), format!("{v1}\n"));
    // No tag: latest, said first; the registry has none, so exit 1 with the reason.
    let out = berth(&d, &["pull", &repo]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Using default tag: latest\n"));
    assert!(!stderr(&out).trim().is_empty());
    assert!(!stdout(&out).contains(&format!("{repo}:latest\n")));
    // -a: every tag.
    let out = berth(&d, &["pull", "-a", &repo]);
    assert_eq!(ok(&out).lines().last(), Some(repo.as_str()));
    ok(&berth(&d, &["image", "inspect", &v2]));
    let out = berth(&d, &["pull", "-a", &v1]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("tag can't be used with --all-tags/-a"));

    // run --pull never: the missing image is an error.
    ok(&berth(&d, &["rmi", &v1]));
    let out = berth(&d, &["run", "--rm", "--pull", "never", &v1, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    // missing (the default): docker's line on stderr, the pull, then the container.
    let out = berth(&d, &["run", "--rm", &v1, "echo", "hi"]);
    assert_eq!(ok(&out), "hi\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Unable to find image '{v1}' locally")),
        "{}",
        stderr(&out)
    );
    // always: pulls although present (quietly with -q).
    let out = berth(&d, &["create", "--pull", "always", &v1, "true"]);
    assert!(
        stderr(&out).contains("Image is up to date"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(&out).trim().len(), 64);
    let out = berth(&d, &["create", "-q", "--pull", "always", &v1, "true"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(ok(&out).trim().len(), 64);
    let out = berth(&d, &["create", "--pull", "sometimes", &v1, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("invalid pull option"));
}

#[test]
fn login_push_pull_logout_with_basic_auth() {
    let d = Daemon::with_busybox();
    let (reg, _pki) = registry_with_htpasswd("alice", "s3cret");
    let host = reg.host();
    let image = format!("{host}/alice/busybox:v1");
    let config = config_dir(&d).join("config.json");
    ok(&berth(&d, &["tag", "busybox:latest", &image]));

    // Without credentials the registry refuses.
    let out = berth(&d, &["push", &image]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(!stderr(&out).trim().is_empty());

    // A wrong password: docker's error line, exit 1, nothing stored.
    let out = berth_in(
        &d,
        &["login", "-u", "alice", "--password-stdin", &host],
        b"wrong\n",
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("Error response from daemon: "),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("Login Succeeded"));
    assert!(!config.exists() || !std::fs::read_to_string(&config).unwrap().contains(&host));

    // The right one: stored base64(user:password), mode 0600.
    let out = berth_in(
        &d,
        &["login", "-u", "alice", "--password-stdin", &host],
        b"s3cret\n",
    );
    assert!(ok(&out).ends_with("Login Succeeded\n"), "{}", stdout(&out));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    // base64("alice:s3cret")
    assert_eq!(doc["auths"][&host]["auth"], "YWxpY2U6czNjcmV0");

    // -p works too, with docker's warning.
    let out = berth(&d, &["login", "-u", "alice", "-p", "s3cret", &host]);
    assert!(ok(&out).contains("Login Succeeded"));
    assert!(stderr(&out).contains("WARNING! Using --password via the CLI is insecure"));
    // No user or password: the stored credentials.
    let out = berth(&d, &["login", &host]);
    assert!(ok(&out).contains("Login Succeeded"), "{}", stderr(&out));

    // With the stored credentials: push, remove, pull, run.
    ok(&berth(&d, &["push", &image]));
    ok(&berth(&d, &["rmi", &image]));
    let out = berth(&d, &["pull", &image]);
    assert_eq!(ok(&out).lines().last(), Some(image.as_str()));
    assert_eq!(
        ok(&berth(&d, &["run", "--rm", &image, "echo", "ok"])),
        "ok\n"
    );

    // logout: gone from the file, and the registry refuses again.
    let out = berth(&d, &["logout", &host]);
    assert_eq!(ok(&out), format!("Removing login credentials for {host}\n"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(doc["auths"].get(&host).is_none(), "{doc}");
    ok(&berth(&d, &["rmi", &image]));
    let out = berth(&d, &["pull", &image]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

#[test]
fn login_through_a_credential_helper() {
    let d = Daemon::with_busybox();
    let (reg, _pki) = registry_with_htpasswd("bob", "hunter2");
    let host = reg.host();
    // A helper keeping the last stored credentials in one file.
    let bin = d.dir.join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store = d.dir.join("helper-store");
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nf={}\ncase \"$1\" in\nstore) cat > \"$f\";;\nget) cat >/dev/null; if [ -f \"$f\" ]; then cat \"$f\"; else echo 'credentials not found in native keychain'; exit 1; fi;;\nerase) cat >/dev/null; rm -f \"$f\";;\nesac\n",
            store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(config_dir(&d)).unwrap();
    let config = config_dir(&d).join("config.json");
    std::fs::write(&config, r#"{"credsStore": "test"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str], input: &[u8]| {
        let mut c = d.berth_cmd(args);
        c.env("DOCKER_CONFIG", config_dir(&d)).env("PATH", &path);
        with_stdin(c, input)
    };

    let out = run(
        &["login", "-u", "bob", "--password-stdin", &host],
        b"hunter2",
    );
    assert!(ok(&out).contains("Login Succeeded"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unencrypted"));
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(stored.contains("\"Secret\":\"hunter2\""), "{stored}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("hunter2"), "{text}");

    let image = format!("{host}/bob/busybox:v1");
    ok(&run(&["tag", "busybox:latest", &image], b""));
    ok(&run(&["push", "-q", &image], b""));

    ok(&run(&["logout", &host], b""));
    assert!(!store.exists());
}
