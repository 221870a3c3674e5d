//! The container process's security settings: capabilities, seccomp, no_new_privs,
//! rlimits, user and groups, umask, cwd, file descriptors, the runc CVE classes
//! (CVE-2024-21626 leaked-fd cwd, CVE-2019-5736 runtime binary overwrite), LSM labels on a
//! host without an LSM, and oomScoreAdj.

mod common;
use common::*;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_AUDIT_WRITE: u32 = 29;

/// A `/proc/<pid>/status` field (e.g. "CapEff") from some text, trimmed.
fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .to_string()
}

fn mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | 1 << b))
}

/// Whether the test process (hence the runtime it starts) holds `cap` in its bounding set.
fn host_has_cap(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = u64::from_str_radix(&field(&status, "CapBnd"), 16).unwrap();
    bnd & (1 << cap) != 0
}

/// Asserts that `out` failed with one stderr message containing every needle.
#[track_caller]
fn fails_with(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure, got success: stdout={} stderr={}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// Asserts that `out` failed naming every needle and that `id` left nothing behind.
#[track_caller]
fn refused_cleanly(out: &Output, needles: &[&str], rt: &Runtime, b: &Bundle, id: &str) {
    fails_with(out, needles);
    nothing_left(rt, b, id);
}

/// `run` of the bundle with `true` as a new `prefix` id is refused naming `needle`, and
/// leaves nothing behind.
#[track_caller]
fn run_true_is_refused(rt: &Runtime, b: &mut Bundle, prefix: &str, needle: &str) {
    b.args(&["true"]);
    let id = unique(prefix);
    let out = rt.run(b, &id);
    refused_cleanly(&out, &[needle], rt, b, &id);
}

/// A background process (a foreground `run`) killed and reaped when the test ends.
struct Bg(Option<Child>);

impl Bg {
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `berth-runtime run` of the bundle through bash, so that `redirs` (e.g. `exec 7<file;`)
/// open extra descriptors that the runtime inherits.
fn run_with_fds(rt: &Runtime, b: &Bundle, id: &str, redirs: &str, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{redirs} exec \"$0\" \"$@\""))
        .arg(BIN)
        .arg("--root")
        .arg(&rt.root)
        .arg("run")
        .args(extra)
        .arg("-b")
        .arg(&b.dir)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// `run_with_fds` with `dir` open as fd 7.
fn run_with_fd7(rt: &Runtime, b: &Bundle, id: &str, dir: &Path) -> Output {
    run_with_fds(rt, b, id, &format!("exec 7<{};", quote(dir)), &[])
}

/// A host directory `hostdir` beside the bundle's rootfs, holding `host-file` when
/// `with_file`.
fn host_dir(b: &Bundle, with_file: bool) -> PathBuf {
    let host = b.dir.join("hostdir");
    std::fs::create_dir(&host).unwrap();
    if with_file {
        std::fs::write(host.join("host-file"), "host secret\n").unwrap();
    }
    host
}

/// A foreground `berth-runtime run` of the bundle in the background, once it is running.
fn run_in_background(rt: &Runtime, b: &Bundle, id: &str) -> Bg {
    let run = Bg(Some(
        rt.cmd()
            .args(["run", "-b"])
            .arg(&b.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    rt.wait_status(id, "running");
    run
}

/// Compiles a small static C helper into the bundle's rootfs as /probe. `probe X` makes
/// syscall X directly and prints `X=<errno>` (0 on success).
fn build_probe(b: &Bundle) {
    let src = b.dir.join("probe.c");
    std::fs::write(
        &src,
        r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r;
        if (!strcmp(argv[i], "keyctl")) {
            /* KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING, do not create */
            r = syscall(SYS_keyctl, 0, -3, 0);
        } else if (!strcmp(argv[i], "unshare")) {
            r = syscall(SYS_unshare, CLONE_NEWUSER);
        } else if (!strcmp(argv[i], "getppid")) {
            printf("before getppid\n");
            fflush(stdout);
            r = syscall(SYS_getppid);
        } else {
            fprintf(stderr, "unknown probe %s\n", argv[i]);
            return 2;
        }
        printf("%s=%d\n", argv[i], r < 0 ? errno : 0);
        fflush(stdout);
    }
    return 0;
}
"#,
    )
    .unwrap();
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(b.rootfs().join("probe"))
        .arg(&src)
        .output()
        .expect("gcc is needed to build the seccomp probe");
    ok(&out);
}

fn docker_profile() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../runtime/src/seccomp/testdata/docker-default.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Capabilities

/// The default spec's capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE) are exactly
/// what the process holds in bounding, effective and permitted; like runc's spec it sets
/// no inheritable capabilities (CVE-2022-29162), so ambient ones cannot be raised either.
#[test]
fn default_capabilities_are_exactly_the_spec_sets() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("caps");
    b.args(&["cat", "/proc/self/status"]);
    let out = ok(&rt.run(&b, &unique("caps")));
    let want = mask(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    for set in ["CapEff", "CapBnd", "CapPrm"] {
        assert_eq!(field(&out, set), want, "{set}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(field(&out, set), mask(&[]), "{set}");
    }
}

/// Operations that need a capability the default spec drops fail: chown (CAP_CHOWN),
/// mknod (CAP_MKNOD), sethostname (CAP_SYS_ADMIN).
#[test]
fn dropped_capabilities_deny_chown_mknod_and_hostname() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("capdrop");
    b.sh("touch /f; \
          chown 1234 /f 2>&1 && echo CHOWN-OK; \
          mknod /n c 1 3 2>&1 && echo MKNOD-OK; \
          hostname x 2>&1 && echo HOSTNAME-OK; \
          echo done");
    let out = ok(&rt.run(&b, &unique("capdrop")));
    assert!(out.ends_with("done\n"), "{out}");
    for what in ["CHOWN-OK", "MKNOD-OK", "HOSTNAME-OK"] {
        assert!(!out.contains(what), "{what} without the capability: {out}");
    }
    assert_eq!(
        out.matches("Operation not permitted").count(),
        3,
        "each of the three is refused with EPERM: {out}"
    );
}

/// Adding CAP_CHOWN to every set lets the same chown succeed.
#[test]
fn adding_cap_chown_allows_chown() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("capadd");
    b.edit(|s| {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let caps = &mut s["process"]["capabilities"][set];
            if caps.is_null() {
                *caps = json!([]);
            }
            caps.as_array_mut().unwrap().push(json!("CAP_CHOWN"));
        }
    });
    b.sh("touch /f && chown 1234 /f && stat -c %u /f && grep CapEff /proc/self/status");
    let out = ok(&rt.run(&b, &unique("capadd")));
    assert!(out.starts_with("1234\n"), "{out}");
    assert_eq!(
        field(&out, "CapEff"),
        mask(&[CAP_CHOWN, CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE])
    );
}

