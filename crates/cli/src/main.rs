//! `berth`: docker's commands and flags over the Engine API, for berthd (or any daemon
//! speaking the API). It depends on `crates/api` only, never on the engine.

mod client;
mod commands;
mod credentials;
mod error;
mod format;
mod jsonmessage;
mod progress;
mod reference;

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, Command as ClapCommand, CommandFactory, FromArgMatches, Parser};

use commands::{Command, Ctx};
use error::Error;

/// Docker's help layout: usage first, then the description, then the options.
const HELP_TEMPLATE: &str = "Usage:  {usage}\n\n{about}\n\n{all-args}{after-help}";

/// The global options (before the command, as docker takes them).
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    after_help = "Run 'berth COMMAND --help' for more information on a command."
)]
struct Cli {
    /// Location of client config files
    #[arg(long, value_name = "string")]
    config: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    host: Vec<String>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(
        short = 'l',
        long = "log-level",
        value_name = "string",
        default_value = "info"
    )]
    log_level: String,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The clap command with docker's help layout on every subcommand.
fn command() -> ClapCommand {
    fn layout(c: ClapCommand) -> ClapCommand {
        c.help_template(HELP_TEMPLATE).mut_subcommands(layout)
    }
    let mut c = layout(Cli::command());
    // Resolves bin names, so subcommand usages read `berth image ls ...`.
    c.build();
    c
}

/// Global options that take a value; the path of subcommands skips their values.
const VALUED_GLOBALS: &[&str] = &["-H", "--host", "--config", "-l", "--log-level"];

/// The subcommand the user was invoking, found by walking argv over the command tree,
/// so a usage error can name `berth image ls` rather than `berth`.
/// The walk stops at `bad`, the argument clap rejected: a bad flag before the command
/// is the root's.
fn invoked<'a>(root: &'a ClapCommand, argv: &[String], bad: &str) -> &'a ClapCommand {
    let mut cmd = root;
    let mut args = argv.iter().skip(1);
    let mut at_root = true;
    while let Some(a) = args.next() {
        if !bad.is_empty() && a == bad {
            break;
        }
        if a.starts_with('-') {
            if at_root && VALUED_GLOBALS.contains(&a.as_str()) {
                args.next();
            }
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                cmd = sub;
                at_root = false;
            }
            None => break,
        }
    }
    cmd
}

/// `berth image ls` for a subcommand; `berth` for the root.
fn path_of(cmd: &ClapCommand) -> String {
    cmd.get_bin_name().unwrap_or("berth").to_string()
}

/// `-f, --filter` for clap's `--filter <filter>`, as pflag names flags in errors.
fn flag_name(cmd: &ClapCommand, clap_arg: &str) -> String {
    let long = clap_arg
        .split([' ', '[', '='])
        .next()
        .unwrap_or(clap_arg)
        .trim_start_matches('-');
    match cmd.get_arguments().find(|a| a.get_long() == Some(long)) {
        Some(a) => match a.get_short() {
            Some(c) => format!("-{c}, --{long}"),
            None => format!("--{long}"),
        },
        None => clap_arg.to_string(),
    }
}

fn usage_of(cmd: &ClapCommand) -> String {
    let mut cmd = cmd.clone();
    let u = cmd.render_usage().to_string();
    let u = u.trim_start_matches("Usage:").trim();
    format!("Usage:  {u}")
}

/// Prints a clap error the way docker prints its usage errors and returns the exit
/// code: 125 for flag errors, 1 for wrong arguments or commands, 0 for help.
fn usage_error(root: &ClapCommand, argv: &[String], err: &clap::Error) -> i32 {
    let ctx_str = |k: ContextKind| match err.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let bad = match err.kind() {
        ErrorKind::UnknownArgument => ctx_str(ContextKind::InvalidArg),
        _ => String::new(),
    };
    let cmd = invoked(root, argv, &bad);
    let path = path_of(cmd);
    let tail = format!(
        "\n\n{}\n\nRun '{path} --help' for more information",
        usage_of(cmd)
    );
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        // A group without its subcommand (`berth image`): its help, as docker.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let mut cmd = cmd.clone();
            print!("{}", cmd.render_help());
            0
        }
        ErrorKind::InvalidSubcommand => {
            let sub = ctx_str(ContextKind::InvalidSubcommand);
            eprintln!(
                "berth: unknown command: {path} {sub}\n\nRun '{path} --help' for more information"
            );
            1
        }
        ErrorKind::UnknownArgument => {
            let arg = ctx_str(ContextKind::InvalidArg);
            if arg.starts_with('-') {
                let flag = arg.split('=').next().unwrap_or(&arg);
                eprintln!("unknown flag: {flag}{tail}");
                125
            } else {
                let takes_args = cmd.get_positionals().next().is_some();
                if takes_args {
                    eprintln!("berth: '{path}' got an unexpected argument {arg:?}{tail}");
                } else {
                    eprintln!("berth: '{path}' accepts no arguments{tail}");
                }
                1
            }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues => {
            let positionals: Vec<_> = cmd.get_positionals().collect();
            let required = positionals.iter().filter(|a| a.is_required_set()).count();
            let many = positionals
                .last()
                .is_some_and(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1));
            let word = if required == 1 {
                "argument"
            } else {
                "arguments"
            };
            if many || required < positionals.len() {
                eprintln!("berth: '{path}' requires at least {required} {word}{tail}");
            } else {
                eprintln!("berth: '{path}' requires {required} {word}{tail}");
            }
            1
        }
        // Bad flag values and the like: docker's flag errors (exit 125).
        _ => {
            let arg = ctx_str(ContextKind::InvalidArg);
            let value = ctx_str(ContextKind::InvalidValue);
            let full = err.to_string();
            let first = full
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            if !arg.is_empty() && !value.is_empty() {
                // The validator's own words when there are any, as pflag prints them.
                let why = std::error::Error::source(err)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "invalid value".into());
                let flag = flag_name(cmd, &arg);
                eprintln!("invalid argument {value:?} for \"{flag}\" flag: {why}{tail}");
            } else {
                eprintln!("{first}{tail}");
            }
            125
        }
    }
}

fn main() {
    // Rust ignores SIGPIPE, so `berth images | head -1` would panic on the closed pipe;
    // a CLI should die quietly instead, as docker does.
    // SAFETY: called first, before any thread exists; SIG_DFL is always a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv: Vec<String> = std::env::args().collect();
    let root = command();
    let matches: ArgMatches = match root.clone().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => std::process::exit(usage_error(&root, &argv, &e)),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => std::process::exit(usage_error(&root, &argv, &e)),
    };
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let Some(cmd) = cli.command else {
        let mut root = root;
        print!("{}", root.render_help());
        return;
    };
    if cli.host.len() > 1 {
        eprintln!("Specify only one -H");
        std::process::exit(125);
    }
    let host = client::resolve_host(cli.host.first().map(String::as_str));
    // A host berth cannot dial is refused before a command prints anything.
    if let Err(e) = client::socket_path(&host) {
        eprintln!("{e}");
        std::process::exit(e.exit_code());
    }
    let ctx = Ctx::new(host, cli.debug || cli.log_level == "debug");
    if let Err(e) = commands::run(&ctx, cmd) {
        if !matches!(e, Error::Reported) {
            eprintln!("{e}");
        }
        std::process::exit(e.exit_code());
    }
}
