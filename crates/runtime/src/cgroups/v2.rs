//! cgroup v2 (unified hierarchy).

use std::collections::HashMap;
use std::path::{Component, Path};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources};

use super::{bpf, fs, parse, CgroupError, Result, Stats};

/// Controllers the runtime may configure; enabled in ancestors' `cgroup.subtree_control`.
const WANTED_CONTROLLERS: &[&str] = &[
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Enable the wanted controllers `dir` offers to its children. Failures are reported on
/// stderr only: `apply` fails later, naming the missing file, if a controller is needed.
pub(super) fn enable_controllers(dir: &Path) -> Result<()> {
    let available = fs::read(&dir.join("cgroup.controllers"))?;
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read(&control)?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in available.split_whitespace() {
        if WANTED_CONTROLLERS.contains(&c) && !enabled.contains(&c) {
            if let Err(e) = fs::write(&control, &format!("+{c}")) {
                eprintln!("berth: warning: {e}");
            }
        }
    }
    Ok(())
}

fn unsupported(setting: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        setting: setting.into(),
        reason: reason.into(),
    }
}

pub(super) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        fs::write(&dir.join("pids.max"), &v)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for l in r.hugepage_limits().iter().flatten() {
        let file = dir.join(format!("hugetlb.{}.max", l.page_size()));
        fs::write(&file, &l.limit().to_string())?;
    }
    if let Some(devs) = r.devices() {
        bpf::apply_device_rules(dir, devs)?;
    }
    if let Some(rdma) = r.rdma() {
        write_rdma(dir, rdma)?;
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for key in keys {
            let mut comps = Path::new(key).components();
            if !matches!(
                (comps.next(), comps.next()),
                (Some(Component::Normal(_)), None)
            ) {
                return Err(CgroupError::InvalidValue {
                    setting: "linux.resources.unified key".into(),
                    value: key.clone(),
                    reason: "must be a plain cgroup file name".into(),
                });
            }
            fs::write(&dir.join(key), &unified[key])?;
        }
    }
    Ok(())
}

/// Write `rdma.max` lines (`mlx5_0 hca_handle=2 hca_object=max`); same format on v1.
pub(super) fn write_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let opt = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
    for (dev, l) in rdma {
        fs::write(
            &dir.join("rdma.max"),
            &format!(
                "{dev} hca_handle={} hca_object={}",
                opt(l.hca_handles()),
                opt(l.hca_objects())
            ),
        )?;
    }
    Ok(())
}

