//! `--log-opt` validation and parsing with Docker's rules and messages.

use std::collections::{BTreeMap, HashMap};

use crate::driver::ContainerInfo;
use crate::jsonfile::JsonFileOptions;
use crate::{Error, Result};

/// Options every driver accepts because the daemon, not the driver, acts on
/// them (Docker's `mode` and `max-buffer-size`).
const COMMON_OPTS: &[&str] = &["mode", "max-buffer-size"];
const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidOpt(msg.into())
}

/// Parses a size as go-units' `FromHumanSize`: decimal multiples (`10k` is
/// 10 000, `1.5MB` 1 500 000), optional `b`/`ib` after the unit, case-insensitive.
pub fn parse_human_size(s: &str) -> Result<i64> {
    parse_size(s, 1000)
}

/// Parses a size as go-units' `RAMInBytes`: binary multiples (`1k` is 1024).
pub fn parse_ram_size(s: &str) -> Result<i64> {
    parse_size(s, 1024)
}

fn parse_size(s: &str, base: u64) -> Result<i64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let Some(sep) = sep else {
        return Err(invalid(format!("invalid size: '{s}'")));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        s.split_at(sep + 1)
    };
    let size: f64 = num.parse().map_err(|_| {
        invalid(format!(
            "strconv.ParseFloat: parsing \"{num}\": invalid syntax"
        ))
    })?;
    if size < 0.0 || !size.is_finite() {
        return Err(invalid(format!("invalid size: '{s}'")));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let lower = sfx.to_ascii_lowercase();
    let bad = || invalid(format!("invalid suffix: '{lower}'"));
    let b = lower.as_bytes();
    if b.len() > 3 {
        return Err(bad());
    }
    if b[0] == b'b' {
        return if b.len() == 1 {
            Ok(size as i64)
        } else {
            Err(bad())
        };
    }
    let exp = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &b[1..] != b"ib") {
        return Err(bad());
    }
    Ok((size * base.pow(exp) as f64) as i64)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(invalid(format!(
            "strconv.ParseBool: parsing \"{s}\": invalid syntax"
        ))),
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .map_err(|_| invalid(format!("strconv.Atoi: parsing \"{s}\": invalid syntax")))
}

fn sorted_keys(opts: &HashMap<String, String>) -> Vec<&str> {
    let mut keys: Vec<&str> = opts.keys().map(String::as_str).collect();
    // Go ranges over maps in random order; sorting makes our choice of which
    // bad option to report stable.
    keys.sort_unstable();
    keys
}

/// Checks the daemon-level options and returns the rest for the driver.
fn validate_common(opts: &HashMap<String, String>) -> Result<()> {
    let mode = opts.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(invalid(format!(
            "logger: logging mode not supported: {mode}"
        )));
    }
    if let Some(s) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(invalid(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ));
        }
        parse_ram_size(s)
            .map_err(|e| invalid(format!("error parsing option max-buffer-size: {e}")))?;
    }
    Ok(())
}

/// Validates `--log-opt`s for driver `name` as `docker run`/`create` does:
/// unknown keys are refused and values are parsed, so a bad option fails at
/// create time rather than when the container starts.
pub fn validate_log_opts(name: &str, opts: &HashMap<String, String>) -> Result<()> {
    match name {
        // Docker accepts anything for `none`: there is nothing to configure.
        "none" => Ok(()),
        "json-file" => {
            validate_common(opts)?;
            JsonFileConfig::parse(opts, &ContainerInfo::default()).map(|_| ())
        }
        _ => Err(Error::UnknownDriver(name.to_string())),
    }
}

/// The json-file driver's options, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFileConfig {
    /// Writer settings, including the resolved `attrs`.
    pub options: JsonFileOptions,
    /// The expanded `tag` option, if given (also present in `attrs`).
    pub tag: Option<String>,
}

