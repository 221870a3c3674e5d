//! `/containers/...`: create, start, stop, kill, wait, logs, list, inspect, remove.
//!
//! Docker's JSON is read and written here; the engine's container record knows none
//! of it. A container is named by full id, name or unique id prefix everywhere.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::ApiError;
use bytes::Bytes;
use engine::containers::attach::{AttachRequest, Attached};
use engine::containers::create::CreateOptions;
use engine::containers::filter::docker_status;
use engine::containers::logs::{LogStream, LogsOptions};
use engine::containers::prune::PruneFilter;
use engine::containers::restart::RestartPolicy;
use engine::containers::start::WaitCondition;
use engine::containers::{Container, ContainerConfig, HostConfig, ListOptions, LogConfig, Status};
use engine::Engine;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::error::blocking;
use crate::hijack::{self, Input, Source};
use crate::query::{decode, Query};
use crate::router::{json, json_status};
use crate::server::{full, Body};
use crate::stream::{channel_body, ChannelWriter};

/// Largest create body accepted.
const MAX_BODY: usize = 4 << 20;

/// Routes a request whose path starts with `/containers/`.
pub async fn route(
    engine: &Arc<Engine>,
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = Query::parse(req.uri().query());
    let rest = &path["/containers/".len()..];
    match (method, rest) {
        (&Method::POST, "create") => return create(engine, &q, req).await,
        (&Method::GET, "json") => return list(engine, &q).await,
        (&Method::POST, "prune") => return prune(engine, &q).await,
        _ => {}
    }
    let (name, action) = match rest.split_once('/') {
        Some((n, a)) => (decode(n), a),
        None => (decode(rest), ""),
    };
    if name.is_empty() {
        return Err(ApiError::not_found("page not found"));
    }
    let e = engine.clone();
    match (method, action) {
        (&Method::POST, "start") => {
            let started = blocking(move || e.start_container(&name)).await?;
            Ok(status(if started { 204 } else { 304 }))
        }
        (&Method::POST, "stop") => {
            let t = stop_timeout(&q)?;
            let sig = q.get("signal").map(str::to_string);
            let stopped = blocking(move || e.stop_container(&name, t, sig.as_deref())).await?;
            Ok(status(if stopped { 204 } else { 304 }))
        }
        (&Method::POST, "restart") => {
            let t = stop_timeout(&q)?;
            let sig = q.get("signal").map(str::to_string);
            blocking(move || e.restart_container(&name, t, sig.as_deref())).await?;
            Ok(status(204))
        }
        (&Method::POST, "pause") => {
            blocking(move || e.pause_container(&name)).await?;
            Ok(status(204))
        }
        (&Method::POST, "unpause") => {
            blocking(move || e.unpause_container(&name)).await?;
            Ok(status(204))
        }
        (&Method::POST, "rename") => {
            let new = q.get("name").unwrap_or_default().to_string();
            blocking(move || e.rename_container(&name, &new)).await?;
            Ok(status(204))
        }
        (&Method::POST, "resize") => {
            let (h, w) = super::exec::size(&q)?;
            blocking(move || e.resize_container(&name, h, w)).await?;
            Ok(status(200))
        }
        (&Method::GET, "top") => {
            let args = q.get("ps_args").unwrap_or_default().to_string();
            let t = blocking(move || e.top_container(&name, &args)).await?;
            json(&json!({"Titles": t.titles, "Processes": t.processes}))
        }
        (&Method::POST, "exec") => super::exec::create(engine, name, req).await,
        (&Method::POST, "kill") => {
            let sig = q.get("signal").map(str::to_string);
            blocking(move || e.kill_container(&name, sig.as_deref())).await?;
            Ok(status(204))
        }
        (&Method::POST, "wait") => {
            let cond = match q.get("condition").unwrap_or("") {
                "" | "not-running" => WaitCondition::NotRunning,
                "next-exit" => WaitCondition::NextExit,
                "removed" => WaitCondition::Removed,
                c => return Err(ApiError::bad_request(format!("invalid condition: \"{c}\""))),
            };
            // The container must exist before the wait begins; then, as dockerd does,
            // the headers go out at once (clients wait for them before starting the
            // container) and the body when the container has exited.
            let e2 = engine.clone();
            let n2 = name.clone();
            blocking(move || match e2.lookup_container(&n2) {
                Err(e) if e2.removed_exit(&n2, cond).is_none() => Err(e),
                _ => Ok(()),
            })
            .await?;
            let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(1);
            tokio::spawn(async move {
                let v = match blocking(move || e.wait_container(&name, cond)).await {
                    Ok(code) => json!({"StatusCode": code, "Error": null}),
                    Err(err) => json!({"StatusCode": -1, "Error": {"Message": err.message}}),
                };
                let mut line = v.to_string().into_bytes();
                line.push(b'\n');
                let _ = tx.send(Ok(Bytes::from(line))).await;
            });
            Ok(Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(channel_body(None, rx))
                .expect("valid response"))
        }
        (&Method::GET, "logs") => logs(engine, name, &q).await,
        (&Method::POST, "attach") => attach(engine, name, &q, req).await,
        (&Method::HEAD | &Method::GET | &Method::PUT, "archive") => {
            super::archive::archive(engine, method, name, &q, req).await
        }
        (&Method::GET, "changes") => super::archive::changes(engine, name).await,
        (&Method::GET, "export") => super::archive::export(engine, name).await,
        (&Method::GET, "json") => {
            let c = blocking(move || e.inspect_container(&name)).await?;
            json(&inspect_json(&c))
        }
        (&Method::DELETE, "") => {
            let force = q.bool("force");
            blocking(move || e.remove_container(&name, force)).await?;
            Ok(status(204))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// The `t` of stop and restart: seconds, negative for no limit.
fn stop_timeout(q: &Query) -> Result<Option<i64>, ApiError> {
    match q.get("t").filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
        None => Ok(None),
    }
}

fn status(code: u16) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(full(Bytes::new()))
        .expect("valid response")
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn boolean(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

/// Docker's create body to the engine's options.
fn create_options(body: &Value, name: Option<String>) -> Result<CreateOptions, ApiError> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::bad_request("config cannot be empty in order to create a container")
    })?;
    let g = |k: &str| obj.get(k);
    let labels = match g("Labels") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Default::default(),
    };
    let config = ContainerConfig {
        image: string(g("Image")),
        cmd: strings(g("Cmd")),
        entrypoint: strings(g("Entrypoint")),
        env: strings(g("Env")).unwrap_or_default(),
        working_dir: string(g("WorkingDir")),
        user: string(g("User")),
        hostname: string(g("Hostname")),
        domainname: string(g("Domainname")),
        labels,
        tty: boolean(g("Tty")),
        open_stdin: boolean(g("OpenStdin")),
        stdin_once: boolean(g("StdinOnce")),
        attach_stdin: boolean(g("AttachStdin")),
        attach_stdout: boolean(g("AttachStdout")),
        attach_stderr: boolean(g("AttachStderr")),
        stop_signal: g("StopSignal")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        stop_timeout: int(g("StopTimeout")),
    };
    if config.image.is_empty() {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let empty = Map::new();
    let h = g("HostConfig").and_then(Value::as_object).unwrap_or(&empty);
    let hg = |k: &str| h.get(k);
    let host_config = HostConfig {
        memory: int(hg("Memory")).unwrap_or(0),
        nano_cpus: int(hg("NanoCpus")).unwrap_or(0),
        pids_limit: int(hg("PidsLimit")),
        network_mode: string(hg("NetworkMode")),
        auto_remove: boolean(hg("AutoRemove")),
        privileged: boolean(hg("Privileged")),
        cap_add: strings(hg("CapAdd")).unwrap_or_default(),
        cap_drop: strings(hg("CapDrop")).unwrap_or_default(),
        readonly_rootfs: boolean(hg("ReadonlyRootfs")),
        init: hg("Init").and_then(Value::as_bool),
        security_opt: strings(hg("SecurityOpt")).unwrap_or_default(),
        runtime: string(hg("Runtime")),
        log_config: {
            let lc = hg("LogConfig");
            LogConfig {
                driver: string(lc.and_then(|l| l.get("Type"))),
                opts: match lc.and_then(|l| l.get("Config")) {
                    Some(Value::Object(m)) => m
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect(),
                    _ => Default::default(),
                },
            }
        },
        restart_policy: {
            let rp = hg("RestartPolicy");
            RestartPolicy {
                name: string(rp.and_then(|r| r.get("Name"))),
                maximum_retry_count: int(rp.and_then(|r| r.get("MaximumRetryCount"))).unwrap_or(0),
            }
        },
    };
    Ok(CreateOptions {
        name,
        config,
        host_config,
    })
}

