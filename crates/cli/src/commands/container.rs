//! `berth container ...` and its top-level aliases: start, stop, kill, restart, rm, ps,
//! logs, wait, rename, top, pause, unpause, attach, diff, commit, export, inspect.
//! run/create live in run.rs, exec in exec.rs, cp in cp.rs.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::image::{filters_json, parse_filter, split_reference, LIST_FORMAT_HELP};
use super::run::{self, exit, wait_status};
use super::stream::{self, Ended, ResizeTarget, StreamOpts};
use super::system::FORMAT_HELP;
use super::{cp, events, exec, Ctx};
use crate::client::{path_segment, query, RequestBody};
use crate::error::{Error, Result};
use crate::format::{self, Format};

/// `berth container ...`.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(NameArg),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArg),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArg),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArg),
}

/// Runs a `berth container` subcommand.
pub fn run(ctx: &Ctx, cmd: ContainerCommand) -> Result<()> {
    match cmd {
        ContainerCommand::Attach(a) => attach(ctx, a),
        ContainerCommand::Commit(a) => commit(ctx, a),
        ContainerCommand::Cp(a) => cp::cp(ctx, a),
        ContainerCommand::Create(a) => run::create(ctx, a),
        ContainerCommand::Diff(a) => diff(ctx, a),
        ContainerCommand::Exec(a) => exec::exec(ctx, a),
        ContainerCommand::Export(a) => export(ctx, a),
        ContainerCommand::Inspect(a) => inspect(ctx, a),
        ContainerCommand::Kill(a) => kill(ctx, a),
        ContainerCommand::Logs(a) => logs(ctx, a),
        ContainerCommand::Ls(a) => ps(ctx, a),
        ContainerCommand::Pause(a) => pause(ctx, a, "pause"),
        ContainerCommand::Rename(a) => rename(ctx, a),
        ContainerCommand::Restart(a) => restart(ctx, a),
        ContainerCommand::Rm(a) => rm(ctx, a),
        ContainerCommand::Run(a) => run::run(ctx, a),
        ContainerCommand::Start(a) => start(ctx, a),
        ContainerCommand::Stop(a) => stop(ctx, a),
        ContainerCommand::Top(a) => top(ctx, a),
        ContainerCommand::Unpause(a) => pause(ctx, a, "unpause"),
        ContainerCommand::Wait(a) => wait(ctx, a),
    }
}

/// One container.
#[derive(Args, Debug)]
pub struct NameArg {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// One or more containers.
#[derive(Args, Debug)]
pub struct NamesArg {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn seg(name: &str) -> String {
    path_segment(name)
}

/// Runs `f` on each container, printing its name on success; errors are printed
/// after, one a line, as docker's `errors.Join`.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut errs = Vec::new();
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e @ (Error::Connect(_) | Error::Permission { .. })) => return Err(e),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    io::stdout().flush()?;
    for e in errs {
        eprintln!("{e}");
    }
    Err(Error::Reported)
}

/// `GET /containers/{id}/json`.
pub fn inspect_value(ctx: &Ctx, name: &str) -> Result<Value> {
    ctx.client()?
        .get(&format!("/containers/{}/json", seg(name)))
}

// ---- start / stop / kill / restart / rm / pause / wait / rename ----

