//! `berth version`, `berth info` and `berth system ...`.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Ctx;
use crate::error::Result;
use crate::format;

/// The help text docker gives every `--format` flag of a single-object command.
pub const FORMAT_HELP: &str = "Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// `berth version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    #[arg(short = 'f', long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
}

/// `berth info` / `berth system info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(short = 'f', long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
}

/// `berth system ...`.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Display system-wide information
    Info(InfoArgs),
    /// Verify the daemon's store: every blob, layer snapshot, image and tag
    Check,
    /// Show berth disk usage
    Df(super::events::DfArgs),
    /// Get real time events from the server
    Events(super::events::EventsArgs),
}

/// Runs a `berth system` subcommand.
pub fn run(ctx: &Ctx, cmd: SystemCommand) -> Result<()> {
    match cmd {
        SystemCommand::Info(a) => info(ctx, a),
        SystemCommand::Check => check(ctx),
        SystemCommand::Df(a) => super::events::df(ctx, a),
        SystemCommand::Events(a) => super::events::events(ctx, a),
    }
}

/// Docker names architectures as Go does.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A `Label:   value` line with the value in column 20, as docker's version template.
fn kv(out: &mut String, label: &str, value: &str) {
    out.push_str(format!("{label:<20}{value}").trim_end_matches(' '));
    out.push('\n');
}

fn client_version(ctx: &Ctx) -> Value {
    let current = api::version::CURRENT.to_string();
    // The negotiated version when the daemon answers; ours when it does not.
    let negotiated = ctx
        .client()
        .and_then(|c| c.api_version())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| current.clone());
    json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": negotiated,
        "DefaultAPIVersion": current,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or(""),
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    })
}