/// The `memory.swap.max` value for an OCI memory+swap limit (runc's conversion).
/// `Ok(None)` means leave it alone.
pub(super) fn swap_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>> {
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    let invalid = |reason: &str| CgroupError::InvalidValue {
        setting: "linux.resources.memory.swap".into(),
        value: swap.to_string(),
        reason: reason.into(),
    };
    match (swap, limit) {
        (0, -1) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (-1, _) => Ok(Some(-1)),
        (_, 0 | -1) => Err(invalid("a swap limit needs a memory limit")),
        (s, l) if s < l => Err(invalid(&format!(
            "memory+swap must be >= the memory limit {l}"
        ))),
        (s, l) => Ok(Some(s - l)),
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    if let Some(swap) = swap_v2(m.swap(), m.limit())? {
        let f = dir.join("memory.swap.max");
        if f.exists() {
            fs::write(&f, &max_or(swap))?;
        } else if swap != 0 && swap != -1 {
            return Err(unsupported(
                "linux.resources.memory.swap",
                format!("{} does not exist (swap accounting disabled)", f.display()),
            ));
        }
    }
    if let Some(l) = m.limit().filter(|&l| l != 0) {
        fs::write(&dir.join("memory.max"), &max_or(l))?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        fs::write(&dir.join("memory.low"), &max_or(r))?;
    }
    if m.swappiness().is_some() {
        eprintln!("berth: warning: linux.resources.memory.swappiness is ignored on cgroup v2");
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        fs::write(
            &dir.join("cpu.weight"),
            &parse::shares_to_weight(s).to_string(),
        )?;
    }
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    if quota.is_some() || period.is_some() {
        let mut v = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        if let Some(p) = period {
            v.push_str(&format!(" {p}"));
        }
        fs::write(&dir.join("cpu.max"), &v)?;
    }
    if let Some(b) = c.burst() {
        fs::write(&dir.join("cpu.max.burst"), &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(&dir.join("cpu.idle"), &i.to_string())?;
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(unsupported(
            "linux.resources.cpu.realtimeRuntime",
            "realtime scheduling limits are not available on cgroup v2",
        ));
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        fs::write(&dir.join("cpuset.cpus"), v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        fs::write(&dir.join("cpuset.mems"), v)?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let weight_file = || {
        ["io.weight", "io.bfq.weight"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| {
                unsupported(
                    "linux.resources.blockIO.weight",
                    format!(
                        "neither io.weight nor io.bfq.weight exists in {}",
                        dir.display()
                    ),
                )
            })
    };
    let convert = |f: &Path, w: u16| {
        if f.ends_with("io.weight") {
            parse::blkio_weight_to_io_weight(u64::from(w))
        } else {
            u64::from(w)
        }
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let f = weight_file()?;
        let v = convert(&f, w);
        let v = if f.ends_with("io.weight") {
            format!("default {v}")
        } else {
            v.to_string()
        };
        fs::write(&f, &v)?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            let f = weight_file()?;
            fs::write(
                &f,
                &format!("{}:{} {}", d.major(), d.minor(), convert(&f, w)),
            )?;
        }
    }
    for (devs, key) in [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ] {
        for d in devs.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            fs::write(
                &dir.join("io.max"),
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

fn events_frozen(dir: &Path) -> Result<bool> {
    let text = fs::read(&dir.join("cgroup.events"))?;
    Ok(parse::flat_keyed(&text).get("frozen") == Some(&1))
}

pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let file = dir.join("cgroup.freeze");
    fs::write(&file, if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        let now = events_frozen(dir)?;
        if now == frozen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = fs::write(&file, "0");
            }
            return Err(CgroupError::FreezeTimeout {
                path: dir.join("cgroup.events"),
                state: format!("frozen {}", u8::from(now)),
                wanted: format!("frozen {}", u8::from(frozen)),
            });
        }
        sleep(Duration::from_millis(1));
    }
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::read_opt(&dir.join("cgroup.freeze"))?.is_some_and(|s| s.trim() == "1"))
}

pub(super) fn stats(dir: &Path) -> Result<Stats> {
    let mut st = Stats::default();
    if let Some(text) = fs::read_opt(&dir.join("cpu.stat"))? {
        let m = parse::flat_keyed(&text);
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        st.cpu.usage_total = g("usage_usec") * 1000;
        st.cpu.usage_user = g("user_usec") * 1000;
        st.cpu.usage_system = g("system_usec") * 1000;
        st.cpu.throttling.periods = g("nr_periods");
        st.cpu.throttling.throttled_periods = g("nr_throttled");
        st.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    }
    let m = &mut st.memory;
    m.usage = fs::read_u64(&dir.join("memory.current"))?.unwrap_or(0);
    m.max_usage = fs::read_u64(&dir.join("memory.peak"))?.unwrap_or(0);
    m.limit = fs::read_u64(&dir.join("memory.max"))?;
    m.swap_usage = fs::read_u64(&dir.join("memory.swap.current"))?;
    m.swap_limit = fs::read_u64(&dir.join("memory.swap.max"))?;
    if let Some(text) = fs::read_opt(&dir.join("memory.stat"))? {
        m.stat = parse::flat_keyed(&text);
        m.cache = m.stat.get("file").copied().unwrap_or(0);
        m.rss = m.stat.get("anon").copied().unwrap_or(0);
    }
    st.pids.current = fs::read_u64(&dir.join("pids.current"))?.unwrap_or(0);
    st.pids.limit = fs::read_u64(&dir.join("pids.max"))?;
    if let Some(text) = fs::read_opt(&dir.join("io.stat"))? {
        st.blkio.devices = parse::v2_io_stat(&text);
    }
    Ok(st)
}