impl JsonFileConfig {
    /// Parses json-file `--log-opt`s for the container described by `info`
    /// (whose labels and environment feed `labels`, `env` and `env-regex`).
    pub fn parse(opts: &HashMap<String, String>, info: &ContainerInfo) -> Result<Self> {
        for key in sorted_keys(opts) {
            if !JSON_FILE_OPTS.contains(&key) && !COMMON_OPTS.contains(&key) {
                return Err(invalid(format!(
                    "unknown log opt '{key}' for json-file log driver"
                )));
            }
        }
        let max_size = match opts.get("max-size") {
            None => None,
            Some(s) => {
                let v = parse_human_size(s)?;
                if v <= 0 {
                    return Err(invalid("max-size must be a positive number"));
                }
                Some(v as u64)
            }
        };
        // Docker accepts max-file without max-size (it then never rotates) and
        // compose files rely on that, so it is not an error here either.
        let max_file = match opts.get("max-file") {
            None => 1,
            Some(s) => {
                let v = atoi(s)?;
                if v < 1 {
                    return Err(invalid("max-file cannot be less than 1"));
                }
                u32::try_from(v).map_err(|_| {
                    invalid(format!("strconv.Atoi: parsing \"{s}\": value out of range"))
                })?
            }
        };
        let compress = match opts.get("compress") {
            None => false,
            Some(s) => parse_bool(s)?,
        };
        if compress && (max_file == 1 || max_size.is_none()) {
            return Err(invalid(
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ));
        }
        let mut attrs = extra_attributes(opts, info)?;
        let tag = match opts.get("tag").filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(info.expand_tag(t)?),
        };
        // Only a tag the user asked for is recorded (json-file has no default).
        if let Some(t) = tag.as_ref().filter(|t| !t.is_empty()) {
            attrs.insert("tag".into(), t.clone());
        }
        Ok(JsonFileConfig {
            options: JsonFileOptions {
                max_size,
                max_file,
                compress,
                extra_attrs: attrs,
            },
            tag,
        })
    }
}

fn compile(re: &str) -> Result<regex::Regex> {
    regex::Regex::new(re).map_err(|e| invalid(format!("error parsing regexp: {e}")))
}

/// Docker's `Info.ExtraAttributes`: container labels and environment values
/// selected by the `labels`, `labels-regex`, `env` and `env-regex` options.
fn extra_attributes(
    opts: &HashMap<String, String>,
    info: &ContainerInfo,
) -> Result<BTreeMap<String, String>> {
    let mut extra = BTreeMap::new();
    let get = |k: &str| opts.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(labels) = get("labels") {
        for l in labels.split(',') {
            if let Some(v) = info.labels.get(l) {
                extra.insert(l.to_string(), v.clone());
            }
        }
    }
    if let Some(re) = get("labels-regex") {
        let re = compile(re)?;
        for (k, v) in &info.labels {
            if re.is_match(k) {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    // Later entries win, as in Docker's map built from the env list.
    let env: HashMap<&str, &str> = info.env.iter().filter_map(|e| e.split_once('=')).collect();
    if let Some(names) = get("env") {
        for n in names.split(',') {
            if let Some(v) = env.get(n) {
                extra.insert(n.to_string(), v.to_string());
            }
        }
    }
    if let Some(re) = get("env-regex") {
        let re = compile(re)?;
        for (k, v) in &env {
            if re.is_match(k) {
                extra.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(parse_human_size("10").unwrap(), 10);
        assert_eq!(parse_human_size("10k").unwrap(), 10_000);
        assert_eq!(parse_human_size("10K").unwrap(), 10_000);
        assert_eq!(parse_human_size("10kb").unwrap(), 10_000);
        assert_eq!(parse_human_size("10KiB").unwrap(), 10_000);
        assert_eq!(parse_human_size("1.5m").unwrap(), 1_500_000);
        assert_eq!(parse_human_size("2g").unwrap(), 2_000_000_000);
        assert_eq!(parse_human_size("3 MB").unwrap(), 3_000_000);
        assert_eq!(parse_human_size("7b").unwrap(), 7);
        assert_eq!(parse_ram_size("1k").unwrap(), 1024);
        assert_eq!(
            parse_human_size("10x").unwrap_err().to_string(),
            "invalid suffix: 'x'"
        );
        assert_eq!(
            parse_human_size("10kbb").unwrap_err().to_string(),
            "invalid suffix: 'kbb'"
        );
        assert_eq!(
            parse_human_size("10mx").unwrap_err().to_string(),
            "invalid suffix: 'mx'"
        );
        assert_eq!(
            parse_human_size("abc").unwrap_err().to_string(),
            "invalid size: 'abc'"
        );
        assert!(parse_human_size("-1m").is_err());
    }

    #[test]
    fn bools_like_go() {
        for t in ["1", "t", "TRUE", "True", "true"] {
            assert!(parse_bool(t).unwrap());
        }
        for f in ["0", "f", "F", "false"] {
            assert!(!parse_bool(f).unwrap());
        }
        assert_eq!(
            parse_bool("yes").unwrap_err().to_string(),
            "strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
    }
}