/// A capability the runtime's own bounding set lacks (CAP_SYS_RESOURCE on hosts that
/// drop it) is refused before anything is created, with an error naming it.
#[test]
fn capability_outside_the_runtimes_bounding_set_is_refused() {
    if host_has_cap(CAP_SYS_RESOURCE) {
        eprintln!("skipped: this host's bounding set has CAP_SYS_RESOURCE");
        return;
    }
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("capbnd");
    b.edit(|s| {
        for set in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_RESOURCE"));
        }
    });
    run_true_is_refused(&rt, &mut b, "capbnd", "CAP_SYS_RESOURCE");
}

// ---------------------------------------------------------------------------------------
// seccomp

/// Docker's default profile denies unshare(CLONE_NEWUSER) and keyctl with EPERM, and
/// without the profile the same calls are not refused with EPERM, so the profile is
/// what denies them.
#[test]
fn docker_profile_denies_unshare_and_keyctl() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("seccomp");
    build_probe(&b);
    b.args(&["/probe", "keyctl", "unshare"]);

    let without = ok(&rt.run(&b, &unique("noseccomp")));
    assert_ne!(
        field(&without.replace('=', ":"), "keyctl"),
        "1",
        "{without}"
    );
    assert_ne!(
        field(&without.replace('=', ":"), "unshare"),
        "1",
        "{without}"
    );

    b.edit(|s| s["linux"]["seccomp"] = docker_profile());
    let with = ok(&rt.run(&b, &unique("seccomp")));
    assert_eq!(
        with, "keyctl=1\nunshare=1\n",
        "both EPERM under the profile"
    );
}

