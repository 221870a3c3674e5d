//! `container prune`: removes the containers that are not running, as dockerd chooses
//! them (`label`, `label!`, `until`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::{Container, ListOptions};
use crate::error::Result;
use crate::Engine;

/// Which stopped containers a prune takes.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// `key` or `key=value`: every one must match.
    pub labels: Vec<String>,
    /// `key` or `key=value`: none may match.
    pub not_labels: Vec<String>,
    /// Only containers created before this.
    pub until: Option<SystemTime>,
}

fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

impl PruneFilter {
    fn takes(&self, c: &Container) -> bool {
        let l = &c.config.labels;
        !c.running()
            && self.labels.iter().all(|f| label_matches(f, l))
            && !self.not_labels.iter().any(|f| label_matches(f, l))
            && self
                .until
                .is_none_or(|u| humantime::parse_rfc3339_weak(&c.created).is_ok_and(|t| t < u))
    }
}

impl Engine {
    /// Removes the stopped containers `filter` takes; their ids and the bytes their
    /// writable layers held.
    pub fn prune_containers(&self, filter: &PruneFilter) -> Result<(Vec<String>, u64)> {
        let cs: Vec<Container> = self
            .list_containers(&ListOptions {
                all: true,
                ..Default::default()
            })?
            .into_iter()
            .filter(|c| filter.takes(c))
            .collect();
        let sizes = self.container_sizes(&cs)?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for (c, u) in cs.iter().zip(sizes) {
            // One that started or went meanwhile is left alone, as in dockerd.
            if self.remove_container(&c.id, false).is_ok() {
                deleted.push(c.id.clone());
                reclaimed += u.size_rw;
            }
        }
        let attrs = BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
        self.emit("container", "prune", "", attrs);
        Ok((deleted, reclaimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_negated_labels() {
        let l = BTreeMap::from([("tier".to_string(), "web".to_string())]);
        assert!(label_matches("tier", &l));
        assert!(label_matches("tier=web", &l));
        assert!(!label_matches("tier=db", &l));
        assert!(!label_matches("other", &l));
    }
}
