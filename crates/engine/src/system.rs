//! Facts about the engine and its host, for `version` and `info`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::Engine;

/// The engine's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Host and engine facts (counts come from the stores as they land).
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    pub id: String,
    pub containers: u64,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub kernel_version: String,
    pub operating_system: String,
    pub os_version: String,
    pub architecture: String,
    pub ncpu: u64,
    pub mem_total: u64,
    pub hostname: String,
    pub data_root: String,
    pub cgroup_version: String,
    pub log_driver: String,
    pub live_restore: bool,
    pub default_runtime: String,
    pub runtimes: Vec<(String, String)>,
    pub security_options: Vec<String>,
}

/// Reads or creates the persistent engine id under the data root.
pub fn engine_id(data_root: &Path) -> Result<String> {
    let p = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&p) {
        return Ok(id.trim().to_string());
    }
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw))
        .map_err(|e| Error::io("reading", "/dev/urandom", e))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&p, &id).map_err(|e| Error::io("writing", &p, e))?;
    Ok(id)
}

fn uname() -> (String, String) {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.release), field(&u.nodename))
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The cgroup version berthd's containers use: "2" only on a pure cgroup2 host.
fn cgroup_version() -> String {
    let unified = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
    if unified { "2" } else { "1" }.into()
}

impl Engine {
    /// Host and engine facts.
    pub fn info(&self) -> SystemInfo {
        let (kernel, hostname) = uname();
        let (os, os_version) = os_release();
        let mut runtimes = vec![("berth".to_string(), "berth-runtime".to_string())];
        runtimes.extend(
            self.config
                .runtimes
                .iter()
                .map(|(k, v)| (k.clone(), v.display().to_string())),
        );
        // runc is known without configuration (`--runtime runc`).
        if !runtimes.iter().any(|(k, _)| k == "runc") {
            runtimes.push(("runc".into(), "runc".into()));
        }
        SystemInfo {
            id: self.id.clone(),
            kernel_version: kernel,
            operating_system: os,
            os_version,
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            mem_total: mem_total(),
            hostname,
            data_root: self.config.data_root.display().to_string(),
            cgroup_version: cgroup_version(),
            log_driver: self.config.log_driver.clone(),
            live_restore: self.config.live_restore,
            default_runtime: self.config.default_runtime.clone(),
            runtimes,
            security_options: vec!["name=seccomp,profile=builtin".into()],
            images: self.image_count(),
            ..SystemInfo::default()
        }
    }
}

/// The host's architecture as Docker names it (Go's `GOARCH`: `amd64`, `arm64`).
pub fn go_arch() -> &'static str {
    image::config::host_platform().0
}
