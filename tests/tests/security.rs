//! Container security through the stock docker CLI against a private berthd: Docker's
//! default seccomp profile and device rules, `--privileged`, capabilities,
//! `--security-opt`, `--read-only` and `--init` (berth-init as PID 1).

use std::time::{Duration, Instant};

use e2e::*;

/// `docker run --rm [flags] busybox sh -c script`: the output.
fn run_sh(d: &Daemon, flags: &[&str], script: &str) -> std::process::Output {
    let mut args = vec!["run", "--rm"];
    args.extend(flags);
    args.extend(["busybox", "sh", "-c", script]);
    d.docker(&args)
}

/// The value of `key:` in a /proc/<pid>/status text.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in {status}"))
        .trim()
        .to_string()
}

/// Default containers: the seccomp filter is on (so no user namespace even without
/// capabilities being needed for it), no mount, Docker's capability set; unconfined
/// lifts exactly the filter.
#[test]
fn default_seccomp_and_unconfined() {
    let d = Daemon::with_busybox();
    let script = "cat /proc/self/status; \
                  unshare -U true && echo UNSHARE-OK; \
                  mkdir -p /tmp/m; mount -t tmpfs x /tmp/m && echo MOUNT-OK; true";
    let o = run_sh(&d, &[], script);
    let out = ok(&o);
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    // Docker's 14 default capabilities.
    assert_eq!(status_field(&out, "CapEff"), "00000000a80425fb", "{out}");
    assert!(!out.contains("UNSHARE-OK"), "{out}");
    assert!(!out.contains("MOUNT-OK"), "{out}");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );

    let o = run_sh(&d, &["--security-opt", "seccomp=unconfined"], script);
    let out = ok(&o);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    // Only the filter stood in the way of a user namespace; mount still needs a cap.
    assert!(out.contains("UNSHARE-OK"), "{out} {}", stderr(&o));
    assert!(!out.contains("MOUNT-OK"), "{out}");
}