/// A profile that allows everything but mkdir/mkdirat (SCMP_ACT_ERRNO, errnoRet 1) makes
/// `mkdir` fail with EPERM while everything else works.
#[test]
fn errno_rule_makes_mkdir_fail_with_eperm() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("seccomp-mkdir");
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        })
    });
    b.sh("mkdir /tmp/x 2>&1; echo rc=$?; test -e /tmp/x && echo EXISTS; touch /tmp/y && echo touched");
    let out = ok(&rt.run(&b, &unique("mkdir")));
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("rc=1\n"), "{out}");
    assert!(!out.contains("EXISTS"), "{out}");
    assert!(out.contains("touched"), "other syscalls are allowed: {out}");
}

/// SCMP_ACT_KILL on getppid kills the process at that call: it printed what came
/// before, never what comes after, and exits as killed by SIGSYS (128+31).
#[test]
fn kill_rule_kills_the_process_at_the_syscall() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("seccomp-kill");
    build_probe(&b);
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL"}]
        })
    });
    b.args(&["/probe", "getppid"]);
    let out = rt.run(&b, &unique("kill"));
    assert_eq!(
        out.status.code(),
        Some(128 + 31),
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "before getppid\n");
}

// ---------------------------------------------------------------------------------------
// no_new_privs, rlimits

/// process.noNewPrivileges sets NoNewPrivs; without it the flag stays clear.
#[test]
fn no_new_privileges_is_applied_only_when_set() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("nnp");
    b.args(&["cat", "/proc/self/status"]);
    b.edit(|s| s["process"]["noNewPrivileges"] = json!(true));
    let out = ok(&rt.run(&b, &unique("nnp")));
    assert_eq!(field(&out, "NoNewPrivs"), "1");
    b.edit(|s| s["process"]["noNewPrivileges"] = json!(false));
    let out = ok(&rt.run(&b, &unique("nnp")));
    assert_eq!(field(&out, "NoNewPrivs"), "0");
}

fn set_nofile(b: &mut Bundle, soft: u64, hard: u64) {
    b.edit(|s| {
        s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}])
    });
}

/// RLIMIT_NOFILE soft 1000 / hard 2000 is what the process sees.
#[test]
fn rlimit_nofile_is_applied() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("rlimit");
    set_nofile(&mut b, 1000, 2000);
    b.sh("ulimit -n; ulimit -Hn; grep 'Max open files' /proc/self/limits");
    let out = ok(&rt.run(&b, &unique("rlimit")));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000"), "{out}");
    assert_eq!(lines.next(), Some("2000"), "{out}");
    let limits: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(limits[3..5], ["1000", "2000"], "{out}");
}

/// A hard limit above the host's, which this runtime cannot raise, fails `run` with a
/// message naming RLIMIT_NOFILE and leaves nothing behind.
#[test]
fn rlimit_above_the_hosts_hard_limit_is_refused() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("rlimit-high");
    set_nofile(&mut b, 1024, 99_999_999);
    run_true_is_refused(&rt, &mut b, "rlimit-high", "RLIMIT_NOFILE");
}

// ---------------------------------------------------------------------------------------
// user, umask, cwd

