//! `docker ps --filter`: the keys dockerd accepts, checked once, then matched against
//! each container.

use std::collections::BTreeMap;

use regex::Regex;

use super::{Container, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// Keys dockerd knows for containers; the ones berth cannot match yet (no networks,
/// volumes, ports or health checks) match nothing when given.
const KEYS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Parsed container filters. Values of one key are alternatives; keys all apply.
#[derive(Debug, Default)]
pub struct ContainerFilter {
    ids: Vec<String>,
    names: Vec<Regex>,
    labels: Vec<String>,
    statuses: Vec<String>,
    exited: Vec<i32>,
    /// Image ids the container must be made from.
    ancestors: Option<Vec<String>>,
    /// Created strictly after / before these containers.
    since: Option<String>,
    before: Option<String>,
    /// A key berth keeps no data for (network, volume, ...): nothing matches.
    unmatchable: bool,
}

fn bad(k: &str, v: &str) -> Error {
    Error::InvalidParameter(format!("invalid filter '{k}={v}'"))
}

impl ContainerFilter {
    /// Checks `filters` (Docker's `{"key": ["value", ...]}`) against what `engine` has.
    pub fn new(engine: &Engine, filters: &BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut f = ContainerFilter::default();
        for (k, vals) in filters {
            if !KEYS.contains(&k.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
            }
            for v in vals {
                match k.as_str() {
                    "id" => f.ids.push(v.clone()),
                    "name" => f.names.push(Regex::new(v).map_err(|_| bad(k, v))?),
                    "label" => f.labels.push(v.clone()),
                    "status" => {
                        if !STATUSES.contains(&v.as_str()) {
                            return Err(Error::InvalidParameter(format!(
                                "invalid filter 'status={v}'"
                            )));
                        }
                        f.statuses.push(v.clone());
                    }
                    "exited" => f.exited.push(v.parse().map_err(|_| bad(k, v))?),
                    "ancestor" => {
                        let ids = f.ancestors.get_or_insert_with(Vec::new);
                        // An unknown image matches no container, as in dockerd.
                        if let Ok(r) = engine.resolve(v) {
                            ids.push(r.id.to_string());
                        }
                    }
                    "since" | "before" => {
                        let c = engine.lookup_container(v)?;
                        if k == "since" {
                            f.since = Some(c.created.clone());
                        } else {
                            f.before = Some(c.created.clone());
                        }
                    }
                    "is-task" if v == "false" => {}
                    "isolation" if v == "default" || v == "process" => {}
                    _ => f.unmatchable = true,
                }
            }
        }
        Ok(f)
    }

    /// Whether `c` passes every filter.
    pub fn matches(&self, c: &Container) -> bool {
        if self.unmatchable {
            return false;
        }
        let status = docker_status(c);
        (self.ids.is_empty() || self.ids.iter().any(|i| c.id.starts_with(i.as_str())))
            // With and without the leading slash, as dockerd matches.
            && (self.names.is_empty()
                || self.names.iter().any(|r| {
                    r.is_match(&c.name) || r.is_match(c.name.trim_start_matches('/'))
                }))
            && self.labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => c.config.labels.get(k).is_some_and(|have| have == v),
                None => c.config.labels.contains_key(l),
            })
            && (self.statuses.is_empty() || self.statuses.iter().any(|s| s == status))
            && (self.exited.is_empty()
                || (c.state.status == Status::Exited && self.exited.contains(&c.state.exit_code)))
            && self
                .ancestors
                .as_ref()
                .is_none_or(|ids| ids.contains(&c.image_id))
            && self.since.as_ref().is_none_or(|t| c.created > *t)
            && self.before.as_ref().is_none_or(|t| c.created < *t)
    }

    /// Filters on the status need stopped containers listed too.
    pub fn wants_stopped(&self) -> bool {
        self.statuses
            .iter()
            .any(|s| s != "running" && s != "paused")
            || !self.exited.is_empty()
    }
}

/// Docker's `State.Status`: created, running, paused or exited.
pub fn docker_status(c: &Container) -> &'static str {
    if c.state.paused && c.running() {
        "paused"
    } else if c.state.restarting && !c.running() {
        "restarting"
    } else {
        c.state.status.as_str()
    }
}
