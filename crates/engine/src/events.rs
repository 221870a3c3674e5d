//! Events: what happened to containers and images, as `docker events` reports it.
//!
//! [`Events`] keeps the last [`HISTORY`] events (for `since`) and broadcasts each new one
//! to live subscribers. The engine is sync and the daemon async: a tokio broadcast
//! channel is sent to from any thread without a runtime. Events live in memory only, as
//! in dockerd: a daemon restart forgets them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::containers::Container;
use crate::error::{Error, Result};
use crate::Engine;

/// How many past events are kept for `since`.
pub const HISTORY: usize = 1024;

/// Events a slow subscriber may fall behind before it misses some.
const LIVE_DEPTH: usize = 1024;

/// The filter keys Docker accepts on `/events`.
const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Object types whose filter matches the actor's id or name by prefix.
const NAME_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "volume",
];

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, ...
    pub kind: String,
    /// `create`, `die`, `exec_start: sh -c ...`, ...
    pub action: String,
    /// The object's id (full container id, `sha256:` image id); empty for prune.
    pub actor_id: String,
    /// Labels, `name`, `image`, `exitCode`, ...
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

/// What a new subscriber gets: the past events it asked for, then the live ones.
pub struct Subscription {
    /// Events of the history between `since` and `until` that pass the filter, oldest
    /// first.
    pub past: Vec<Event>,
    /// Every event from the moment of subscribing (unfiltered; see
    /// [`EventFilter::matches`]).
    pub live: broadcast::Receiver<Event>,
}

struct Inner {
    history: VecDeque<Event>,
    tx: broadcast::Sender<Event>,
}

/// The engine's event broadcaster.
pub struct Events {
    inner: Mutex<Inner>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// No history, no subscribers.
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(LIVE_DEPTH);
        Events {
            inner: Mutex::new(Inner {
                history: VecDeque::with_capacity(HISTORY),
                tx,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `ev` and sends it to every subscriber.
    pub fn publish(&self, mut ev: Event) {
        let mut inner = self.lock();
        // Times never go back within the history, so `since` cuts it cleanly.
        if let Some(last) = inner.history.back() {
            ev.time_nano = ev.time_nano.max(last.time_nano);
        }
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(ev.clone());
        // No subscriber is not an error.
        let _ = inner.tx.send(ev);
    }

    /// Subscribes; `since`/`until` (nanoseconds since the epoch) select the past events
    /// to replay, as Docker does: none unless one of them is given.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        filter: &EventFilter,
    ) -> Subscription {
        // One lock for the copy and the subscription: no event is lost or seen twice.
        let inner = self.lock();
        let past = if since.is_none() && until.is_none() {
            Vec::new()
        } else {
            inner
                .history
                .iter()
                .filter(|e| since.is_none_or(|s| e.time_nano >= s))
                .filter(|e| until.is_none_or(|u| e.time_nano <= u))
                .filter(|e| filter.matches(e))
                .cloned()
                .collect()
        };
        Subscription {
            past,
            live: inner.tx.subscribe(),
        }
    }
}

/// The `filters` of `/events`, matched as dockerd matches them.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: BTreeMap<String, Vec<String>>,
}

/// Docker's image name without tag (`stripTag`): `busybox:1` → `busybox`.
fn strip_tag(name: &str) -> String {
    image::reference::ImageRef::parse_named(name)
        .map(|r| r.name())
        .unwrap_or_else(|_| name.to_string())
}

impl EventFilter {
    /// Checks the keys; an unknown one is Docker's `invalid filter 'KEY'`.
    pub fn new(filters: BTreeMap<String, Vec<String>>) -> Result<EventFilter> {
        if let Some(k) = filters.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(Error::InvalidParameter(format!("invalid filter '{k}'")));
        }
        Ok(EventFilter { filters })
    }

