//! `docker import`: a single-layer image from a root filesystem tar, with Docker's
//! `--change` instructions and `--message`.
//!
//! The changes are Dockerfile instructions applied to an empty config, as Docker's
//! `BuildFromConfig` does: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`,
//! `ONBUILD`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. Anything else is refused with
//! Docker's message (`run is not a valid change command`). [`apply_changes`] is public
//! so `docker commit --change` can use the same code.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::{Duration, SystemTime};

use oci_spec::image::History;

use crate::archive::LoadedImage;
use crate::config::{ConfigError, Empty, HealthConfig, NewConfig, RunConfig};
use crate::digest::Algorithm;
use crate::store::{ImageStore, StoreError};

/// Errors of import and of `--change` instructions.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A `--change` instruction is not one Docker allows.
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    /// A `--change` instruction is malformed (message in Docker's words).
    #[error("{0}")]
    BadChange(String),
    /// The input could not be read or is not a tar.
    #[error("import: {0}")]
    Input(#[source] io::Error),
    /// Building the config failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storing the layer or config failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::content::ContentError> for ImportError {
    fn from(e: crate::content::ContentError) -> Self {
        ImportError::Store(e.into())
    }
}

/// What `docker import` is given besides the tar.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions, applied in order.
    pub changes: Vec<String>,
    /// `--message`; the comment and history entry default to `Imported from <source>`.
    pub message: Option<String>,
    /// Where the tar came from (`-` for stdin, or the URL), for the default message.
    pub source: Option<String>,
    /// Author for the config (Docker leaves it empty for import).
    pub author: Option<String>,
}

/// Creates a single-layer image from a root filesystem tar (plain or gzip).
pub fn import(
    store: &ImageStore,
    reader: impl Read,
    opts: &ImportOptions,
) -> Result<LoadedImage, ImportError> {
    // Check the changes before doing any work, as Docker does.
    let mut run = RunConfig::default();
    apply_changes(&mut run, &opts.changes)?;

    let mut txn = store.txn();
    // The diff id is known only after reading the whole tar, so the uncompressed tar
    // goes to the content store first, then is unpacked from there.
    let (_, mut input) = crate::layer::compress::decompress(reader).map_err(ImportError::Input)?;
    let mut ingest = store.content().ingest(Algorithm::Sha256)?;
    io::copy(&mut input, &mut ingest).map_err(ImportError::Input)?;
    if ingest.bytes_written() == 0 {
        return Err(ImportError::Input(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty input: not a tar archive",
        )));
    }
    let existed = store.content().exists(&ingest.digest());
    let diff_id = ingest.commit(None)?;
    let blob = store.content().open_blob(&diff_id)?;
    // unpack_layer records the snapshot it creates; the blob was written here.
    if !existed {
        txn.record_blob(&diff_id);
    }
    store.unpack_layer(&mut txn, "imported layer", &diff_id, &diff_id, None, blob)?;

    let comment = opts
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("Imported from {}", opts.source.as_deref().unwrap_or("-")));
    let created = SystemTime::now();
    let mut h = History::default();
    h.set_created(Some(crate::config::format_time(created)));
    h.set_comment(Some(comment.clone()));
    let config = NewConfig {
        created,
        author: opts.author.clone(),
        comment: Some(comment),
        config: run,
        diff_ids: vec![diff_id.clone()],
        history: vec![h],
    }
    .build()?;
    store.put_config(&mut txn, &config)?;
    txn.commit();
    Ok(LoadedImage {
        id: config.id().clone(),
        tags: Vec::new(),
        layers: vec![(diff_id.clone(), diff_id)],
        config,
    })
}