/// The fixture's root directory is 0700; a non-root user needs to traverse it.
fn let_users_in(b: &Bundle) {
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// uid, gid and additionalGids of process.user are the process's ids and groups.
#[test]
fn user_uid_gid_and_additional_gids() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("user");
    let_users_in(&b);
    b.edit(|s| {
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]})
    });
    b.sh("id -u; id -g; id -G; cat /proc/self/status");
    let out = ok(&rt.run(&b, &unique("user")));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(lines.next(), Some("1000"));
    let groups: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "{out}"
    );
    assert_eq!(field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(field(&out, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(field(&out, "Groups"), "2000 3000");
}

/// process.user.umask 0077 makes new files mode 600.
#[test]
fn umask_is_applied() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("umask");
    b.edit(|s| s["process"]["user"]["umask"] = json!(0o077));
    b.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    let out = ok(&rt.run(&b, &unique("umask")));
    assert_eq!(out, "0077\n600\n");
}

/// A non-root user cannot read a root-only 0600 file of the rootfs (no DAC override).
#[test]
fn non_root_user_cannot_read_root_only_file() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("dac");
    let_users_in(&b);
    let secret = b.rootfs().join("secret");
    std::fs::write(&secret, "top secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    b.edit(|s| s["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    b.sh("cat /secret 2>&1; echo rc=$?");
    let out = ok(&rt.run(&b, &unique("dac")));
    assert!(!out.contains("top secret"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert!(out.ends_with("rc=1\n"), "{out}");
}

/// process.cwd is the program's working directory.
#[test]
fn cwd_is_applied() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cwd");
    b.edit(|s| s["process"]["cwd"] = json!("/tmp"));
    b.args(&["pwd"]);
    assert_eq!(ok(&rt.run(&b, &unique("cwd"))), "/tmp\n");
}

/// A cwd missing from the rootfs is created (mode 755), as runc does.
#[test]
fn missing_cwd_is_created() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cwd-missing");
    b.edit(|s| s["process"]["cwd"] = json!("/does/not/exist"));
    b.sh("pwd; stat -c %a .");
    let out = ok(&rt.run(&b, &unique("cwd-missing")));
    assert_eq!(out, "/does/not/exist\n755\n");
    assert!(b.rootfs().join("does/not/exist").is_dir());
}

// ---------------------------------------------------------------------------------------
// file descriptors

/// Only stdio reaches the program: a descriptor the caller of the runtime left open
/// (fd 7) is not visible in the container, nor any of the runtime's own.
#[test]
fn no_descriptors_leak_into_the_container() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("fds");
    let file = b.dir.join("leaked");
    std::fs::write(&file, "leaked content\n").unwrap();
    // ls opens the directory it lists as fd 3; pid 1 (sh) holds only stdio.
    b.sh("ls /proc/self/fd; echo --; ls /proc/1/fd; echo --; ls -l /proc/1/fd/; cat <&7");
    let out = run_with_fds(
        &rt,
        &b,
        &unique("fds"),
        &format!("exec 7<{};", quote(&file)),
        &[],
    );
    let text = stdout(&out);
    let parts: Vec<Vec<&str>> = text.split("--\n").map(|p| p.lines().collect()).collect();
    assert_eq!(parts[0], ["0", "1", "2", "3"], "{text} {}", stderr(&out));
    assert_eq!(parts[1], ["0", "1", "2"], "{text}");
    assert!(!text.contains("leaked content"), "{text}");
    assert!(!out.status.success(), "cat <&7 must fail: {text}");
}

/// With --preserve-fds 1, fd 3 of the caller is passed to the program.
#[test]
fn preserve_fds_passes_fd_3() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("preserve");
    let file = b.dir.join("preserved");
    std::fs::write(&file, "preserved content\n").unwrap();
    b.sh("cat <&3; cat <&4 2>/dev/null && echo FD4");
    let out = run_with_fds(
        &rt,
        &b,
        &unique("preserve"),
        &format!("exec 3<{0}; exec 4<{0};", quote(&file)),
        &["--preserve-fds", "1"],
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("preserved content\n"),
        "{text} {}",
        stderr(&out)
    );
    assert!(!text.contains("FD4"), "only one fd is preserved: {text}");
}

// ---------------------------------------------------------------------------------------
// CVE-2024-21626: a cwd through a leaked descriptor

