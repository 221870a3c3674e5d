//! `/images/...`: load, save, import, list, inspect, history, tag, remove, prune.
//!
//! Image names in paths may contain slashes (`localhost:5000/a/b:tag`), so the path is
//! split on its known suffix rather than matched segment by segment.

use std::io;
use std::sync::Arc;

use api::images::{
    DeleteResponse, GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImagePruneReport,
    ImageSummary, JsonMessage, RootFs,
};
use api::ApiError;
use bytes::Bytes;
use engine::images::{ListFilters, Removed};
use engine::pull::{Progress, PullOptions};
use engine::push::{LoginError, PushOptions};
use engine::registry::{AuthConfig, Credentials};
use engine::Engine;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

use crate::error::{blocking, from_engine};
use crate::query::{decode, Query};
use crate::router::json;
use crate::server::{full, Body};
use crate::stream::{blocking_body, body_reader, channel_body};

/// Go's zero time, which Docker shows for an image never tagged.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Routes a request whose path starts with `/images/`.
pub async fn route(
    engine: &Arc<Engine>,
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = Query::parse(req.uri().query());
    let rest = &path["/images/".len()..];
    match (method, rest) {
        (&Method::POST, "load") => load(engine, &q, req).await,
        (&Method::GET, "get") => save(engine, q.all("names")).await,
        (&Method::POST, "create") => create(engine, &q, req).await,
        (&Method::GET, "json") => list(engine, &q).await,
        (&Method::POST, "prune") => prune(engine, &q).await,
        _ => {
            // DELETE has no suffix: all of the rest is the name (`a/json` is an image).
            let (name, action) = if method == Method::DELETE {
                (rest, "")
            } else {
                split_name(rest)
            };
            let name = decode(name);
            if name.is_empty() {
                return Err(ApiError::not_found("page not found"));
            }
            match (method, action) {
                (&Method::GET, "json") => inspect(engine, name).await,
                (&Method::GET, "history") => history(engine, name).await,
                (&Method::GET, "get") => save(engine, vec![name]).await,
                (&Method::POST, "tag") => tag(engine, name, &q).await,
                (&Method::POST, "push") => push(engine, name, &q, req).await,
                (&Method::DELETE, "") => remove(engine, name, &q).await,
                _ => Err(ApiError::not_found("page not found")),
            }
        }
    }
}

/// `a/b:1/json` → (`a/b:1`, `json`); a path with no known suffix is all name.
fn split_name(rest: &str) -> (&str, &str) {
    for action in ["json", "history", "tag", "get", "push"] {
        if let Some(name) = rest.strip_suffix(action).and_then(|r| r.strip_suffix('/')) {
            return (name, action);
        }
    }
    (rest, "")
}

fn json_stream(lines: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(full(lines))
        .expect("valid response")
}

/// `POST /images/load`: the body is the archive. The whole load finishes before the
/// response starts, so a bad archive gets a plain error response.
async fn load(
    engine: &Arc<Engine>,
    _q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // `quiet` only silences progress bars, and berth sends none.
    let reader = body_reader(req.into_body());
    let e = engine.clone();
    let loaded = blocking(move || e.load_images(reader)).await?;
    let mut out = Vec::new();
    for img in loaded {
        if img.tags.is_empty() {
            out.extend(JsonMessage::stream(format!("Loaded image ID: {}\n", img.id)).line());
        }
        for t in img.tags {
            out.extend(JsonMessage::stream(format!("Loaded image: {t}\n")).line());
        }
    }
    Ok(json_stream(out))
}

/// `GET /images/get?names=..` and `GET /images/{name}/get`: the tar streams as it is
/// written. Names are resolved before the first byte, so an unknown one is a 404.
async fn save(engine: &Arc<Engine>, names: Vec<String>) -> Result<Response<Body>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given to save"));
    }
    let e = engine.clone();
    blocking_body("application/x-tar", move |w| e.save_images(&names, w)).await
}

/// `POST /images/create`: with `fromSrc=-`, imports the body as a root filesystem.
/// Pulling (`fromImage`) is for the registry work.
async fn create(
    engine: &Arc<Engine>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let Some(src) = q.get("fromSrc") else {
        return pull(engine, q, req).await;
    };
    if src != "-" {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported: send the tar as the request body (fromSrc=-)",
        ));
    }
    let repo = q.get("repo").unwrap_or("").to_string();
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if !repo.is_empty() => format!("{repo}:{t}"),
        _ => repo,
    };
    let changes = q.all("changes");
    let message = q.get("message").map(str::to_string);
    let reader = body_reader(req.into_body());
    let e = engine.clone();
    let id = blocking(move || {
        let r = (!reference.is_empty()).then_some(reference.as_str());
        e.import_image(reader, changes, message, r)
    })
    .await?;
    Ok(json_stream(JsonMessage::status(id).line()))
}

fn bool_filter(key: &str, v: &[String]) -> Result<Option<bool>, ApiError> {
    match v {
        [] => Ok(None),
        [one] => match one.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(format!(
                "invalid filter '{key}={one}'"
            ))),
        },
        _ => Err(ApiError::bad_request(format!(
            "invalid filter '{key}': only one value allowed"
        ))),
    }
}

