//! The OCI runtime spec (`config.json`) of a container: oci-spec's defaults (the
//! standard mounts, masked and read-only paths) adjusted to what Docker gives a
//! container: capabilities, seccomp, device rules, `--security-opt` and `--init`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Container, HostConfig};
use crate::error::{Error, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the engine knows, indexed by the capability's number (the bit of
/// it in `/proc/<pid>/status`).
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The capabilities in berthd's own bounding set: what `--privileged` and
/// `--cap-add ALL` give, since a container cannot hold more than its runtime (a host
/// or an outer container may have taken some away).
fn bounding_set() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.is_none_or(|m| m & (1u64 << i) != 0))
        .map(|(_, c)| c.to_string())
        .collect()
}

/// `chown` → `CAP_CHOWN`; `ALL` stays.
fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set from Docker's defaults, `CapAdd` and `CapDrop`.
pub fn capabilities(h: &HostConfig) -> Result<Vec<String>> {
    if h.privileged {
        return Ok(bounding_set());
    }
    let add: Vec<String> = h.cap_add.iter().map(|c| cap_name(c)).collect();
    let drop: Vec<String> = h.cap_drop.iter().map(|c| cap_name(c)).collect();
    for c in add.iter().chain(&drop) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::InvalidParameter(format!(
                "unknown capability: \"{c}\""
            )));
        }
    }
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        bounding_set()
    } else {
        let mut v: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        for c in &add {
            if !v.contains(c) {
                v.push(c.clone());
            }
        }
        v
    };
    if drop.iter().any(|c| c == "ALL") {
        caps.retain(|c| add.contains(c));
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    Ok(caps)
}

/// `--security-opt` as dockerd reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    /// `seccomp=`: empty or `builtin` for Docker's default profile, `unconfined`, or a
    /// profile's JSON (the docker CLI sends a profile file's content).
    pub seccomp: String,
}

/// Parses `--security-opt` values, with dockerd's errors. SELinux labels and AppArmor
/// profiles are accepted and have no effect: berth applies neither (as dockerd on a
/// host without them).
pub fn security_options(opts: &[String]) -> Result<SecurityOptions> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        // `key:value` is the deprecated spelling dockerd still takes.
        let kv = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((k, v)) = kv else {
            return Err(Error::InvalidParameter(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        let bad = || Error::InvalidParameter(format!("invalid --security-opt 2: {opt:?}"));
        match k {
            "label" | "apparmor" => {}
            "seccomp" => out.seccomp = v.to_string(),
            "no-new-privileges" => out.no_new_privileges = parse_go_bool(v).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The seccomp section for a container with bounding set `caps`; `None` when it runs
/// unconfined.
fn seccomp(h: &HostConfig, sec: &SecurityOptions, caps: &[String]) -> Result<Option<Value>> {
    if h.privileged || sec.seccomp == "unconfined" {
        return Ok(None);
    }
    let profile = match sec.seccomp.as_str() {
        "" | "builtin" => super::seccomp::DEFAULT_PROFILE,
        json => json,
    };
    super::seccomp::convert(profile, caps).map(Some)
}

/// Where the init of `--init` mounts, as in Docker.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The `berth-init` binary: `$BERTH_INIT`, or next to the running executable (as the
/// shim is found).
fn init_binary() -> Result<PathBuf> {
    let p = match std::env::var_os("BERTH_INIT") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("berth-init")))
            .unwrap_or_else(|| "berth-init".into()),
    };
    if !p.is_file() {
        return Err(Error::Internal(format!(
            "failed to find init binary: {}: no such file",
            p.display()
        )));
    }
    Ok(p)
}

/// The device cgroup rule `{allow, type, major, minor, access}`.
fn dev_rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>) -> Value {
    let mut r = json!({"allow": allow, "access": "rwm"});
    if !typ.is_empty() {
        r["type"] = json!(typ);
    }
    if let Some(m) = major {
        r["major"] = json!(m);
    }
    if let Some(m) = minor {
        r["minor"] = json!(m);
    }
    r
}

