//! The daemon's configuration: Docker's daemon.json keys, command-line flags on top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Effective configuration of the engine.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub debug: bool,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    /// Layers downloaded at once by a pull (`max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once by a push (`max-concurrent-uploads`, default 5).
    pub max_concurrent_uploads: usize,
    /// Per-registry TLS material (`<host:port>/ca.crt`, `client.cert`, `client.key`).
    pub certs_dir: PathBuf,
    /// Whether loopback registries may be reached without TLS verification (Docker
    /// always allows it; off only to test TLS on 127.0.0.1).
    pub registry_loopback_insecure: bool,
    pub live_restore: bool,
    pub default_runtime: String,
    pub runtimes: BTreeMap<String, PathBuf>,
    /// Group that owns the API socket (mode 0660) when it exists.
    pub group: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_root: "/var/lib/berth".into(),
            exec_root: "/run/berth".into(),
            hosts: Vec::new(),
            debug: false,
            log_driver: "json-file".into(),
            log_opts: BTreeMap::new(),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            certs_dir: "/etc/berth/certs.d".into(),
            registry_loopback_insecure: true,
            live_restore: true,
            default_runtime: "berth".into(),
            runtimes: BTreeMap::new(),
            group: "berth".into(),
        }
    }
}

/// daemon.json as Docker writes it. Unknown keys are refused, as dockerd does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonJson {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
    /// berth's own key: the certs.d directory (default `/etc/berth/certs.d`).
    pub certs_dir: Option<PathBuf>,
    /// berth's own key: `false` makes loopback registries need verified TLS too.
    pub registry_loopback_insecure: Option<bool>,
    pub live_restore: Option<bool>,
    pub default_runtime: Option<String>,
    pub runtimes: Option<BTreeMap<String, RuntimeJson>>,
    pub group: Option<String>,
    pub storage_driver: Option<String>,
    pub iptables: Option<bool>,
    pub experimental: Option<bool>,
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RuntimeJson {
    pub path: PathBuf,
    #[serde(default, rename = "runtimeArgs")]
    pub runtime_args: Vec<String>,
}

impl Config {
    /// Applies a daemon.json file on top of the defaults.
    pub fn load_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        let j: DaemonJson = serde_json::from_slice(&text).map_err(|e| {
            Error::InvalidParameter(format!(
                "unable to configure the daemon from {}: {e}",
                path.display()
            ))
        })?;
        if let Some(d) = j
            .storage_driver
            .filter(|d| d != "overlay2" && d != "overlay")
        {
            return Err(Error::InvalidParameter(format!(
                "storage driver {d:?} is not supported: berth uses overlay2"
            )));
        }
        if let Some(v) = j.data_root {
            self.data_root = v;
        }
        if let Some(v) = j.exec_root {
            self.exec_root = v;
        }
        if let Some(v) = j.hosts {
            self.hosts = v;
        }
        if let Some(v) = j.debug {
            self.debug = v;
        }
        if let Some(v) = j.log_driver {
            self.log_driver = v;
        }
        if let Some(v) = j.log_opts {
            self.log_opts = v;
        }
        if let Some(v) = j.insecure_registries {
            self.insecure_registries = v;
        }
        if let Some(v) = j.registry_mirrors {
            self.registry_mirrors = v;
        }
        if let Some(v) = j.max_concurrent_downloads {
            self.max_concurrent_downloads = v.max(1);
        }
        if let Some(v) = j.max_concurrent_uploads {
            self.max_concurrent_uploads = v.max(1);
        }
        if let Some(v) = j.certs_dir {
            self.certs_dir = v;
        }
        if let Some(v) = j.registry_loopback_insecure {
            self.registry_loopback_insecure = v;
        }
        if let Some(v) = j.live_restore {
            self.live_restore = v;
        }
        if let Some(v) = j.default_runtime {
            self.default_runtime = v;
        }
        if let Some(v) = j.runtimes {
            self.runtimes = v.into_iter().map(|(k, r)| (k, r.path)).collect();
        }
        if let Some(v) = j.group {
            self.group = v;
        }
        Ok(())
    }
}