/// `berth start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth start`: `POST /containers/{id}/start`; with `-a`/`-i`, attached as run.
pub fn start(ctx: &Ctx, args: StartArgs) -> Result<()> {
    let client = ctx.client()?;
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        for n in &args.containers {
            match client.post_no_content(&format!("/containers/{}/start", seg(n))) {
                Ok(()) => println!("{n}"),
                Err(e @ (Error::Connect(_) | Error::Permission { .. })) => return Err(e),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(n.as_str());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        return Err(Error::msg(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )));
    }
    if args.containers.len() > 1 {
        return Err(Error::msg(
            "you cannot start and attach multiple containers at once",
        ));
    }
    let name = &args.containers[0];
    let c = inspect_value(ctx, name)?;
    let id = c["Id"].as_str().unwrap_or(name).to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = args.interactive && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = stream::detach_keys(args.detach_keys.as_deref())?;
    let h = client.hijack(
        &format!(
            "/containers/{}/attach{}",
            seg(&id),
            stream::attach_query(stdin, None)
        ),
        None,
    )?;
    let auto_remove = c["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let cond = if auto_remove { "removed" } else { "next-exit" };
    let wait = client.request(
        Method::POST,
        &format!(
            "/containers/{}/wait{}",
            seg(&id),
            query(&[("condition", cond)])
        ),
        RequestBody::Empty,
    )?;
    let raw = (tty && stdin).then(stream::RawGuard::stdin);
    client.post_no_content(&format!("/containers/{}/start", seg(&id)))?;
    let ended = stream::pump_started(
        client,
        h,
        raw,
        StreamOpts {
            tty,
            stdin,
            detach_keys: keys,
            resize: tty.then(|| ResizeTarget::Container(id.clone())),
            sig_proxy: (!tty).then(|| id.clone()),
        },
    );
    exit_as_waited(ended?, wait)
}

/// After an attached stream: done if the user detached, else the container's exit
/// code (from `wait`, an answer of `POST /containers/{id}/wait`) becomes ours.
fn exit_as_waited(ended: Ended, wait: crate::client::Response<'_>) -> Result<()> {
    if ended == Ended::Detached {
        return Ok(());
    }
    let code = wait_status(wait)?;
    if code != 0 {
        exit(code);
    }
    Ok(())
}

/// `berth stop` / `berth restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn stop_query(args: &StopArgs) -> String {
    let t = args.timeout.map(|t| t.to_string());
    let mut q = Vec::new();
    if let Some(s) = &args.signal {
        q.push(("signal", s.as_str()));
    }
    if let Some(t) = &t {
        q.push(("t", t.as_str()));
    }
    query(&q)
}

/// `berth stop`: `POST /containers/{id}/stop`.
pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let client = ctx.client()?;
    let q = stop_query(&args);
    each(&args.containers, |n| {
        client.post_no_content(&format!("/containers/{}/stop{q}", seg(n)))
    })
}

/// `berth restart`: `POST /containers/{id}/restart`.
pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<()> {
    let client = ctx.client()?;
    let q = stop_query(&args);
    each(&args.containers, |n| {
        client.post_no_content(&format!("/containers/{}/restart{q}", seg(n)))
    })
}

/// `berth kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth kill`: `POST /containers/{id}/kill`.
pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<()> {
    let client = ctx.client()?;
    let q = match &args.signal {
        Some(s) => query(&[("signal", s)]),
        None => String::new(),
    };
    each(&args.containers, |n| {
        client.post_no_content(&format!("/containers/{}/kill{q}", seg(n)))
    })
}

/// `berth rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth rm`: `DELETE /containers/{id}`.
pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<()> {
    let client = ctx.client()?;
    let mut q = Vec::new();
    if args.force {
        q.push(("force", "1"));
    }
    if args.volumes {
        q.push(("v", "1"));
    }
    if args.link {
        q.push(("link", "1"));
    }
    let q = query(&q);
    each(&args.containers, |n| {
        client
            .request(
                Method::DELETE,
                &format!("/containers/{}{q}", seg(n)),
                RequestBody::Empty,
            )?
            .discard()
    })
}

/// `berth pause` / `berth unpause`.
pub fn pause(ctx: &Ctx, args: NamesArg, action: &str) -> Result<()> {
    let client = ctx.client()?;
    each(&args.containers, |n| {
        client.post_no_content(&format!("/containers/{}/{action}", seg(n)))
    })
}

