//! `docker commit`: a new image from a container's changes.
//!
//! As Docker's `CreateImageFromContainer`: the new config is the given one (or the
//! container's own), with the `--change` instructions applied and the empty fields
//! filled from the container's config (`merge`); the layer is the container's diff,
//! taken while the container is paused (unless told not to); the image records the
//! container's image as its parent.

use std::time::SystemTime;

use image::commit::{CommitError, CommitOptions as StoreCommit};
use image::config::RunConfig;
use image::reference::ImageRef;
use image::Digest;

use super::archive::MOUNT_POINTS;
use super::Container;
use crate::error::{Error, Result};
use crate::images::store_err;
use crate::store::{ImageRecord, Tx, IMAGES, TAGS};
use crate::Engine;

/// What `POST /commit` asks for besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]` to tag the image with, if any.
    pub reference: Option<String>,
    /// `--message`.
    pub comment: String,
    /// `--author`.
    pub author: String,
    /// Freeze a running container while its changes are read.
    pub pause: bool,
    /// `--change` Dockerfile instructions.
    pub changes: Vec<String>,
    /// A config to start from instead of the container's, in the image config's
    /// `config` shape (`Cmd`, `Env`, `Labels`, ...).
    pub config: Option<serde_json::Value>,
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidParameter(e.to_string())
}

fn commit_err(e: CommitError) -> Error {
    match e {
        CommitError::Store(s) => store_err(s),
        e => Error::Internal(e.to_string()),
    }
}

/// Docker's `merge`: fills what `user` leaves empty from `base` (the container's).
fn merge(user: &mut RunConfig, base: &RunConfig) {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for (k, v) in b {
                u.entry(k.clone()).or_insert(*v);
            }
        }
        (u, b) => *u = b.clone(),
    }
    match (&mut user.env, &base.env) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for e in b {
                let key = e.split('=').next().unwrap_or_default();
                if !u.iter().any(|x| x.split('=').next() == Some(key)) {
                    u.push(e.clone());
                }
            }
        }
        (u, b) => *u = b.clone(),
    }
    if let Some(b) = &base.labels {
        let u = user.labels.get_or_insert_with(Default::default);
        for (k, v) in b {
            u.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if let Some(b) = &base.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(b.clone()),
            Some(u) => {
                if u.test.is_empty() {
                    u.test = b.test.clone();
                }
                for (uf, bf) in [
                    (&mut u.interval, b.interval),
                    (&mut u.timeout, b.timeout),
                    (&mut u.start_period, b.start_period),
                    (&mut u.start_interval, b.start_interval),
                    (&mut u.retries, b.retries),
                ] {
                    if *uf == 0 {
                        *uf = bf;
                    }
                }
            }
        }
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for (k, v) in b {
                u.insert(k.clone(), *v);
            }
        }
        (u, b) => *u = b.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

/// Tags `id` as `r` inside `tx`, moving the tag off any other image (as `docker tag`).
fn tag_in(tx: &mut Tx<'_>, r: &ImageRef, id: &str) -> Result<()> {
    let key = r.to_string();
    if let Some(old) = tx.get(TAGS, &key)? {
        if old == id {
            return Ok(());
        }
        if let Some(mut rec) = tx.get(IMAGES, &old)? {
            rec.tags.retain(|t| t != &key);
            tx.put(IMAGES, &old, &rec)?;
        }
    }
    let mut rec = tx
        .get(IMAGES, id)?
        .ok_or_else(|| Error::NotFound(format!("No such image: {id}")))?;
    rec.tags.push(key.clone());
    rec.tags.sort();
    rec.tags.dedup();
    rec.last_tag_time = Some(super::now_rfc3339());
    tx.put(IMAGES, id, &rec)?;
    tx.put(TAGS, &key, &id.to_string())
}

/// Unpauses the container it paused when dropped.
struct Paused<'a> {
    engine: &'a Engine,
    id: Option<String>,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.engine.unpause_container(&id);
        }
    }
}

impl Engine {
    /// The container's config as an image config's `config`: the image's, with what
    /// the container was created with over it (as Docker's container config is).
    fn container_run_config(&self, c: &Container) -> Result<RunConfig> {
        let id = Digest::parse(&c.image_id).map_err(|e| Error::Internal(e.to_string()))?;
        let img = self.images.config(&id).map_err(store_err)?;
        let mut rc = img.run_config().clone();
        let cfg = &c.config;
        let entrypoint_given = cfg.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
        if let Some(e) = &cfg.entrypoint {
            rc.entrypoint = (!e.is_empty()).then(|| e.clone());
        }
        match &cfg.cmd {
            Some(cmd) if !cmd.is_empty() => rc.cmd = Some(cmd.clone()),
            _ if entrypoint_given => rc.cmd = None,
            _ => {}
        }
        if !c.env.is_empty() {
            rc.env = Some(c.env.clone());
        }
        if !cfg.user.is_empty() {
            rc.user = Some(cfg.user.clone());
        }
        if !cfg.working_dir.is_empty() {
            rc.working_dir = Some(cfg.working_dir.clone());
        }
        if !cfg.labels.is_empty() {
            rc.labels = Some(cfg.labels.clone());
        }
        if let Some(s) = &cfg.stop_signal {
            rc.stop_signal = Some(s.clone());
        }
        Ok(rc)
    }

