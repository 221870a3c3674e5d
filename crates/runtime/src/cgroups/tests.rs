use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::parse::{self, MountKind};
use super::*;

const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/user.slice
8:pids:/docker/abc/inner
4:memory:/process_api/89a1
3:cpuset:/
1:cpuacct,cpu:/
0::/user.slice/session-1.scope
";

const V2_MOUNTINFO: &str = "\
25 1 0:22 / /sys rw - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";

fn hybrid(path: Option<&str>) -> Result<Cgroup> {
    Cgroup::resolve(
        HYBRID_MOUNTINFO,
        HYBRID_PROC_CGROUP,
        Some(false),
        path.map(Path::new),
        "ctr1",
    )
}

fn dir_of(cg: &Cgroup, controller: &str) -> PathBuf {
    cg.path_for(controller).unwrap().to_path_buf()
}

#[test]
fn mountinfo_parsing() {
    let mounts = parse::parse_mountinfo(HYBRID_MOUNTINFO);
    assert_eq!(mounts.len(), 6);
    assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
    assert_eq!(mounts[1].controllers, ["cpuset"]);
    assert_eq!(mounts[3].root, "/docker/abc");
    assert_eq!(mounts[4].controllers, ["name=systemd"]);
    assert_eq!(mounts[5].kind, MountKind::V2);
    assert_eq!(mounts[5].mount_point, Path::new("/sys/fs/cgroup/unified"));

    let escaped = parse::parse_mountinfo("1 2 0:3 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n");
    assert_eq!(escaped[0].mount_point, Path::new("/mnt/my cg"));
}

#[test]
fn proc_cgroup_parsing() {
    let own = parse::parse_proc_cgroup(HYBRID_PROC_CGROUP);
    assert_eq!(own.len(), 6);
    assert_eq!(own[4].controllers, ["cpuacct", "cpu"]);
    assert_eq!(own[5].hierarchy_id, 0);
    assert!(own[5].controllers.is_empty());
    assert_eq!(own[5].path, "/user.slice/session-1.scope");
}

#[test]
fn resolve_absolute_hybrid() {
    let cg = hybrid(Some("/berth/abc")).unwrap();
    assert_eq!(cg.layout(), Layout::Hybrid);
    assert_eq!(cg.v1_hierarchies().len(), 5);
    assert_eq!(
        dir_of(&cg, "cpuacct"),
        Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/abc")
    );
    assert_eq!(dir_of(&cg, "cpu"), dir_of(&cg, "cpuacct"));
    assert_eq!(
        dir_of(&cg, "memory"),
        Path::new("/sys/fs/cgroup/memory/berth/abc")
    );
    assert_eq!(
        dir_of(&cg, "pids"),
        Path::new("/sys/fs/cgroup/pids/berth/abc")
    );
    assert_eq!(
        dir_of(&cg, "name=systemd"),
        Path::new("/sys/fs/cgroup/systemd/berth/abc")
    );
    assert_eq!(
        cg.unified_path().unwrap(),
        Path::new("/sys/fs/cgroup/unified/berth/abc")
    );

    let cg = hybrid(Some("/docker/abc/sub")).unwrap();
    assert_eq!(dir_of(&cg, "pids"), Path::new("/sys/fs/cgroup/pids/sub"));
}

#[test]
fn resolve_relative_hybrid() {
    let cg = hybrid(Some("berth/abc")).unwrap();
    assert_eq!(
        dir_of(&cg, "memory"),
        Path::new("/sys/fs/cgroup/memory/process_api/89a1/berth/abc")
    );
    assert_eq!(
        dir_of(&cg, "cpu"),
        Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/abc")
    );
    assert_eq!(
        dir_of(&cg, "pids"),
        Path::new("/sys/fs/cgroup/pids/inner/berth/abc")
    );
    assert_eq!(
        dir_of(&cg, "name=systemd"),
        Path::new("/sys/fs/cgroup/systemd/user.slice/berth/abc")
    );
    assert_eq!(
        cg.unified_path().unwrap(),
        Path::new("/sys/fs/cgroup/unified/user.slice/session-1.scope/berth/abc")
    );

    let default = hybrid(None).unwrap();
    assert_eq!(
        dir_of(&default, "memory"),
        Path::new("/sys/fs/cgroup/memory/process_api/89a1/berth/ctr1")
    );
}