/// process.cwd "/proc/self/fd/7", with fd 7 a host directory left open by the caller,
/// must not give the container a working directory outside its root: run fails, no
/// host file is reachable, nothing is left behind.
#[test]
fn cwd_through_a_leaked_fd_does_not_escape_the_root() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cve-2024-21626");
    let host = host_dir(&b, true);
    b.edit(|s| s["process"]["cwd"] = json!("/proc/self/fd/7"));
    b.sh("ls; cat host-file; cat ../../../../etc/hostname");
    let id = unique("cve21626");
    let out = run_with_fd7(&rt, &b, &id, &host);
    let text = stdout(&out);
    assert!(!text.contains("host"), "host directory reachable: {text}");
    refused_cleanly(&out, &["outside"], &rt, &b, &id);
}

/// A missing cwd is created inside the root only: behind a symlink in the image to
/// /proc/self/fd/7 (a leaked host directory) it is refused, not made on the host.
#[test]
fn missing_cwd_is_not_created_through_a_leaked_fd() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cwd-leak");
    let host = host_dir(&b, false);
    std::os::unix::fs::symlink("/proc/self/fd/7", b.rootfs().join("escape")).unwrap();
    b.edit(|s| s["process"]["cwd"] = json!("/escape/made"));
    b.args(&["pwd"]);
    let id = unique("cwd-leak");
    let out = run_with_fd7(&rt, &b, &id, &host);
    assert!(!host.join("made").exists(), "cwd created on the host");
    refused_cleanly(&out, &["/escape/made"], &rt, &b, &id);
}

/// The same through `exec --cwd /proc/self/fd/7`: refused, and no host file is listed.
#[test]
fn exec_cwd_through_a_leaked_fd_does_not_escape_the_root() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cve-2024-21626-exec");
    let host = host_dir(&b, true);
    b.args(&["sleep", "1000"]);
    let id = unique("cve21626x");
    let run = run_in_background(&rt, &b, &id);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("exec 7<{}; exec \"$0\" \"$@\"", quote(&host)))
        .arg(BIN)
        .arg("--root")
        .arg(&rt.root)
        .args(["exec", "--cwd", "/proc/self/fd/7", &id, "sh", "-c"])
        .arg("ls; cat host-file")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!stdout(&out).contains("host"), "{}", stdout(&out));
    fails_with(&out, &["outside"]);
    ok(&rt.exec(&["kill", &id, "KILL"]));
    run.wait();
}

// ---------------------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime binary from the container

fn exe_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Whether the executable of `pid` is a copy nobody can write: a sealed memfd, or the
/// binary under a read-only bind mount in the process's mount namespace.
fn exe_is_protected(pid: u32) -> bool {
    let exe = exe_of(pid);
    if exe.contains("memfd:") {
        return true;
    }
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    // The last mount on that path is the one in effect.
    mounts
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 5 && f[4] == exe).then(|| f[5].split(',').any(|o| o == "ro"))
        })
        .unwrap_or(false)
}

/// The runtime runs from a protected copy of itself (sealed memfd or read-only bind
/// mount): the host sees it so for a running `berth-runtime run`. A `#!/proc/self/exe`
/// script started with `exec` either cannot reach the runtime at all (the exec fails), or
/// runs that copy, which the container cannot write to. The host binary is unchanged.
#[test]
fn runtime_binary_is_not_reachable_from_the_container() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("cve-2019-5736");
    let evil = b.rootfs().join("evil.sh");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["sleep", "1000"]);
    let before = std::fs::read(BIN).unwrap();
    let id = unique("cve5736");
    let run = run_in_background(&rt, &b, &id);
    let run_pid = run.0.as_ref().unwrap().id();
    assert!(
        exe_is_protected(run_pid),
        "run's exe {:?} is writable",
        exe_of(run_pid)
    );

    let out = rt.exec(&["exec", &id, "/evil.sh"]);
    if stderr(&out).contains("exec \"/evil.sh\"") {
        // The interpreter /proc/self/exe cannot be opened from the container.
        assert!(!out.status.success());
    } else {
        // The runtime copy ran (and refused "/evil.sh" as a subcommand).
        assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
        assert!(stderr(&out).contains("evil.sh"), "{}", stderr(&out));
        script_process_cannot_write_its_exe(&rt, &id);
    }
    ok(&rt.exec(&["kill", &id, "KILL"]));
    run.wait();
    assert!(
        std::fs::read(BIN).unwrap() == before,
        "the host's berth-runtime binary changed"
    );
}

