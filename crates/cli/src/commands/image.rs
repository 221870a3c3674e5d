//! `berth image ...` and its top-level aliases (`images`, `load`, `save`, `tag`, `rmi`,
//! `import`, `history`), over docker's `/images` endpoints.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{ArgAction, Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::system::FORMAT_HELP;
use super::Ctx;
use crate::client::{path_segment, query, RequestBody};
use crate::error::{Error, Result};
use crate::format::{self, Format};
use crate::jsonmessage;

/// The help text docker gives every `--format` flag of a list command.
pub const LIST_FORMAT_HELP: &str = "Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// `berth image ...`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(super::pull::PullArgs),
    /// Upload an image to a registry
    Push(super::pull::PushArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

/// Runs a `berth image` subcommand.
pub fn run(ctx: &Ctx, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::History(a) => history(ctx, a),
        ImageCommand::Import(a) => import(ctx, a),
        ImageCommand::Inspect(a) => inspect(ctx, a),
        ImageCommand::Load(a) => load(ctx, a),
        ImageCommand::Ls(a) => ls(ctx, a),
        ImageCommand::Prune(a) => prune(ctx, a),
        ImageCommand::Pull(a) => super::pull::pull(ctx, a),
        ImageCommand::Push(a) => super::pull::push(ctx, a),
        ImageCommand::Rm(a) => rm(ctx, a),
        ImageCommand::Save(a) => save(ctx, a),
        ImageCommand::Tag(a) => tag(ctx, a),
    }
}

/// Parses `--filter key=value`, as docker's filter flag does.
pub fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_lowercase(), v.trim().to_string())),
        _ => Err("bad format of filter (expected name=value)".into()),
    }
}

/// The `filters` query parameter: `{"key": {"value": true}}`, docker's encoding.
pub fn filters_json(filters: &[(String, String)]) -> String {
    let mut m: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for (k, v) in filters {
        m.entry(k).or_default().insert(v, true);
    }
    serde_json::to_string(&m).unwrap_or_default()
}

/// `sha256:0123456789abcdef...` as docker shows it: 12 hex digits.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// Splits `name[:tag]` at the tag's colon (a colon before the last `/` is a registry
/// port), defaulting the tag to `latest` as docker does.
pub fn split_reference(r: &str) -> (String, String) {
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

// ---- ls ----

/// `berth images` / `berth image ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// The column titles of `images` (the header row of its `table` formats).
fn ls_header() -> Value {
    json!({
        "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

/// One `images` row per tag of each summary (one `<none>` row for an untagged image),
/// with docker's template fields.
fn ls_rows(images: &[Value], no_trunc: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        let id = img["Id"].as_str().unwrap_or("");
        let id = if no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let created = img["Created"].as_i64().unwrap_or(0);
        let size = img["Size"].as_i64().unwrap_or(0);
        let shared = img["SharedSize"].as_i64().unwrap_or(-1);
        let n_a_or = |n: i64, f: &dyn Fn(i64) -> String| {
            if n < 0 {
                "N/A".to_string()
            } else {
                f(n)
            }
        };
        let digests: Vec<&str> = img["RepoDigests"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
            .unwrap_or_default();
        let mut tags: Vec<(String, String)> = img["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str())
                    .filter(|t| *t != "<none>:<none>")
                    .map(split_reference)
                    .collect()
            })
            .unwrap_or_default();
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in tags {
            let digest = digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo || repo == "<none>")
                        .map(|(_, dg)| dg)
                })
                .unwrap_or("<none>");
            rows.push(json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "ID": id,
                "CreatedSince": format::ago(created),
                "CreatedAt": format::unix_to_utc(created),
                "Size": format::human_size(size as f64),
                "VirtualSize": format::human_size(size as f64),
                "SharedSize": n_a_or(shared, &|n| format::human_size(n as f64)),
                "UniqueSize": n_a_or(shared, &|n| format::human_size((size - n) as f64)),
                "Containers": n_a_or(img["Containers"].as_i64().unwrap_or(-1), &|n| n.to_string()),
            }));
        }
    }
    rows
}

/// `berth images`: `GET /images/json`.
pub fn ls(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let mut filters = args.filter.clone();
    if let Some(r) = &args.reference {
        filters.push(("reference".into(), r.clone()));
    }
    let mut q = Vec::new();
    let fj = filters_json(&filters);
    if args.all {
        q.push(("all", "1"));
    }
    if !filters.is_empty() {
        q.push(("filters", fj.as_str()));
    }
    let images: Vec<Value> = ctx.client()?.get(&format!("/images/json{}", query(&q)))?;
    let rows = ls_rows(&images, args.no_trunc);
    let format = if args.quiet {
        Format::Template("{{.ID}}".into())
    } else {
        Format::parse(args.format.as_deref())
    };
    let default = if args.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    print!(
        "{}",
        format::render_list(&format, default, &ls_header(), &rows)?
    );
    Ok(())
}

