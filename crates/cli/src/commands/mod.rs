//! The commands, one file per group, each with its clap arguments and a `run`. A new
//! command is a new file plus one variant in [`Command`] and one arm in [`run`].

pub mod image;
pub mod inspect;
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
    /// Remove one or more images
    Rmi(image::RmArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image::TagArgs),
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
        Command::Rmi(a) => image::rm(ctx, a),
        Command::Save(a) => image::save(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
    }
}
