//! `POST /containers/{id}/exec` and `/exec/{id}/...`: start, resize, inspect.

use std::sync::Arc;

use api::ApiError;
use engine::containers::exec::ExecConfig;
use engine::Engine;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use crate::body::json_body;
use crate::error::blocking;
use crate::hijack::{self, Input, Source};
use crate::query::{decode, Query};
use crate::router::{json, json_status};
use crate::server::{full, Body};
use crate::stream::{channel_body, ChannelWriter};
use tokio::sync::mpsc;

const MAX_BODY: usize = 1 << 20;

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn text(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `[rows, columns]`, as the API sends `ConsoleSize`.
fn console_size(v: &Value) -> Option<(u16, u16)> {
    let a = v.get("ConsoleSize")?.as_array()?;
    let h = u16::try_from(a.first()?.as_u64()?).ok()?;
    let w = u16::try_from(a.get(1)?.as_u64()?).ok()?;
    (h > 0 && w > 0).then_some((h, w))
}

/// `POST /containers/{name}/exec`.
pub async fn create(
    engine: &Arc<Engine>,
    name: String,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let v = json_body(req, MAX_BODY).await?;
    if !v.is_object() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let config = ExecConfig {
        attach_stdin: flag(&v, "AttachStdin"),
        attach_stdout: flag(&v, "AttachStdout"),
        attach_stderr: flag(&v, "AttachStderr"),
        tty: flag(&v, "Tty"),
        env: strings(v.get("Env")),
        cmd: strings(v.get("Cmd")),
        privileged: flag(&v, "Privileged"),
        user: text(&v, "User"),
        working_dir: text(&v, "WorkingDir"),
        detach_keys: text(&v, "DetachKeys"),
        console_size: console_size(&v),
    };
    let e = engine.clone();
    let id = blocking(move || e.create_exec(&name, config)).await?;
    json_status(201, &json!({ "Id": id }))
}

/// Routes a request whose path starts with `/exec/`.
pub async fn route(
    engine: &Arc<Engine>,
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = Query::parse(req.uri().query());
    let rest = &path["/exec/".len()..];
    let (id, action) = match rest.split_once('/') {
        Some((i, a)) => (decode(i), a),
        None => return Err(ApiError::not_found("page not found")),
    };
    let e = engine.clone();
    match (method, action) {
        (&Method::POST, "start") => start(engine, id, req).await,
        (&Method::POST, "resize") => {
            let (h, w) = size(&q)?;
            blocking(move || e.resize_exec(&id, h, w)).await?;
            Ok(Response::builder()
                .status(200)
                .body(full(bytes::Bytes::new()))
                .expect("valid response"))
        }
        (&Method::GET, "json") => {
            let x = blocking(move || e.inspect_exec(&id)).await?;
            json(&json!({
                "ID": x.id,
                "Running": x.running,
                "ExitCode": x.exit_code,
                "ProcessConfig": {
                    "tty": x.config.tty,
                    "entrypoint": x.config.cmd.first(),
                    "arguments": x.config.cmd.get(1..).unwrap_or_default(),
                    "privileged": x.config.privileged,
                    "user": x.config.user,
                },
                "OpenStdin": x.config.attach_stdin,
                "OpenStderr": x.config.attach_stderr,
                "OpenStdout": x.config.attach_stdout,
                "CanRemove": false,
                "ContainerID": x.container_id,
                "DetachKeys": x.config.detach_keys,
                "Pid": x.pid,
            }))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `h` and `w` of a resize request.
pub fn size(q: &Query) -> Result<(u16, u16), ApiError> {
    let get = |k: &str| -> Result<u16, ApiError> {
        let v = q.get(k).unwrap_or("0");
        v.parse::<u16>().map_err(|_| {
            ApiError::bad_request(format!("strconv.Atoi: parsing \"{v}\": invalid syntax"))
        })
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /exec/{id}/start`: hijacked unless detached. An exec that fails to start
/// after the 101 says why on the stream; its exit code (126/127) is in inspect.
async fn start(
    engine: &Arc<Engine>,
    id: String,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let upgrade = hijack::wants_upgrade(&req).then(|| hijack::on_upgrade(&mut req));
    let e = engine.clone();
    let i = id.clone();
    let exec = blocking(move || e.inspect_exec(&i)).await?;
    let v = json_body(req, MAX_BODY).await?;
    let detach = flag(&v, "Detach");
    let e = engine.clone();
    if detach {
        blocking(move || e.start_exec(&id, true)).await?;
        return Ok(Response::builder()
            .status(200)
            .body(full(bytes::Bytes::new()))
            .expect("valid response"));
    }
    let Some(on) = upgrade else {
        // A plain request: the output is the body (and there is no stdin).
        let started = blocking(move || e.start_exec(&id, false)).await?;
        let Some(s) = started else {
            return Ok(Response::new(full(bytes::Bytes::new())));
        };
        let (tx, rx) = mpsc::channel(8);
        let mut stream = s.stream;
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            let _ = std::io::copy(&mut stream, &mut w);
        });
        return Ok(Response::builder()
            .status(200)
            .header("Content-Type", hijack::content_type(s.tty))
            .body(channel_body(None, rx))
            .expect("valid response"));
    };
    let input = Input {
        detach_keys: if exec.config.attach_stdin {
            Some(hijack::parse_detach_keys(&exec.config.detach_keys)?)
        } else {
            None
        },
        on_eof: (exec.config.attach_stdin && !exec.config.tty).then(|| {
            let e = engine.clone();
            let id = exec.id.clone();
            Box::new(move || {
                let _ = e.close_exec_stdin(&id);
            }) as Box<dyn FnOnce() + Send>
        }),
    };
    Ok(hijack::upgrade(
        on,
        exec.config.tty,
        input,
        move || match e.start_exec(&id, false) {
            Ok(Some(s)) => Source::Live(s.stream),
            Ok(None) => Source::Bytes(Vec::new()),
            Err(err) => Source::Failed(err.to_string()),
        },
    ))
}
