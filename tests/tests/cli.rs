//! berth's own CLI against a private berthd: connection and host selection, version
//! negotiation, docker-shaped output, usage errors, and the image commands.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use e2e::*;

/// berth with no `-H` and a controlled environment.
fn berth_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(bin("berth"));
    c.env_remove("BERTH_HOST").env_remove("DOCKER_HOST");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn version_shows_client_and_negotiated_server() {
    let d = Daemon::start();
    let out = ok(&d.berth(&["version"]));
    assert!(out.starts_with("Client:\n Version:           "), "{out}");
    assert!(out.contains(" API version:       1.50\n"), "{out}");
    assert!(out.contains("\nServer: berth\n Engine:\n"), "{out}");
    assert!(
        out.contains("  API version:      1.50 (minimum version 1.41)\n"),
        "{out}"
    );
    let f = ok(&d.berth(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Client.ApiVersion}} {{.Server.Os}}",
    ]));
    assert_eq!(f, "1.50 1.50 linux\n");
    let j = ok(&d.berth(&["version", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["Server"]["MinAPIVersion"], "1.41");
}

/// An older client version pinned by the environment is used as the path prefix.
#[test]
fn pinned_api_version_is_sent() {
    let d = Daemon::start();
    let host = d.host();
    let out = berth_env(
        &[("BERTH_HOST", &host), ("DOCKER_API_VERSION", "1.43")],
        &["version", "--format", "{{.Client.APIVersion}}"],
    );
    assert_eq!(ok(&out), "1.43\n");
    let out = berth_env(
        &[("BERTH_HOST", &host), ("DOCKER_API_VERSION", "1.12")],
        &["info"],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Error response from daemon: client version 1.12 is too old"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn info_sections_and_format() {
    let d = Daemon::start();
    assert_eq!(
        ok(&d.berth(&["info", "--format", "{{.Driver}}"])),
        "overlay2\n"
    );
    assert_eq!(
        ok(&d.berth(&[
            "system",
            "info",
            "-f",
            "{{.OSType}} {{json .Plugins.Volume}}"
        ])),
        "linux [\"local\"]\n"
    );
    let out = ok(&d.berth(&["info"]));
    for want in [
        "Client:\n Version:    ",
        "\nServer:\n Containers: 0\n  Running: 0\n",
        " Storage Driver: overlay2\n",
        " Plugins:\n  Volume: local\n",
        " Swarm: inactive\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let root = format!(" Berth Root Dir: {}\n", d.dir.join("data").display());
    assert!(out.contains(&root), "{out}");
    // A template that does not parse is an error, not output.
    let bad = d.berth(&["info", "--format", "{{.Driver"]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("template parsing error"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn missing_daemon_is_docker_shaped() {
    let out = berth_env(&[], &["-H", "unix:///nonexistent.sock", "version"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "Cannot connect to the berth daemon at unix:///nonexistent.sock. Is the berth daemon running?"
        ),
        "{}",
        stderr(&out)
    );
    // The client half is still printed, as docker does.
    assert!(stdout(&out).starts_with("Client:\n"), "{}", stdout(&out));
    let out = berth_env(&[], &["-H", "unix:///nonexistent.sock", "images"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("Cannot connect"),
        "{}",
        stderr(&out)
    );
    let out = berth_env(&[], &["-H", "tcp://127.0.0.1:2375", "info"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unix://"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// `-H` beats `BERTH_HOST`, which beats `DOCKER_HOST`.
#[test]
fn host_precedence() {
    let d = Daemon::start();
    let good = d.host();
    let bad = "unix:///nonexistent-berth.sock";
    let fmt = ["info", "--format", "{{.Driver}}"];
    assert_eq!(ok(&berth_env(&[("BERTH_HOST", &good)], &fmt)), "overlay2\n");
    assert_eq!(
        ok(&berth_env(&[("DOCKER_HOST", &good)], &fmt)),
        "overlay2\n"
    );
    assert_eq!(
        ok(&berth_env(
            &[("BERTH_HOST", &good), ("DOCKER_HOST", bad)],
            &fmt
        )),
        "overlay2\n"
    );
    let out = berth_env(&[("BERTH_HOST", bad), ("DOCKER_HOST", &good)], &fmt);
    assert!(stderr(&out).contains(bad), "{}", stderr(&out));
    let mut args = vec!["-H", good.as_str()];
    args.extend(fmt);
    assert_eq!(ok(&berth_env(&[("BERTH_HOST", bad)], &args)), "overlay2\n");
}

/// The subcommand names listed under `Commands:` in a help text.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every command and subcommand answers `--help` with docker's layout, without a daemon.
#[test]
fn help_for_every_command() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = berth_env(&[("BERTH_HOST", "unix:///nonexistent.sock")], &args);
        let text = ok(&out);
        let name = std::iter::once("berth")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.starts_with(&format!("Usage:  {name}")),
            "{name}: {text}"
        );
        for sub in listed_commands(&text) {
            let mut p = path.clone();
            p.push(sub);
            queue.push(p);
        }
        seen += 1;
    }
    // The root, version, info, images, the image and system groups with their commands.
    assert!(seen >= 20, "only {seen} commands");
    assert_eq!(ok(&berth_env(&[], &["-v"])), "berth version 0.1.0\n");
    assert!(ok(&berth_env(&[], &[])).starts_with("Usage:  berth"));
    assert!(ok(&berth_env(&[], &["image"])).contains("Manage images"));
}

#[test]
fn usage_errors_exit_like_docker() {
    let out = berth_env(&[], &["version", "--bogus"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "unknown flag: --bogus\n\nUsage:  berth version [OPTIONS]\n\nRun 'berth version --help' for more information\n"
    );
    let out = berth_env(&[], &["--bogus", "info"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).starts_with("unknown flag: --bogus\n"));
    assert!(stderr(&out).ends_with("Run 'berth --help' for more information\n"));
    let out = berth_env(&[], &["image", "ls", "--filter", "nonsense"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).starts_with(
            "invalid argument \"nonsense\" for \"-f, --filter\" flag: bad format of filter"
        ),
        "{}",
        stderr(&out)
    );
    let out = berth_env(&[], &["tag", "a"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("berth: 'berth tag' requires 2 arguments\n\nUsage:  berth tag"),
        "{}",
        stderr(&out)
    );
    let out = berth_env(&[], &["nosuchcommand"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).starts_with("berth: unknown command: berth nosuchcommand"));
    let out = berth_env(&[], &["version", "extra"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).starts_with("berth: 'berth version' accepts no arguments"));
}

/// A tiny root filesystem tarball made here (no fixture needed).
fn rootfs_tar() -> (Scratch, PathBuf) {
    let s = Scratch::new("berth-cli");
    let root = s.path("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hello"), "hello from berth\n").unwrap();
    let tar = s.path("rootfs.tar");
    tar_dir(&root, &tar);
    (s, tar)
}

/// import → images → tag → inspect → history → save → rmi → load → prune, all through
/// berth, with docker's output shapes.
#[test]
fn image_commands_round_trip() {
    let d = Daemon::start();
    let (s, tar) = rootfs_tar();
    let empty = ok(&d.berth(&["images"]));
    assert_eq!(empty, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");

    let id = ok(&d.berth(&[
        "import",
        "-m",
        "made by the cli test",
        "-c",
        "ENV A=b",
        tar.to_str().unwrap(),
        "cli-test:v1",
    ]));
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];

    let table = ok(&d.berth(&["images"]));
    let mut lines = table.lines();
    // Columns as docker's tabwriter sets them: CREATED is as wide as its value
    // ("Less than a second ago" or "2 seconds ago"), so its gap varies.
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED   "),
        "{header}"
    );
    assert!(header.ends_with("   SIZE"), "{header}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "cli-test");
    assert_eq!(row[1], "v1");
    assert_eq!(row[2], short);
    assert!(table.contains(" ago "), "{table}");

    ok(&d.berth(&["tag", "cli-test:v1", "localhost:5000/ns/cli-test"]));
    assert_eq!(
        ok(&d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}", "cli-test"])),
        "cli-test:v1\n"
    );
    assert_eq!(
        ok(&d.berth(&["images", "-q", "--no-trunc"])),
        format!("{id}\n{id}\n")
    );

    let inspect = ok(&d.berth(&["image", "inspect", "cli-test:v1"]));
    assert!(
        inspect.starts_with("[\n    {\n        \"Id\": \"sha256:"),
        "{inspect}"
    );
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(
        ok(&d.berth(&[
            "inspect",
            "-f",
            "{{.ID}} {{.Comment}} {{.RepoTags}}",
            "cli-test:v1"
        ])),
        format!("{id} made by the cli test [cli-test:v1 localhost:5000/ns/cli-test:latest]\n")
    );
    let missing = d.berth(&["inspect", "no-such-image"]);
    assert_eq!(code(&missing), 1);
    assert_eq!(stdout(&missing), "[]\n");
    assert_eq!(stderr(&missing), "Error: No such object: no-such-image\n");

    let hist = ok(&d.berth(&["history", "cli-test:v1"]));
    assert!(hist.starts_with("IMAGE          CREATED   "), "{hist}");
    assert!(
        hist.contains(short) && hist.contains("made by the cli test"),
        "{hist}"
    );

    let saved = s.0.join("saved.tar");
    ok(&d.berth(&["save", "-o", saved.to_str().unwrap(), "cli-test:v1"]));
    let listing = Command::new("tar").arg("-tf").arg(&saved).output().unwrap();
    assert!(
        ok(&listing).contains("manifest.json"),
        "{}",
        stdout(&listing)
    );

    let rm = ok(&d.berth(&["rmi", "cli-test:v1", "localhost:5000/ns/cli-test"]));
    assert!(rm.contains("Untagged: cli-test:v1\n"), "{rm}");
    assert!(rm.contains(&format!("Deleted: {id}")), "{rm}");
    let gone = d.berth(&["rmi", "cli-test:v1"]);
    assert_eq!(code(&gone), 1);
    assert!(
        stderr(&gone).starts_with("Error response from daemon: "),
        "{}",
        stderr(&gone)
    );

    let loaded = ok(&d.berth(&["load", "-i", saved.to_str().unwrap()]));
    assert!(loaded.contains("Loaded image: cli-test:v1"), "{loaded}");
    assert_eq!(
        ok(&d.berth(&["images", "--format", "{{.ID}}", "cli-test:v1"])),
        format!("{short}\n")
    );

    // A second import under the same tag leaves the first image dangling.
    ok(&d.berth(&[
        "import",
        "-m",
        "second",
        tar.to_str().unwrap(),
        "cli-test:v1",
    ]));
    assert_eq!(
        ok(&d.berth(&[
            "images",
            "--filter",
            "dangling=true",
            "--format",
            "{{.Repository}} {{.Tag}} {{.ID}}"
        ])),
        format!("<none> <none> {short}\n")
    );
    let pruned = ok(&d.berth(&["image", "prune", "-f"]));
    assert!(
        pruned.starts_with(&format!("Deleted Images:\ndeleted: {id}\n")),
        "{pruned}"
    );
    assert!(pruned.contains("\nTotal reclaimed space: "), "{pruned}");
    ok(&d.berth(&["image", "prune", "-a", "-f"]));
    assert_eq!(
        ok(&d.berth(&["images", "-a"])),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
}

/// `load` reads stdin, `save` refuses nothing when piped; both stream.
#[test]
fn load_from_stdin_and_save_to_stdout() {
    let d = Daemon::start();
    let (s, tar) = rootfs_tar();
    ok(&d.berth(&["import", tar.to_str().unwrap(), "piped:1"]));
    let saved = s.0.join("out.tar");
    let st = Command::new(bin("berth"))
        .args(["-H", &d.host(), "save", "piped:1"])
        .stdout(std::fs::File::create(&saved).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    ok(&d.berth(&["rmi", "piped:1"]));
    let out = Command::new(bin("berth"))
        .args(["-H", &d.host(), "load"])
        .stdin(std::fs::File::open(&saved).unwrap())
        .output()
        .unwrap();
    assert!(
        ok(&out).contains("Loaded image: piped:1"),
        "{}",
        stdout(&out)
    );
    // A missing input file is a clear error, and nothing is sent.
    let out = d.berth(&["load", "-i", "/nonexistent.tar"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("/nonexistent.tar"),
        "{}",
        stderr(&out)
    );
}