/// `GET /images/json`.
async fn list(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>, ApiError> {
    let mut f = ListFilters {
        all: q.bool("all"),
        ..ListFilters::default()
    };
    for (k, v) in q.filters()? {
        match k.as_str() {
            "dangling" => f.dangling = bool_filter(&k, &v)?,
            "reference" => f.reference = v,
            "label" => f.label = v,
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    // The legacy `filter=name` parameter is a reference filter.
    if let Some(name) = q.get("filter").filter(|n| !n.is_empty()) {
        f.reference.push(name.to_string());
    }
    let e = engine.clone();
    let images = blocking(move || e.list_images(&f)).await?;
    let out: Vec<ImageSummary> = images
        .into_iter()
        .map(|i| ImageSummary {
            id: i.id,
            parent_id: i.parent_id,
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            created: i.created,
            size: i.size as i64,
            shared_size: -1,
            labels: i.labels,
            containers: -1,
        })
        .collect();
    json(&out)
}

/// `GET /images/{name}/json`.
async fn inspect(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let e = engine.clone();
    let d = blocking(move || e.inspect_image(&name)).await?;
    json(&ImageInspect {
        id: d.id,
        repo_tags: d.repo_tags,
        repo_digests: d.repo_digests,
        parent: d.parent,
        comment: d.comment,
        created: d.created,
        docker_version: d.docker_version,
        author: d.author,
        config: d.config,
        architecture: d.architecture,
        variant: d.variant,
        os: d.os,
        size: d.size as i64,
        graph_driver: GraphDriver {
            name: "overlay2".into(),
            data: Default::default(),
        },
        root_fs: RootFs {
            kind: "layers".into(),
            layers: d.layers,
        },
        metadata: ImageMetadata {
            last_tag_time: d.last_tag_time.unwrap_or_else(|| ZERO_TIME.into()),
        },
    })
}

/// `GET /images/{name}/history`.
async fn history(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let e = engine.clone();
    let h = blocking(move || e.image_history(&name)).await?;
    let out: Vec<HistoryItem> = h
        .into_iter()
        .map(|h| HistoryItem {
            id: h.id,
            created: h.created,
            created_by: h.created_by,
            tags: (!h.tags.is_empty()).then_some(h.tags),
            size: h.size as i64,
            comment: h.comment,
        })
        .collect();
    json(&out)
}

/// `POST /images/{name}/tag?repo=..&tag=..`: 201 and no body, as Docker.
async fn tag(engine: &Arc<Engine>, name: String, q: &Query) -> Result<Response<Body>, ApiError> {
    let repo = q.get("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    }
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let e = engine.clone();
    blocking(move || e.tag_image(&name, &target)).await?;
    Ok(Response::builder()
        .status(201)
        .body(full(""))
        .expect("valid response"))
}

fn delete_responses(removed: Vec<Removed>) -> Vec<DeleteResponse> {
    removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => DeleteResponse {
                untagged: Some(t),
                deleted: None,
            },
            Removed::Deleted(d) => DeleteResponse {
                untagged: None,
                deleted: Some(d),
            },
        })
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`.
async fn remove(engine: &Arc<Engine>, name: String, q: &Query) -> Result<Response<Body>, ApiError> {
    let force = q.bool("force");
    let noprune = q.bool("noprune");
    let e = engine.clone();
    let removed = blocking(move || e.remove_image(&name, force, noprune)).await?;
    json(&delete_responses(removed))
}

/// `POST /images/prune?filters=`: `dangling=false` prunes every unused image.
async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>, ApiError> {
    let mut all = false;
    let mut labels = Vec::new();
    for (k, v) in q.filters()? {
        match k.as_str() {
            "dangling" => all = bool_filter(&k, &v)? == Some(false),
            "label" => labels = v,
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let e = engine.clone();
    let (removed, reclaimed) = blocking(move || e.prune_images(all, &labels)).await?;
    let deleted = delete_responses(removed);
    json(&ImagePruneReport {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: reclaimed,
    })
}

/// The credentials of `X-Registry-Auth` (anonymous when absent).
fn registry_auth(req: &Request<Incoming>) -> Result<Credentials, ApiError> {
    let Some(v) = req.headers().get("X-Registry-Auth") else {
        return Ok(Credentials::Anonymous);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header"))?;
    AuthConfig::from_header(v)
        .map(|a| a.credentials())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Docker's human sizes: 4 significant digits, decimal units.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as i32 + 1
    };
    let decimals = (4 - int_digits).clamp(0, 3) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[u])
}

/// Docker's progress bar: `[====>     ]  1.2MB/3.4MB`.
fn progress_bar(current: u64, total: u64) -> String {
    let cur = human_size(current);
    if total == 0 {
        return format!("{cur:>8}");
    }
    let width = 50usize;
    let filled = ((width as f64 * current as f64 / total as f64) as usize).min(width);
    let bar = if filled >= width {
        format!("[{}>] ", "=".repeat(width - 1))
    } else {
        format!(
            "[{}>{}] ",
            "=".repeat(filled),
            " ".repeat(width - filled - 1)
        )
    };
    format!("{bar}{cur:>8}/{}", human_size(total))
}

/// One progress message as a line of Docker's JSON stream.
fn progress_line(p: &Progress) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if !p.status.is_empty() {
        m.insert("status".into(), p.status.clone().into());
    }
    match (p.current, p.total) {
        (Some(c), Some(t)) => {
            m.insert(
                "progressDetail".into(),
                serde_json::json!({"current": c, "total": t}),
            );
            m.insert("progress".into(), progress_bar(c, t).into());
        }
        _ if p.id.is_some() || p.aux.is_some() => {
            m.insert("progressDetail".into(), serde_json::json!({}));
        }
        _ => {}
    }
    if let Some(id) = &p.id {
        m.insert("id".into(), id.clone().into());
    }
    if let Some(aux) = &p.aux {
        m.insert("aux".into(), aux.clone());
    }
    let mut v = serde_json::to_vec(&m).unwrap_or_default();
    v.extend_from_slice(b"\r\n");
    v
}

fn error_line(message: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec(&serde_json::json!({
        "errorDetail": {"message": message},
        "error": message,
    }))
    .unwrap_or_default();
    v.extend_from_slice(b"\r\n");
    v
}

/// Runs a long registry operation with its progress streamed as JSON lines. An error
/// before the first message is a plain error response (Docker's "Error response from
/// daemon"); after it, an `errorDetail` line ends the stream. A client that goes away
/// cancels the operation.
async fn progress_stream<F>(op: F) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(&(dyn Fn(Progress) -> bool + Sync)) -> engine::Result<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(64);
    let mut task = tokio::task::spawn_blocking(move || {
        let sent = AtomicBool::new(false);
        let send = |p: Progress| {
            sent.store(true, Ordering::SeqCst);
            tx.blocking_send(Ok(Bytes::from(progress_line(&p)))).is_ok()
        };
        match op(&send) {
            Ok(()) => Ok(()),
            Err(e) if sent.load(Ordering::SeqCst) => {
                let _ = tx.blocking_send(Ok(Bytes::from(error_line(&e.to_string()))));
                Ok(())
            }
            Err(e) => Err(e),
        }
    });
    let first = tokio::select! {
        biased;
        first = rx.recv() => match first {
            Some(Ok(b)) => Some(b),
            _ => {
                task.await
                    .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
                    .map_err(from_engine)?;
                None
            }
        },
        r = &mut task => {
            r.map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
                .map_err(from_engine)?;
            None
        }
    };
    Ok(Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(channel_body(first, rx))
        .expect("valid response"))
}

/// `POST /images/create?fromImage=&tag=&platform=`: pull.
async fn pull(
    engine: &Arc<Engine>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let credentials = registry_auth(&req)?;
    let from = q.get("fromImage").unwrap_or("").to_string();
    if from.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    let tag = q.get("tag").unwrap_or("").to_string();
    let opts = PullOptions {
        platform: q.get("platform").map(str::to_string),
        credentials,
    };
    let e = engine.clone();
    progress_stream(move |send| e.pull_image(&from, &tag, &opts, send).map(|_| ())).await
}

/// `POST /images/{name}/push?tag=`.
async fn push(
    engine: &Arc<Engine>,
    name: String,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let credentials = registry_auth(&req)?;
    let tag = q.get("tag").unwrap_or("").to_string();
    let opts = PushOptions { credentials };
    let e = engine.clone();
    progress_stream(move |send| e.push_image(&name, &tag, &opts, send)).await
}

/// `POST /auth`: checks credentials against the registry (`docker login`).
pub async fn auth(
    engine: &Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = crate::body::json_body(req, 1 << 20).await?;
    let raw = serde_json::to_vec(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cfg = if body.is_null() {
        AuthConfig::default()
    } else {
        AuthConfig::from_json(&raw).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let e = engine.clone();
    let r = tokio::task::spawn_blocking(move || e.login(&cfg))
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?;
    match r {
        Ok(token) => json(&serde_json::json!({
            "Status": "Login Succeeded",
            "IdentityToken": token.unwrap_or_default(),
        })),
        Err(LoginError::Unauthorized(m)) => Err(ApiError::new(401, m)),
        Err(LoginError::Other(e)) => Err(from_engine(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_as_docker_draws_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_221_000), "2.221MB");
        assert_eq!(human_size(1_500), "1.5kB");
        let bar = progress_bar(50, 100);
        assert!(bar.starts_with(&format!("[{}>", "=".repeat(25))), "{bar}");
        assert!(bar.ends_with("50B/100B"), "{bar}");
    }

    #[test]
    fn names_with_slashes_split_on_the_suffix() {
        assert_eq!(
            split_name("localhost:5000/a/b:tag/json"),
            ("localhost:5000/a/b:tag", "json")
        );
        assert_eq!(split_name("busybox/history"), ("busybox", "history"));
        assert_eq!(split_name("a/b:1"), ("a/b:1", ""));
        assert_eq!(split_name("json/json"), ("json", "json"));
        // A repository that merely ends in a suffix's letters is a name.
        assert_eq!(split_name("myjson"), ("myjson", ""));
    }
}
