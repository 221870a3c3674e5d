//! Resource limits from `linux.resources` are written to the container's cgroup and
//! enforced by the kernel; `cgroupsPath` is honoured and cleaned up.

mod common;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use support::*;

const SEC: Duration = Duration::from_secs(1);
const MIB: i64 = 1 << 20;

/// A bundle whose cgroup is at the absolute `cgroupsPath` `/berth-test-<unique>`.
fn bundle_at(name: &str) -> (Bundle, String) {
    let mut b = Bundle::new(name);
    let cg = unique(&format!("berth-test-{name}"));
    let path = format!("/{cg}");
    b.edit(|s| s["linux"]["cgroupsPath"] = json!(path));
    (b, cg)
}

fn resources(b: &mut Bundle, r: Value) {
    b.edit(|s| {
        let res = s["linux"]["resources"].as_object_mut().unwrap();
        for (k, v) in r.as_object().unwrap() {
            res.insert(k.clone(), v.clone());
        }
    });
}

/// The container's directory in the v1 hierarchy of `controller`.
fn dir(controller: &str, cg: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup").join(controller).join(cg)
}

fn read(controller: &str, cg: &str, file: &str) -> String {
    let p = dir(controller, cg).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn run_detached(rt: &Runtime, b: &Bundle, id: &str) -> std::process::Output {
    let mut cmd = rt.cmd();
    cmd.args(["run", "-d", "-b"]).arg(&b.dir).arg(id);
    detached(&mut cmd)
}

/// Removes the cgroup directories a test named, whatever the runtime left.
struct CgroupGuard(String);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        for d in cgroup_dirs(&self.0) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A process that outgrows a 32 MiB memory (+swap) limit is OOM-killed: exit 137 and
/// `oomKilled` in the state.
#[test]
fn memory_limit_oom_kills_the_container() {
    let rt = Runtime::new("cg");
    let (mut b, cg) = bundle_at("oom");
    let _g = CgroupGuard(cg.clone());
    resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
    );
    // The shell itself (the container's init) grows a string past the limit.
    b.sh("x=0123456789abcdef; while :; do x=$x$x; done");
    let id = unique("oom");
    let out = rt
        .cmd()
        .args(["run", "--keep", "-b"])
        .arg(&b.dir)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["oomKilled"], true, "{st}");
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        (32 * MIB).to_string()
    );
    if dir("memory", &cg)
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            read("memory", &cg, "memory.memsw.limit_in_bytes"),
            (32 * MIB).to_string()
        );
    }
    ok(&rt.exec(&["delete", &id]));
    assert!(!dir("memory", &cg).exists(), "cgroup left after delete");
}

/// A container that stays under its memory limit is not reported as OOM-killed, and its
/// cgroup statistics are readable through the library.
#[test]
fn memory_stats_of_a_running_container() {
    let rt = Runtime::new("cg");
    let (mut b, cg) = bundle_at("stats");
    let _g = CgroupGuard(cg.clone());
    resources(
        &mut b,
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 30}}),
    );
    b.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 100");
    let id = unique("stats");
    ok(&run_detached(&rt, &b, &id));
    let c = runtime::container::Container::load(&rt.root, &id).unwrap();
    let mut stats = c.record.cgroup.stats().unwrap();
    assert!(wait_for(10 * SEC, || {
        stats = c.record.cgroup.stats().unwrap();
        stats.cpu.usage_total > 0 && stats.memory.usage > 0
    }));
    assert_eq!(stats.memory.limit, Some(64 << 20), "{stats:?}");
    assert_eq!(stats.pids.limit, Some(30), "{stats:?}");
    assert!(stats.pids.current >= 1, "{stats:?}");
    assert!(!stats.memory.stat.is_empty());
    assert_eq!(rt.state(&id)["oomKilled"], false);
}

/// pids.max caps the number of processes: forks beyond it fail.
#[test]
fn pids_limit_stops_forks() {
    let rt = Runtime::new("cg");
    let (mut b, cg) = bundle_at("pids");
    let _g = CgroupGuard(cg.clone());
    resources(&mut b, json!({"pids": {"limit": 20}}));
    b.args(&["sleep", "100"]);
    let id = unique("pids");
    ok(&run_detached(&rt, &b, &id));
    assert_eq!(read("pids", &cg, "pids.max"), "20");
    let mut cmd = rt.cmd();
    cmd.args(["exec", &id, "sh", "-c"])
        .arg("for i in $(seq 100); do sleep 10 & done; echo looped");
    let out = detached(&mut cmd);
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "no fork failed: status {:?} stderr {err}",
        out.status
    );
    // Forked children may not have exec'd sleep yet on a loaded machine: give them time.
    let mut procs: Vec<i32> = Vec::new();
    let mut sleeps = 0;
    for _ in 0..60 {
        procs = serde_json::from_str(&ok(&rt.exec(&["ps", "--format", "json", &id]))).unwrap();
        sleeps = procs
            .iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x0010\x00")
            })
            .count();
        if sleeps >= 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(procs.len() <= 20, "{} processes: {procs:?}", procs.len());
    assert!(
        sleeps >= 10,
        "only {sleeps} sleeps started: the limit is not 20"
    );
    let current: usize = read("pids", &cg, "pids.current").parse().unwrap();
    assert!(current <= 20, "pids.current {current}");
}