/// Applies Dockerfile-style `--change` instructions to `config`, in order.
pub fn apply_changes(config: &mut RunConfig, changes: &[String]) -> Result<(), ImportError> {
    let mut cmd_set = false;
    for change in changes {
        // A change may hold several lines (Docker parses them joined as a Dockerfile);
        // backslash-newline continues a line.
        let joined = change.replace("\\\r\n", "").replace("\\\n", "");
        for line in joined.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            apply_one(config, line, &mut cmd_set)?;
        }
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> ImportError {
    ImportError::BadChange(msg.into())
}

fn apply_one(c: &mut RunConfig, line: &str, cmd_set: &mut bool) -> Result<(), ImportError> {
    let (kw, rest) = match line.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (line, ""),
    };
    let kw = kw.to_ascii_lowercase();
    let env = c.env.clone().unwrap_or_default();
    match kw.as_str() {
        "cmd" => {
            c.cmd = Some(command_form(rest));
            *cmd_set = true;
        }
        "entrypoint" => {
            let ep = command_form(rest);
            // `ENTRYPOINT ""` clears it; Docker also drops an inherited CMD unless one
            // was set by an earlier instruction.
            c.entrypoint = if ep.is_empty() || ep == [""] {
                None
            } else {
                Some(ep)
            };
            if !*cmd_set {
                c.cmd = None;
            }
        }
        "env" => {
            let pairs = name_values("ENV", rest, &env)?;
            let list = c.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                let entry = format!("{k}={v}");
                match list
                    .iter_mut()
                    .find(|e| e.split('=').next() == Some(k.as_str()))
                {
                    Some(e) => *e = entry,
                    None => list.push(entry),
                }
            }
        }
        "label" => {
            let pairs = name_values("LABEL", rest, &env)?;
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k, v);
            }
        }
        "expose" => {
            let words = process_words(rest, &env)?;
            if words.is_empty() {
                return Err(bad("EXPOSE requires at least one argument"));
            }
            let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for w in words {
                for p in parse_port_spec(&w)? {
                    ports.insert(p, Empty {});
                }
            }
        }
        "user" => {
            let words = process_words(rest, &env)?;
            if words.len() != 1 {
                return Err(bad("USER requires exactly one argument"));
            }
            c.user = Some(words.into_iter().next().unwrap_or_default());
        }
        "volume" => {
            let vols = match json_array(rest) {
                Some(v) => v,
                None => process_words(rest, &env)?,
            };
            if vols.is_empty() {
                return Err(bad("VOLUME requires at least one argument"));
            }
            let map = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(bad("VOLUME specified can not be an empty string"));
                }
                map.insert(v, Empty {});
            }
        }
        "workdir" => {
            let words = process_words(rest, &env)?;
            if words.len() != 1 {
                return Err(bad("WORKDIR requires exactly one argument"));
            }
            let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(resolve_workdir(&base, &words[0]));
        }
        "stopsignal" => {
            let words = process_words(rest, &env)?;
            if words.len() != 1 {
                return Err(bad("STOPSIGNAL requires exactly one argument"));
            }
            if !is_valid_signal(&words[0]) {
                return Err(bad(format!("Invalid signal: {}", words[0])));
            }
            c.stop_signal = Some(words[0].clone());
        }
        "onbuild" => {
            let trigger = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match trigger.as_str() {
                "" => return Err(bad("ONBUILD requires at least one argument")),
                "ONBUILD" => {
                    return Err(bad("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(bad(format!(
                        "{trigger} isn't allowed as an ONBUILD trigger"
                    )))
                }
                _ => c
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(rest.to_string()),
            }
        }
        "healthcheck" => c.healthcheck = Some(parse_healthcheck(rest)?),
        _ => return Err(ImportError::NotAllowed(kw)),
    }
    Ok(())
}