#[test]
fn resolve_unified() {
    let cg = Cgroup::resolve(
        V2_MOUNTINFO,
        "0::/user.slice/user-0.slice\n",
        Some(true),
        None,
        "c2",
    )
    .unwrap();
    assert_eq!(cg.layout(), Layout::Unified);
    assert!(cg.v1_hierarchies().is_empty());
    assert_eq!(
        cg.path_for("memory").unwrap(),
        Path::new("/sys/fs/cgroup/user.slice/user-0.slice/berth/c2")
    );
    let abs = Cgroup::resolve(V2_MOUNTINFO, "0::/\n", None, Some(Path::new("/a/b")), "x").unwrap();
    assert_eq!(abs.unified_path().unwrap(), Path::new("/sys/fs/cgroup/a/b"));
}

#[test]
fn resolve_legacy() {
    let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    let cg = Cgroup::resolve(mi, "1:cpu,cpuacct:/\n", Some(false), None, "c").unwrap();
    assert_eq!(cg.layout(), Layout::Legacy);
    assert!(cg.unified_path().is_none());
    assert_eq!(
        cg.path_for("cpu").unwrap(),
        Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/c")
    );
}

#[test]
fn invalid_paths_rejected() {
    for bad in ["/a/../b", "../x", "system.slice:berth:abc", "/", ""] {
        let err = hybrid(Some(bad)).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    let cg = hybrid(Some("/a/./b//c")).unwrap();
    assert_eq!(
        dir_of(&cg, "memory"),
        Path::new("/sys/fs/cgroup/memory/a/b/c")
    );
}

#[test]
fn cgroup_serde_roundtrip() {
    let cg = hybrid(Some("/berth/abc")).unwrap();
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(cg, back);
}

#[test]
fn shares_to_weight_matches_runc() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(parse::blkio_weight_to_io_weight(10), 1);
    assert_eq!(parse::blkio_weight_to_io_weight(1000), 10_000);
}

#[test]
fn flat_keyed_parsing() {
    let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
    let m = parse::flat_keyed(oom);
    assert_eq!(m["oom_kill"], 3);
    assert_eq!(m["under_oom"], 0);
    let stat = "cache 4096\nrss 8192\ntotal_cache 4096\ntotal_rss 12288\n";
    let m = parse::flat_keyed(stat);
    assert_eq!(m.len(), 4);
    assert_eq!(m["total_rss"], 12288);
}

#[test]
fn blkio_parsing() {
    let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 1\nTotal 12289\n";
    let m = parse::v1_blkio(v1);
    assert_eq!(m[&(8, 0)], (4096, 8192));
    assert_eq!(m[&(8, 16)], (1, 0));
    let v2 = parse::v2_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
    assert_eq!(v2.len(), 1);
    assert_eq!(
        (v2[0].major, v2[0].minor, v2[0].read_bytes, v2[0].write_ios),
        (259, 0, 10, 2)
    );
}

#[test]
fn swap_conversion_v2() {
    assert_eq!(v2::swap_v2(None, Some(-1)).unwrap(), Some(-1));
    assert_eq!(v2::swap_v2(None, Some(100)).unwrap(), None);
    assert_eq!(v2::swap_v2(Some(-1), Some(100)).unwrap(), Some(-1));
    assert_eq!(v2::swap_v2(Some(300), Some(100)).unwrap(), Some(200));
    assert!(v2::swap_v2(Some(50), Some(100)).is_err());
    assert!(v2::swap_v2(Some(50), None).is_err());
}