/// CPU quota, period, shares and cpuset are written to the cgroup at cgroupsPath, which
/// exists while the container does and is gone after delete.
#[test]
fn cpu_settings_and_cgroups_path() {
    let rt = Runtime::new("cg");
    let (mut b, cg) = bundle_at("cpu");
    let _g = CgroupGuard(cg.clone());
    resources(
        &mut b,
        json!({"cpu": {"quota": 25000, "period": 50000, "shares": 512, "cpus": "0", "mems": "0"}}),
    );
    b.args(&["sleep", "100"]);
    let id = unique("cpu");
    ok(&run_detached(&rt, &b, &id));
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(read("cpu", &cg, "cpu.cfs_quota_us"), "25000");
    assert_eq!(read("cpu", &cg, "cpu.cfs_period_us"), "50000");
    assert_eq!(read("cpu", &cg, "cpu.shares"), "512");
    assert_eq!(read("cpuset", &cg, "cpuset.cpus"), "0");
    let allowed = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = allowed
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    for c in [
        "memory", "cpu", "pids", "freezer", "cpuset", "devices", "blkio",
    ] {
        let d = dir(c, &cg);
        assert!(d.is_dir(), "{} missing", d.display());
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "init {pid} not in {}: {procs}",
            d.display()
        );
    }
    ok(&rt.exec(&["delete", "-f", &id]));
    assert!(cgroup_dirs(&cg).is_empty(), "{:?}", cgroup_dirs(&cg));
}

/// Runs a container with `blockIO` settings: they either reach one of `files` in its
/// cgroup, or the run fails with an error naming the setting and the files (this kernel
/// may lack them), leaving nothing behind.
fn blkio_applied_or_refused(name: &str, blockio: Value, setting: &str, files: &[&str]) {
    let rt = Runtime::new("cg");
    let (mut b, cg) = bundle_at(name);
    let _g = CgroupGuard(cg.clone());
    resources(&mut b, json!({ "blockIO": blockio }));
    b.args(&["sleep", "100"]);
    let id = unique(name);
    let out = run_detached(&rt, &b, &id);
    if out.status.success() {
        let d = dir("blkio", &cg);
        let f = files
            .iter()
            .find(|f| d.join(f).exists())
            .unwrap_or_else(|| panic!("{setting} accepted but none of {files:?} exists"));
        let v = read("blkio", &cg, f);
        assert!(v.ends_with("300"), "{f}: {v}");
    } else {
        let err = stderr(&out);
        assert!(
            err.contains(setting) && err.contains(files[0]),
            "unclear error: {err}"
        );
        assert!(!rt.exists(&id), "state left behind");
        assert!(cgroup_dirs(&cg).is_empty(), "{:?}", cgroup_dirs(&cg));
    }
}

/// blockIO.weight is applied, or refused with an error naming the missing files.
#[test]
fn blkio_weight_is_applied_or_refused_clearly() {
    blkio_applied_or_refused(
        "blkio",
        json!({"weight": 300}),
        "blockIO.weight",
        &["blkio.weight", "blkio.bfq.weight"],
    );
}

/// blockIO.leafWeight (gone with CFQ on new kernels) is applied or refused clearly.
#[test]
fn blkio_leaf_weight_is_applied_or_refused_clearly() {
    blkio_applied_or_refused(
        "blkleaf",
        json!({"leafWeight": 300}),
        "blockIO.leafWeight",
        &["blkio.leaf_weight"],
    );
}

/// A relative cgroupsPath is placed under the runtime's own cgroup and removed on delete.
#[test]
fn relative_cgroups_path_is_nested_and_removed() {
    let rt = Runtime::new("cg");
    let mut b = Bundle::new("relcg");
    let leaf = unique("berth-rel");
    let rel = format!("berth-test/{leaf}");
    b.edit(|s| s["linux"]["cgroupsPath"] = json!(rel));
    let _g = CgroupGuard(leaf.clone());
    b.args(&["sleep", "100"]);
    let id = unique("relcg");
    ok(&run_detached(&rt, &b, &id));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mem = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    let want = PathBuf::from("/sys/fs/cgroup/memory")
        .join(mem.trim_start_matches('/'))
        .join(&rel);
    assert!(want.is_dir(), "{} missing", want.display());
    ok(&rt.exec(&["delete", "-f", &id]));
    assert!(!want.exists(), "{} left after delete", want.display());
}
