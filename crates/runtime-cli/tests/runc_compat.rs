//! The same bundle run by runc and by berth-runtime behaves the same: stdout and exit code
//! of `runc --root R run ID` and `berth-runtime --root R run ID`, stdin closed, are
//! compared for a handful of bundles. Skipped (with a note on stderr) when runc is not
//! installed.
//!
//! Deliberate differences, left out of the comparison where they show:
//! - berth also mounts the hybrid layout's cgroup2 hierarchy at /sys/fs/cgroup/unified;
//!   runc 1.1 mounts only the v1 hierarchies.
//! - berth honours `ro` on the /sys/fs/cgroup tmpfs itself (writes fail with EROFS);
//!   runc 1.1 leaves the tmpfs flagged rw (writes there still fail, with EACCES).
//! - runc 1.1 ignores `domainname` (it arrived in runc 1.2), so no bundle sets it.
//! - Error messages on stderr differ in wording; only stdout and exit codes are compared.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

/// runc's binary, or None (and a note) when it is not installed.
fn runc() -> Option<PathBuf> {
    let bin = std::env::var_os("RUNC")
        .map(PathBuf::from)
        .unwrap_or_else(|| "runc".into());
    match Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => Some(bin),
        _ => {
            eprintln!("runc_compat: skipped, runc is not installed");
            None
        }
    }
}

/// A private runc state root; containers left in it are force-deleted on drop.
struct Runc {
    bin: PathBuf,
    root: PathBuf,
}

impl Runc {
    fn new(bin: PathBuf) -> Runc {
        let root = PathBuf::from("/run/berth-test").join(unique("runc-root"));
        std::fs::create_dir_all(&root).unwrap();
        Runc { bin, root }
    }

    fn run(&self, bundle: &Bundle, id: &str) -> Output {
        Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .args(["run", "-b"])
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let _ = Command::new(&self.bin)
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .stdin(Stdio::null())
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs `sh -c script` in a bundle edited by `edit`, with runc and with berth-runtime,
/// and asserts that stdout (after `norm`) and the exit code are the same. Returns berth's
/// normalised stdout and exit code, or None when runc is missing.
fn compare(
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut Value),
    norm: impl Fn(&str) -> String,
) -> Option<(String, Option<i32>)> {
    let bin = runc()?;
    let runc = Runc::new(bin);
    let berth = Runtime::new("compat");
    let mut b = Bundle::new(name);
    // The fixture's root directory is 0700; other users must be able to enter it.
    let st = Command::new("chmod")
        .arg("755")
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    b.sh(script);
    b.edit(edit);

    let r = runc.run(&b, &unique(&format!("{name}-runc")));
    let o = berth.run(&b, &unique(&format!("{name}-berth")));
    let (rs, os) = (norm(&stdout(&r)), norm(&stdout(&o)));
    assert_eq!(
        (&os, o.status.code()),
        (&rs, r.status.code()),
        "{name}: berth-runtime (left) differs from runc (right)\n\
         berth stderr: {}\nrunc stderr: {}",
        stderr(&o),
        stderr(&r)
    );
    Some((os, o.status.code()))
}

fn same(s: &str) -> String {
    s.to_string()
}

fn sorted(s: &str) -> String {
    let mut l: Vec<&str> = s.lines().collect();
    l.sort();
    l.join("\n")
}

fn caps(s: &mut Value, add: &str) {
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        if let Some(v) = s["process"]["capabilities"][set].as_array_mut() {
            v.push(json!(add));
        }
    }
}

/// (a) Output and exit code come back.
#[test]
fn echo_and_exit_code() {
    let Some((out, code)) = compare(
        "exit",
        "echo hello; echo to-stderr >&2; exit 3",
        |_| {},
        same,
    ) else {
        return;
    };
    assert_eq!((out.as_str(), code), ("hello\n", Some(3)));
}

