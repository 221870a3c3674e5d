//! `berth run` and `berth create` (also as `container run|create`): docker's container
//! flags turned into the create body, then attach, start and wait as docker does.

use std::io::{self, IsTerminal, Write};

use clap::Args;
use hyper::Method;
use serde_json::{json, Map, Value};

use super::stream::{self, Ended, ResizeTarget, StreamOpts};
use super::Ctx;
use crate::client::{path_segment, query, RequestBody};
use crate::error::{Error, Result};
use crate::progress::{Mode, Target};
use crate::reference::Reference;

/// The flags `run` and `create` share.
#[derive(Args, Debug, Clone)]
pub struct ContainerOpts {
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse_cpus)]
    pub cpus: Option<i64>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_bytes)]
    pub memory: Option<i64>,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long, value_name = "network")]
    pub network: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing", value_parser = parse_pull)]
    pub pull: PullPolicy,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string", default_value = "no")]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// `berth create`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `berth run`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `--pull`: when `run`/`create` pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Before creating, always.
    Always,
    /// When the daemon has no such image (the default).
    Missing,
    /// Never: a missing image is an error.
    Never,
}

fn parse_pull(s: &str) -> Result<PullPolicy, String> {
    match s {
        "always" => Ok(PullPolicy::Always),
        "missing" => Ok(PullPolicy::Missing),
        "never" => Ok(PullPolicy::Never),
        _ => Err(format!(
            "invalid pull option: '{s}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}

/// `--cpus 1.5` as nano CPUs.
fn parse_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("failed to parse {s} as a rational number"));
    }
    Ok((v * 1e9) as i64)
}

/// `512m`, `1g`, `1024` as bytes (go-units `RAMInBytes`: binary units).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim().to_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(bad());
    }
    Ok((v * mult as f64) as i64)
}

/// `KEY=VALUE` as given; a bare `KEY` takes the local value, or is dropped when unset.
fn env_entry(e: &str, out: &mut Vec<String>) {
    if e.contains('=') {
        out.push(e.to_string());
    } else if let Ok(v) = std::env::var(e) {
        out.push(format!("{e}={v}"));
    }
}