    fn values(&self, key: &str) -> &[String] {
        self.filters.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Go's `Args.ExactMatch`: no values for `key`, or one equal to `s`.
    fn exact(&self, key: &str, s: &str) -> bool {
        let v = self.values(key);
        v.is_empty() || v.iter().any(|f| f == s)
    }

    /// Go's `Args.FuzzyMatch`: no values for `key`, or one that `s` starts with.
    fn fuzzy(&self, key: &str, s: &str) -> bool {
        let v = self.values(key);
        v.is_empty() || v.iter().any(|f| s.starts_with(f.as_str()))
    }

    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &Event) -> bool {
        let attr = |k: &str| ev.attributes.get(k).map(String::as_str).unwrap_or("");
        // `exec_start` matches `exec_start: sh -c ...` (moby #25798).
        let prefixed = self
            .values("event")
            .iter()
            .any(|v| matches!(v.as_str(), "health_status" | "exec_create" | "exec_start"));
        let event_ok = if prefixed {
            self.fuzzy("event", &ev.action)
        } else {
            self.exact("event", &ev.action)
        };
        let names_ok = NAME_KEYS
            .iter()
            .all(|k| self.fuzzy(k, &ev.actor_id) || self.fuzzy(k, attr("name")));
        // An image filter matches image events by id or name and container events by
        // the image they run, with or without the tag.
        let image_name = attr(if ev.kind == "image" { "name" } else { "image" });
        let image_ok = self.exact("image", &ev.actor_id)
            || self.exact("image", image_name)
            || self.exact("image", &strip_tag(&ev.actor_id))
            || self.exact("image", &strip_tag(image_name));
        let labels_ok = self
            .values("label")
            .iter()
            .all(|l| match l.split_once('=') {
                Some((k, v)) => ev.attributes.get(k).is_some_and(|have| have == v),
                None => ev.attributes.contains_key(l.as_str()),
            });
        event_ok
            && self.exact("type", &ev.kind)
            && self.exact("scope", "local")
            && names_ok
            && image_ok
            && labels_ok
    }
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Seconds between two RFC 3339 times, 0 when either is unreadable.
fn secs_between(from: &str, to: &str) -> i64 {
    let t = |s: &str| humantime::parse_rfc3339_weak(s).ok();
    match (t(from), t(to)) {
        (Some(a), Some(b)) => b.duration_since(a).map(|d| d.as_secs() as i64).unwrap_or(0),
        _ => 0,
    }
}

/// What an exec event is about.
#[derive(Debug, Clone, Copy)]
pub enum ExecEvent<'a> {
    /// Created, with its command.
    Create(&'a [String]),
    /// Started, with its command.
    Start(&'a [String]),
    /// Exited with this code.
    Die(i32),
}

impl Engine {
    /// Records and broadcasts an event that happens now.
    pub fn emit(
        &self,
        kind: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        self.events.publish(Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes,
            time_nano: now_nanos(),
        });
    }

    /// A container event: its labels, `image` and `name`, then `extra`.
    pub(crate) fn emit_container(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut attrs = c.config.labels.clone();
        if !c.config.image.is_empty() {
            attrs.insert("image".into(), c.config.image.clone());
        }
        attrs.insert("name".into(), c.name.trim_start_matches('/').to_string());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.emit("container", action, &c.id, attrs);
    }

    /// `kill` with the signal number, as sent.
    pub(crate) fn emit_kill(&self, c: &Container, signal: i32) {
        self.emit_container(c, "kill", &[("signal", signal.to_string())]);
    }

    /// The exit of `c` as recorded: `oom` if the kernel killed it, then `die`. Called
    /// once per exit, where the record turns from running to exited.
    pub(crate) fn emit_exit(&self, c: &Container) {
        if c.state.oom_killed {
            self.emit_container(c, "oom", &[]);
        }
        let duration = secs_between(&c.state.started_at, &c.state.finished_at);
        let extra = [
            ("exitCode", c.state.exit_code.to_string()),
            ("execDuration", duration.to_string()),
        ];
        self.emit_container(c, "die", &extra);
    }

    /// `exec_create: CMD`, `exec_start: CMD` or `exec_die` of exec `exec_id` in
    /// container `container_id` (full id).
    pub fn emit_exec(&self, container_id: &str, exec_id: &str, ev: ExecEvent<'_>) {
        let mut extra = vec![("execID", exec_id.to_string())];
        let action = match ev {
            ExecEvent::Create(cmd) => format!("exec_create: {}", cmd.join(" ")),
            ExecEvent::Start(cmd) => format!("exec_start: {}", cmd.join(" ")),
            ExecEvent::Die(code) => {
                extra.push(("exitCode", code.to_string()));
                "exec_die".to_string()
            }
        };
        match self.db.get(crate::containers::CONTAINERS, container_id) {
            Ok(Some(c)) => self.emit_container(&c, &action, &extra),
            _ => {
                let attrs = extra.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                self.emit("container", &action, container_id, attrs);
            }
        }
    }

    /// `exec_die` of exec `exec_id`, while its record is still there.
    pub(crate) fn emit_exec_die(&self, exec_id: &str, code: i32) {
        if let Ok(e) = self.inspect_exec(exec_id) {
            self.emit_exec(&e.container_id, exec_id, ExecEvent::Die(code));
        }
    }

    /// An image event: the image's labels (while it exists) and `name`.
    pub(crate) fn emit_image(&self, id: &str, name: &str, action: &str) {
        let mut attrs = image::Digest::parse(id)
            .ok()
            .and_then(|d| self.images.config(&d).ok())
            .and_then(|c| c.run_config().labels.clone())
            .unwrap_or_default();
        if !name.is_empty() {
            attrs.insert("name".into(), name.to_string());
        }
        self.emit("image", action, id, attrs);
    }

    /// `action` (load, save) for each image id, named by its id as dockerd does.
    pub(crate) fn emit_images<'a>(&self, ids: impl IntoIterator<Item = &'a str>, action: &str) {
        for id in ids {
            self.emit_image(id, id, action);
        }
    }

