//! `create`: resolve the image, merge its defaults, record the container under a unique
//! name, and write its bundle (`config.json`, `hostname`, `hosts`, `resolv.conf`).

use std::path::Path;

use shim::trace::mark;

use super::{names, spec, Container, ContainerConfig, HostConfig, State, CONTAINERS};
use crate::error::{Error, Result};
use crate::images::store_err;
use crate::Engine;

/// What `create` is given.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--name`; a random one when `None`.
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `base` with `over` applied, by variable name (a bare `NAME` in `over` is dropped, as
/// Docker only keeps `NAME=value` entries).
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        if !e.contains('=') {
            continue;
        }
        let k = key(e);
        match out.iter_mut().find(|x| key(x) == k) {
            Some(x) => *x = e.clone(),
            None => out.push(e.clone()),
        }
    }
    if !out.iter().any(|e| key(e) == "PATH") {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

fn write(path: &Path, data: &str) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::io("writing", path, e))
}

impl Engine {
    /// Creates a container; returns its id.
    pub fn create_container(&self, opts: CreateOptions) -> Result<String> {
        mark("create: begin");
        let mut cfg = opts.config;
        let host = {
            let mut h = opts.host_config;
            if h.network_mode.is_empty() || h.network_mode == "default" {
                h.network_mode = "bridge".into();
            }
            if !matches!(h.network_mode.as_str(), "bridge" | "none" | "host") {
                return Err(Error::NotFound(format!(
                    "network {} not found",
                    h.network_mode
                )));
            }
            if h.memory < 0 || h.nano_cpus < 0 {
                return Err(Error::InvalidParameter(
                    "invalid resource limits: negative value".into(),
                ));
            }
            if h.memory > 0 && h.memory < 6 * 1024 * 1024 {
                return Err(Error::InvalidParameter(
                    "Minimum memory limit allowed is 6MB".into(),
                ));
            }
            h
        };
        spec::capabilities(&host)?;
        host.restart_policy.validate(host.auto_remove)?;
        self.runtime_named(&host.runtime)?;
        let host = self.resolve_log_config(host)?;
        let wanted_name = opts.name.filter(|n| !n.is_empty());
        let given_name = wanted_name.as_deref().map(names::validate).transpose()?;
        let res = self.resolve(&cfg.image)?;
        let image = self.images.config(&res.id).map_err(store_err)?;
        let rc = image.run_config();

        // Docker's merge: an entrypoint given drops the image's cmd.
        let entrypoint_given = cfg.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
        let entrypoint = match &cfg.entrypoint {
            Some(e) if !e.is_empty() => e.clone(),
            Some(_) => Vec::new(),
            None => rc.entrypoint.clone().unwrap_or_default(),
        };
        let cmd = match &cfg.cmd {
            Some(c) if !c.is_empty() => c.clone(),
            _ if entrypoint_given => Vec::new(),
            _ => rc.cmd.clone().unwrap_or_default(),
        };
        let mut argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if argv.is_empty() {
            return Err(Error::InvalidParameter("no command specified".into()));
        }
        let path = argv.remove(0);
        let env = merge_env(rc.env.as_deref().unwrap_or_default(), &cfg.env);
        if cfg.working_dir.is_empty() {
            cfg.working_dir = rc.working_dir.clone().unwrap_or_default();
        }
        if !cfg.working_dir.is_empty() && !cfg.working_dir.starts_with('/') {
            return Err(Error::InvalidParameter(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                cfg.working_dir
            )));
        }
        if cfg.user.is_empty() {
            cfg.user = rc.user.clone().unwrap_or_default();
        }
        if cfg.stop_signal.is_none() {
            cfg.stop_signal = rc.stop_signal.clone();
        }
        let mut labels = rc.labels.clone().unwrap_or_default();
        labels.extend(std::mem::take(&mut cfg.labels));
        cfg.labels = labels;

        let id = names::new_id();
        if cfg.hostname.is_empty() {
            cfg.hostname = id[..12].to_string();
        }
        let dir = self.container_dir(&id);
        let mut c = Container {
            id: id.clone(),
            name: String::new(),
            image_id: res.id.to_string(),
            created: super::now_rfc3339(),
            path,
            args: argv,
            env,
            config: cfg,
            host_config: host,
            state: State::default(),
            log_path: dir.join(format!("{id}-json.log")),
            restart_count: 0,
        };

