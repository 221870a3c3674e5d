//! `berth system check`: proves the store is whole after a crash. Every blob must hash to
//! its name, every image record must have its config and the snapshots of all its
//! layers, and tags and image records must agree.

use std::str::FromStr;

use serde::Serialize;

use crate::containers::{Status, CONTAINERS};
use crate::error::Result;
use crate::store::{IMAGES, TAGS};
use crate::Engine;

/// What the check looked at and what it found wrong.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub blobs: usize,
    pub images: usize,
    pub tags: usize,
    pub snapshots: usize,
    pub containers: usize,
    /// One line per problem; empty when the store is whole.
    pub problems: Vec<String>,
}

impl Engine {
    /// Verifies the content store, the snapshots and the metadata against each other.
    pub fn check(&self) -> Result<CheckReport> {
        // Removals take this lock alone: nothing disappears while we look.
        let _guard = self.image_read_lock();
        let mut r = CheckReport::default();
        let content = self.images.content();
        for digest in content
            .list()
            .map_err(|e| crate::Error::Internal(e.to_string()))?
        {
            r.blobs += 1;
            if let Err(e) = content.verify(&digest) {
                r.problems.push(format!("blob {digest}: {e}"));
            }
        }
        let tags = self.db.list(TAGS)?;
        r.tags = tags.len();
        for (id, rec) in self.db.list(IMAGES)? {
            r.images += 1;
            let Ok(digest) = image::Digest::from_str(&id) else {
                r.problems
                    .push(format!("image record {id:?}: not a digest"));
                continue;
            };
            let config = match self.images.config(&digest) {
                Ok(c) => c,
                Err(e) => {
                    r.problems.push(format!("image {id}: config: {e}"));
                    continue;
                }
            };
            for chain in config.chain_ids() {
                r.snapshots += 1;
                if !self
                    .images
                    .snapshots()
                    .exists(chain.as_str())
                    .unwrap_or(false)
                {
                    r.problems
                        .push(format!("image {id}: layer snapshot {chain} is missing"));
                }
            }
            for t in &rec.tags {
                if !tags.iter().any(|(name, target)| name == t && *target == id) {
                    r.problems
                        .push(format!("image {id}: tag {t} does not point back to it"));
                }
            }
        }
        for (name, id) in &tags {
            if self.db.get(IMAGES, id)?.is_none() {
                r.problems
                    .push(format!("tag {name}: image {id} does not exist"));
            }
        }
        self.check_containers(&mut r)?;
        Ok(r)
    }

    /// Every container has its image, its bundle and, while recorded as running, a
    /// shim or an exit status.
    fn check_containers(&self, r: &mut CheckReport) -> Result<()> {
        for (id, c) in self.db.list(CONTAINERS)? {
            r.containers += 1;
            if self.db.get(IMAGES, &c.image_id)?.is_none() {
                r.problems
                    .push(format!("container {id}: image {} is missing", c.image_id));
            }
            let config = self.container_dir(&id).join("config.json");
            if !config.is_file() {
                r.problems.push(format!(
                    "container {id}: bundle {} is missing",
                    config.display()
                ));
            }
            if c.state.status == Status::Running
                && !self.shim_socket(&id).exists()
                && !self.exit_file(&id).exists()
            {
                r.problems.push(format!(
                    "container {id}: recorded as running but neither its shim nor its exit status is there"
                ));
            }
        }
        Ok(())
    }
}
