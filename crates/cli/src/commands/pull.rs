//! `berth pull` and `berth push` (also as `image pull|push`): the credentials for the
//! reference's registry go in `X-Registry-Auth`, as the docker CLI sends them, and the
//! daemon's progress stream is drawn by [`crate::progress`].

use clap::Args;
use hyper::Method;

use super::Ctx;
use crate::client::{path_segment, query, RequestBody};
use crate::credentials::{AuthConfig, ConfigFile};
use crate::error::{Error, Result};
use crate::progress::{self, Mode, Target};
use crate::reference::Reference;

/// `berth pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image verification
    #[arg(long = "disable-content-trust", value_name = "bool", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

/// `berth push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image signing
    #[arg(long = "disable-content-trust", value_name = "bool", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

/// The `X-Registry-Auth` value for `r`'s registry: its stored credentials, or `{}`.
pub fn auth_header(r: &Reference) -> Result<String> {
    let key = r.auth_key();
    let mut auth = ConfigFile::load_default()?.get(&key)?;
    if auth.is_empty() {
        auth = AuthConfig::default();
    } else {
        auth.serveraddress = key;
    }
    Ok(auth.to_header())
}

/// `POST /images/create?fromImage=&tag=&platform=` with the registry's credentials,
/// its progress drawn on `target` in `mode`.
pub fn pull_image(
    ctx: &Ctx,
    r: &Reference,
    all_tags: bool,
    platform: Option<&str>,
    target: Target,
    mode: Mode,
) -> Result<()> {
    let name = r.familiar_name();
    let tag = r.api_tag();
    let mut q = vec![("fromImage", name.as_str())];
    if !all_tags {
        q.push(("tag", tag.as_str()));
    }
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p));
    }
    let header = auth_header(r)?;
    let resp = ctx.client()?.request_with(
        Method::POST,
        &format!("/images/create{}", query(&q)),
        RequestBody::Empty,
        &[("X-Registry-Auth", &header)],
    )?;
    progress::render(resp.json_lines(), target, mode, |_| {})
}

/// `berth pull`: pulls, then prints the full reference (alone with `-q`).
pub fn pull(ctx: &Ctx, args: PullArgs) -> Result<()> {
    let mut r = Reference::parse(&args.name)?;
    if args.all_tags && !r.is_name_only() {
        return Err(Error::msg("tag can't be used with --all-tags/-a"));
    }
    if !args.all_tags && r.is_name_only() {
        r.tag = Some("latest".into());
        if !args.quiet {
            println!("Using default tag: latest");
        }
    }
    let mode = Mode::for_target(Target::Stdout, args.quiet);
    pull_image(
        ctx,
        &r,
        args.all_tags,
        args.platform.as_deref(),
        Target::Stdout,
        mode,
    )?;
    println!("{}", r.full());
    Ok(())
}

/// `berth push`: `POST /images/{name}/push?tag=` with the registry's credentials.
pub fn push(ctx: &Ctx, args: PushArgs) -> Result<()> {
    let mut r = Reference::parse(&args.name)?;
    if r.digest.is_some() {
        return Err(Error::msg("cannot push a digest reference"));
    }
    if args.all_tags && !r.is_name_only() {
        return Err(Error::msg("tag can't be used with --all-tags/-a"));
    }
    if !args.all_tags && r.is_name_only() {
        r.tag = Some("latest".into());
        if !args.quiet {
            println!("Using default tag: latest");
        }
    }
    let tag = r.tag.clone().unwrap_or_default();
    let q = if args.all_tags {
        String::new()
    } else {
        query(&[("tag", &tag)])
    };
    let header = auth_header(&r)?;
    let resp = ctx.client()?.request_with(
        Method::POST,
        &format!("/images/{}/push{q}", path_segment(&r.familiar_name())),
        RequestBody::Empty,
        &[("X-Registry-Auth", &header)],
    )?;
    let mode = Mode::for_target(Target::Stdout, args.quiet);
    progress::render(resp.json_lines(), Target::Stdout, mode, |_| {})?;
    if args.quiet {
        println!("{}", r.full());
    }
    Ok(())
}