    /// Pauses a running container unless it is paused already; a failure is ignored,
    /// as Docker ignores it.
    fn pause_for_commit(&self, c: &Container) -> Paused<'_> {
        let id = (c.running() && !c.state.paused && self.pause_container(&c.id).is_ok())
            .then(|| c.id.clone());
        Paused { engine: self, id }
    }

    /// Creates an image from container `name`; returns its id (`sha256:...`).
    pub fn commit_container(&self, name: &str, opts: CommitOptions) -> Result<String> {
        // Bad input fails before any work, as in Docker.
        let tag = match opts.reference.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                let r = ImageRef::parse(r).map_err(invalid)?;
                if r.digest().is_some() {
                    return Err(invalid("cannot commit to digest reference"));
                }
                Some(r)
            }
            None => None,
        };
        let given: Option<RunConfig> = match opts.config {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(invalid)?),
        };
        let c = self.lookup_container(name)?;
        let base = self.container_run_config(&c)?;
        let mut config = given.unwrap_or_else(|| base.clone());
        image::import::apply_changes(&mut config, &opts.changes).map_err(invalid)?;
        merge(&mut config, &base);

        let store_opts = StoreCommit {
            author: Some(opts.author).filter(|a| !a.is_empty()),
            comment: Some(opts.comment).filter(|c| !c.is_empty()),
            config,
            created_by: base.cmd.clone().unwrap_or_default().join(" "),
            skip: MOUNT_POINTS.iter().map(Into::into).collect(),
        };
        let parent = Digest::parse(&c.image_id).map_err(|e| Error::Internal(e.to_string()))?;
        let upper = self.container_dir(&c.id).join("upper");
        if !upper.is_dir() {
            std::fs::create_dir_all(&upper).map_err(|e| Error::io("creating", &upper, e))?;
        }
        // Shared: commits only add, like loads; removals wait.
        let _g = self.image_read_lock();
        let loaded = {
            let _paused = opts.pause.then(|| self.pause_for_commit(&c));
            image::commit::commit(&self.images, Some(&parent), &upper, &store_opts)
                .map_err(commit_err)?
        };
        let id = loaded.id.to_string();
        let size = loaded
            .config
            .diff_ids()
            .iter()
            .map(|d| self.images.content().size(d).unwrap_or(0))
            .sum();
        let created = loaded
            .config
            .string_field("created")
            .map(str::to_string)
            .unwrap_or_else(|| humantime::format_rfc3339_nanos(SystemTime::now()).to_string());
        self.db.transaction(|tx| {
            if tx.get(IMAGES, &id)?.is_none() {
                let rec = ImageRecord {
                    id: id.clone(),
                    tags: Vec::new(),
                    created: created.clone(),
                    size,
                    parent: Some(c.image_id.clone()),
                    last_tag_time: None,
                };
                tx.put(IMAGES, &id, &rec)?;
            }
            if let Some(r) = &tag {
                tag_in(tx, r, &id)?;
            }
            Ok(())
        })?;
        let image_ref = tag.as_ref().map(ImageRef::familiar).unwrap_or_default();
        self.emit_container(
            &c,
            "commit",
            &[
                ("comment", store_opts.comment.clone().unwrap_or_default()),
                ("imageID", id.clone()),
                ("imageRef", image_ref),
            ],
        );
        if let Some(r) = &tag {
            self.emit_image(&id, &r.familiar(), "tag");
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn merge_fills_what_is_empty() {
        let base = RunConfig {
            cmd: v(&["sh"]),
            env: v(&["PATH=/bin", "A=1"]),
            user: Some("nobody".into()),
            working_dir: Some("/w".into()),
            ..RunConfig::default()
        };
        let mut user = RunConfig {
            env: v(&["A=2"]),
            ..RunConfig::default()
        };
        merge(&mut user, &base);
        assert_eq!(user.cmd, v(&["sh"]));
        assert_eq!(user.env, v(&["A=2", "PATH=/bin"]));
        assert_eq!(user.user.as_deref(), Some("nobody"));
        assert_eq!(user.working_dir.as_deref(), Some("/w"));

        // An entrypoint given keeps its own (absent) cmd.
        let mut user = RunConfig {
            entrypoint: v(&["/e"]),
            ..RunConfig::default()
        };
        merge(&mut user, &base);
        assert_eq!(user.cmd, None);
    }
}
