//! Pure parsers for `/proc` and cgroup file formats.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Known cgroup v1 controllers, used to pick controllers out of a mount's super options.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MountKind {
    V1,
    V2,
}

/// A cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupMount {
    pub kind: MountKind,
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (mountinfo field 4).
    pub root: String,
    /// v1 controllers (`name=...` included); empty for cgroup2.
    pub controllers: Vec<String>,
}

/// Every cgroup/cgroup2 mount in a mountinfo text.
pub(super) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let _source = post.next()?;
            let super_opts = post.next().unwrap_or("");
            let root = unescape(pre.get(3)?);
            let mount_point = PathBuf::from(unescape(pre.get(4)?));
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    kind: MountKind::V2,
                    mount_point,
                    root,
                    controllers: Vec::new(),
                }),
                "cgroup" => {
                    let controllers: Vec<String> = super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    (!controllers.is_empty()).then_some(CgroupMount {
                        kind: MountKind::V1,
                        mount_point,
                        root,
                        controllers,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Undo mountinfo's octal escapes (`\040` for space and so on).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(b) = s
                .get(i + 1..i + 4)
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcCgroup {
    pub hierarchy_id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parse `/proc/<pid>/cgroup`.
pub(super) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy_id = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let path = parts.next()?.to_string();
            Some(ProcCgroup {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Parse "key value" lines (`memory.stat`, `cpu.stat`, `memory.oom_control`,
/// `memory.events`). Lines whose value is not a number are skipped.
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Convert cgroup v1 `cpu.shares` (2..=262144) to cgroup v2 `cpu.weight` (1..=10000) the
/// way runc does. 0 (unset) stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Convert a v1 blkio weight (10..=1000) to a v2 `io.weight` (1..=10000), as runc does.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(10, 1000);
    1 + (weight - 10) * 9999 / 990
}

/// Per-device (major, minor) → (read, write) from a v1 `blkio.*io_service*` file
/// (`8:0 Read 4096` lines).
pub(super) fn v1_blkio(text: &str) -> BTreeMap<(u64, u64), (u64, u64)> {
    let mut out: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dev, op, val] = f[..] else { continue };
        let (Some(dev), Ok(val)) = (major_minor(dev), val.parse::<u64>()) else {
            continue;
        };
        let e = out.entry(dev).or_default();
        match op {
            "Read" => e.0 += val,
            "Write" => e.1 += val,
            _ => {}
        }
    }
    out
}

/// v2 `io.stat` lines (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`).
pub(super) fn v2_io_stat(text: &str) -> Vec<super::BlkioDeviceStats> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (major, minor) = major_minor(it.next()?)?;
            let mut d = super::BlkioDeviceStats {
                major,
                minor,
                ..Default::default()
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => d.read_bytes = v,
                    "wbytes" => d.write_bytes = v,
                    "rios" => d.read_ios = v,
                    "wios" => d.write_ios = v,
                    _ => {}
                }
            }
            Some(d)
        })
        .collect()
}

fn major_minor(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