/// A profile file: the CLI sends its content, which the daemon converts and applies.
#[test]
fn custom_seccomp_profile() {
    let d = Daemon::with_busybox();
    let profile = d.dir.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
              {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
              {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
              {"names": ["unlink", "unlinkat"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = d.docker(&[
        "run",
        "--name",
        "prof",
        "--security-opt",
        &opt,
        "busybox",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; mkdir /tmp/a || echo MKDIR-DENIED; \
         touch /tmp/f && echo TOUCH-OK; chmod 600 /tmp/f && echo CHMOD-OK; \
         rm /tmp/f || echo RM-DENIED",
    ]);
    let out = ok(&o);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("MKDIR-DENIED"), "{out}");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert!(out.contains("TOUCH-OK"), "{out}");
    // The chmod rule is for containers with CAP_SYS_ADMIN, the unlink rule for those
    // without; this one has not got it.
    assert!(out.contains("CHMOD-OK"), "{out} {}", stderr(&o));
    assert!(out.contains("RM-DENIED"), "{out} {}", stderr(&o));
    let sec = ok(&d.docker(&["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "prof"]));
    assert!(
        sec.contains("seccomp={") && sec.contains("mkdirat"),
        "{sec}"
    );

    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#).unwrap();
    let o = d.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Decoding seccomp profile failed"),
        "{}",
        stderr(&o)
    );
}

/// `--privileged`: berthd's whole bounding set, mounts, the host's devices, no filter.
#[test]
fn privileged() {
    let d = Daemon::with_busybox();
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status_field(&own, "CapBnd");
    let o = run_sh(
        &d,
        &["--privileged"],
        "cat /proc/self/status; mkdir -p /tmp/m; mount -t tmpfs x /tmp/m && echo MOUNT-OK; ls /dev",
    );
    let out = ok(&o);
    assert_eq!(status_field(&out, "CapEff"), bounding, "{out}");
    assert_eq!(status_field(&out, "CapBnd"), bounding, "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert!(out.contains("MOUNT-OK"), "{out} {}", stderr(&o));
    // Every device node directly in the host's /dev is there too.
    let listed: Vec<&str> = out.lines().collect();
    let mut host_devs = 0;
    for e in std::fs::read_dir("/dev").unwrap().flatten() {
        use std::os::unix::fs::FileTypeExt;
        let ft = e.file_type().unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if (ft.is_char_device() || ft.is_block_device()) && name != "console" {
            host_devs += 1;
            assert!(
                listed.contains(&name.as_str()),
                "/dev/{name} missing: {out}"
            );
        }
    }
    assert!(host_devs > 6, "the host has hardly any devices");
}

/// `--cap-drop ALL` leaves nothing; `--cap-add` adds to Docker's set.
#[test]
fn capabilities() {
    let d = Daemon::with_busybox();
    let out = ok(&run_sh(
        &d,
        &["--cap-drop", "ALL"],
        "grep CapEff /proc/self/status",
    ));
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000", "{out}");
    // CAP_SYS_ADMIN also switches on the profile's mount and unshare rules.
    let o = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN"],
        "grep CapEff /proc/self/status; mkdir -p /tmp/m; mount -t tmpfs x /tmp/m && echo MOUNT-OK",
    );
    let out = ok(&o);
    assert_eq!(status_field(&out, "CapEff"), "00000000a82425fb", "{out}");
    assert!(out.contains("MOUNT-OK"), "{out} {}", stderr(&o));
}

/// A block device node the container made itself: mknod is allowed, opening it is
/// not (the device cgroup), unless privileged.
#[test]
fn device_rules() {
    let d = Daemon::with_busybox();
    let script = "mknod /tmp/loop b 7 0 && echo MKNOD-OK; exec 3</tmp/loop && echo OPEN-OK";
    let o = run_sh(&d, &[], script);
    let out = stdout(&o);
    assert!(out.contains("MKNOD-OK"), "{out} {}", stderr(&o));
    assert!(!out.contains("OPEN-OK"), "{out}");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    let o = run_sh(&d, &["--privileged"], script);
    assert!(
        stdout(&o).contains("OPEN-OK"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
}

/// no-new-privileges in its three spellings; label and apparmor accepted; anything
/// else refused with dockerd's message.
#[test]
fn security_opts() {
    let d = Daemon::with_busybox();
    for opt in [
        "no-new-privileges",
        "no-new-privileges:true",
        "no-new-privileges=true",
    ] {
        let out = ok(&run_sh(
            &d,
            &["--security-opt", opt],
            "grep NoNewPrivs /proc/self/status",
        ));
        assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{opt}: {out}");
    }
    let out = ok(&run_sh(
        &d,
        &["--security-opt", "no-new-privileges=false"],
        "grep NoNewPrivs /proc/self/status",
    ));
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    for opt in ["label=disable", "label:disable", "apparmor=unconfined"] {
        ok(&run_sh(&d, &["--security-opt", opt], "true"));
    }
    let o = run_sh(&d, &["--security-opt", "foo=bar"], "true");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r#"invalid --security-opt 2: "foo=bar""#),
        "{}",
        stderr(&o)
    );
    let o = run_sh(&d, &["--security-opt", "no-new-privileges=maybe"], "true");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r#"invalid --security-opt 2: "no-new-privileges=maybe""#),
        "{}",
        stderr(&o)
    );
    // Nothing is left behind by the refused creates.
    assert_eq!(ok(&d.docker(&["ps", "-aq"])).trim(), "");
}

/// `--read-only`: the root filesystem refuses writes.
#[test]
fn read_only_rootfs() {
    let d = Daemon::with_busybox();
    let o = run_sh(&d, &["--read-only"], "touch /x && echo WROTE");
    assert!(!stdout(&o).contains("WROTE"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    ok(&run_sh(&d, &[], "touch /x"));
}

/// `--init`: berth-init is PID 1 and runs the command as its child.
#[test]
fn init_is_pid_one() {
    let d = Daemon::with_busybox();
    let size = std::fs::metadata(bin("berth-init")).unwrap().len();
    let out = ok(&run_sh(
        &d,
        &["--init"],
        "tr '\\0' ' ' </proc/1/cmdline; echo; stat -c %s /sbin/docker-init; echo $PPID",
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "/sbin/docker-init -- sh -c tr '\\0' ' ' </proc/1/cmdline; echo; stat -c %s /sbin/docker-init; echo $PPID", "{out}");
    assert_eq!(lines[1], size.to_string(), "{out}");
    assert_eq!(lines[2], "1", "{out}");
    // Without --init the command is PID 1.
    let out = ok(&run_sh(&d, &[], "echo $$"));
    assert_eq!(out.trim(), "1");
}

/// The child's exit code is berth-init's, at once, even with a process left behind.
#[test]
fn init_exit_code() {
    let d = Daemon::with_busybox();
    let t = Instant::now();
    let o = d.docker(&[
        "run",
        "--name",
        "ex",
        "--init",
        "busybox",
        "sh",
        "-c",
        "sleep 100 & exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let init = ok(&d.docker(&["inspect", "-f", "{{json .HostConfig.Init}}", "ex"]));
    assert_eq!(init.trim(), "true");
    // Killed by a signal: 128 + the signal.
    let o = run_sh(&d, &["--init"], "kill -USR1 $$");
    assert_eq!(o.status.code(), Some(138), "{}", stderr(&o));
}

/// `docker stop` sends SIGTERM to PID 1; berth-init passes it on, so `sleep` dies at
/// once instead of after the 10 s timeout (PID 1 itself ignores SIGTERM).
#[test]
fn init_forwards_signals() {
    let d = Daemon::with_busybox();
    ok(&d.docker(&[
        "run", "-d", "--name", "sl", "--init", "busybox", "sleep", "100",
    ]));
    let t = Instant::now();
    ok(&d.docker(&["stop", "sl"]));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let code = ok(&d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "sl"]));
    assert_eq!(code.trim(), "143");
}

/// Orphans reparented to berth-init are reaped when they exit.
#[test]
fn init_reaps_zombies() {
    let d = Daemon::with_busybox();
    // The inner shell exits at once, orphaning three sleeps to PID 1; they end after
    // 1 s and must not stay zombies.
    let script = "sh -c 'for i in 1 2 3; do sleep 1 & done'; sleep 0.5; \
                  grep -l sleep /proc/[0-9]*/comm | wc -l; sleep 1.5; cat /proc/[0-9]*/stat";
    let out = ok(&run_sh(&d, &["--init"], script));
    let (orphans, stats) = out.split_once('\n').unwrap();
    assert_eq!(orphans.trim(), "3", "the orphans were not there: {out}");
    assert!(!stats.contains(") Z "), "zombies: {stats}");
    assert!(!stats.contains("(sleep)"), "{stats}");
}