// ---- load / save / import ----

/// `berth load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<PathBuf>,
    /// Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Prints a response that is either a JSON message stream or plain text.
fn print_stream(resp: crate::client::Response<'_>) -> Result<()> {
    let json = resp
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut out = io::stdout().lock();
    if json {
        jsonmessage::display(resp.json_lines(), &mut out, |_| {})
    } else {
        let mut resp = resp;
        io::copy(&mut resp, &mut out)?;
        Ok(())
    }
}

/// `berth load`: `POST /images/load` with the archive streamed from the file or stdin.
pub fn load(ctx: &Ctx, args: LoadArgs) -> Result<()> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(p) => Box::new(open(p)?),
        None => {
            if io::stdin().is_terminal() {
                return Err(Error::msg("requested load from stdin, but stdin is empty"));
            }
            Box::new(io::stdin())
        }
    };
    // As docker: progress bars only for a terminal; otherwise just "Loaded image: ...".
    let quiet = args.quiet || !io::stdout().is_terminal();
    let mut q = vec![("quiet", if quiet { "1" } else { "0" })];
    if let Some(p) = &args.platform {
        q.push(("platform", p));
    }
    let resp = ctx.client()?.request(
        Method::POST,
        &format!("/images/load{}", query(&q)),
        RequestBody::Tar(input),
    )?;
    print_stream(resp)
}

fn open(p: &Path) -> Result<std::fs::File> {
    std::fs::File::open(p).map_err(|e| Error::msg(format!("open {}: {e}", p.display())))
}

/// `berth save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<PathBuf>,
    /// Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `berth save`: `GET /images/get?names=...`, streamed to the file or stdout. A file is
