//! `berthd`: owns images, containers, networks, volumes and logs, and serves the Docker
//! Engine API on a unix socket.

mod body;
mod error;
mod handlers;
mod hijack;
mod query;
mod router;
mod server;
mod socket;
mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: the Docker Engine API on a unix socket"
)]
struct Args {
    /// Socket to listen on (unix:///path); repeatable.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root of persistent state (images, containers, volumes).
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, shims).
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// daemon.json with Docker's keys.
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Group owning the API socket.
    #[arg(short = 'G', long = "group")]
    group: Option<String>,
    #[arg(short = 'D', long)]
    debug: bool,
}

fn config(args: &Args) -> engine::Result<engine::Config> {
    let mut c = engine::Config::default();
    if args.config_file.exists() {
        c.load_file(&args.config_file)?;
    }
    if !args.hosts.is_empty() {
        c.hosts = args.hosts.clone();
    }
    if let Some(d) = &args.data_root {
        c.data_root = d.clone();
    }
    if let Some(d) = &args.exec_root {
        c.exec_root = d.clone();
    }
    if let Some(g) = &args.group {
        c.group = g.clone();
    }
    c.debug |= args.debug;
    if c.hosts.is_empty() {
        c.hosts = vec![format!(
            "unix://{}",
            c.exec_root.join("berth.sock").display()
        )];
    }
    Ok(c)
}

fn main() {
    let args = Args::parse();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berthd: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = config(args)?;
    let engine = Arc::new(engine::Engine::open(config)?);
    engine.restore()?;
    // Two workers: the API is I/O bound and the machine small; blocking work goes to
    // spawn_blocking.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt.block_on(server::serve(engine));
    // Blocking requests still in flight (a `wait`, a log follower) must not hold the
    // exit: containers live on in their shims.
    rt.shutdown_background();
    r
}