/// `berth wait`: `POST /containers/{id}/wait`, printing each exit code.
pub fn wait(ctx: &Ctx, args: NamesArg) -> Result<()> {
    let client = ctx.client()?;
    let mut errs = Vec::new();
    for n in &args.containers {
        let r = client
            .request(
                Method::POST,
                &format!("/containers/{}/wait", seg(n)),
                RequestBody::Empty,
            )
            .and_then(wait_status);
        match r {
            Ok(code) => println!("{code}"),
            Err(e @ (Error::Connect(_) | Error::Permission { .. })) => return Err(e),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    for e in errs {
        eprintln!("{e}");
    }
    Err(Error::Reported)
}

/// `berth rename`.
#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

/// `berth rename`: `POST /containers/{id}/rename?name=`.
pub fn rename(ctx: &Ctx, args: RenameArgs) -> Result<()> {
    let old = args.container.trim();
    let new = args.new_name.trim();
    if old.is_empty() || new.is_empty() {
        return Err(Error::msg("Error: Neither old nor new names may be empty"));
    }
    ctx.client()?.post_no_content(&format!(
        "/containers/{}/rename{}",
        seg(old),
        query(&[("name", new)])
    ))
}

// ---- ps ----

/// `berth ps` / `berth container ls`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

fn ps_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
    })
}

/// `s` cut to `n` characters with an ellipsis, as docker's `formatter.Ellipsis`.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `"sh -c 'echo…"`: Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn ports_text(ports: &Value) -> String {
    let Some(a) = ports.as_array() else {
        return String::new();
    };
    let mut out = Vec::new();
    for p in a {
        let private = p["PrivatePort"].as_i64().unwrap_or(0);
        let ty = p["Type"].as_str().unwrap_or("tcp");
        match p["PublicPort"].as_i64() {
            Some(public) if public != 0 => {
                let ip = p["IP"].as_str().unwrap_or("0.0.0.0");
                out.push(format!("{ip}:{public}->{private}/{ty}"));
            }
            _ => out.push(format!("{private}/{ty}")),
        }
    }
    out.join(", ")
}