/// written under a temporary name and renamed when complete, so a failed save leaves
/// no truncated archive behind.
pub fn save(ctx: &Ctx, args: SaveArgs) -> Result<()> {
    if args.output.is_none() && io::stdout().is_terminal() {
        return Err(Error::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q: Vec<(&str, &str)> = args.images.iter().map(|n| ("names", n.as_str())).collect();
    if let Some(p) = &args.platform {
        q.push(("platform", p));
    }
    let mut resp = ctx.client()?.request(
        Method::GET,
        &format!("/images/get{}", query(&q)),
        RequestBody::Empty,
    )?;
    let Some(out) = &args.output else {
        io::copy(&mut resp, &mut io::stdout().lock())?;
        return Ok(());
    };
    let name = out
        .file_name()
        .ok_or_else(|| Error::msg(format!("invalid output path {}", out.display())))?;
    let tmp = out.with_file_name(format!(
        ".{}.berth-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| Error::msg(format!("failed to save image: {}: {e}", out.display())))?;
        io::copy(&mut resp, &mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `berth import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `berth import`: `POST /images/create?fromSrc=-` with the tarball as the body (or
/// `fromSrc=URL` for the daemon to fetch), printing the new image's ID.
pub fn import(ctx: &Ctx, args: ImportArgs) -> Result<()> {
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let (from, body) = if is_url {
        (args.source.as_str(), RequestBody::Empty)
    } else if args.source == "-" {
        (
            "-",
            RequestBody::Tar(Box::new(io::stdin()) as Box<dyn Read + Send>),
        )
    } else {
        (
            "-",
            RequestBody::Tar(Box::new(open(Path::new(&args.source))?) as Box<dyn Read + Send>),
        )
    };
    let mut q = vec![("fromSrc", from)];
    if let Some(r) = &args.reference {
        // Docker sends the whole reference as `repo`; the daemon splits off the tag.
        q.push(("repo", r));
    }
    if let Some(m) = &args.message {
        q.push(("message", m));
    }
    for c in &args.change {
        q.push(("changes", c));
    }
    if let Some(p) = &args.platform {
        q.push(("platform", p));
    }
    let resp =
        ctx.client()?
            .request(Method::POST, &format!("/images/create{}", query(&q)), body)?;
    print_stream(resp)
}

// ---- tag / rm ----

/// `berth tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `berth tag`: `POST /images/{source}/tag?repo=&tag=`.
pub fn tag(ctx: &Ctx, args: TagArgs) -> Result<()> {
    if args.target.contains('@') {
        return Err(Error::msg(
            "refusing to create a tag with a digest reference",
        ));
    }
    let (repo, tag) = split_reference(&args.target);
    ctx.client()?.post_no_content(&format!(
        "/images/{}/tag{}",
        path_segment(&args.source),
        query(&[("repo", &repo), ("tag", &tag)])
    ))
}

/// `berth rmi` / `berth image rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    /// Remove only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "strings")]
    pub platform: Vec<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Prints `DELETE /images` and prune results: `Untagged: x` / `Deleted: y`.
fn print_deleted(items: &[Value], lower: bool) {
    for it in items {
        for (key, label) in [("Untagged", "Untagged"), ("Deleted", "Deleted")] {
            if let Some(v) = it[key].as_str() {
                let label = if lower {
                    label.to_lowercase()
                } else {
                    label.to_string()
                };
                println!("{label}: {v}");
            }
        }
    }
}

/// `berth rmi`: `DELETE /images/{name}` for each; every failure is reported, and the
/// exit code is 1 if any failed.
pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<()> {
    let client = ctx.client()?;
    let mut q = Vec::new();
    if args.force {
        q.push(("force", "1"));
    }
    if args.no_prune {
        q.push(("noprune", "1"));
    }
    for p in &args.platform {
        q.push(("platforms", p));
    }
    let mut failed = false;
    for name in &args.images {
        match client.delete::<Vec<Value>>(&format!("/images/{}{}", path_segment(name), query(&q))) {
            Ok(items) => print_deleted(&items, false),
            // A connection failure will not get better for the next image.
            Err(e @ (Error::Connect(_) | Error::Permission { .. })) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Error::Reported)
    } else {
        Ok(())
    }
}

// ---- inspect / history / prune ----

/// `berth image inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Inspect a specific platform of the multi-platform image.
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `GET /images/{name}/json` as the daemon sent it (its text keeps the key order).
pub fn inspect_raw(ctx: &Ctx, name: &str, platform: Option<&str>) -> Result<String> {
    let mut q = Vec::new();
    if let Some(p) = platform {
        q.push(("platform", p));
    }
    let resp = ctx.client()?.request(
        Method::GET,
        &format!("/images/{}/json{}", path_segment(name), query(&q)),
        RequestBody::Empty,
    )?;
    json_text(resp)
}

/// An answer's JSON body as text (so printing keeps the daemon's key order), checked
/// here to be JSON so that printing can trust it.
pub fn json_text(resp: crate::client::Response<'_>) -> Result<String> {
    let raw = String::from_utf8(resp.bytes()?)
        .map_err(|_| Error::msg("the daemon sent non-UTF-8 JSON"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&raw)?;
    Ok(raw)
}

/// Prints inspect results as docker does: a 4-space indented JSON array (`[]` when
/// none was found), or one template rendering per object.
pub fn print_inspected(raws: &[String], format: Option<&str>) -> Result<()> {
    match format.map(|f| Format::parse(Some(f))) {
        None | Some(Format::Default) | Some(Format::Json) => {
            println!("{}", format::indent_json(&format!("[{}]", raws.join(","))));
        }
        Some(Format::Table(t) | Format::Template(t)) => {
            let tmpl = format::Template::parse(&t)?;
            for raw in raws {
                println!("{}", tmpl.render(&serde_json::from_str(raw)?)?);
            }
        }
    }
    Ok(())
}

/// Inspects each of `names` with `one` and prints what was found (see
/// [`print_inspected`]), then the errors; a connection error ends it at once.
pub fn inspect_each(
    names: &[String],
    format: Option<&str>,
    mut one: impl FnMut(&str) -> Result<String>,
) -> Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match one(name) {
            Ok(raw) => found.push(raw),
            Err(e @ (Error::Connect(_) | Error::Permission { .. } | Error::Host(_))) => {
                return Err(e)
            }
            Err(e) => errors.push(e),
        }
    }
    print_inspected(&found, format)?;
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Error::Reported)
}

/// `berth image inspect`.
pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    inspect_each(&args.images, args.format.as_deref(), |name| {
        inspect_raw(ctx, name, args.platform.as_deref())
    })
}

/// `berth history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[arg(long, value_name = "string", help = LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(
        short = 'H',
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::value_parser!(bool)
    )]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// Shortens to `n` characters with an ellipsis, as docker's `Ellipsis`.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

fn history_rows(layers: &[Value], human: bool, no_trunc: bool) -> Vec<Value> {
    layers
        .iter()
        .map(|l| {
            let id = l["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let created = l["Created"].as_i64().unwrap_or(0);
            let size = l["Size"].as_i64().unwrap_or(0);
            let by = l["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if no_trunc { by } else { ellipsis(&by, 45) };
            json!({
                "ID": id,
                "CreatedSince": if human { format::ago(created) } else { format::unix_to_rfc3339(created) },
                "CreatedAt": format::unix_to_rfc3339(created),
                "CreatedBy": by,
                "Size": if human { format::human_size(size as f64) } else { size.to_string() },
                "Comment": l["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect()
}

/// `berth history`: `GET /images/{name}/history`.
pub fn history(ctx: &Ctx, args: HistoryArgs) -> Result<()> {
    let mut q = Vec::new();
    if let Some(p) = &args.platform {
        q.push(("platform", p.as_str()));
    }
    let layers: Vec<Value> = ctx.client()?.get(&format!(
        "/images/{}/history{}",
        path_segment(&args.image),
        query(&q)
    ))?;
    let rows = history_rows(&layers, args.human, args.no_trunc);
    let header = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    let format = if args.quiet {
        Format::Template("{{.ID}}".into())
    } else {
        Format::parse(args.format.as_deref())
    };
    let default = "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    print!("{}", format::render_list(&format, default, &header, &rows)?);
    Ok(())
}

/// `berth image prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// Asks `[y/N]` on stderr and reads the answer from stdin; anything but y/yes is no.
pub fn confirm(warning: &str) -> Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stderr().flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// `berth image prune`: `POST /images/prune`.
pub fn prune(ctx: &Ctx, args: PruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning)? {
        return Ok(());
    }
    let mut filters = args.filter.clone();
    filters.push(("dangling".into(), (!args.all).to_string()));
    let report: Value = ctx.client()?.post(
        &format!(
            "/images/prune{}",
            query(&[("filters", &filters_json(&filters))])
        ),
        None,
    )?;
    let deleted = report["ImagesDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        print_deleted(&deleted, true);
        println!();
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", format::human_size(space));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag() {
        let s = |r: &str| split_reference(r);
        assert_eq!(s("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(s("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(
            s("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            s("localhost:5000/a/b:v2"),
            ("localhost:5000/a/b".into(), "v2".into())
        );
    }

    #[test]
    fn filters_encode_as_docker() {
        assert_eq!(
            parse_filter("dangling=true").unwrap(),
            ("dangling".into(), "true".into())
        );
        assert!(parse_filter("nope").is_err());
        let f = vec![
            ("label".to_string(), "a=b".to_string()),
            ("dangling".to_string(), "true".to_string()),
            ("label".to_string(), "c".to_string()),
        ];
        assert_eq!(
            filters_json(&f),
            r#"{"dangling":{"true":true},"label":{"a=b":true,"c":true}}"#
        );
    }

    #[test]
    fn image_rows() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let images = vec![
            json!({"Id": "sha256:0123456789abcdef0000", "RepoTags": ["busybox:latest", "bb:1"],
                   "RepoDigests": ["busybox@sha256:feed"], "Created": now - 7200,
                   "Size": 4_261_550, "SharedSize": -1, "Containers": -1}),
            json!({"Id": "sha256:fedcba9876543210ffff", "RepoTags": [], "Created": 0, "Size": 0}),
        ];
        let rows = ls_rows(&images, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Digest"], "sha256:feed");
        assert_eq!(rows[0]["CreatedSince"], "2 hours ago");
        assert_eq!(rows[0]["Size"], "4.26MB");
        assert_eq!(rows[0]["SharedSize"], "N/A");
        assert_eq!(rows[1]["Repository"], "bb");
        assert_eq!(rows[1]["Digest"], "<none>");
        assert_eq!(rows[2]["Repository"], "<none>");
        assert_eq!(rows[2]["CreatedSince"], "N/A");
        let out = format::render_list(
            &Format::Default,
            "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            &ls_header(),
            &rows[..1],
        )
        .unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    0123456789ab   2 hours ago   4.26MB\n"
        );
        assert_eq!(
            ls_rows(&images, true)[0]["ID"],
            "sha256:0123456789abcdef0000"
        );
    }

    #[test]
    fn history_rows_truncate() {
        let long = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in /";
        let layers = vec![
            json!({"Id": "sha256:0123456789abcdef", "Created": 1, "CreatedBy": long, "Size": 1000, "Comment": ""}),
            json!({"Id": "<missing>", "Created": 1, "CreatedBy": "x", "Size": 0, "Comment": "c"}),
        ];
        let rows = history_rows(&layers, true, false);
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["CreatedBy"].as_str().unwrap().chars().count(), 45);
        assert!(rows[0]["CreatedBy"].as_str().unwrap().ends_with('…'));
        assert_eq!(rows[0]["Size"], "1kB");
        assert_eq!(rows[1]["ID"], "<missing>");
        let raw = history_rows(&layers, false, true);
        assert_eq!(raw[0]["CreatedBy"], long);
        assert_eq!(raw[0]["Size"], "1000");
        assert_eq!(raw[0]["CreatedSince"], "1970-01-01T00:00:01Z");
    }
}
