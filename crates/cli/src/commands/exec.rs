//! `berth exec` (also `container exec`): `POST /containers/{id}/exec`, then
//! `POST /exec/{id}/start` hijacked, and the exit code from `GET /exec/{id}/json`.

use std::io::{self, IsTerminal};

use clap::Args;
use serde_json::{json, Value};

use super::run::exit;
use super::stream::{self, ResizeTarget, StreamOpts};
use super::Ctx;
use crate::client::path_segment;
use crate::error::{Error, Result};

/// `berth exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

fn env_list(args: &ExecArgs) -> Result<Vec<String>> {
    let mut env = Vec::new();
    let mut add = |e: &str| {
        if e.contains('=') {
            env.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    };
    for f in &args.env_file {
        let text = std::fs::read_to_string(f).map_err(|e| Error::msg(format!("open {f}: {e}")))?;
        for l in text.lines().map(str::trim_start) {
            if !l.is_empty() && !l.starts_with('#') {
                add(l);
            }
        }
    }
    for e in &args.env {
        add(e);
    }
    Ok(env)
}

/// `berth exec`.
pub fn exec(ctx: &Ctx, args: ExecArgs) -> Result<()> {
    let keys = stream::detach_keys(args.detach_keys.as_deref())?;
    if !args.detach && args.tty && args.interactive && !io::stdin().is_terminal() {
        return Err(Error::msg("the input device is not a TTY"));
    }
    let client = ctx.client()?;
    let size = if args.tty { stream::term_size() } else { None };
    let mut body = json!({
        "User": args.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "Tty": args.tty,
        "AttachStdin": args.interactive && !args.detach,
        "AttachStdout": !args.detach,
        "AttachStderr": !args.detach,
        "DetachKeys": args.detach_keys.clone().unwrap_or_default(),
        "Env": env_list(&args)?,
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Cmd": args.command,
    });
    if let Some((h, w)) = size {
        body["ConsoleSize"] = json!([h, w]);
    }
    let created: Value = client.post(
        &format!("/containers/{}/exec", path_segment(&args.container)),
        Some(&body),
    )?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| Error::msg("exec ID empty"))?
        .to_string();
    let mut start = json!({"Detach": args.detach, "Tty": args.tty});
    if let Some((h, w)) = size {
        start["ConsoleSize"] = json!([h, w]);
    }
    if args.detach {
        let resp = client.request(
            hyper::Method::POST,
            &format!("/exec/{id}/start"),
            crate::client::RequestBody::json_opt(Some(&start))?,
        )?;
        return resp.discard();
    }
    let h = client.hijack(&format!("/exec/{id}/start"), Some(&start))?;
    let raw = (args.tty && args.interactive).then(stream::RawGuard::stdin);
    let ended = stream::pump_started(
        client,
        h,
        raw,
        StreamOpts {
            tty: args.tty,
            stdin: args.interactive,
            detach_keys: keys,
            resize: args.tty.then(|| ResizeTarget::Exec(id.clone())),
            sig_proxy: None,
        },
    );
    if ended? == stream::Ended::Detached {
        return Ok(());
    }
    let v: Value = client.get(&format!("/exec/{id}/json"))?;
    let code = v["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        exit(code);
    }
    Ok(())
}
