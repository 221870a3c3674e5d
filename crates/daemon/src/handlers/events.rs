//! `GET /events`: past events from the engine's history, then live ones, one JSON
//! object per line, until `until` or until the client goes away.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use api::ApiError;
use bytes::Bytes;
use engine::events::{now_nanos, Event, EventFilter};
use engine::Engine;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::error::from_engine;
use crate::query::Query;
use crate::server::Body;
use crate::stream::channel_body;

#[derive(Serialize)]
struct Actor<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Attributes")]
    attributes: &'a BTreeMap<String, String>,
}

/// Docker's `events.Message`, with the legacy `status`/`id`/`from` that API versions
/// before 1.52 carry for container and image events.
#[derive(Serialize)]
struct Message<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    status: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    from: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: Actor<'a>,
    scope: &'static str,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

/// One line of the stream.
fn line(ev: &Event) -> Bytes {
    let legacy = matches!(ev.kind.as_str(), "container" | "image");
    let from = match ev.kind.as_str() {
        "container" => ev.attributes.get("image").map(String::as_str).unwrap_or(""),
        _ => "",
    };
    let m = Message {
        status: if legacy { &ev.action } else { "" },
        id: if legacy { &ev.actor_id } else { "" },
        from,
        kind: &ev.kind,
        action: &ev.action,
        actor: Actor {
            id: &ev.actor_id,
            attributes: &ev.attributes,
        },
        scope: "local",
        time: ev.time_nano.div_euclid(1_000_000_000),
        time_nano: ev.time_nano,
    };
    let mut out = serde_json::to_vec(&m).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A `since`/`until` value as Docker reads it (`timetypes.ParseTimestamps`): unix
/// seconds with an optional fraction; nanoseconds since the epoch. Absent or empty:
/// `None`.
fn event_time(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = q.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = |part: &str| {
        ApiError::bad_request(format!(
            "strconv.ParseInt: parsing {part:?}: invalid syntax"
        ))
    };
    let (s, frac) = match v.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (v, None),
    };
    let secs: i64 = s.parse().map_err(|_| bad(s))?;
    let nanos: i64 = match frac {
        None => 0,
        Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => return Err(bad(f)),
        // Docker scales the fraction to nanoseconds: `.5` is half a second.
        Some(f) => f
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect::<String>()
            .parse()
            .map_err(|_| bad(f))?,
    };
    Ok(Some(
        secs.saturating_mul(1_000_000_000).saturating_add(nanos),
    ))
}

/// `GET /events?since=&until=&filters=`.
pub async fn events(
    engine: &Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = Query::parse(req.uri().query());
    let since = event_time(&q, "since")?;
    let until = event_time(&q, "until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.get("since").unwrap_or_default(),
                q.get("until").unwrap_or_default()
            )));
        }
    }
    let filter = EventFilter::new(q.filters()?).map_err(from_engine)?;
    let now = now_nanos();
    let only_past = until.is_some_and(|u| u < now);
    let sub = engine.subscribe_events(since, until, &filter);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
    tokio::spawn(async move {
        for ev in &sub.past {
            if tx.send(Ok(line(ev))).await.is_err() {
                return;
            }
        }
        if only_past {
            return;
        }
        let mut live = sub.live;
        let deadline = until.map(|u| {
            tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let end = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(end);
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(ev) => {
                        if until.is_some_and(|u| ev.time_nano > u) {
                            return;
                        }
                        if filter.matches(&ev) && tx.send(Ok(line(&ev))).await.is_err() {
                            return;
                        }
                    }
                    // A subscriber too slow misses events, as with dockerd.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut end => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(channel_body(None, rx))
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_docker_reads_them() {
        let t = |s: &str| event_time(&Query::parse(Some(&format!("since={s}"))), "since");
        assert_eq!(t("").unwrap(), None);
        assert_eq!(t("12").unwrap(), Some(12_000_000_000));
        assert_eq!(t("12.5").unwrap(), Some(12_500_000_000));
        assert_eq!(t("12.000000001").unwrap(), Some(12_000_000_001));
        assert_eq!(t("x").unwrap_err().status, 400);
        assert!(t("1.x").is_err());
    }

    #[test]
    fn docker_json() {
        let ev = Event {
            kind: "container".into(),
            action: "die".into(),
            actor_id: "abc".into(),
            attributes: BTreeMap::from([
                ("exitCode".to_string(), "3".to_string()),
                ("image".to_string(), "busybox".to_string()),
            ]),
            time_nano: 1_700_000_000_123_456_789,
        };
        let v: serde_json::Value = serde_json::from_slice(&line(&ev)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "die", "id": "abc", "from": "busybox",
                "Type": "container", "Action": "die",
                "Actor": {"ID": "abc", "Attributes": {"exitCode": "3", "image": "busybox"}},
                "scope": "local", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_456_789i64})
        );
    }
}
