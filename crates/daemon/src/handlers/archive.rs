//! A container's filesystem: `HEAD|GET|PUT /containers/{id}/archive` (docker cp),
//! `GET /containers/{id}/changes` (diff), `GET /containers/{id}/export` and
//! `POST /commit`.

use std::io;
use std::sync::Arc;

use api::ApiError;
use bytes::Bytes;
use engine::containers::archive::{ChangeKind, PathStat};
use engine::containers::commit::CommitOptions;
use engine::Engine;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::error::{blocking, from_engine};
use crate::query::Query;
use base64::Engine as _;

use crate::router::{json, json_status};
use crate::server::{full, Body};
use crate::stream::{blocking_body, body_reader, channel_body, ChannelWriter};

/// Largest commit config body accepted.
const MAX_CONFIG: usize = 1 << 20;

/// The `X-Docker-Container-Path-Stat` header: Docker's `ContainerPathStat` as JSON,
/// base64-encoded.
fn stat_header(s: &PathStat) -> String {
    let mtime = humantime::format_rfc3339_nanos(s.mtime).to_string();
    let v = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": mtime,
        "linkTarget": s.link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// `/containers/{name}/archive`: `HEAD` stats a path, `GET` archives it, `PUT`
/// unpacks the body into a directory.
pub async fn archive(
    engine: &Arc<Engine>,
    method: &Method,
    name: String,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = q.get("path").unwrap_or("").to_string();
    let e = engine.clone();
    match *method {
        Method::HEAD => {
            let stat = blocking(move || e.stat_container_path(&name, &path)).await?;
            Ok(Response::builder()
                .status(200)
                .header("X-Docker-Container-Path-Stat", stat_header(&stat))
                .header("Content-Type", "application/json")
                .body(full(Bytes::new()))
                .expect("valid response"))
        }
        Method::GET => get_archive(e, name, path).await,
        Method::PUT => {
            let no_overwrite = q.bool("noOverwriteDirNonDir");
            let copy_uid_gid = q.bool("copyUIDGID");
            let reader = body_reader(req.into_body());
            blocking(move || {
                e.extract_to_container(&name, &path, reader, no_overwrite, copy_uid_gid)
            })
            .await?;
            Ok(Response::builder()
                .status(200)
                .body(full(Bytes::new()))
                .expect("valid response"))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `GET .../archive`: the stat goes in a header, so the path is resolved before the
/// response starts; the tar then streams as it is written.
async fn get_archive(
    engine: Arc<Engine>,
    name: String,
    path: String,
) -> Result<Response<Body>, ApiError> {
    let (stat_tx, stat_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let archive = match engine.archive_container_path(&name, &path) {
            Ok(a) => a,
            Err(err) => {
                let _ = stat_tx.send(Err(from_engine(err)));
                return;
            }
        };
        if stat_tx.send(Ok(archive.stat().clone())).is_err() {
            return;
        }
        let err_tx = tx.clone();
        if let Err(err) = archive.write_to(ChannelWriter::new(tx)) {
            // Mid-stream: aborts the response, so no cut-off tar passes for whole.
            let _ = err_tx.blocking_send(Err(io::Error::other(err.to_string())));
        }
    });
    let stat = stat_rx
        .await
        .map_err(|_| ApiError::internal("engine task failed"))??;
    Ok(Response::builder()
        .status(200)
        .header("X-Docker-Container-Path-Stat", stat_header(&stat))
        .header("Content-Type", "application/x-tar")
        .body(channel_body(None, rx))
        .expect("valid response"))
}

/// `GET /containers/{name}/changes`: `[{"Path": "/tmp", "Kind": 0}]`, Kind 0 for
/// modified, 1 added, 2 deleted.
pub async fn changes(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let e = engine.clone();
    let list = blocking(move || e.container_changes(&name)).await?;
    let out: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            let kind = match c.kind {
                ChangeKind::Modified => 0,
                ChangeKind::Added => 1,
                ChangeKind::Deleted => 2,
            };
            json!({"Path": c.path.to_string_lossy(), "Kind": kind})
        })
        .collect();
    json(&out)
}

/// `GET /containers/{name}/export`: the whole filesystem as a tar, streamed. An
/// unknown container is a 404 before the first byte.
pub async fn export(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let e = engine.clone();
    let n = name.clone();
    blocking(move || e.lookup_container(&n).map(drop)).await?;
    let e = engine.clone();
    blocking_body("application/x-tar", move |w| e.export_container(&name, w)).await
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, with an
/// optional config as the body. Answers 201 `{"Id": "sha256:..."}`.
pub async fn commit(
    engine: &Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = Query::parse(req.uri().query());
    let config = Some(crate::body::json_body(req, MAX_CONFIG).await?).filter(|v| !v.is_null());
    let repo = q.get("repo").unwrap_or("");
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if !repo.is_empty() => Some(format!("{repo}:{t}")),
        _ => (!repo.is_empty()).then(|| repo.to_string()),
    };
    // Absent means pause (API 1.13+); only an explicit false turns it off.
    let pause = q.get("pause").is_none_or(|p| p.is_empty()) || q.bool("pause");
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause,
        changes: q.all("changes"),
        config,
    };
    let name = q.get("container").unwrap_or("").to_string();
    let e = engine.clone();
    let id = blocking(move || e.commit_container(&name, opts)).await?;
    json_status(201, &json!({ "Id": id }))
}