/// `POST /containers/create?name=`.
async fn create(
    engine: &Arc<Engine>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let v = crate::body::json_body(req, MAX_BODY).await?;
    let opts = create_options(&v, q.get("name").map(str::to_string))?;
    let e = engine.clone();
    let id = blocking(move || e.create_container(opts)).await?;
    json_status(201, &json!({"Id": id, "Warnings": []}))
}

fn unix_secs(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let hours = s / 3600;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ if s / 60 == 1 => "About a minute".into(),
        _ if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn since(t: &str) -> Duration {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// The `Status` column of `docker ps`.
fn status_text(c: &Container) -> String {
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running if c.state.paused => {
            format!("Up {} (Paused)", human_duration(since(&c.state.started_at)))
        }
        Status::Running => format!("Up {}", human_duration(since(&c.state.started_at))),
        Status::Exited if c.state.restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human_duration(since(&c.state.finished_at))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human_duration(since(&c.state.finished_at))
        ),
    }
}

fn command(c: &Container) -> String {
    std::iter::once(c.path.as_str())
        .chain(c.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /containers/json?all=`.
async fn list(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>, ApiError> {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    // `-n` and `-l` list stopped containers too, as in dockerd.
    let opts = ListOptions {
        all: q.bool("all") || limit.is_some(),
        filters: q.filters()?,
    };
    let e = engine.clone();
    let size = q.bool("size");
    let (cs, sizes) = blocking(move || {
        let mut cs = e.list_containers(&opts)?;
        cs.truncate(limit.unwrap_or(usize::MAX));
        let sizes = if size {
            e.container_sizes(&cs)?
        } else {
            Vec::new()
        };
        Ok((cs, sizes))
    })
    .await?;
    let out: Vec<Value> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = json!({
                "Id": c.id,
                "Names": [c.name],
                "Image": c.config.image,
                "ImageID": c.image_id,
                "Command": command(c),
                "Created": unix_secs(&c.created),
                "Ports": [],
                "Labels": c.config.labels,
                "State": docker_status(c),
                "Status": status_text(c),
                "HostConfig": {"NetworkMode": c.host_config.network_mode},
                "NetworkSettings": {"Networks": {}},
                "Mounts": [],
            });
            if let Some(u) = sizes.get(i) {
                v["SizeRw"] = json!(u.size_rw);
                v["SizeRootFs"] = json!(u.size_root_fs);
            }
            v
        })
        .collect();
    json(&out)
}

/// The `until` of a prune filter as dockerd reads it: unix seconds, a duration back
/// from now (`10m`, `24h`) or an RFC 3339 time.
fn prune_until(v: &str) -> Result<SystemTime, ApiError> {
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(SystemTime::now() - d);
    }
    humantime::parse_rfc3339_weak(v).map_err(|_| {
        ApiError::bad_request(format!(
            "failed to parse value as time or duration: \"{v}\""
        ))
    })
}

/// `POST /containers/prune`: removes the containers that are not running (created,
/// exited), optionally only those matching `label`/`label!` and created before `until`.
async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Response<Body>, ApiError> {
    let mut filter = PruneFilter::default();
    for (k, v) in q.filters()? {
        match k.as_str() {
            "label" => filter.labels.extend(v),
            "label!" => filter.not_labels.extend(v),
            "until" => {
                for t in &v {
                    filter.until = Some(prune_until(t)?);
                }
            }
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let e = engine.clone();
    let (deleted, reclaimed) = blocking(move || e.prune_containers(&filter)).await?;
    json(&json!({
        "ContainersDeleted": (!deleted.is_empty()).then_some(deleted),
        "SpaceReclaimed": reclaimed,
    }))
}

fn inspect_json(c: &Container) -> Value {
    let h = &c.host_config;
    let st = &c.state;
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": docker_status(c),
            "Running": st.status == Status::Running,
            "Paused": st.paused,
            "Restarting": st.restarting,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at,
            "FinishedAt": st.finished_at,
        },
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": null,
            "LogConfig": {"Type": h.log_config.driver, "Config": h.log_config.opts},
            "NetworkMode": h.network_mode,
            "PortBindings": {},
            "RestartPolicy": {
                "Name": if h.restart_policy.is_none() { "no" } else { h.restart_policy.name.as_str() },
                "MaximumRetryCount": h.restart_policy.maximum_retry_count,
            },
            "AutoRemove": h.auto_remove,
            "CapAdd": h.cap_add,
            "CapDrop": h.cap_drop,
            "Privileged": h.privileged,
            "ReadonlyRootfs": h.readonly_rootfs,
            "Init": h.init,
            "SecurityOpt": (!h.security_opt.is_empty()).then_some(&h.security_opt),
            "Runtime": if h.runtime.is_empty() { "berth" } else { h.runtime.as_str() },
            "Memory": h.memory,
            "NanoCpus": h.nano_cpus,
            "PidsLimit": h.pids_limit,
        },
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "Mounts": [],
        "Config": {
            "Hostname": c.config.hostname,
            "Domainname": c.config.domainname,
            "User": c.config.user,
            "AttachStdin": c.config.attach_stdin,
            "AttachStdout": c.config.attach_stdout,
            "AttachStderr": c.config.attach_stderr,
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "StdinOnce": c.config.stdin_once,
            "Env": c.env,
            "Cmd": c.config.cmd,
            "Image": c.config.image,
            "Volumes": null,
            "WorkingDir": c.config.working_dir,
            "Entrypoint": c.config.entrypoint,
            "OnBuild": null,
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": {},
            "Networks": {},
        },
    })
}

/// `POST /containers/{id}/attach`: the connection is hijacked (101) and bridged to
/// the shim's attach stream.
async fn attach(
    engine: &Arc<Engine>,
    name: String,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let areq = AttachRequest {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
    };
    let e = engine.clone();
    let n = name.clone();
    let c = blocking(move || e.lookup_container(&n)).await?;
    if !q.bool("stream") {
        return Err(ApiError::bad_request(
            "attaching without stream is not supported",
        ));
    }
    let input = Input {
        detach_keys: if areq.stdin {
            Some(hijack::parse_detach_keys(
                q.get("detachKeys").unwrap_or(""),
            )?)
        } else {
            None
        },
        // As in dockerd, a terminal's stdin stays open (the client may have detached).
        on_eof: (areq.stdin && c.config.stdin_once && !c.config.tty).then(|| {
            let e = engine.clone();
            let id = c.id.clone();
            Box::new(move || {
                let _ = e.close_stdin(&id);
            }) as Box<dyn FnOnce() + Send>
        }),
    };
    let on = hijack::on_upgrade(&mut req);
    let e = engine.clone();
    Ok(hijack::upgrade(on, c.config.tty, input, move || {
        match e.attach_container(&name, areq) {
            Ok((Attached::Live(s), _)) => Source::Live(s),
            Ok((Attached::Replay(bytes), _)) => Source::Bytes(bytes),
            Err(err) => Source::Failed(err.to_string()),
        }
    }))
}

/// `1700000000` or `1700000000.5`; zero or empty: none.
fn parse_time(q: &Query, key: &str) -> Result<Option<SystemTime>, ApiError> {
    let Some(v) = q.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request(format!("invalid value for {key}: {v}"));
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        f.parse().map_err(|_| bad())?
    };
    if secs <= 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(
        UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64) + Duration::from_nanos(nanos.into()),
    ))
}

/// `GET /containers/{id}/logs`.
async fn logs(engine: &Arc<Engine>, name: String, q: &Query) -> Result<Response<Body>, ApiError> {
    let mut opts = LogsOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        follow: q.bool("follow"),
        since: parse_time(q, "since")?,
        until: parse_time(q, "until")?,
        tail: None,
        timestamps: q.bool("timestamps"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    opts.tail = match q.get("tail").unwrap_or("all") {
        "" | "all" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
    };
    let e = engine.clone();
    let logs = blocking(move || e.container_logs(&name, &opts)).await?;
    let tty = logs.tty;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let follow = q.bool("follow");
    let timestamps = q.bool("timestamps");
    if let Some(reader) = logs.reader {
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            let mut buf = Vec::new();
            for entry in reader {
                let Ok(entry) = entry else { continue };
                buf.clear();
                entry.append_docker(timestamps, false, &mut buf);
                let r = if tty {
                    w.write_all(&buf)
                } else {
                    // Docker's multiplexed frame: stream, three zeros, big-endian length.
                    let kind = match entry.stream {
                        LogStream::Stdout => 1u8,
                        LogStream::Stderr => 2u8,
                    };
                    let n = (buf.len() as u32).to_be_bytes();
                    w.write_all(&[kind, 0, 0, 0, n[0], n[1], n[2], n[3]])
                        .and_then(|()| w.write_all(&buf))
                };
                if r.is_err() || (follow && w.flush().is_err()) {
                    return;
                }
            }
            let _ = w.flush();
        });
    }
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(Response::builder()
        .status(200)
        .header("Content-Type", ctype)
        .body(channel_body(None, rx))
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
    }

    #[test]
    fn create_body() {
        let v = json!({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"], "Env": null,
            "HostConfig": {"Memory": 10485760, "NetworkMode": "none", "CapAdd": null}});
        let o = create_options(&v, Some("x".into())).unwrap();
        assert_eq!(o.config.cmd.unwrap(), ["sh", "-c", "exit 3"]);
        assert_eq!(o.host_config.memory, 10485760);
        assert_eq!(o.host_config.network_mode, "none");
        assert!(create_options(&Value::Null, None).is_err());
        assert!(create_options(&json!({}), None).is_err());
    }

    #[test]
    fn times() {
        let q = Query::parse(Some("since=1700000000.5&until=0"));
        assert_eq!(
            parse_time(&q, "since").unwrap(),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500))
        );
        assert_eq!(parse_time(&q, "until").unwrap(), None);
        assert!(parse_time(&Query::parse(Some("since=x")), "since").is_err());
    }
}