/// (b) User, groups, umask and cwd.
#[test]
fn user_groups_umask_and_cwd() {
    let Some((out, _)) = compare(
        "user",
        "id; umask; pwd; touch /tmp/u-$$; stat -c '%a %u:%g' /tmp/u-$$; rm /tmp/u-$$",
        |s| {
            s["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "umask": 0o027, "additionalGids": [10, 20]});
            s["process"]["cwd"] = json!("/tmp");
        },
        same,
    ) else {
        return;
    };
    assert!(out.starts_with("uid=1000 gid=1000 groups=10,20\n0027\n/tmp\n640 1000:1000"));
}

/// (c) Hostname in a new UTS namespace; the domain name stays unset.
#[test]
fn hostname_and_domainname() {
    let Some((out, _)) = compare(
        "uts",
        "hostname; uname -n; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname",
        |s| s["hostname"] = json!("compat-host"),
        same,
    ) else {
        return;
    };
    assert!(out.starts_with("compat-host\n"));
}

/// (d) Capability sets: the default ones, one added, and a non-root user with an ambient
/// capability.
#[test]
fn capabilities() {
    let script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
    let Some((default, _)) = compare("caps", script, |_| {}, same) else {
        return;
    };
    assert!(default.contains("CapEff:\t0000000020000420"), "{default}");
    compare("caps-add", script, |s| caps(s, "CAP_NET_RAW"), same);
    compare(
        "caps-user",
        script,
        |s| {
            caps(s, "CAP_NET_RAW");
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            s["process"]["noNewPrivileges"] = json!(false);
        },
        same,
    );
}

/// (e) /dev: the nodes and links every container gets, a `linux.devices` node with its
/// mode and owner, and the device cgroup (runc's deny-all rule with its default allowed
/// nodes still usable).
#[test]
fn dev_nodes_and_device_cgroup() {
    let script = "ls /dev | sort; \
        stat -c '%n %F %a %u:%g %t:%T' /dev/null /dev/zero /dev/full /dev/random \
          /dev/urandom /dev/tty /dev/fuse /dev/ptmx /dev/fd /dev/stdin /dev/stdout \
          /dev/stderr /dev/pts /dev/shm /dev/mqueue; \
        for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; \
        head -c 4 /dev/zero | wc -c; echo x > /dev/null; echo null=$?; \
        head -c 0 /dev/fuse; echo fuse=$?; \
        sort /sys/fs/cgroup/devices/devices.list";
    let fuse = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                       "fileMode": 0o640, "uid": 0, "gid": 5}]);
    let f = fuse.clone();
    let Some((out, _)) = compare(
        "dev",
        script,
        |s| {
            s["linux"]["devices"] = f;
            s["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        },
        same,
    ) else {
        return;
    };
    assert!(out.contains("/dev/fuse character special file 640 0:5 a:e5"));
    assert!(out.contains("null=0") && out.contains("fuse=1"), "{out}");
    // An explicit allow rule opens the extra node.
    compare(
        "dev-allow",
        script,
        |s| {
            s["linux"]["devices"] = fuse;
            s["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
            ]);
        },
        same,
    );
}

/// (f) Masked and read-only paths, a read-only root, and extra tmpfs and bind mounts.
#[test]
fn masked_readonly_paths_and_readonly_root() {
    let script = "cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys | wc -c; \
        ls /proc/acpi /sys/firmware | wc -l; \
        stat -c '%n %F %a' /proc/acpi /proc/keys /proc/timer_list /sys/firmware; \
        echo x > /proc/sys/kernel/hostname; echo sys=$?; \
        touch /proc/fs/x; echo fs=$?; echo 1 > /proc/sysrq-trigger; echo sysrq=$?; \
        touch /x; echo root=$?; touch /tmp/x; echo tmp=$?; \
        wc -l < /mnt/passwd; touch /mnt/new; echo mnt=$?";
    let Some((out, _)) = compare(
        "masked",
        script,
        |s| {
            s["root"]["readonly"] = json!(true);
            s["mounts"].as_array_mut().unwrap().extend([
                json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "size=1m", "mode=1777"]}),
                json!({"destination": "/mnt", "type": "bind", "source": "rootfs/etc",
                       "options": ["rbind", "ro"]}),
            ]);
        },
        same,
    ) else {
        return;
    };
    assert!(
        out.contains("sys=1") && out.contains("root=1") && out.contains("tmp=0"),
        "{out}"
    );
    assert!(out.contains("3\nmnt=1"), "{out}");
}