#[test]
fn device_rule_lines() {
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .access("rwm")
        .build()
        .unwrap();
    assert_eq!(v1::device_rule_line(&rule), "c 1:3 rwm");
    let all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .build()
        .unwrap();
    assert_eq!(v1::device_rule_line(&all), "a *:* rwm");
}

#[test]
fn bpf_jumps_stay_in_program() {
    let rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap(),
    ];
    let prog = bpf::compile(&rules).unwrap();
    // prologue 6 + allow block (type, 3 access, major, minor, mov, exit) + the
    // unconditional deny (mov, exit), after which nothing is emitted
    assert_eq!(prog.len(), 6 + 8 + 2);
    assert_eq!(bpf::compile(&rules[1..]).unwrap().len(), 6 + 8 + 2);
    assert!(bpf::compile(&[LinuxDeviceCgroupBuilder::default()
        .access("rx")
        .build()
        .unwrap()])
    .is_err());
}

#[test]
fn error_messages_name_file_and_value() {
    let e = CgroupError::Write {
        path: PathBuf::from("/sys/fs/cgroup/memory/x/memory.limit_in_bytes"),
        value: "100".into(),
        source: std::io::Error::from_raw_os_error(libc::EBUSY),
    };
    assert_eq!(
        e.to_string(),
        "cgroup: write 100 to /sys/fs/cgroup/memory/x/memory.limit_in_bytes: \
         Device or resource busy"
    );
}

// ---- root integration tests ----

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Owns a test cgroup and the children put in it; cleans both up on drop.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

fn test_cgroup() -> Option<Guard> {
    if !nix::unistd::geteuid().is_root() || !Path::new("/sys/fs/cgroup").exists() {
        eprintln!("skipping: needs root and /sys/fs/cgroup");
        return None;
    }
    let path = format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut cg = Cgroup::new(Some(Path::new(&path)), "test").unwrap();
    let mut guard = Guard {
        cg: cg.clone(),
        children: Vec::new(),
    };
    cg.create().unwrap();
    guard.cg = cg;
    Some(guard)
}