/// Keeps a `#!/proc/self/exe` process alive in the container (it blocks writing its
/// usage error to a full pipe) and tries, from inside the container, to open its exe
/// for writing.
fn script_process_cannot_write_its_exe(rt: &Runtime, id: &str) {
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(&vec![0u8; 65536]).unwrap();
    let mut exec = Bg(Some(
        rt.cmd()
            .args(["exec", "-d", id, "/evil.sh"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer)
            .spawn()
            .unwrap(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = exec.0.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "exec -d did not return");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(st.success(), "exec -d /evil.sh: {st:?}");
    let init = rt.state(id)["pid"].as_u64().unwrap() as u32;
    let mut evil_pid = None;
    for _ in 0..500 {
        let out = ok(&rt.exec(&["ps", "--format", "json", id]));
        let pids: Vec<u32> = serde_json::from_str(&out).unwrap();
        evil_pid = pids
            .into_iter()
            .find(|p| *p != init && exe_is_protected(*p));
        if evil_pid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let evil_pid = evil_pid.expect("the #!/proc/self/exe process runs the runtime copy");
    let status = std::fs::read_to_string(format!("/proc/{evil_pid}/status")).unwrap();
    let ns_pid = field(&status, "NSpid")
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let out = ok(&rt.exec(&[
        "exec",
        id,
        "sh",
        "-c",
        &format!("if echo x >> /proc/{ns_pid}/exe; then echo WROTE; else echo DENIED; fi"),
    ]));
    assert!(out.ends_with("DENIED\n"), "{out}");
    // Let the process finish: it printed the runtime's usage error.
    let mut drained = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut drained).unwrap();
    let msg = String::from_utf8_lossy(&drained[65536..]).into_owned();
    assert!(msg.contains("evil.sh"), "{msg}");
}

// ---------------------------------------------------------------------------------------
// LSM labels, oomScoreAdj

/// apparmorProfile and selinuxLabel on a host without AppArmor/SELinux: the container
/// runs, and stderr warns that they were ignored.
#[test]
fn lsm_labels_without_an_lsm_warn_and_run() {
    if Path::new("/sys/kernel/security/apparmor").exists()
        || Path::new("/sys/fs/selinux/enforce").exists()
    {
        eprintln!("skipped: this host has AppArmor or SELinux");
        return;
    }
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("lsm");
    b.edit(|s| {
        s["process"]["apparmorProfile"] = json!("berth-test-profile");
        s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    });
    b.args(&["echo", "ran"]);
    let out = rt.run(&b, &unique("lsm"));
    assert_eq!(ok(&out), "ran\n");
    let err = stderr(&out);
    assert!(err.contains("warning") && err.contains("apparmor"), "{err}");
    assert!(err.contains("selinux"), "{err}");
}

/// A positive oomScoreAdj is applied to the container process.
#[test]
fn positive_oom_score_adj_is_applied() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("oom");
    b.edit(|s| s["process"]["oomScoreAdj"] = json!(500));
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(ok(&rt.run(&b, &unique("oom"))), "500\n");
}

/// A negative oomScoreAdj needs CAP_SYS_RESOURCE: without it run fails naming
/// oomScoreAdj and leaves nothing behind.
#[test]
fn negative_oom_score_adj_without_cap_sys_resource_fails_cleanly() {
    let rt = Runtime::new("sec");
    let mut b = Bundle::new("oom-neg");
    b.edit(|s| s["process"]["oomScoreAdj"] = json!(-500));
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    let id = unique("oom-neg");
    let out = rt.run(&b, &id);
    if host_has_cap(CAP_SYS_RESOURCE) {
        assert_eq!(ok(&out), "-500\n");
        return;
    }
    refused_cleanly(&out, &["oomScoreAdj"], &rt, &b, &id);
}
