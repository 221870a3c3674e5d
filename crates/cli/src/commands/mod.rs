//! The commands, one file per group, each with its clap arguments and a `run`. A new
//! command is a new file plus one variant in [`Command`] and one arm in [`run`].

pub mod container;
pub mod cp;
pub mod events;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod login;
pub mod pull;
pub mod run;
pub mod stream;
pub mod system;

use std::cell::OnceCell;

use clap::Subcommand;

use crate::client::Client;
use crate::error::Result;

/// What every command gets: the daemon address and a client dialled on first use (so
/// `--help` and argument errors never touch the socket).
pub struct Ctx {
    /// The resolved daemon address (`-H`, `BERTH_HOST`, `DOCKER_HOST`, default).
    pub host: String,
    /// `-D/--debug`.
    pub debug: bool,
    client: OnceCell<Client>,
}

impl Ctx {
    /// A context for `host`.
    pub fn new(host: String, debug: bool) -> Ctx {
        Ctx {
            host,
            debug,
            client: OnceCell::new(),
        }
    }

    /// The client, created on first use.
    pub fn client(&self) -> Result<&Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = Client::new(&self.host, self.debug)?;
        Ok(self.client.get_or_init(|| c))
    }
}

/// Every top-level command, named and described as docker's.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List images
    Images(image::LsArgs),
    /// Show the berth version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Manage images
    #[command(arg_required_else_help = true)]
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// Manage containers
    #[command(arg_required_else_help = true)]
    Container {
        #[command(subcommand)]
        command: container::ContainerCommand,
    },
    /// Manage berth
    #[command(arg_required_else_help = true)]
    System {
        #[command(subcommand)]
        command: system::SystemCommand,
    },
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image::ImportArgs),
    /// Return low-level information on berth objects
    Inspect(inspect::InspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(pull::PushArgs),
    /// Remove one or more images
    Rmi(image::RmArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(container::AttachArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::NameArg),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(container::ExportArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Fetch the logs of a container
    Logs(container::LogsArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArg),
    /// List containers
    Ps(container::PsArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArg),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::NamesArg),
}

/// Runs one command.
pub fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::Images(a) => image::ls(ctx, a),
        Command::Version(a) => system::version(ctx, a),
        Command::Info(a) => system::info(ctx, a),
        Command::Image { command } => image::run(ctx, command),
        Command::System { command } => system::run(ctx, command),
        Command::History(a) => image::history(ctx, a),
        Command::Import(a) => image::import(ctx, a),
        Command::Inspect(a) => inspect::run(ctx, a),
        Command::Load(a) => image::load(ctx, a),
        Command::Login(a) => login::login(ctx, a),
        Command::Logout(a) => login::logout(ctx, a),
        Command::Pull(a) => pull::pull(ctx, a),
        Command::Push(a) => pull::push(ctx, a),
        Command::Rmi(a) => image::rm(ctx, a),
        Command::Save(a) => image::save(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
        Command::Container { command } => container::run(ctx, command),
        Command::Attach(a) => container::attach(ctx, a),
        Command::Commit(a) => container::commit(ctx, a),
        Command::Cp(a) => cp::cp(ctx, a),
        Command::Create(a) => run::create(ctx, a),
        Command::Diff(a) => container::diff(ctx, a),
        Command::Events(a) => events::events(ctx, a),
        Command::Exec(a) => exec::exec(ctx, a),
        Command::Export(a) => container::export(ctx, a),
        Command::Kill(a) => container::kill(ctx, a),
        Command::Logs(a) => container::logs(ctx, a),
        Command::Pause(a) => container::pause(ctx, a, "pause"),
        Command::Ps(a) => container::ps(ctx, a),
        Command::Rename(a) => container::rename(ctx, a),
        Command::Restart(a) => container::restart(ctx, a),
        Command::Rm(a) => container::rm(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Start(a) => container::start(ctx, a),
        Command::Stop(a) => container::stop(ctx, a),
        Command::Top(a) => container::top(ctx, a),
        Command::Unpause(a) => container::pause(ctx, a, "unpause"),
        Command::Wait(a) => container::wait(ctx, a),
    }
}
