//! cgroup v1 controllers (legacy and hybrid layouts).

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};

use super::{fs, parse, BlkioDeviceStats, Cgroup, CgroupError, Result, Stats};

/// v1 memory limits at or above this are the kernel's "unlimited" (i64::MAX page-aligned).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

fn unsupported(setting: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        setting: setting.into(),
        reason: reason.into(),
    }
}

fn need<'a>(cg: &'a Cgroup, controller: &str, setting: &str) -> Result<&'a Path> {
    cg.v1_dir(controller).ok_or_else(|| {
        unsupported(
            setting,
            format!("the v1 {controller} controller is not mounted"),
        )
    })
}

pub(super) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if let Some(unified) = r.unified() {
        if !unified.is_empty() {
            return Err(unsupported(
                "linux.resources.unified",
                "requires cgroup v2 (the host uses cgroup v1)",
            ));
        }
    }
    if let Some(m) = r.memory() {
        memory(cg, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids() {
        let dir = need(cg, "pids", "linux.resources.pids")?;
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        fs::write(&dir.join("pids.max"), &v)?;
    }
    if let Some(b) = r.block_io() {
        blkio(cg, b)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        if !limits.is_empty() {
            let dir = need(cg, "hugetlb", "linux.resources.hugepageLimits")?;
            for l in limits {
                let file = dir.join(format!("hugetlb.{}.limit_in_bytes", l.page_size()));
                fs::write(&file, &l.limit().to_string())?;
            }
        }
    }
    if let Some(devs) = r.devices() {
        devices(cg, devs)?;
    }
    if let Some(net) = r.network() {
        if let (Some(id), Some(dir)) = (net.class_id(), cg.v1_dir("net_cls")) {
            fs::write(&dir.join("net_cls.classid"), &id.to_string())?;
        }
        if let (Some(prios), Some(dir)) = (net.priorities(), cg.v1_dir("net_prio")) {
            for p in prios {
                fs::write(
                    &dir.join("net_prio.ifpriomap"),
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            let dir = need(cg, "rdma", "linux.resources.rdma")?;
            super::v2::write_rdma(dir, rdma)?;
        }
    }
    Ok(())
}

fn memory(cg: &Cgroup, m: &LinuxMemory) -> Result<()> {
    let dir = need(cg, "memory", "linux.resources.memory")?;
    let limit_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    let limit = m.limit().filter(|&l| l != 0);
    let mut swap = m.swap().filter(|&s| s != 0);
    if limit == Some(-1) && swap.is_none() && memsw_file.exists() {
        swap = Some(-1);
    }
    if let Some(s) = swap {
        if !memsw_file.exists() {
            if s != -1 && Some(s) != limit {
                return Err(unsupported(
                    "linux.resources.memory.swap",
                    format!(
                        "swap limit {s} differs from memory limit {} but {} does not exist \
                         (swap accounting disabled)",
                        limit.map_or("unset".to_string(), |l| l.to_string()),
                        memsw_file.display()
                    ),
                ));
            }
            swap = None;
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fs::read_u64(&limit_file)?.unwrap_or(u64::MAX);
            if s == -1 || (s > 0 && current < s as u64) {
                fs::write(&memsw_file, &s.to_string())?;
                fs::write(&limit_file, &l.to_string())?;
            } else {
                fs::write(&limit_file, &l.to_string())?;
                fs::write(&memsw_file, &s.to_string())?;
            }
        }
        (Some(l), None) => fs::write(&limit_file, &l.to_string())?,
        (None, Some(s)) => fs::write(&memsw_file, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        fs::write(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    if let Some(t) = m.kernel_tcp().filter(|&t| t != 0) {
        let f = dir.join("memory.kmem.tcp.limit_in_bytes");
        if f.exists() {
            fs::write(&f, &t.to_string())?;
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidValue {
                setting: "linux.resources.memory.swappiness".into(),
                value: s.to_string(),
                reason: "must be between 0 and 100".into(),
            });
        }
        fs::write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(&dir.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    let wants_cpu = c.shares().is_some_and(|s| s != 0)
        || c.quota().is_some_and(|q| q != 0)
        || c.period().is_some_and(|p| p != 0)
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_runtime().is_some_and(|r| r != 0)
        || c.realtime_period().is_some_and(|p| p != 0);
    if wants_cpu {
        let dir = need(cg, "cpu", "linux.resources.cpu")?;
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            fs::write(&dir.join("cpu.shares"), &s.to_string())?;
        }
        let quota = c.quota().filter(|&q| q != 0);
        if let Some(p) = c.period().filter(|&p| p != 0) {
            let period_file = dir.join("cpu.cfs_period_us");
            match fs::write(&period_file, &p.to_string()) {
                Err(CgroupError::Write { ref source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() =>
                {
                    fs::write(
                        &dir.join("cpu.cfs_quota_us"),
                        &quota.unwrap_or(-1).to_string(),
                    )?;
                    fs::write(&period_file, &p.to_string())?;
                }
                other => other?,
            }
        }
        if let Some(q) = quota {
            fs::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
        }
        if let Some(b) = c.burst() {
            fs::write(&dir.join("cpu.cfs_burst_us"), &b.to_string())?;
        }
        if let Some(i) = c.idle() {
            fs::write(&dir.join("cpu.idle"), &i.to_string())?;
        }
        if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
            fs::write(&dir.join("cpu.rt_period_us"), &p.to_string())?;
        }
        if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
            fs::write(&dir.join("cpu.rt_runtime_us"), &r.to_string())?;
        }
    }
    for (value, file, setting) in [
        (c.cpus(), "cpuset.cpus", "linux.resources.cpu.cpus"),
        (c.mems(), "cpuset.mems", "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let dir = need(cg, "cpuset", setting)?;
            fs::write(&dir.join(file), v)?;
        }
    }
    Ok(())
}

fn blkio(cg: &Cgroup, b: &LinuxBlockIo) -> Result<()> {
    let wants = b.weight().is_some()
        || b.leaf_weight().is_some()
        || [
            b.weight_device().as_ref().map(|v| v.is_empty()),
            b.throttle_read_bps_device().as_ref().map(|v| v.is_empty()),
            b.throttle_write_bps_device().as_ref().map(|v| v.is_empty()),
            b.throttle_read_iops_device().as_ref().map(|v| v.is_empty()),
            b.throttle_write_iops_device()
                .as_ref()
                .map(|v| v.is_empty()),
        ]
        .contains(&Some(false));
    if !wants {
        return Ok(());
    }
    let dir = need(cg, "blkio", "linux.resources.blockIO")?;
    let pick = |names: &[&str], setting: &str| {
        names
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| {
                unsupported(
                    setting,
                    format!("none of {} exists in {}", names.join(", "), dir.display()),
                )
            })
    };
    if let Some(w) = b.weight() {
        let f = pick(
            &["blkio.weight", "blkio.bfq.weight"],
            "linux.resources.blockIO.weight",
        )?;
        fs::write(&f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        let f = pick(&["blkio.leaf_weight"], "linux.resources.blockIO.leafWeight")?;
        fs::write(&f, &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let f = pick(
                &["blkio.weight_device", "blkio.bfq.weight_device"],
                "linux.resources.blockIO.weightDevice",
            )?;
            fs::write(&f, &format!("{}:{} {}", d.major(), d.minor(), w))?;
        }
        if let Some(w) = d.leaf_weight() {
            let f = pick(
                &["blkio.leaf_weight_device"],
                "linux.resources.blockIO.weightDevice.leafWeight",
            )?;
            fs::write(&f, &format!("{}:{} {}", d.major(), d.minor(), w))?;
        }
    }
    for (devs, file) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ] {
        for d in devs.iter().flatten() {
            fs::write(
                &dir.join(file),
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// The v1 `devices.allow`/`devices.deny` line for a rule, e.g. `c 1:3 rwm`.
pub(super) fn device_rule_line(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::P) => "p",
    };
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let access = d
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

fn devices(cg: &Cgroup, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let dir = need(cg, "devices", "linux.resources.devices")?;
    for d in rules {
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(&dir.join(file), &device_rule_line(d))?;
    }
    Ok(())
}

/// Give a new cpuset cgroup its parent's CPUs and memory nodes (an empty cpuset refuses
/// tasks).
pub(super) fn init_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(file);
        let Some(current) = fs::read_opt(&path)? else {
            continue;
        };
        if current.trim().is_empty() {
            let mut from_parent = fs::read(&parent.join(file))?;
            if from_parent.trim().is_empty() {
                // The parent may have just been made by another container that has not
                // filled it in yet: fill it (from its own parent) first.
                init_cpuset(parent)?;
                from_parent = fs::read(&parent.join(file))?;
            }
            if !from_parent.trim().is_empty() {
                fs::write(&path, from_parent.trim())?;
            }
        }
    }
    Ok(())
}

fn freezer_state(dir: &Path) -> Result<String> {
    Ok(fs::read(&dir.join("freezer.state"))?.trim().to_string())
}

/// Freeze, re-writing FROZEN while the kernel reports FREEZING and occasionally thawing
/// and retrying (runc's workaround for tasks stuck in FREEZING).
pub(super) fn freeze(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    let mut state = String::new();
    for i in 0..1000 {
        if i % 50 == 49 {
            let _ = fs::write(&file, "THAWED");
            sleep(Duration::from_millis(10));
        }
        fs::write(&file, "FROZEN")?;
        if i % 25 == 24 {
            sleep(Duration::from_millis(10));
        }
        state = freezer_state(dir)?;
        match state.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => sleep(Duration::from_micros(100)),
            _ => {
                return Err(CgroupError::Parse {
                    path: file,
                    reason: format!("unexpected state {state:?} after writing FROZEN"),
                })
            }
        }
    }
    let _ = fs::write(&file, "THAWED");
    Err(CgroupError::FreezeTimeout {
        path: file,
        state,
        wanted: "FROZEN".into(),
    })
}

pub(super) fn thaw(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    let mut state = String::new();
    for _ in 0..1000 {
        fs::write(&file, "THAWED")?;
        state = freezer_state(dir)?;
        if state == "THAWED" {
            return Ok(());
        }
        sleep(Duration::from_millis(1));
    }
    Err(CgroupError::FreezeTimeout {
        path: file,
        state,
        wanted: "THAWED".into(),
    })
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    match fs::read_opt(&dir.join("freezer.state"))? {
        Some(s) => Ok(s.trim() == "FROZEN"),
        None => Ok(false),
    }
}

fn clk_tck() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn limit_or_none(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v < V1_UNLIMITED)
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats> {
    let mut st = Stats::default();
    if let Some(dir) = cg.v1_dir("cpuacct") {
        st.cpu.usage_total = fs::read_u64(&dir.join("cpuacct.usage"))?.unwrap_or(0);
        if let Some(text) = fs::read_opt(&dir.join("cpuacct.usage_percpu"))? {
            st.cpu.per_cpu = text
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        let user = fs::read_u64(&dir.join("cpuacct.usage_user"));
        let sys = fs::read_u64(&dir.join("cpuacct.usage_sys"));
        match (user, sys) {
            (Ok(Some(u)), Ok(Some(s))) => {
                st.cpu.usage_user = u;
                st.cpu.usage_system = s;
            }
            _ => {
                if let Some(text) = fs::read_opt(&dir.join("cpuacct.stat"))? {
                    let m = parse::flat_keyed(&text);
                    let ns = 1_000_000_000 / clk_tck();
                    st.cpu.usage_user = m.get("user").copied().unwrap_or(0) * ns;
                    st.cpu.usage_system = m.get("system").copied().unwrap_or(0) * ns;
                }
            }
        }
    }
    if let Some(dir) = cg.v1_dir("cpu") {
        if let Some(text) = fs::read_opt(&dir.join("cpu.stat"))? {
            let m = parse::flat_keyed(&text);
            let g = |k: &str| m.get(k).copied().unwrap_or(0);
            st.cpu.throttling.periods = g("nr_periods");
            st.cpu.throttling.throttled_periods = g("nr_throttled");
            st.cpu.throttling.throttled_time = g("throttled_time");
        }
    }
    if let Some(dir) = cg.v1_dir("memory") {
        let m = &mut st.memory;
        m.usage = fs::read_u64(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0);
        m.max_usage = fs::read_u64(&dir.join("memory.max_usage_in_bytes"))?.unwrap_or(0);
        m.limit = limit_or_none(fs::read_u64(&dir.join("memory.limit_in_bytes"))?);
        m.swap_usage = fs::read_u64(&dir.join("memory.memsw.usage_in_bytes"))?;
        m.swap_limit = limit_or_none(fs::read_u64(&dir.join("memory.memsw.limit_in_bytes"))?);
        if let Some(text) = fs::read_opt(&dir.join("memory.stat"))? {
            m.stat = parse::flat_keyed(&text);
            let g = |a: &str, b: &str| m.stat.get(a).or_else(|| m.stat.get(b)).copied();
            m.cache = g("total_cache", "cache").unwrap_or(0);
            m.rss = g("total_rss", "rss").unwrap_or(0);
        }
    }
    if let Some(dir) = cg.v1_dir("pids") {
        st.pids.current = fs::read_u64(&dir.join("pids.current"))?.unwrap_or(0);
        st.pids.limit = fs::read_u64(&dir.join("pids.max"))?;
    }
    if let Some(dir) = cg.v1_dir("blkio") {
        let first = |names: [&str; 2]| -> Result<Option<String>> {
            for n in names {
                if let Some(t) = fs::read_opt(&dir.join(n))? {
                    if !t.lines().all(|l| l.starts_with("Total")) {
                        return Ok(Some(t));
                    }
                }
            }
            Ok(None)
        };
        let bytes = first([
            "blkio.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?
        .map(|t| parse::v1_blkio(&t))
        .unwrap_or_default();
        let ios = first([
            "blkio.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?
        .map(|t| parse::v1_blkio(&t))
        .unwrap_or_default();
        let mut devs: Vec<(u64, u64)> = bytes.keys().chain(ios.keys()).copied().collect();
        devs.sort_unstable();
        devs.dedup();
        st.blkio.devices = devs
            .into_iter()
            .map(|dev| {
                let (rb, wb) = bytes.get(&dev).copied().unwrap_or_default();
                let (ri, wi) = ios.get(&dev).copied().unwrap_or_default();
                BlkioDeviceStats {
                    major: dev.0,
                    minor: dev.1,
                    read_bytes: rb,
                    write_bytes: wb,
                    read_ios: ri,
                    write_ios: wi,
                }
            })
            .collect();
    }
    Ok(st)
}