/// `sh -c script` that waits for a line on stdin before running `script`, so it can be
/// moved into the cgroup first.
fn gated_child(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn resources(memory: i64, swap: Option<i64>) -> LinuxResources {
    let mut mem = LinuxMemoryBuilder::default().limit(memory);
    if let Some(s) = swap {
        mem = mem.swap(s);
    }
    LinuxResourcesBuilder::default()
        .memory(mem.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .quota(50_000i64)
                .period(100_000u64)
                .shares(512u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn has_memsw(cg: &Cgroup) -> bool {
    cg.layout() != Layout::Unified
        && cg
            .path_for("memory")
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists())
}

#[test]
fn root_lifecycle() {
    let Some(mut g) = test_cgroup() else { return };
    for d in g.cg.created_dirs() {
        assert!(d.is_dir(), "{} not created", d.display());
    }
    if let Some(cpuset) = g.cg.v1_dir("cpuset") {
        let cpus = std::fs::read_to_string(cpuset.join("cpuset.cpus")).unwrap();
        assert!(!cpus.trim().is_empty());
    }
    let limit = 64 << 20;
    let swap = has_memsw(&g.cg).then_some(limit);
    g.cg.apply(&resources(limit, swap)).unwrap();

    let mut child = gated_child("i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 30");
    let pid = child.id() as i32;
    g.cg.add_process(pid).unwrap();
    release(&mut child);
    g.children.push(child);

    assert_eq!(g.cg.processes().unwrap(), vec![pid]);
    for h in g.cg.v1_hierarchies() {
        let procs = std::fs::read_to_string(h.path.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "{}", h.path.display());
    }

    match g.cg.layout() {
        Layout::Unified => {
            let dir = g.cg.unified_path().unwrap();
            let max = std::fs::read_to_string(dir.join("cpu.max")).unwrap();
            assert_eq!(max.trim(), "50000 100000");
        }
        _ => {
            let dir = g.cg.path_for("cpu").unwrap();
            let q = std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).unwrap();
            assert_eq!(q.trim(), "50000");
        }
    }

    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());

    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let s = g.cg.stats().unwrap();
        if s.cpu.usage_total > 0 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(stats.cpu.usage_total > 0, "{stats:?}");
    assert_eq!(stats.memory.limit, Some(limit as u64));
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, Some(10));
    assert!(!stats.memory.stat.is_empty());
    assert!(!g.cg.oom_killed().unwrap());

    g.cg.freeze().unwrap();
    g.cg.destroy().unwrap();
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for d in g.cg.created_dirs() {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    g.cg.destroy().unwrap();
}

#[test]
fn root_memory_hog_is_oom_killed() {
    let Some(mut g) = test_cgroup() else { return };
    let limit = 32 << 20;
    let swap = has_memsw(&g.cg).then_some(limit);
    g.cg.apply(&resources(limit, swap)).unwrap();
    let mut child = gated_child("x=aaaaaaaa; while :; do x=$x$x; done");
    g.cg.add_process(child.id() as i32).unwrap();
    release(&mut child);
    g.children.push(child);
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(g.cg.oom_killed().unwrap());
}

#[test]
fn root_v1_limit_below_usage_is_ebusy() {
    let Some(mut g) = test_cgroup() else { return };
    if g.cg.layout() == Layout::Unified || !has_memsw(&g.cg) {
        return;
    }
    let swap_total = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("SwapTotal:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .map(|v| v.parse::<u64>().unwrap())
        })
        .unwrap_or(0);
    if swap_total != 0 {
        return;
    }
    g.cg.apply(&resources(64 << 20, Some(64 << 20))).unwrap();
    // The shell must stay (not exec sleep): its 8 MiB string is the usage under test.
    let mut child = gated_child("x=aaaaaaaa; i=0; while [ $i -lt 20 ]; do x=$x$x; i=$((i+1)); done; echo ready >&2; sleep 30 <&-");
    g.cg.add_process(child.id() as i32).unwrap();
    release(&mut child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    g.children.push(child);
    assert_eq!(line.trim(), "ready");
    let small = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1i64 << 20)
                .swap(1i64 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = g.cg.apply(&small).unwrap_err().to_string();
    assert!(err.contains("limit_in_bytes"), "{err}");
    assert!(err.contains("Device or resource busy"), "{err}");
}

#[test]
fn root_device_filter_denies() {
    let Some(mut g) = test_cgroup() else { return };
    let Some(dir) = g.cg.unified_path().map(Path::to_path_buf) else {
        return;
    };
    let rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap(),
    ];
    bpf::apply_device_rules(&dir, &rules).unwrap();
    // Applying twice replaces the program instead of stacking a second one.
    bpf::apply_device_rules(&dir, &rules).unwrap();
    let mut child = gated_child(
        "head -c1 /dev/null || exit 3; head -c1 /dev/zero >/dev/null 2>&1 && exit 4; exit 0",
    );
    g.cg.add_process(child.id() as i32).unwrap();
    release(&mut child);
    g.children.push(child);
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn root_v2_freezer_on_unified_dir() {
    let Some(mut g) = test_cgroup() else { return };
    let Some(dir) = g.cg.unified_path().map(Path::to_path_buf) else {
        return;
    };
    if !dir.join("cgroup.freeze").exists() {
        return;
    }
    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    g.children.push(child);
    g.cg.add_process(pid).unwrap();
    v2::set_frozen(&dir, true).unwrap();
    assert!(v2::is_frozen(&dir).unwrap());
    v2::set_frozen(&dir, false).unwrap();
    assert!(!v2::is_frozen(&dir).unwrap());
    let st = v2::stats(&dir).unwrap();
    assert_eq!(st.pids.current, 0);
    assert_eq!(read_procs(&dir).unwrap(), vec![pid]);
}