/// One `ps` row with docker's template fields (`formatter.ContainerContext`).
fn ps_row(c: &Value, no_trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/'))
                // Without --no-trunc docker hides link names (`other/alias`).
                .filter(|n| no_trunc || !n.contains('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut command = c["Command"].as_str().unwrap_or("").to_string();
    if !no_trunc {
        command = ellipsis(&command, 20);
    }
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if !no_trunc {
        if let Some(h) = image.strip_prefix("sha256:") {
            image = h.chars().take(12).collect();
        } else if let Some((r, _)) = image.split_once('@') {
            image = r.to_string();
        }
    }
    let created = c["Created"].as_i64().unwrap_or(0);
    let labels = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let networks = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let mounts = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let n = m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("");
                    if no_trunc {
                        n.to_string()
                    } else {
                        ellipsis(n, 15)
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let local_volumes = c["Mounts"]
        .as_array()
        .map(|a| a.iter().filter(|m| m["Driver"] == "local").count())
        .unwrap_or(0);
    let rw = format::human_size(c["SizeRw"].as_i64().unwrap_or(0) as f64);
    let size = match c["SizeRootFs"].as_i64() {
        Some(r) if r > 0 => format!("{rw} (virtual {})", format::human_size(r as f64)),
        _ => rw,
    };
    // docker 28's Platform: the image manifest's platform when the daemon says.
    let p = &c["ImageManifestDescriptor"]["platform"];
    let platform = match (p["os"].as_str(), p["architecture"].as_str()) {
        (Some(os), Some(arch)) => match p["variant"].as_str().filter(|v| !v.is_empty()) {
            Some(v) => json!(format!("{os}/{arch}/{v}")),
            None => json!(format!("{os}/{arch}")),
        },
        _ => Value::Null,
    };
    json!({
        "Command": go_quote(&command),
        "Platform": platform,
        "CreatedAt": format::unix_to_utc(created),
        "ID": id,
        "Image": image,
        "Labels": labels,
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts,
        "Names": names.join(","),
        "Networks": networks,
        "Ports": ports_text(&c["Ports"]),
        "RunningFor": format::ago(created),
        "Size": size,
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
    })
}

/// `berth ps`: `GET /containers/json`.
pub fn ps(ctx: &Ctx, args: PsArgs) -> Result<()> {
    let limit = if args.latest { 1 } else { args.last };
    let mut q: Vec<(&str, String)> = Vec::new();
    if args.all || limit > 0 {
        q.push(("all", "1".into()));
    }
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    let format = if args.quiet {
        Format::Template("{{.ID}}".into())
    } else {
        Format::parse(args.format.as_deref())
    };
    // Sizes are costly; asked for with -s, or when a template names them.
    let wants_size = args.size
        || matches!(&format, Format::Table(t) | Format::Template(t) if t.contains(".Size"));
    if wants_size && !args.quiet {
        q.push(("size", "1".into()));
    }
    if !args.filter.is_empty() {
        q.push(("filters", filters_json(&args.filter)));
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list: Vec<Value> = ctx
        .client()?
        .get(&format!("/containers/json{}", query(&pairs)))?;
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, args.no_trunc)).collect();
    let mut default = String::from(
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    );
    if args.size {
        default.push_str("\t{{.Size}}");
    }
    print!(
        "{}",
        format::render_list(&format, &default, &ps_header(), &rows)?
    );
    Ok(())
}

// ---- logs ----

/// `berth logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth logs`: `GET /containers/{id}/logs`, demultiplexed unless the container has
/// a TTY.
pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    let c = inspect_value(ctx, &args.container)?;
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let since = args
        .since
        .as_deref()
        .map(events::timestamp)
        .transpose()?
        .unwrap_or_default();
    let until = args
        .until
        .as_deref()
        .map(events::timestamp)
        .transpose()?
        .unwrap_or_default();
    let mut q = vec![("stdout", "1"), ("stderr", "1")];
    if !since.is_empty() {
        q.push(("since", &since));
    }
    if !until.is_empty() {
        q.push(("until", &until));
    }
    if args.timestamps {
        q.push(("timestamps", "1"));
    }
    if args.follow {
        q.push(("follow", "1"));
    }
    if args.details {
        q.push(("details", "1"));
    }
    q.push(("tail", &args.tail));
    let mut resp = ctx.client()?.request(
        Method::GET,
        &format!("/containers/{}/logs{}", seg(&args.container), query(&q)),
        RequestBody::Empty,
    )?;
    if tty {
        let mut out = io::stdout().lock();
        stream::for_each_chunk(&mut resp, |b| {
            out.write_all(b)?;
            out.flush()
        })?;
        return Ok(());
    }
    stream::demux_read(&mut resp)?;
    Ok(())
}

// ---- top / diff / commit / export ----

/// `berth top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

/// Go's `tabwriter.NewWriter(w, minwidth, 1, 3, ' ', 0)` on tab-separated lines.
fn tabwrite_min(lines: &[Vec<String>], minwidth: usize) -> String {
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for l in lines {
        for (i, c) in l.iter().enumerate().take(l.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 3).max(minwidth);
        }
    }
    let mut out = String::new();
    for l in lines {
        for (i, c) in l.iter().enumerate() {
            out.push_str(c);
            if i + 1 < l.len() {
                let pad = widths[i] - c.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

/// `berth top`: `GET /containers/{id}/top`.
pub fn top(ctx: &Ctx, args: TopArgs) -> Result<()> {
    let ps_args = args.ps_args.join(" ");
    let q = if ps_args.is_empty() {
        String::new()
    } else {
        query(&[("ps_args", &ps_args)])
    };
    let v: Value = ctx
        .client()?
        .get(&format!("/containers/{}/top{q}", seg(&args.container)))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut lines = vec![strs(&v["Titles"])];
    if let Some(p) = v["Processes"].as_array() {
        lines.extend(p.iter().map(strs));
    }
    print!("{}", tabwrite_min(&lines, 20));
    Ok(())
}

/// `berth diff`: `GET /containers/{id}/changes`.
pub fn diff(ctx: &Ctx, args: NameArg) -> Result<()> {
    let v: Value = ctx
        .client()?
        .get(&format!("/containers/{}/changes", seg(&args.container)))?;
    let mut out = String::new();
    for c in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        let kind = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        out.push_str(&format!("{kind} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    print!("{out}");
    Ok(())
}

/// `berth commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, value_name = "bool", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth commit`: `POST /commit`, printing the new image ID.
pub fn commit(ctx: &Ctx, args: CommitArgs) -> Result<()> {
    let (repo, tag) = match &args.reference {
        Some(r) => {
            let (repo, tag) = split_reference(r);
            // `split_reference` defaults the tag; docker sends none and lets the daemon.
            let has_tag = r.len() > repo.len();
            (repo, if has_tag { tag } else { String::new() })
        }
        None => (String::new(), String::new()),
    };
    let mut q = vec![("container", args.container.as_str())];
    if !repo.is_empty() {
        q.push(("repo", &repo));
    }
    if !tag.is_empty() {
        q.push(("tag", &tag));
    }
    if let Some(m) = &args.message {
        q.push(("comment", m));
    }
    if let Some(a) = &args.author {
        q.push(("author", a));
    }
    q.push(("pause", if args.pause { "1" } else { "0" }));
    for c in &args.change {
        q.push(("changes", c));
    }
    let v: Value = ctx.client()?.post(&format!("/commit{}", query(&q)), None)?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth export`: `GET /containers/{id}/export` to the file or stdout.
pub fn export(ctx: &Ctx, args: ExportArgs) -> Result<()> {
    if args.output.is_none() && io::stdout().is_terminal() {
        return Err(Error::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut resp = ctx.client()?.request(
        Method::GET,
        &format!("/containers/{}/export", seg(&args.container)),
        RequestBody::Empty,
    )?;
    match &args.output {
        Some(p) => {
            let mut f = std::fs::File::create(p).map_err(|e| {
                Error::msg(format!("failed to export container: {}: {e}", p.display()))
            })?;
            io::copy(&mut resp, &mut f)?;
        }
        None => {
            io::copy(&mut resp, &mut io::stdout().lock())?;
        }
    }
    Ok(())
}

// ---- inspect ----

/// `berth container inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `GET /containers/{id}/json` as text, so printing keeps the daemon's key order.
pub fn inspect_raw(ctx: &Ctx, name: &str, size: bool) -> Result<String> {
    let q = if size { "?size=1" } else { "" };
    let resp = ctx.client()?.request(
        Method::GET,
        &format!("/containers/{}/json{q}", seg(name)),
        RequestBody::Empty,
    )?;
    super::image::json_text(resp)
}

/// `berth container inspect`.
pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    super::image::inspect_each(&args.containers, args.format.as_deref(), |name| {
        inspect_raw(ctx, name, args.size)
    })
}

// ---- attach ----

/// `berth attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `berth attach`: hijacks `POST /containers/{id}/attach` on a running container and
/// exits with its exit code.
pub fn attach(ctx: &Ctx, args: AttachArgs) -> Result<()> {
    let client = ctx.client()?;
    let c = inspect_value(ctx, &args.container)?;
    if !c["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(Error::msg(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if c["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(Error::msg(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let id = c["Id"].as_str().unwrap_or(&args.container).to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if stdin && tty && !io::stdin().is_terminal() {
        return Err(Error::msg("the input device is not a TTY"));
    }
    let keys = stream::detach_keys(args.detach_keys.as_deref())?;
    // Registered first, so the exit code is known however the stream ends.
    let wait = client.request(
        Method::POST,
        &format!("/containers/{}/wait", seg(&id)),
        RequestBody::Empty,
    )?;
    let h = client.hijack(
        &format!(
            "/containers/{}/attach{}",
            seg(&id),
            stream::attach_query(stdin, args.detach_keys.as_deref())
        ),
        None,
    )?;
    let raw = (tty && stdin).then(stream::RawGuard::stdin);
    let ended = stream::pump_started(
        client,
        h,
        raw,
        StreamOpts {
            tty,
            stdin,
            detach_keys: keys,
            resize: tty.then(|| ResizeTarget::Container(id.clone())),
            sig_proxy: (args.sig_proxy && !tty).then(|| id.clone()),
        },
    );
    exit_as_waited(ended?, wait)
}