/// `--restart` as docker's RestartPolicy.
fn restart_policy(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no" | "always" | "unless-stopped", None) => {
            Ok(json!({"Name": if name.is_empty() { "no" } else { name }, "MaximumRetryCount": 0}))
        }
        ("on-failure", c) => {
            let n = match c {
                Some(c) => c.parse::<i64>().map_err(|_| {
                    Error::msg(format!("invalid restart policy format: maximum retry count must be an integer: {s}"))
                })?,
                None => 0,
            };
            Ok(json!({"Name": "on-failure", "MaximumRetryCount": n}))
        }
        (_, Some(_)) if name != "on-failure" => Err(Error::msg(format!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure': {s}"
        ))),
        _ => Err(Error::msg(format!(
            "invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// The create body for these options; `attach` says whether the client attaches.
pub fn create_body(o: &ContainerOpts, attach: bool) -> Result<Value> {
    let mut env = Vec::new();
    for f in &o.env_file {
        let text = std::fs::read_to_string(f).map_err(|e| Error::msg(format!("open {f}: {e}")))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            env_entry(l, &mut env);
        }
    }
    for e in &o.env {
        env_entry(e, &mut env);
    }
    let mut labels = Map::new();
    for l in &o.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let restart = restart_policy(&o.restart)?;
    if o.rm && restart["Name"] != "no" {
        return Err(Error::msg(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    let mut config = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "User": o.user.clone().unwrap_or_default(),
        "AttachStdin": attach && o.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": attach && o.interactive,
        "Env": env,
        "Cmd": if o.command.is_empty() { Value::Null } else { json!(o.command) },
        "Image": o.image,
        "WorkingDir": o.workdir.clone().unwrap_or_default(),
        "Entrypoint": match &o.entrypoint { Some(e) => json!([e]), None => Value::Null },
        "Labels": labels,
    });
    if let Some(s) = &o.stop_signal {
        config["StopSignal"] = json!(s);
    }
    if let Some(t) = o.stop_timeout {
        config["StopTimeout"] = json!(t);
    }
    let mut host = json!({
        "AutoRemove": o.rm,
        "RestartPolicy": restart,
        "CapAdd": o.cap_add,
        "CapDrop": o.cap_drop,
        "Privileged": o.privileged,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": o.security_opt,
        "Memory": o.memory.unwrap_or(0),
        "NanoCpus": o.cpus.unwrap_or(0),
    });
    if let Some(n) = &o.network {
        host["NetworkMode"] = json!(n);
    }
    if let Some(p) = o.pids_limit {
        host["PidsLimit"] = json!(p);
    }
    if o.init {
        host["Init"] = json!(true);
    }
    config["HostConfig"] = host;
    Ok(config)
}

/// Pulls `o.image` for `run`/`create`, its progress on stderr as docker draws it there.
fn pull_for_create(ctx: &Ctx, o: &ContainerOpts) -> Result<()> {
    let mut r = Reference::parse(&o.image)?;
    if r.is_name_only() {
        r.tag = Some("latest".into());
    }
    let mode = Mode::for_target(Target::Stderr, o.quiet);
    super::pull::pull_image(ctx, &r, false, o.platform.as_deref(), Target::Stderr, mode)
}

/// `POST /containers/create`, pulling the image first or when it is missing as
/// `--pull` says; returns the new ID, printing warnings on stderr.
fn create_container(ctx: &Ctx, o: &ContainerOpts, attach: bool) -> Result<String> {
    let body = create_body(o, attach)?;
    let mut q = Vec::new();
    if let Some(n) = &o.name {
        q.push(("name", n.as_str()));
    }
    if let Some(p) = o.platform.as_deref().filter(|p| !p.is_empty()) {
        q.push(("platform", p));
    }
    let path = format!("/containers/create{}", query(&q));
    if o.pull == PullPolicy::Always {
        pull_for_create(ctx, o)?;
    }
    let client = ctx.client()?;
    let resp: Value = match client.post(&path, Some(&body)) {
        Err(Error::Daemon {
            status: 404,
            message,
        }) if message.starts_with("No such image") && o.pull == PullPolicy::Missing => {
            if !o.quiet {
                eprintln!("Unable to find image '{}' locally", with_tag(&o.image));
            }
            pull_for_create(ctx, o)?;
            client.post(&path, Some(&body))?
        }
        r => r?,
    };
    if let Some(w) = resp["Warnings"].as_array() {
        for w in w.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    resp["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::msg("the daemon's create answer has no Id"))
}

/// The image as docker names it in "Unable to find image": familiar, tag defaulted.
fn with_tag(image: &str) -> String {
    match Reference::parse(image) {
        Ok(mut r) => {
            if r.is_name_only() {
                r.tag = Some("latest".into());
            }
            r.familiar()
        }
        Err(_) => image.to_string(),
    }
}

/// Flushes and exits with `code`, as docker's `StatusError` does.
pub fn exit(code: i32) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// `berth create`: prints the new container's ID.
pub fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    // As docker: a created container is set up to be attached to later (`start -a`).
    match create_container(ctx, &args.opts, true) {
        Ok(id) => {
            println!("{id}");
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            exit(1)
        }
    }
}

/// The exit code docker gives a failed start (`runStartContainerErr`).
pub fn start_error_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Reads the `{"StatusCode", "Error"}` answer of a wait.
pub fn wait_status(resp: crate::client::Response<'_>) -> Result<i32> {
    let v: Value = resp.json()?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::msg(m.to_string()));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(-1) as i32)
}

/// `berth run`: create, attach (unless `-d`), start, then wait for the exit code.
pub fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let o = &args.opts;
    let keys = stream::detach_keys(args.detach_keys.as_deref())?;
    if !args.detach && o.tty && o.interactive && !io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        exit(1);
    }
    let id = match create_container(ctx, o, !args.detach) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("{e}");
            exit(125)
        }
    };
    let client = ctx.client()?;
    let seg = path_segment(&id);
    if args.detach {
        if let Err(e) = client.post_no_content(&format!("/containers/{seg}/start")) {
            eprintln!("{e}");
            let code = match &e {
                Error::Daemon { message, .. } => start_error_code(message),
                _ => 125,
            };
            exit(code);
        }
        println!("{id}");
        return Ok(());
    }
    let aq = stream::attach_query(o.interactive, args.detach_keys.as_deref());
    let hijacked = match client.hijack(&format!("/containers/{seg}/attach{aq}"), None) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            exit(125)
        }
    };
    // Registered before start, so a container that exits at once is not missed.
    let cond = if o.rm { "removed" } else { "next-exit" };
    let wait = client.request(
        Method::POST,
        &format!("/containers/{seg}/wait{}", query(&[("condition", cond)])),
        RequestBody::Empty,
    );
    let wait = match wait {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            exit(125)
        }
    };
    let raw = if o.tty && o.interactive {
        Some(stream::RawGuard::stdin())
    } else {
        None
    };
    if let Err(e) = client.post_no_content(&format!("/containers/{seg}/start")) {
        drop(raw);
        eprintln!("{e}");
        let code = match &e {
            Error::Daemon { message, .. } => start_error_code(message),
            _ => 125,
        };
        if o.rm {
            let _ = wait.discard();
        }
        exit(code);
    }
    let ended = stream::pump_started(
        client,
        hijacked,
        raw,
        StreamOpts {
            tty: o.tty,
            stdin: o.interactive,
            detach_keys: keys,
            resize: o.tty.then(|| ResizeTarget::Container(id.clone())),
            sig_proxy: (args.sig_proxy && !o.tty).then(|| id.clone()),
        },
    );
    match ended? {
        Ended::Detached => Ok(()),
        Ended::Eof => {
            let code = match wait_status(wait) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    exit(125)
                }
            };
            if code != 0 {
                exit(code);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_policies() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            restart_policy("on-failure:3").unwrap()["MaximumRetryCount"],
            3
        );
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(with_tag("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(parse_pull("never"), Ok(PullPolicy::Never));
        assert!(parse_pull("sometimes")
            .unwrap_err()
            .contains("invalid pull option"));
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec: permission denied"), 126);
    }
}
