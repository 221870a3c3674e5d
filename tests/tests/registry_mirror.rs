//! `registry-mirrors`: with a mirror configured, `docker pull busybox` (docker.io) is
//! served by the mirror, here a docker-registry on 127.0.0.1 (no Docker Hub needed), and
//! the image keeps its docker.io name.

use e2e::registry::{Registry, RegistryOpts};
use e2e::*;

#[test]
fn docker_io_pulls_go_to_the_mirror() {
    let reg = Registry::start(RegistryOpts::default());
    // Seed the mirror as Docker Hub's `library/busybox`.
    let seed = Daemon::with_busybox();
    let mirrored = format!("{}/library/busybox:latest", reg.host());
    ok(&seed.docker(&["tag", "busybox", &mirrored]));
    ok(&seed.docker(&["push", &mirrored]));
    drop(seed);

    let d = Daemon::start_with_json(&format!(
        r#"{{"registry-mirrors": ["http://{}"]}}"#,
        reg.host()
    ));
    let out = ok(&d.docker(&["pull", "busybox"]));
    assert!(
        out.contains("Downloaded newer image for busybox:latest"),
        "{out}"
    );
    let tags = ok(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(tags.trim(), "busybox:latest");
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "busybox", "echo", "from the mirror"])),
        "from the mirror\n"
    );
    let out = ok(&d.berth(&["system", "check"]));
    assert!(out.contains("store is consistent"), "{out}");
}