/// `berth version`: the client's and the server's versions.
pub fn version(ctx: &Ctx, args: VersionArgs) -> Result<()> {
    let client = client_version(ctx);
    let server = ctx
        .client()
        .and_then(|c| c.get::<api::models::Version>("/version"));
    if let Some(f) = &args.format {
        let v = json!({"Client": client, "Server": server?});
        print!("{}", format::render_one(f, &v)?);
        return Ok(());
    }
    let s = |k: &str| client[k].as_str().unwrap_or("").to_string();
    let mut out = String::from("Client:\n");
    kv(&mut out, " Version:", &s("Version"));
    let mut api = s("ApiVersion");
    if api != s("DefaultAPIVersion") {
        api = format!("{api} (downgraded from {})", s("DefaultAPIVersion"));
    }
    kv(&mut out, " API version:", &api);
    if !s("GitCommit").is_empty() {
        kv(&mut out, " Git commit:", &s("GitCommit"));
    }
    kv(&mut out, " OS/Arch:", &format!("{}/{}", s("Os"), s("Arch")));
    // Like docker, the client half is printed even when the daemon cannot be reached.
    print!("{out}");
    std::io::stdout().flush()?;
    let server = server?;
    let mut out = format!("\nServer: {}\n", server.platform.name)
        .trim_end_matches(' ')
        .to_string();
    for c in &server.components {
        out.push_str(&format!(" {}:\n", c.name));
        let d = |k: &str| c.details.get(k).cloned().unwrap_or_default();
        kv(&mut out, "  Version:", &c.version);
        if c.name == "Engine" {
            kv(
                &mut out,
                "  API version:",
                &format!(
                    "{} (minimum version {})",
                    d("ApiVersion"),
                    d("MinAPIVersion")
                ),
            );
            for (label, key) in [("  Git commit:", "GitCommit"), ("  Built:", "BuildTime")] {
                if !d(key).is_empty() {
                    kv(&mut out, label, &d(key));
                }
            }
            kv(
                &mut out,
                "  OS/Arch:",
                &format!("{}/{}", d("Os"), d("Arch")),
            );
            kv(&mut out, "  Experimental:", &d("Experimental"));
        } else {
            for (k, v) in &c.details {
                kv(&mut out, &format!("  {k}:"), v);
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// `berth info`: the client's settings and the daemon's `/info`, in docker's sections.
pub fn info(ctx: &Ctx, args: InfoArgs) -> Result<()> {
    let client_info = json!({
        "Debug": ctx.debug,
        "Context": "default",
        "Plugins": [],
        "Warnings": null,
    });
    let server = ctx.client().and_then(|c| c.get::<Value>("/info"));
    if let Some(f) = &args.format {
        let mut v = server?;
        if let Some(o) = v.as_object_mut() {
            o.insert("ClientInfo".into(), client_info);
        }
        print!("{}", format::render_one(f, &v)?);
        return Ok(());
    }
    print!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: {}\n\nServer:\n",
        env!("CARGO_PKG_VERSION"),
        ctx.debug
    );
    std::io::stdout().flush()?;
    let v = server?;
    print!("{}", server_info(&v));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(())
}

/// The `Server:` section of `docker info`, from `/info`'s JSON (read loosely, so a
/// daemon with fewer or more fields still prints).
fn server_info(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let list = |x: &Value| {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let mut o = String::new();
    let mut line = |text: String| {
        o.push_str(&text);
        o.push('\n');
    };
    line(format!(" Containers: {}", s("Containers")));
    line(format!("  Running: {}", s("ContainersRunning")));
    line(format!("  Paused: {}", s("ContainersPaused")));
    line(format!("  Stopped: {}", s("ContainersStopped")));
    line(format!(" Images: {}", s("Images")));
    line(format!(" Server Version: {}", s("ServerVersion")));
    line(format!(" Storage Driver: {}", s("Driver")));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(val)) = (pair[0].as_str(), pair[1].as_str()) {
            line(format!("  {k}: {val}"));
        }
    }
    line(format!(" Logging Driver: {}", s("LoggingDriver")));
    line(format!(" Cgroup Driver: {}", s("CgroupDriver")));
    if !s("CgroupVersion").is_empty() {
        line(format!(" Cgroup Version: {}", s("CgroupVersion")));
    }
    line(" Plugins:".into());
    line(format!("  Volume: {}", list(&v["Plugins"]["Volume"])));
    line(format!("  Network: {}", list(&v["Plugins"]["Network"])));
    if !list(&v["Plugins"]["Authorization"]).is_empty() {
        line(format!(
            "  Authorization: {}",
            list(&v["Plugins"]["Authorization"])
        ));
    }
    line(format!("  Log: {}", list(&v["Plugins"]["Log"])));
    let swarm = v["Swarm"]["LocalNodeState"].as_str().unwrap_or("inactive");
    line(format!(" Swarm: {swarm}"));
    let runtimes: Vec<&str> = v["Runtimes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    line(format!(" Runtimes: {}", runtimes.join(" ")));
    line(format!(" Default Runtime: {}", s("DefaultRuntime")));
    let opts: Vec<&str> = v["SecurityOptions"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if !opts.is_empty() {
        line(" Security Options:".into());
        for opt in opts {
            // "name=seccomp,profile=builtin": the name, then each setting below it.
            if !opt.starts_with("name=") {
                line(format!("  {opt}"));
                continue;
            }
            for kvp in opt.split(',') {
                let (k, val) = kvp.split_once('=').unwrap_or((kvp, ""));
                if k == "name" {
                    line(format!("  {val}"));
                } else {
                    let mut key = k.to_string();
                    if let Some(f) = key.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    line(format!("   {key}: {val}"));
                }
            }
        }
    }
    line(format!(" Kernel Version: {}", s("KernelVersion")));
    line(format!(" Operating System: {}", s("OperatingSystem")));
    line(format!(" OSType: {}", s("OSType")));
    line(format!(" Architecture: {}", s("Architecture")));
    line(format!(" CPUs: {}", s("NCPU")));
    let mem = v["MemTotal"].as_f64().unwrap_or(0.0);
    line(format!(" Total Memory: {}", format::bytes_size(mem)));
    line(format!(" Name: {}", s("Name")));
    line(format!(" ID: {}", s("ID")));
    line(format!(" Berth Root Dir: {}", s("DockerRootDir")));
    let debug = v["Debug"].as_bool().unwrap_or(false);
    line(format!(" Debug Mode: {debug}"));
    if debug {
        line(format!("  File Descriptors: {}", s("NFd")));
        line(format!("  Goroutines: {}", s("NGoroutines")));
        line(format!("  System Time: {}", s("SystemTime")));
        line(format!("  EventsListeners: {}", s("NEventsListener")));
    }
    let labels = v["Labels"].as_array().cloned().unwrap_or_default();
    if !labels.is_empty() {
        line(" Labels:".into());
        for l in labels.iter().filter_map(|l| l.as_str()) {
            line(format!("  {l}"));
        }
    }
    line(format!(
        " Experimental: {}",
        v["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    line(format!(
        " Live Restore Enabled: {}",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    o
}

/// `berth system check`: prints what was checked and every problem; exit 1 when any.
fn check(ctx: &Ctx) -> Result<()> {
    let r: Value = ctx.client()?.get("/system/check")?;
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    println!(
        "checked {} blobs, {} images, {} tags, {} layer snapshots, {} containers",
        n("blobs"),
        n("images"),
        n("tags"),
        n("snapshots"),
        n("containers")
    );
    let problems = r["problems"].as_array().cloned().unwrap_or_default();
    if problems.is_empty() {
        println!("store is consistent");
        return Ok(());
    }
    for p in &problems {
        println!("problem: {}", p.as_str().unwrap_or_default());
    }
    Err(crate::error::Error::msg(format!(
        "{} problem(s) in the store",
        problems.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_sections() {
        let v = json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0,
            "ContainersStopped": 2, "Images": 4, "ServerVersion": "0.1.0",
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "2",
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host"], "Authorization": null, "Log": ["json-file"]},
            "Swarm": {"LocalNodeState": "inactive"},
            "Runtimes": {"berth": {"path": "berth-runtime"}, "runc": {"path": "runc"}},
            "DefaultRuntime": "berth",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "MemTotal": 25278640128u64, "NCPU": 2, "Debug": false,
            "LiveRestoreEnabled": true
        });
        let out = server_info(&v);
        for want in [
            " Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n",
            " Storage Driver: overlay2\n  Backing Filesystem: extfs\n",
            " Cgroup Version: 2\n",
            "  Network: bridge host\n  Log: json-file\n",
            " Runtimes: berth runc\n",
            " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n",
            " Total Memory: 23.54GiB\n",
            " Live Restore Enabled: true\n",
        ] {
            assert!(out.contains(want), "{want:?} not in\n{out}");
        }
        assert!(!out.contains("Authorization"));
    }

    #[test]
    fn version_labels_align_at_column_20() {
        let mut o = String::new();
        kv(&mut o, " Version:", "1");
        kv(&mut o, "  API version:", "1.50");
        kv(&mut o, "  Built:", "");
        assert_eq!(
            o,
            " Version:           1\n  API version:      1.50\n  Built:\n"
        );
    }
}