    /// An imported image: `tag` for each of its tags, then `import`.
    pub(crate) fn emit_imported(&self, loaded: &image::archive::LoadedImage) {
        let id = loaded.id.as_str();
        for t in loaded.tags.iter().filter(|t| t.tag().is_some()) {
            self.emit_image(id, &t.familiar(), "tag");
        }
        self.emit_image(id, id, "import");
    }

    /// An image deleted with the tags it still had: `untag` for each, then `delete`.
    pub(crate) fn emit_image_deleted(&self, id: &str, tags: &[String]) {
        for t in tags {
            let name = image::reference::ImageRef::parse_named(t)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            self.emit_image(id, &name, "untag");
        }
        self.emit_image(id, id, "delete");
    }

    /// `prune` of images, with the bytes reclaimed.
    pub(crate) fn emit_image_prune(&self, reclaimed: u64) {
        let attrs = BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
        self.emit("image", "prune", "", attrs);
    }

    /// Subscribes to events: the past ones `since`..`until` (nanoseconds since the
    /// epoch) that pass `filter`, and a receiver of every later one.
    pub fn subscribe_events(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        filter: &EventFilter,
    ) -> Subscription {
        self.events.subscribe(since, until, filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor_id: id.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time_nano: 0,
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        EventFilter::new(m).unwrap()
    }

    #[test]
    fn filters_as_dockerd() {
        let die = ev(
            "container",
            "die",
            "abcdef",
            &[("name", "web"), ("image", "busybox:latest"), ("a", "b")],
        );
        assert!(filter(&[]).matches(&die));
        assert!(filter(&[("event", "die"), ("container", "web")]).matches(&die));
        assert!(filter(&[("container", "abc")]).matches(&die));
        assert!(!filter(&[("container", "other")]).matches(&die));
        assert!(!filter(&[("event", "start")]).matches(&die));
        assert!(filter(&[("event", "start"), ("event", "die")]).matches(&die));
        assert!(filter(&[("image", "busybox")]).matches(&die));
        assert!(filter(&[("image", "busybox:latest")]).matches(&die));
        assert!(!filter(&[("type", "image")]).matches(&die));
        assert!(filter(&[("label", "a=b"), ("label", "a")]).matches(&die));
        assert!(!filter(&[("label", "a=c")]).matches(&die));
        let exec = ev("container", "exec_start: sh -c true", "abcdef", &[]);
        assert!(filter(&[("event", "exec_start")]).matches(&exec));
        assert!(!filter(&[("event", "exec_die")]).matches(&exec));
        let tag = ev("image", "tag", "sha256:1234", &[("name", "foo:1")]);
        assert!(filter(&[("image", "foo")]).matches(&tag));
        assert!(filter(&[("image", "sha256:1234")]).matches(&tag));
        let bad = BTreeMap::from([("nope".to_string(), vec!["x".to_string()])]);
        assert_eq!(
            EventFilter::new(bad).unwrap_err().to_string(),
            "invalid filter 'nope'"
        );
    }

    #[test]
    fn history_and_live() {
        let events = Events::new();
        let mut a = ev("container", "create", "1", &[]);
        a.time_nano = 100;
        let mut b = ev("container", "start", "1", &[]);
        b.time_nano = 200;
        events.publish(a);
        events.publish(b);
        let all = EventFilter::default();
        assert!(events.subscribe(None, None, &all).past.is_empty());
        let s = events.subscribe(Some(150), None, &all);
        assert_eq!(s.past.len(), 1);
        assert_eq!(s.past[0].action, "start");
        assert_eq!(events.subscribe(Some(0), Some(150), &all).past.len(), 1);
        let mut sub = events.subscribe(None, None, &all);
        events.publish(ev("container", "die", "1", &[]));
        assert_eq!(sub.live.try_recv().unwrap().action, "die");
        for i in 0..HISTORY + 10 {
            events.publish(ev("image", "tag", &i.to_string(), &[]));
        }
        assert_eq!(events.subscribe(Some(0), None, &all).past.len(), HISTORY);
    }
}