/// JSON (exec) form if `rest` is a JSON array of strings, else shell form.
fn command_form(rest: &str) -> Vec<String> {
    match json_array(rest) {
        Some(v) => v,
        None => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// `name=value ...` pairs, or the legacy `name value with spaces` form.
fn name_values(
    what: &str,
    rest: &str,
    env: &[String],
) -> Result<Vec<(String, String)>, ImportError> {
    let raw = split_raw_words(rest)?;
    if raw.is_empty() {
        return Err(bad(format!("{what} requires at least one argument")));
    }
    if !raw[0].contains('=') {
        // Legacy form: the first word is the name, the rest of the line the value.
        let name = process_word(&raw[0], env)?;
        let value_src = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value_src.is_empty() {
            return Err(bad(format!("{what} must have two arguments")));
        }
        return Ok(vec![(name, process_word(value_src, env)?)]);
    }
    let mut out = Vec::new();
    for w in raw {
        let Some((k, v)) = w.split_once('=') else {
            return Err(bad(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )));
        };
        let k = process_word(k, env)?;
        if k.is_empty() {
            return Err(bad(format!("{what} names can not be blank")));
        }
        out.push((k, process_word(v, env)?));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes (for later processing).
fn split_raw_words(s: &str) -> Result<Vec<String>, ImportError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(ch);
                cur.push(ch);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(ch);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push(ch);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ => cur.push(ch),
        }
    }
    if quote.is_some() {
        return Err(bad(
            "unexpected end of statement while looking for matching quote",
        ));
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// Splits into words, then removes quotes and expands variables in each.
fn process_words(s: &str, env: &[String]) -> Result<Vec<String>, ImportError> {
    split_raw_words(s)?
        .iter()
        .map(|w| process_word(w, env))
        .collect()
}

/// Removes quotes and escapes and expands `$VAR`, `${VAR}`, `${VAR:-default}` and
/// `${VAR:+alternative}` from `env`, as Docker's shell lexer does for one word.
fn process_word(s: &str, env: &[String]) -> Result<String, ImportError> {
    let lookup = |name: &str| -> Option<String> {
        env.iter().rev().find_map(|e| {
            e.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                i += 1;
                if let Some(&n) = chars.get(i) {
                    // Inside double quotes only a few characters are escapable.
                    if quote == Some('"') && !matches!(n, '"' | '\\' | '$') {
                        out.push('\\');
                    }
                    out.push(n);
                }
            }
            (_, '$') => {
                let next = chars.get(i + 1).copied();
                if next == Some('{') {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .map(|p| i + p)
                        .ok_or_else(|| bad("missing '}' in variable substitution"))?;
                    let inner: String = chars[i + 2..end].iter().collect();
                    let (name, modifier) = match inner.find(':') {
                        Some(p) => (inner[..p].to_string(), Some(inner[p + 1..].to_string())),
                        None => (inner.clone(), None),
                    };
                    let val = lookup(&name);
                    out.push_str(&match modifier {
                        None => val.unwrap_or_default(),
                        Some(m) if m.starts_with('-') => val
                            .filter(|v| !v.is_empty())
                            .unwrap_or_else(|| m[1..].to_string()),
                        Some(m) if m.starts_with('+') => match val {
                            Some(v) if !v.is_empty() => m[1..].to_string(),
                            _ => String::new(),
                        },
                        Some(m) => {
                            return Err(bad(format!("unsupported modifier ({m}) in substitution")))
                        }
                    });
                    i = end;
                } else if next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '_') {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len()
                        && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                    {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    out.push_str(&lookup(&name).unwrap_or_default());
                    i = end - 1;
                } else {
                    out.push('$');
                }
            }
            (_, c) => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// `80`, `80/udp`, `8000-8010/tcp` → `["80/tcp", ...]`.
fn parse_port_spec(spec: &str) -> Result<Vec<String>, ImportError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(format!("invalid proto: {proto}")));
    }
    let port = |p: &str| -> Result<u16, ImportError> {
        p.parse::<u16>()
            .map_err(|_| bad(format!("invalid containerPort: {ports}")))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if end < start {
        return Err(bad(format!("invalid range specified for port: {ports}")));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// Docker's `ResolveWorkingDir`: a relative path is joined to the current one; the
/// result is cleaned.
fn resolve_workdir(base: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{base}/{dir}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN",
    "RTMAX",
];

/// A signal as Docker's `ParseSignal` accepts it: a number, or a name with or without
/// `SIG`, including `RTMIN+n`/`RTMAX-n`.
fn is_valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if let Some((base, n)) = name.split_once(['+', '-']) {
        return matches!(base, "RTMIN" | "RTMAX") && n.parse::<u32>().is_ok_and(|n| n <= 30);
    }
    SIGNALS.contains(&name)
}

fn parse_healthcheck(rest: &str) -> Result<HealthConfig, ImportError> {
    let mut hc = HealthConfig::default();
    let mut rest = rest.trim();
    // Flags first: --interval=30s --timeout=5s --start-period=1s --start-interval=1s --retries=3
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end]
            .split_once('=')
            .ok_or_else(|| bad(format!("flag --{} requires a value", &flag[..end])))?;
        let dur = |v: &str, what: &str| -> Result<i64, ImportError> {
            let d = parse_go_duration(v)
                .ok_or_else(|| bad(format!("invalid duration {v:?} for --{what}")))?;
            if d < Duration::from_millis(1) {
                return Err(bad(format!("Interval {what:?} cannot be less than 1ms")));
            }
            Ok(d.as_nanos() as i64)
        };
        match name {
            "interval" => hc.interval = dur(value, name)?,
            "timeout" => hc.timeout = dur(value, name)?,
            "start-period" => hc.start_period = dur(value, name)?,
            "start-interval" => hc.start_interval = dur(value, name)?,
            "retries" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| bad(format!("invalid --retries value {value:?}")))?;
                if n < 0 {
                    return Err(bad("--retries cannot be negative"));
                }
                hc.retries = n;
            }
            _ => return Err(bad(format!("unknown flag: {name}"))),
        }
        rest = flag[end..].trim_start();
    }
    let (kind, args) = match rest.split_once(char::is_whitespace) {
        Some((k, a)) => (k.to_ascii_uppercase(), a.trim()),
        None => (rest.to_ascii_uppercase(), ""),
    };
    match kind.as_str() {
        "NONE" => {
            if !args.is_empty() || hc != HealthConfig::default() {
                return Err(bad("HEALTHCHECK NONE takes no arguments"));
            }
            hc.test = vec!["NONE".into()];
        }
        "CMD" => {
            if args.is_empty() {
                return Err(bad("Missing command after HEALTHCHECK CMD"));
            }
            hc.test = match json_array(args) {
                Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                None => vec!["CMD-SHELL".into(), args.to_string()],
            };
        }
        other => {
            return Err(bad(format!(
                "Unknown type {other:?} in HEALTHCHECK (try CMD)"
            )))
        }
    }
    Ok(hc)
}

