//! `berth inspect`: any object by name or ID: containers, then images (docker's order:
//! container, image, network, volume, ...).

use clap::Args;

use super::system::FORMAT_HELP;
use super::{image, Ctx};
use crate::error::{Error, Result};

/// The object types docker's `--type` accepts.
const TYPES: &[&str] = &[
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];

/// `berth inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

/// Runs `berth inspect`.
pub fn run(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    if let Some(t) = &args.kind {
        if !TYPES.contains(&t.as_str()) {
            return Err(Error::msg(format!("{t:?} is not a valid value for --type")));
        }
    }
    let images_only = args.kind.as_deref() == Some("image");
    let images_allowed = args.kind.is_none() || images_only;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        // Containers first, as docker: a container and an image may share a name.
        if args.kind.is_none() || args.kind.as_deref() == Some("container") {
            match super::container::inspect_raw(ctx, name, args.size) {
                Ok(raw) => {
                    found.push(raw);
                    continue;
                }
                Err(Error::Daemon { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if !images_allowed {
            missing.push(name);
            continue;
        }
        match image::inspect_raw(ctx, name, None) {
            Ok(raw) => found.push(raw),
            Err(Error::Daemon { status: 404, .. }) => missing.push(name),
            Err(e) => return Err(e),
        }
    }
    image::print_inspected(&found, args.format.as_deref())?;
    if missing.is_empty() {
        return Ok(());
    }
    let what = match args.kind.as_deref() {
        Some("image") => "image",
        Some("container") => "container",
        _ => "object",
    };
    for name in missing {
        eprintln!("Error: No such {what}: {name}");
    }
    Err(Error::Reported)
}
