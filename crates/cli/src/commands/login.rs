//! `berth login` and `berth logout`: `POST /auth` checks the credentials through the
//! daemon (which talks to the registry), then they are kept as the docker CLI keeps
//! them (see [`crate::credentials`]).

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use clap::Args;
use serde_json::Value;

use super::Ctx;
use crate::credentials::{hostname, AuthConfig, ConfigFile};
use crate::error::{Error, Result};
use crate::reference::{DEFAULT_DOMAIN, INDEX_SERVER};

/// `berth login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Password
    #[arg(short = 'p', long, value_name = "string")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub username: Option<String>,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// `berth logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The key a server's credentials are kept under: Docker Hub's index address for no
/// server (or `docker.io`), else the address as given.
fn server_key(server: Option<&str>) -> (String, bool) {
    match server.filter(|s| !s.is_empty() && *s != DEFAULT_DOMAIN) {
        Some(s) => (s.to_string(), s == INDEX_SERVER),
        None => (INDEX_SERVER.to_string(), true),
    }
}

/// `POST /auth`: the identity token the registry gave, if any.
fn authenticate(ctx: &Ctx, auth: &AuthConfig) -> Result<String> {
    let body = serde_json::to_value(auth)?;
    let resp: Value = ctx.client()?.post("/auth", Some(&body))?;
    Ok(resp["IdentityToken"].as_str().unwrap_or("").to_string())
}

fn prompt(label: &str) -> Result<String> {
    eprint!("{label}");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).trim().to_string())
}

/// Reads a line from the terminal with echo off.
fn prompt_password() -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    eprint!("Password: ");
    io::stderr().flush()?;
    let stdin = io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(stdin.as_fd(), OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(stdin.as_fd(), OptionalActions::Now, t);
    }
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `berth login`.
pub fn login(ctx: &Ctx, args: LoginArgs) -> Result<()> {
    if args.password.is_some() && args.password_stdin {
        return Err(Error::msg(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    let mut password = args.password.clone();
    if args.password_stdin {
        if args.username.as_deref().unwrap_or("").is_empty() {
            return Err(Error::msg("Must provide --username with --password-stdin"));
        }
        let mut raw = String::new();
        io::stdin().read_to_string(&mut raw)?;
        let p = raw.strip_suffix('\n').unwrap_or(&raw);
        let p = p.strip_suffix('\r').unwrap_or(p);
        password = Some(p.to_string());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let (server, _) = server_key(args.server.as_deref());
    let mut config = ConfigFile::load_default()?;
    let stored = config.get(&server)?;

    // No user and no password: the stored credentials, if they still work.
    if args.username.is_none() && password.is_none() && !stored.is_empty() {
        println!("Authenticating with existing credentials...");
        let mut auth = stored.clone();
        auth.serveraddress = server.clone();
        match authenticate(ctx, &auth) {
            Ok(token) => {
                if !token.is_empty() {
                    auth.password.clear();
                    auth.identitytoken = token;
                    save(&mut config, &auth)?;
                }
                println!("Login Succeeded");
                return Ok(());
            }
            Err(e) => eprintln!("Login did not succeed, error: {e}"),
        }
    }

    let mut username = args.username.clone().unwrap_or_default();
    let mut password = password.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        if !io::stdin().is_terminal() {
            return Err(Error::msg(
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
        if username.is_empty() {
            let label = if stored.username.is_empty() {
                "Username: ".to_string()
            } else {
                format!("Username ({}): ", stored.username)
            };
            username = prompt(&label)?;
            if username.is_empty() {
                username = stored.username.clone();
            }
            if username.is_empty() {
                return Err(Error::msg("Error: Non-null Username Required"));
            }
        }
        if password.is_empty() {
            password = prompt_password()?;
            if password.is_empty() {
                return Err(Error::msg("Error: Password Required"));
            }
        }
    }
    let mut auth = AuthConfig {
        username: username.trim().to_string(),
        password,
        serveraddress: server.clone(),
        identitytoken: String::new(),
    };
    let token = authenticate(ctx, &auth)?;
    if !token.is_empty() {
        auth.password.clear();
        auth.identitytoken = token;
    }
    save(&mut config, &auth)?;
    println!("Login Succeeded");
    Ok(())
}

fn save(config: &mut ConfigFile, auth: &AuthConfig) -> Result<()> {
    let plain = config.helper_for(&auth.serveraddress).is_none();
    config
        .store(auth)
        .map_err(|e| Error::msg(format!("Error saving credentials: {e}")))?;
    if plain {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/engine/reference/commandline/login/#credential-stores\n",
            config.path().display()
        );
    }
    Ok(())
}

/// `berth logout`: erases the credentials under every spelling docker may have used.
pub fn logout(_ctx: &Ctx, args: LogoutArgs) -> Result<()> {
    let (server, default) = server_key(args.server.as_deref());
    let mut config = ConfigFile::load_default()?;
    let (shown, keys) = if default {
        (server.clone(), vec![server.clone()])
    } else {
        let host = hostname(&server).to_string();
        let mut keys = vec![
            server.clone(),
            host.clone(),
            format!("http://{host}"),
            format!("https://{host}"),
        ];
        keys.dedup();
        (host, keys)
    };
    println!("Removing login credentials for {shown}");
    let mut errors = Vec::new();
    for k in &keys {
        if let Err(e) = config.erase(k) {
            errors.push((k.clone(), e));
        }
    }
    if errors.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for (k, e) in errors {
            eprintln!("{k}: {e}");
        }
    }
    Ok(())
}
