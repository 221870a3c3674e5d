//! One function per command; each returns the process's exit code.

use std::collections::HashSet;
use std::os::unix::net::UnixStream;
use std::path::Path;

use oci_spec::runtime::{Capability, Process, Spec};
use runtime::container::{self, Container, CreateOpts, ExecOpts, TtyProxy};
use runtime::{Error, Result};

use crate::cli::{Cli, Command, CreateArgs, ExecArgs, Format};

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let root = &cli.root;
    if cli.systemd_cgroup {
        return Err(Error::Other(
            "the systemd cgroup driver is not supported".into(),
        ));
    }
    // Commands that put a process into a container first make /proc/self/exe a sealed
    // copy (see runtime::process::sealed).
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec(_)
    ) {
        runtime::process::sealed::ensure()?;
    }
    match &cli.command {
        Command::Spec { bundle, rootless } => spec(bundle, *rootless).map(|_| 0),
        Command::Create(a) => {
            let console = a
                .console_socket
                .as_deref()
                .map(runtime::tty::connect)
                .transpose()?;
            container::create(create_opts(root, a, console))?;
            Ok(0)
        }
        Command::Start { id } => container::start(root, id).map(|_| 0),
        Command::Run {
            create,
            detach,
            keep,
        } => run(root, create, *detach, *keep),
        Command::State { id } => {
            let c = Container::load(root, id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&c.state()).unwrap_or_default()
            );
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            container::kill(root, id, container::parse_signal(signal)?, *all).map(|_| 0)
        }
        Command::Delete { id, force } => container::delete(root, id, *force).map(|_| 0),
        Command::Exec(a) => exec(root, a),
        Command::Pause { id } => container::pause(root, id).map(|_| 0),
        Command::Resume { id } => container::resume(root, id).map(|_| 0),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps(root, id, *format, ps_args),
        Command::List { format, quiet } => list(root, *format, *quiet),
        Command::Features => {
            let f = runtime::features::features();
            println!("{}", serde_json::to_string_pretty(&f).unwrap_or_default());
            Ok(0)
        }
        Command::Events {
            id,
            stats,
            interval,
        } => events(root, id, *stats, *interval),
    }
}

fn create_opts(root: &Path, a: &CreateArgs, console: Option<UnixStream>) -> CreateOpts {
    CreateOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    }
}

fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Other(format!(
            "{} exists. Remove it first",
            path.display()
        )));
    }
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("berth".into()));
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
        // No inheritable capabilities by default (CVE-2022-29162), as runc's spec.
        if let Some(c) = p.capabilities().clone() {
            let mut c = c;
            c.set_inheritable(None);
            p.set_capabilities(Some(c));
        }
    }
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&path, text)
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))
}

/// A terminal the runtime proxies itself when no console socket was given.
fn own_console(
    wanted: bool,
    given: &Option<std::path::PathBuf>,
) -> Result<(Option<UnixStream>, Option<UnixStream>)> {
    if let Some(p) = given {
        return Ok((Some(runtime::tty::connect(p)?), None));
    }
    if !wanted {
        return Ok((None, None));
    }
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::Other(format!("socketpair: {e}")))?;
    Ok((Some(theirs), Some(ours)))
}

fn receive_tty(ours: Option<UnixStream>) -> Result<Option<TtyProxy>> {
    use std::os::fd::AsRawFd;
    ours.map(|s| runtime::tty::recv_fd(s.as_raw_fd()).map(|master| TtyProxy { master }))
        .transpose()
}

fn run(root: &Path, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let bundle = runtime::spec::Bundle::load(&a.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let (console, ours) = own_console(terminal && !detach, &a.console_socket)?;
    let signals = if detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    let c = container::create_from(create_opts(root, a, console), bundle)?;
    let tty = receive_tty(ours);
    let started = tty.and_then(|tty| container::start(root, &a.id).map(|_| tty));
    let tty = match started {
        Ok(t) => t,
        Err(e) => {
            let _ = container::delete(root, &a.id, true);
            return Err(e);
        }
    };
    let Some(signals) = signals else { return Ok(0) };
    let code = container::foreground(c.record.pid, signals, tty);
    if !keep {
        container::delete(root, &a.id, true)?;
    }
    code
}

fn exec_process(root: &Path, a: &ExecArgs) -> Result<Process> {
    if let Some(file) = &a.process {
        let data = std::fs::read(file)
            .map_err(|e| Error::Other(format!("reading {}: {e}", file.display())))?;
        return serde_json::from_slice(&data)
            .map_err(|e| Error::InvalidSpec(format!("{}: {e}", file.display())));
    }
    if a.command.is_empty() {
        return Err(Error::Other("exec needs a command or --process".into()));
    }
    let spec = Container::load(root, &a.id)?.dir.load_spec()?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::Other(format!("invalid --user {u:?}: want uid[:gid]")))
        };
        p.user_mut().set_uid(parse(uid)?);
        p.user_mut().set_gid(parse(gid)?);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let add: HashSet<Capability> = a
            .cap
            .iter()
            .map(|c| {
                c.trim_start_matches("CAP_")
                    .parse::<Capability>()
                    .map_err(|_| Error::Other(format!("unknown capability {c:?}")))
            })
            .collect::<Result<_>>()?;
        let extend = |s: &Option<HashSet<Capability>>| {
            Some(s.clone().unwrap_or_default().union(&add).copied().collect())
        };
        caps.set_bounding(extend(caps.bounding()));
        caps.set_effective(extend(caps.effective()));
        caps.set_permitted(extend(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    let process = exec_process(root, a)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.detach && a.console_socket.is_none() {
        return Err(Error::Other(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    let (console, ours) = own_console(terminal && !a.detach, &a.console_socket)?;
    let signals = if a.detach {
        None
    } else {
        Some(container::block_signals()?)
    };
    let pid = container::exec(ExecOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process,
        console,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    })?;
    let tty = receive_tty(ours)?;
    match signals {
        None => Ok(0),
        Some(signals) => container::foreground(pid, signals, tty),
    }
}

fn ps(root: &Path, id: &str, format: Format, ps_args: &[String]) -> Result<i32> {
    let pids = container::processes(root, id)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::Other(format!("running ps: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Other("ps output has no PID column".into()))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

fn list(root: &Path, format: Format, quiet: bool) -> Result<i32> {
    let all = container::list(root)?;
    if quiet {
        for c in &all {
            println!("{}", c.id());
        }
    } else if format == Format::Json {
        let states: Vec<_> = all.iter().map(|c| c.state()).collect();
        println!("{}", serde_json::to_string(&states).unwrap_or_default());
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} {:<32}",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for c in &all {
            let s = c.state();
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32}",
                s.id,
                s.pid,
                s.status,
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(0)
}

fn events(root: &Path, id: &str, once: bool, interval: u64) -> Result<i32> {
    use container::events;
    let print = |e: &events::Event| println!("{}", serde_json::to_string(e).unwrap_or_default());
    if once {
        print(&events::stats(root, id)?);
        return Ok(0);
    }
    events::watch(
        root,
        id,
        std::time::Duration::from_secs(interval.max(1)),
        print,
    )?;
    Ok(0)
}
