//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`): checked at
//! create, applied by the watcher when a container exits and by [`Engine::restore`]
//! when the daemon starts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Container, Status, CONTAINERS};
use crate::error::{Error, Result};
use crate::Engine;

/// Docker's `RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// For `on-failure`: give up after this many restarts (0: never give up).
    pub maximum_retry_count: i64,
}

/// Restarts wait 100 ms, doubling each time, at most a minute (as dockerd).
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// Whether the policy never restarts.
    pub fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }

    /// Docker's checks and messages.
    pub fn validate(&self, auto_remove: bool) -> Result<()> {
        let bad = |m: &str| {
            Err(Error::InvalidParameter(format!(
                "invalid restart policy: {m}"
            )))
        };
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" => {
                if self.maximum_retry_count != 0 {
                    return bad("maximum retry count can only be used with 'on-failure'");
                }
            }
            "on-failure" => {
                if self.maximum_retry_count < 0 {
                    return bad("maximum retry count cannot be negative");
                }
            }
            other => {
                return bad(&format!(
                    "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                ))
            }
        }
        if auto_remove && !self.is_none() {
            return Err(Error::InvalidParameter(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        Ok(())
    }

    /// Whether a container that exited with `code` after `restarts` restarts goes again.
    /// `manual`: a user stopped it.
    fn wants_restart(&self, code: i32, restarts: u64, manual: bool) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => !manual,
            "on-failure" => {
                !manual
                    && code != 0
                    && (self.maximum_retry_count == 0
                        || (restarts as i64) < self.maximum_retry_count)
            }
            _ => false,
        }
    }

    /// Whether the daemon starts the container again when it comes up.
    fn restarts_with_daemon(&self, manual: bool) -> bool {
        match self.name.as_str() {
            "always" => true,
            "unless-stopped" => !manual,
            _ => false,
        }
    }
}

/// The delay before restart number `n` (0-based) after a run of `ran`.
fn delay(n: u64, ran: Duration) -> Duration {
    if ran >= RESET_AFTER {
        return FIRST_DELAY;
    }
    FIRST_DELAY.saturating_mul(1u32 << n.min(10)).min(MAX_DELAY)
}

fn ran_for(c: &Container) -> Duration {
    let parse = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    match (parse(&c.state.started_at), parse(&c.state.finished_at)) {
        (Some(s), Some(f)) => f.duration_since(s).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

impl Engine {
    /// After container `c` exited: starts it again if its policy says so. Returns
    /// whether it did.
    pub(crate) fn apply_restart_policy(self: &Arc<Self>, c: &Container) -> bool {
        let p = &c.host_config.restart_policy;
        if !p.wants_restart(c.state.exit_code, c.restart_count, c.state.manually_stopped) {
            return false;
        }
        let wait = delay(c.restart_count, ran_for(c));
        if self.set_restarting(&c.id, true).is_err() {
            return false;
        }
        std::thread::sleep(wait);
        // Stopped, removed or started by someone else meanwhile: leave it.
        let current = match self.db.get(CONTAINERS, &c.id) {
            Ok(Some(r)) => r,
            _ => return false,
        };
        let _ = self.set_restarting(&c.id, false);
        if current.state.status != Status::Exited
            || current.state.manually_stopped
            || current.state.finished_at != c.state.finished_at
        {
            return false;
        }
        let _ = self.db.transaction(|tx| {
            if let Some(mut r) = tx.get(CONTAINERS, &c.id)? {
                r.restart_count += 1;
                tx.put(CONTAINERS, &c.id, &r)?;
            }
            Ok(())
        });
        self.start_inner(&c.id, true).is_ok()
    }

    fn set_restarting(&self, id: &str, on: bool) -> Result<()> {
        self.db.transaction(|tx| {
            if let Some(mut r) = tx.get(CONTAINERS, id)? {
                r.state.restarting = on;
                tx.put(CONTAINERS, id, &r)?;
            }
            Ok(())
        })
    }

    /// Marks a container stopped (or not) by its user: policies leave it alone.
    pub(crate) fn set_manually_stopped(&self, id: &str, on: bool) -> Result<()> {
        self.db.transaction(|tx| {
            if let Some(mut r) = tx.get(CONTAINERS, id)? {
                r.state.manually_stopped = on;
                tx.put(CONTAINERS, id, &r)?;
            }
            Ok(())
        })
    }

    /// At daemon start: the exited containers whose policy restarts them with the
    /// daemon.
    pub(crate) fn restart_with_daemon(self: &Arc<Self>) -> Result<()> {
        for (id, c) in self.db.list(CONTAINERS)? {
            let started_before = c.state.started_at != super::ZERO_TIME;
            if c.state.status == Status::Exited
                && started_before
                && c.host_config
                    .restart_policy
                    .restarts_with_daemon(c.state.manually_stopped)
            {
                let engine = Arc::clone(self);
                std::thread::spawn(move || {
                    let _ = engine.start_inner(&id, true);
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn validation_is_dockers() {
        assert!(p("", 0).validate(true).is_ok());
        assert!(p("always", 0).validate(false).is_ok());
        assert!(p("on-failure", 3).validate(false).is_ok());
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert!(msg(p("sometimes", 0).validate(false)).contains("unknown policy 'sometimes'"));
        assert!(msg(p("always", 2).validate(false)).contains("only be used with 'on-failure'"));
        assert!(msg(p("on-failure", -1).validate(false)).contains("cannot be negative"));
        assert!(msg(p("always", 0).validate(true)).contains("AutoRemove"));
    }

    #[test]
    fn which_exits_restart() {
        assert!(p("always", 0).wants_restart(0, 5, false));
        assert!(!p("always", 0).wants_restart(1, 0, true));
        assert!(p("on-failure", 2).wants_restart(1, 1, false));
        assert!(!p("on-failure", 2).wants_restart(1, 2, false));
        assert!(!p("on-failure", 0).wants_restart(0, 0, false));
        assert!(!p("no", 0).wants_restart(1, 0, false));
        assert!(p("always", 0).restarts_with_daemon(true));
        assert!(!p("unless-stopped", 0).restarts_with_daemon(true));
        assert_eq!(delay(0, Duration::ZERO), FIRST_DELAY);
        assert_eq!(delay(3, Duration::ZERO), FIRST_DELAY * 8);
        assert_eq!(delay(30, Duration::ZERO), MAX_DELAY);
        assert_eq!(delay(30, RESET_AFTER), FIRST_DELAY);
    }
}