/// A Go duration (`300ms`, `1.5h`, `1m30s`); no sign, at least one unit.
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[&str]) -> Result<RunConfig, ImportError> {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = changes(&[r#"CMD ["a","b"]"#]).unwrap();
        assert_eq!(c.cmd, v(&["a", "b"]));
        let c = changes(&["CMD a b"]).unwrap();
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "a b"]));
        let c = changes(&["cmd [not json"]).unwrap();
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "[not json"]));
        let c = changes(&["CMD [\"x\"]", "ENTRYPOINT [\"/e\"]"]).unwrap();
        assert_eq!(c.entrypoint, v(&["/e"]));
        assert_eq!(c.cmd, v(&["x"]), "CMD set before is kept");
        let c = changes(&["ENTRYPOINT /e --flag"]).unwrap();
        assert_eq!(c.entrypoint, v(&["/bin/sh", "-c", "/e --flag"]));
    }

    #[test]
    fn env_label_and_expansion() {
        let c = changes(&[
            "ENV A=1 B=\"two words\"",
            "ENV C ${A}-$B and more",
            "ENV A=3",
            "LABEL com.example=\"x y\" v=$A",
            "LABEL legacy value here",
            r#"ENV D=${MISSING:-dflt} E=${A:+set} F='$A' G="\$A""#,
        ])
        .unwrap();
        let env = c.env.unwrap();
        assert_eq!(
            env,
            [
                "A=3",
                "B=two words",
                "C=1-two words and more",
                "D=dflt",
                "E=set",
                "F=$A",
                "G=$A"
            ]
        );
        let labels = c.labels.unwrap();
        assert_eq!(labels["com.example"], "x y");
        assert_eq!(labels["v"], "3");
        assert_eq!(labels["legacy"], "value here");
        assert!(changes(&["ENV"]).is_err());
        assert!(changes(&["ENV onlyname"]).is_err());
        assert!(changes(&["ENV =x"]).is_err());
        assert!(changes(&["ENV A=\"unterminated"]).is_err());
    }

    #[test]
    fn expose_user_volume_workdir_stopsignal() {
        let c = changes(&[
            "EXPOSE 80 53/udp 8000-8001",
            "USER nobody:nogroup",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache /tmp/x",
            "WORKDIR /app",
            "WORKDIR sub/../dir",
            "STOPSIGNAL SIGQUIT",
        ])
        .unwrap();
        let ports: Vec<&str> = c
            .exposed_ports
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.user.as_deref(), Some("nobody:nogroup"));
        let vols: Vec<&str> = c
            .volumes
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(vols, ["/cache", "/data", "/logs", "/tmp/x"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app/dir"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        for ok in ["9", "TERM", "sigterm", "SIGRTMIN+3"] {
            assert!(changes(&[&format!("STOPSIGNAL {ok}")]).is_ok(), "{ok}");
        }
        for bad in [
            "EXPOSE 99999",
            "EXPOSE 80/foo",
            "EXPOSE 9-1",
            "STOPSIGNAL SIGNOPE",
            "USER",
            "USER a b",
        ] {
            assert!(changes(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn onbuild_healthcheck_and_refusals() {
        let c = changes(&[
            "ONBUILD RUN echo hi",
            "HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/",
        ])
        .unwrap();
        assert_eq!(c.on_build, v(&["RUN echo hi"]));
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "curl -f http://localhost/"]);
        assert_eq!(hc.interval, 30_000_000_000);
        assert_eq!(hc.retries, 3);
        let hc = changes(&[r#"HEALTHCHECK --timeout=1m30s CMD ["true"]"#])
            .unwrap()
            .healthcheck
            .unwrap();
        assert_eq!(hc.test, ["CMD", "true"]);
        assert_eq!(hc.timeout, 90_000_000_000);
        assert_eq!(
            changes(&["HEALTHCHECK NONE"])
                .unwrap()
                .healthcheck
                .unwrap()
                .test,
            ["NONE"]
        );
        assert!(changes(&["HEALTHCHECK --interval=0s CMD x"]).is_err());
        assert!(changes(&["ONBUILD ONBUILD RUN x"]).is_err());
        assert!(changes(&["ONBUILD FROM x"]).is_err());
        let e = changes(&["RUN echo hi"]).unwrap_err();
        assert_eq!(e.to_string(), "run is not a valid change command");
        let e = changes(&["FROM scratch"]).unwrap_err();
        assert_eq!(e.to_string(), "from is not a valid change command");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("x"), None);
    }
}