        mark("create: resolved");
        // The name is taken in the same transaction that checks it is free.
        self.db.transaction(|tx| {
            let all = tx.list(CONTAINERS)?;
            let taken = |n: &str| all.iter().find(|(_, o)| o.name == n).map(|(i, _)| i.clone());
            c.name = match &given_name {
                Some(n) => {
                    if let Some(other) = taken(n) {
                        return Err(Error::Conflict(format!(
                            "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n.clone()
                }
                None => {
                    let mut retry = 0;
                    loop {
                        let n = format!("/{}", names::random_name(retry));
                        if taken(&n).is_none() {
                            break n;
                        }
                        retry += 1;
                    }
                }
            };
            tx.put(CONTAINERS, &id, &c)
        })?;
        mark("create: recorded");
        if let Err(e) = self.write_bundle(&c, &image.chain_ids().last().map(|d| d.to_string())) {
            let _ = self.db.delete(CONTAINERS, &id);
            let _ = image::snapshot::umount_container(&dir.join("rootfs"));
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.emit_container(&c, "create", &[]);
        mark("create: bundle written");
        Ok(id)
    }

    /// Fills in the daemon's log driver (and its options when the container gives
    /// none for it) and checks the result as `docker run` does.
    fn resolve_log_config(&self, mut h: HostConfig) -> Result<HostConfig> {
        if h.log_config.driver.is_empty() {
            h.log_config.driver = self.config.log_driver.clone();
            if h.log_config.opts.is_empty() {
                h.log_config.opts = self.config.log_opts.clone();
            }
        }
        let opts: std::collections::HashMap<String, String> = h
            .log_config
            .opts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        log::validate_log_opts(&h.log_config.driver, &opts)
            .map_err(|e| Error::InvalidParameter(e.to_string()))?;
        Ok(h)
    }

    /// Writes the bundle of `c`. The rootfs is mounted for the user lookup and stays
    /// mounted for `start` (and `cp`, `diff`...) until the container is removed.
    fn write_bundle(&self, c: &Container, chain: &Option<String>) -> Result<()> {
        let dir = self.container_dir(&c.id);
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| Error::io("creating", &rootfs, e))?;
        write(&dir.join("hostname"), &format!("{}\n", c.config.hostname))?;
        write(
            &dir.join("hosts"),
            &format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
                 ff02::2\tip6-allrouters\n127.0.1.1\t{}\n",
                c.config.hostname
            ),
        )?;
        let resolv = if c.host_config.network_mode == "host" {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            // No network yet: keep the host's nameservers that are not loopback.
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let mut out: String = host
                .lines()
                .filter(|l| {
                    !(l.starts_with("nameserver") && (l.contains("127.") || l.contains("::1")))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            if !out.contains("nameserver") {
                out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
            }
            out
        };
        write(&dir.join("resolv.conf"), &resolv)?;
        let guard = self
            .images
            .snapshots()
            .mount_container(chain.as_deref(), &dir, &rootfs)
            .map_err(|e| Error::Internal(format!("mounting the rootfs: {e}")))?;
        mark("create: rootfs mounted");
        let spec = spec::generate(c, &dir)?;
        mark("create: spec made");
        guard.disarm();
        let data = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Internal(e.to_string()))?;
        let path = dir.join("config.json");
        std::fs::write(&path, data).map_err(|e| Error::io("writing", &path, e))
    }

    /// The top layer's chain id of the container's image (`None`: no layers).
    pub(crate) fn container_chain(&self, c: &Container) -> Result<Option<String>> {
        let id = image::Digest::parse(&c.image_id).map_err(|e| Error::Internal(e.to_string()))?;
        let cfg = self.images.config(&id).map_err(store_err)?;
        Ok(cfg.chain_ids().last().map(|d| d.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let over = vec!["A=2".to_string(), "B=3".to_string(), "C".to_string()];
        assert_eq!(merge_env(&base, &over), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(merge_env(&[], &[])[0], DEFAULT_PATH);
    }
}
