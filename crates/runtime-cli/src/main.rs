//! `berth-runtime`: runc's command line over berth's runtime core, so tools written for
//! runc (and berthd's `--runtime` switch) can drive it.

mod cli;
mod commands;
mod log;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let log = log::Log::new(args.log.as_deref(), args.log_format);
    match commands::dispatch(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log.error(&e.to_string());
            std::process::exit(1);
        }
    }
}