/// Device rules of an unprivileged container: everything denied, then the nodes every
/// container has (runc's allowed devices, which Docker relies on) and mknod of any
/// node (opening one still needs its own rule).
fn default_device_rules() -> Vec<Value> {
    let mut v = vec![dev_rule(false, "a", None, None)];
    v.push(json!({"allow": true, "type": "c", "access": "m"}));
    v.push(json!({"allow": true, "type": "b", "access": "m"}));
    for (major, minor) in [
        (1, Some(3)),    // null
        (1, Some(5)),    // zero
        (1, Some(7)),    // full
        (1, Some(8)),    // random
        (1, Some(9)),    // urandom
        (5, Some(0)),    // tty
        (5, Some(1)),    // console
        (5, Some(2)),    // ptmx
        (136, None),     // pts/*
        (10, Some(200)), // net/tun
    ] {
        v.push(dev_rule(true, "c", Some(major), minor));
    }
    v
}

/// The host's device nodes below `dir`, as `linux.devices` entries, for
/// `--privileged` (what Docker does). Nodes that cannot be read are skipped, as are
/// the ones every container gets its own of (pts, shm, mqueue, the console).
fn host_devices(dir: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name();
        let name = name.to_string_lossy();
        if md.is_dir() {
            if !matches!(
                name.as_ref(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                host_devices(&path, out);
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        let ft = md.file_type();
        let typ = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = md.rdev();
        out.push(json!({
            "path": path,
            "type": typ,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": md.mode() & 0o7777,
            "uid": md.uid(),
            "gid": md.gid(),
        }));
    }
}

/// Resolves `user` (`name`, `uid`, `uid:gid`, `name:group`) against the rootfs's
/// `/etc/passwd` and `/etc/group`: (uid, gid, additional gids).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let read = |f: &str| std::fs::read_to_string(rootfs.join(f)).unwrap_or_default();
    let passwd = read("etc/passwd");
    let group = read("etc/group");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, mut gid, uname) = if u.is_empty() {
        (0, 0, "root".to_string())
    } else if let Ok(n) = u.parse::<u32>() {
        let pw = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[2].parse() == Ok(n));
        match pw {
            Some(f) => (n, f[3].parse().unwrap_or(0), f[0].to_string()),
            None => (n, 0, String::new()),
        }
    } else {
        let pw = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .ok_or_else(|| {
                Error::InvalidParameter(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
        (
            pw[2].parse().unwrap_or(0),
            pw[3].parse().unwrap_or(0),
            u.to_string(),
        )
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() > 3)
        .collect();
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::InvalidParameter(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut extra: Vec<u32> = Vec::new();
    if !uname.is_empty() {
        for f in &groups {
            if f[3].split(',').any(|m| m == uname) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !extra.contains(&n) {
                        extra.push(n);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

/// The spec for container `c` whose bundle (with `rootfs`, `hostname`, `hosts` and
/// `resolv.conf`) is `dir`.
pub fn generate(c: &Container, dir: &Path) -> Result<Value> {
    let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default())
        .map_err(|e| Error::Internal(format!("default spec: {e}")))?;
    let h = &c.host_config;
    let (uid, gid, extra) = resolve_user(&dir.join("rootfs"), &c.config.user)?;
    let caps = capabilities(h)?;
    let sec = security_options(&h.security_opt)?;
    let cwd = if c.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.config.working_dir.clone()
    };
    let init = h.init == Some(true);
    let mut args = Vec::new();
    if init {
        args.extend([INIT_PATH.to_string(), "--".to_string()]);
    }
    args.push(c.path.clone());
    args.extend(c.args.iter().cloned());
    // What dockerd adds to every container's environment.
    let mut env = vec![format!("HOSTNAME={}", c.config.hostname)];
    if c.config.tty {
        env.push("TERM=xterm".into());
    }
    env.retain(|d| {
        let k = d.split('=').next().unwrap_or_default();
        !c.env.iter().any(|e| e.split('=').next() == Some(k))
    });
    env.extend(c.env.iter().cloned());
    let mut user = json!({"uid": uid, "gid": gid});
    if !extra.is_empty() {
        user["additionalGids"] = json!(extra);
    }
    spec["process"] = json!({
        "terminal": c.config.tty,
        "user": user,
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": sec.no_new_privileges,
        "rlimits": [],
    });
    spec["root"] = json!({"path": "rootfs", "readonly": h.readonly_rootfs});
    spec["hostname"] = json!(c.config.hostname);
    if !c.config.domainname.is_empty() {
        spec["domainname"] = json!(c.config.domainname);
    }
    let mounts = spec["mounts"].as_array_mut().expect("default mounts");
    for m in mounts.iter_mut() {
        // Docker mounts /sys read-write for privileged containers only.
        if h.privileged && m["destination"] == "/sys" {
            m["options"] = json!(["nosuid", "noexec", "nodev"]);
        }
    }
    for (file, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        mounts.push(json!({
            "destination": dest,
            "type": "bind",
            "source": dir.join(file),
            "options": ["rbind", "rprivate"],
        }));
    }
    if init {
        mounts.push(json!({
            "destination": INIT_PATH,
            "type": "bind",
            "source": init_binary()?,
            "options": ["bind", "ro"],
        }));
    }
    let seccomp = seccomp(h, &sec, &caps)?;
    let linux = &mut spec["linux"];
    let mut ns = vec![
        json!({"type": "mount"}),
        json!({"type": "uts"}),
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "cgroup"}),
    ];
    if h.network_mode != "host" {
        ns.push(json!({"type": "network"}));
    }
    linux["namespaces"] = json!(ns);
    linux["cgroupsPath"] = json!(format!("/berth/{}", c.id));
    if h.privileged {
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
    } else {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    let mut res = json!({});
    if h.privileged {
        let mut devs = Vec::new();
        host_devices(Path::new("/dev"), &mut devs);
        linux["devices"] = json!(devs);
        res["devices"] = json!([
            dev_rule(false, "a", None, None),
            dev_rule(true, "a", None, None)
        ]);
    } else {
        res["devices"] = json!(default_device_rules());
    }
    if h.memory > 0 {
        res["memory"] = json!({"limit": h.memory});
    }
    if h.nano_cpus > 0 {
        const PERIOD: i64 = 100_000;
        res["cpu"] = json!({"quota": h.nano_cpus * PERIOD / 1_000_000_000, "period": PERIOD});
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        res["pids"] = json!({"limit": p});
    }
    linux["resources"] = res;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        let h = HostConfig {
            cap_add: vec!["sys_admin".into()],
            cap_drop: vec!["CAP_CHOWN".into(), "net_raw".into()],
            ..Default::default()
        };
        let c = capabilities(&h).unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(!c.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(c.len(), DEFAULT_CAPS.len() - 1);
        let h = HostConfig {
            cap_add: vec!["bogus".into()],
            ..Default::default()
        };
        assert!(capabilities(&h).is_err());
    }

    #[test]
    fn cap_numbers() {
        // The bits of CapBnd index ALL_CAPS.
        assert_eq!(ALL_CAPS[21], "CAP_SYS_ADMIN");
        assert_eq!(ALL_CAPS[24], "CAP_SYS_RESOURCE");
        assert_eq!(ALL_CAPS[40], "CAP_CHECKPOINT_RESTORE");
        let h = HostConfig {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(capabilities(&h).unwrap(), bounding_set());
    }

    #[test]
    fn security_opts() {
        let p = |o: &[&str]| security_options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        for o in [
            "no-new-privileges",
            "no-new-privileges:true",
            "no-new-privileges=1",
        ] {
            assert!(p(&[o]).unwrap().no_new_privileges, "{o}");
        }
        assert!(!p(&["no-new-privileges=false"]).unwrap().no_new_privileges);
        let s = p(&[
            "label=disable",
            "label:disable",
            "disable",
            "apparmor=unconfined",
            "seccomp=unconfined",
        ]);
        assert_eq!(s.unwrap().seccomp, "unconfined");
        let err = |o: &str| match p(&[o]) {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(err("foo=bar"), r#"invalid --security-opt 2: "foo=bar""#);
        assert_eq!(err("label"), r#"invalid --security-opt 1: "label""#);
        assert_eq!(
            err("no-new-privileges=maybe"),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }

    #[test]
    fn users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nweb:x:34:\nextra:x:50:www\n",
        )
        .unwrap();
        assert_eq!(resolve_user(d.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(d.path(), "www").unwrap(), (33, 34, vec![50]));
        assert_eq!(resolve_user(d.path(), "1000:7").unwrap(), (1000, 7, vec![]));
        assert_eq!(
            resolve_user(d.path(), "33:root").unwrap(),
            (33, 0, vec![50])
        );
        assert!(resolve_user(d.path(), "nobody").is_err());
    }
}