/// The container's mount table: mount point, mount flags, fs type and superblock options
/// (not the source, nor ids), sorted. See the module docs for what is left out.
fn mount_table(text: &str) -> String {
    let mut rows: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (mp, opts) = (*f.get(4)?, *f.get(5)?);
            let r: Vec<&str> = right.split(' ').collect();
            let (fstype, sopts) = (*r.first()?, *r.get(2)?);
            if mp == "/sys/fs/cgroup/unified" {
                return None;
            }
            let opts = if mp == "/sys/fs/cgroup" {
                opts.split(',')
                    .filter(|o| *o != "ro" && *o != "rw")
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                opts.to_string()
            };
            Some(format!("{mp} {opts} {fstype} {sopts}"))
        })
        .collect();
    rows.sort();
    rows.join("\n")
}

/// (g) Mounts seen inside, and that the cgroup tree refuses writes.
#[test]
fn mounts_seen_inside() {
    let Some((out, _)) = compare(
        "mounts",
        "cat /proc/self/mountinfo; mkdir /sys/fs/cgroup/x 2>/dev/null; echo cg=$?; \
         mkdir /sys/fs/cgroup/memory/x 2>/dev/null; echo mem=$?",
        |_| {},
        |s| {
            let (table, rest): (Vec<&str>, Vec<&str>) = s.lines().partition(|l| l.contains(" - "));
            format!("{}\n{}", mount_table(&table.join("\n")), rest.join("\n"))
        },
    ) else {
        return;
    };
    for m in [
        "/ ",
        "/proc ",
        "/dev ",
        "/dev/pts ",
        "/sys ",
        "/sys/fs/cgroup/memory ",
    ] {
        assert!(out.lines().any(|l| l.starts_with(m)), "{m} missing: {out}");
    }
    assert!(out.contains("cg=1") && out.contains("mem=1"));
}

/// (h) Resource limits.
#[test]
fn rlimits() {
    let Some((out, _)) = compare(
        "rlimits",
        "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu; ulimit -c",
        |s| {
            s["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
                {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
            ]);
        },
        same,
    ) else {
        return;
    };
    assert_eq!(out, "512\n2048\n100\n200\n0\n");
}

/// (i) The environment: the spec's, plus HOME from the container's /etc/passwd (or /)
/// when the spec has none.
#[test]
fn environment_and_home() {
    let script = "env | sort";
    let Some((out, _)) = compare(
        "env",
        script,
        |s| {
            s["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("FOO=bar baz=qux"));
        },
        sorted,
    ) else {
        return;
    };
    assert!(out.contains("HOME=/root") && out.contains("FOO=bar baz=qux"));
    compare(
        "env-user",
        script,
        |s| s["process"]["user"] = json!({"uid": 1, "gid": 1}),
        sorted,
    );
    compare(
        "env-nouser",
        script,
        |s| s["process"]["user"] = json!({"uid": 4242, "gid": 4242}),
        sorted,
    );
    compare(
        "env-home",
        script,
        |s| {
            s["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("HOME=/elsewhere"));
        },
        sorted,
    );
}

/// (j) A process killed by a signal: `run` exits 128+signal. The shell is not the pid
/// namespace's init here (which would ignore its own SIGKILL), so it can kill itself.
#[test]
fn killed_by_a_signal() {
    let no_pidns = |s: &mut Value| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    };
    let Some((out, code)) = compare(
        "sigkill",
        "echo before; kill -9 $$; echo after",
        no_pidns,
        same,
    ) else {
        return;
    };
    assert_eq!((out.as_str(), code), ("before\n", Some(137)));
    let (_, code) = compare("sigterm", "kill -TERM $$", no_pidns, same).unwrap();
    assert_eq!(code, Some(143));
}
