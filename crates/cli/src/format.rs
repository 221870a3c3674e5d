//! Output as docker prints it: `--format` Go templates (with docker's template functions),
//! `table` formats aligned like Go's tabwriter, human sizes and ages, and inspect's
//! indented JSON.

use std::collections::HashMap;

use gtmpl::{FuncError, Value};

use crate::error::{Error, Result};

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// No `--format` (or `--format table`): the command's own layout.
    Default,
    /// `--format json`: the JSON of each object, one per line.
    Json,
    /// `--format 'table TEMPLATE'`: a header row, then one row per object, aligned.
    Table(String),
    /// `--format TEMPLATE`: one rendering per object, each followed by a newline.
    Template(String),
}

impl Format {
    /// Reads the flag's value as docker does: `\t` and `\n` typed on the command line
    /// become real tabs and newlines.
    pub fn parse(flag: Option<&str>) -> Format {
        let Some(s) = flag else {
            return Format::Default;
        };
        let unescape = |t: &str| t.trim().replace("\\t", "\t").replace("\\n", "\n");
        match s.trim() {
            "" | "table" => Format::Default,
            "json" => Format::Json,
            t if t.starts_with("table ") => Format::Table(unescape(&t["table ".len()..])),
            t => Format::Template(unescape(t)),
        }
    }
}

/// A parsed `--format` template.
pub struct Template {
    inner: gtmpl::Template,
    text: String,
}

impl Template {
    /// Parses `text` with docker's template functions added.
    pub fn parse(text: &str) -> Result<Template> {
        let mut inner = gtmpl::Template::default();
        inner.add_funcs(&[
            ("json", tf_json as gtmpl::Func),
            ("join", tf_join),
            ("split", tf_split),
            ("upper", tf_upper),
            ("lower", tf_lower),
            ("title", tf_title),
            ("pad", tf_pad),
            ("truncate", tf_truncate),
        ]);
        inner.add_func("berthPrint", tf_print);
        inner
            .parse(go_printing(text))
            .map_err(|e| Error::Template(e.to_string()))?;
        Ok(Template {
            inner,
            text: text.to_string(),
        })
    }

    /// Renders the template on a JSON value. `{{json .}}` alone is answered by serde
    /// directly, so its keys keep the daemon's order.
    pub fn render(&self, v: &serde_json::Value) -> Result<String> {
        if self.text.trim() == "{{json .}}" {
            return Ok(serde_json::to_string(v)?);
        }
        self.inner
            .render(&gtmpl::Context::from(to_value(v)))
            .map_err(|e| Error::Template(e.to_string()))
    }
}

/// Renders `{{...}}` once on `v`, as `version` and `info` do (newline added).
pub fn render_one(format: &str, v: &serde_json::Value) -> Result<String> {
    match Format::parse(Some(format)) {
        Format::Json => Ok(format!("{}\n", serde_json::to_string(v)?)),
        Format::Default => Ok(format!("{}\n", serde_json::to_string(v)?)),
        Format::Table(t) | Format::Template(t) => {
            Ok(format!("{}\n", Template::parse(&t)?.render(v)?))
        }
    }
}

/// Renders a list the way docker's list commands do: `rows` are one JSON object per
/// line of output; `header` maps each template field to its column title, and
/// `default_table` is the layout without `--format`.
pub fn render_list(
    format: &Format,
    default_table: &str,
    header: &serde_json::Value,
    rows: &[serde_json::Value],
) -> Result<String> {
    let (table, text) = match format {
        Format::Default => (true, default_table),
        Format::Table(t) => (true, t.as_str()),
        Format::Template(t) => (false, t.as_str()),
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&serde_json::to_string(r)?);
                out.push('\n');
            }
            return Ok(out);
        }
    };
    let tmpl = Template::parse(text)?;
    let mut out = String::new();
    if table {
        out.push_str(&tmpl.render(header)?);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&tmpl.render(r)?);
        out.push('\n');
    }
    Ok(if table { tabwrite(&out) } else { out })
}

/// Aligns tab-separated cells as docker's `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`:
/// each column as wide as its widest cell plus 3, at least 10; the last cell of a line
/// is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let cols = lines
        .iter()
        .map(|l| l.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let mut widths = vec![10usize; cols];
    for l in &lines {
        for (i, cell) in l.iter().take(l.len() - 1).enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, cell) in l.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < l.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Words that open or close template actions which print nothing themselves.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Routes every printing action through `berthPrint`, so lists and maps print as Go
/// prints them (`[a b]`, `map[k:v]`) rather than as Rust's debug form that gtmpl uses.
/// Control actions, comments and variable declarations are left alone.
fn go_printing(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // The action ends at the first `}}` outside a quoted string.
        let (mut in_str, mut quote, mut prev) = (false, ' ', ' ');
        let mut end = None;
        for (i, c) in after.char_indices() {
            if in_str {
                if c == quote && prev != '\\' {
                    in_str = false;
                }
            } else if c == '"' || c == '`' {
                in_str = true;
                quote = c;
            } else if c == '}' && after[i..].starts_with("}}") {
                end = Some(i);
                break;
            }
            prev = c;
        }
        let Some(end) = end else {
            // Unclosed: leave it for the parser to report.
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (lead, body) = match inner.strip_prefix("- ") {
            Some(b) => ("- ", b),
            None => ("", inner),
        };
        let (body, trail) = match body.strip_suffix(" -") {
            Some(b) => (b, " -"),
            None => (body, ""),
        };
        let word = body.split_whitespace().next().unwrap_or("");
        let declares = body.contains(":=")
            || (word.starts_with('$') && body.split_whitespace().nth(1) == Some("="));
        let plain = !(word.is_empty()
            || KEYWORDS.contains(&word)
            || body.trim_start().starts_with("/*")
            || declares);
        out.push_str("{{");
        if plain {
            out.push_str(&format!("{lead}{body} | berthPrint{trail}"));
        } else {
            out.push_str(inner);
        }
        out.push_str("}}");
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A value as Go's `fmt.Print` shows it.
fn go_string(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) | Value::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_string(&m[k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

fn tf_print(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(go_string(arg(args, 0, "print")?)))
}

/// Go field names that differ from their JSON names: docker's templates run on Go
/// structs, so `{{.ID}}` and `{{.Id}}` both work there, and must here.
const GO_ALIASES: &[(&str, &str)] = &[("Id", "ID"), ("ApiVersion", "APIVersion")];

/// JSON to a template value. Objects become maps, so a missing key prints `<no value>`
/// as Go does for maps.
pub fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => {
            let mut m: HashMap<String, Value> =
                o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
            for (json, go) in GO_ALIASES {
                if let (Some(v), false) = (o.get(*json), o.contains_key(*go)) {
                    m.insert((*go).to_string(), to_value(v));
                }
            }
            Value::Map(m)
        }
    }
}

/// Template value back to JSON, for the `json` function.
fn from_value(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(from_value).collect()),
        Value::Object(m) | Value::Map(m) => serde_json::Value::Object(
            m.iter()
                // Aliases exist for field access only; JSON shows the API's names.
                .filter(|(k, _)| !GO_ALIASES.iter().any(|(j, g)| k == g && m.contains_key(*j)))
                .map(|(k, v)| (k.clone(), from_value(v)))
                .collect(),
        ),
    }
}

fn arg<'a>(args: &'a [Value], i: usize, name: &str) -> Result<&'a Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::Generic(format!("{name}: missing argument {}", i + 1)))
}

fn arg_str(args: &[Value], i: usize, name: &str) -> Result<String, FuncError> {
    match arg(args, i, name)? {
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

fn arg_num(args: &[Value], i: usize, name: &str) -> Result<usize, FuncError> {
    match arg(args, i, name)? {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u as usize)
            .ok_or_else(|| FuncError::Generic(format!("{name}: expected a count"))),
        _ => Err(FuncError::Generic(format!("{name}: expected a count"))),
    }
}

fn tf_json(args: &[Value]) -> Result<Value, FuncError> {
    let v = from_value(arg(args, 0, "json")?);
    serde_json::to_string(&v)
        .map(Value::String)
        .map_err(|e| FuncError::Generic(e.to_string()))
}

fn tf_join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = arg_str(args, 1, "join")?;
    match arg(args, 0, "join")? {
        Value::Array(a) => Ok(Value::String(
            a.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(&sep),
        )),
        Value::Nil | Value::NoValue => Ok(Value::String(String::new())),
        _ => Err(FuncError::Generic("join: expected a list".into())),
    }
}

fn tf_split(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "split")?;
    let sep = arg_str(args, 1, "split")?;
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn tf_upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "upper")?.to_uppercase()))
}

fn tf_lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "lower")?.to_lowercase()))
}

fn tf_title(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "title")?;
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

/// `pad s left right`: spaces around `s`.
fn tf_pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "pad")?;
    let (l, r) = (arg_num(args, 1, "pad")?, arg_num(args, 2, "pad")?);
    Ok(Value::String(format!(
        "{}{s}{}",
        " ".repeat(l),
        " ".repeat(r)
    )))
}

/// `truncate s n`: the first `n` characters.
fn tf_truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "truncate")?;
    let n = arg_num(args, 1, "truncate")?;
    Ok(Value::String(s.chars().take(n).collect()))
}

/// Go's `%.<prec>g`: `prec` significant digits, trailing zeros dropped, exponent form
/// when the exponent is below -4 or at least `prec` (so 999.9 at 3 digits is `1e+03`,
/// as docker prints it).
pub fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

fn scaled(size: f64, base: f64, units: &[&str], prec: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, prec), units[i])
}

/// Decimal sizes with 3 significant digits, as `docker images` shows them: `7.8MB`.
pub fn human_size(bytes: f64) -> String {
    scaled(
        bytes,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
        3,
    )
}

/// Binary sizes with 4 significant digits, as `docker info` shows memory: `23.54GiB`.
pub fn bytes_size(bytes: f64) -> String {
    scaled(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
        4,
    )
}

/// A duration as docker words ages (go-units `HumanDuration`): "2 hours", "About a
/// minute", "3 weeks".
pub fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = s / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour here (half away from zero).
    let hours = (s + 1800) / 3600;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

/// "2 hours ago" for a Unix time, or "N/A" for none (0), as docker's CREATED column.
pub fn ago(unix: i64) -> String {
    if unix <= 0 {
        return "N/A".into();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!("{} ago", human_duration(now - unix))
}

/// Unix seconds to (year, month, day, hour, minute, second) in UTC (Howard Hinnant's
/// days-from-civil inverse; no date crate needed for two formats).
fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2024-01-02 15:04:05 +0000 UTC`, Go's `time.Time.String()` in UTC (CREATED AT).
pub fn unix_to_utc(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// `2024-01-02T15:04:05Z`, RFC 3339 in UTC (`history --human=false`).
pub fn unix_to_rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Re-indents JSON text with 4 spaces, keeping its key order, as docker's inspect
/// (`json.MarshalIndent`) prints it. The input must be valid JSON.
pub fn indent_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', depth * 4));
    };
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                // Empty containers stay on one line: `{}` and `[]`.
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && (chars[j] == '}' || chars[j] == ']') {
                    out.push(c);
                    out.push(chars[j]);
                    i = j + 1;
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_flag() {
        assert_eq!(Format::parse(None), Format::Default);
        assert_eq!(Format::parse(Some("table")), Format::Default);
        assert_eq!(Format::parse(Some("json")), Format::Json);
        assert_eq!(
            Format::parse(Some("table {{.ID}}\\t{{.Tag}}")),
            Format::Table("{{.ID}}\t{{.Tag}}".into())
        );
        assert_eq!(
            Format::parse(Some("{{.ID}}")),
            Format::Template("{{.ID}}".into())
        );
    }

    #[test]
    fn templates_access_fields_and_functions() {
        let v = json!({
            "Server": {"Version": "0.1.0", "ApiVersion": "1.50"},
            "Driver": "overlay2",
            "Id": "sha256:abc",
            "RepoTags": ["a:1", "b:2"],
            "Labels": {"k": "v"}
        });
        let r = |t: &str| Template::parse(t).unwrap().render(&v).unwrap();
        assert_eq!(r("{{.Server.Version}}"), "0.1.0");
        assert_eq!(
            r("{{.Server.APIVersion}} {{.Server.ApiVersion}}"),
            "1.50 1.50"
        );
        assert_eq!(r("{{.ID}}={{.Id}}"), "sha256:abc=sha256:abc");
        assert_eq!(r("{{.Driver}}"), "overlay2");
        assert_eq!(r("{{json .Labels}}"), r#"{"k":"v"}"#);
        assert_eq!(
            r("{{json .Server}}"),
            r#"{"ApiVersion":"1.50","Version":"0.1.0"}"#
        );
        assert_eq!(r("{{join .RepoTags \",\"}}"), "a:1,b:2");
        assert_eq!(
            r("{{upper .Driver}} {{title \"hello world\"}}"),
            "OVERLAY2 Hello World"
        );
        assert_eq!(
            r("{{truncate .Driver 4}}|{{pad .Driver 1 1}}|"),
            "over| overlay2 |"
        );
        assert_eq!(r("{{index .Labels \"k\"}}"), "v");
        assert_eq!(r("{{range .RepoTags}}[{{.}}]{{end}}"), "[a:1][b:2]");
        assert_eq!(r("{{if eq .Driver \"overlay2\"}}yes{{end}}"), "yes");
        assert_eq!(r("{{.Missing}}"), "<no value>");
        assert_eq!(r("{{.RepoTags}} {{.Labels}}"), "[a:1 b:2] map[k:v]");
        assert_eq!(r("{{- .Driver -}} {{/* c */}}"), "overlay2");
        assert_eq!(r("{{$d := .Driver}}{{$d}}"), "overlay2");
        assert_eq!(r("{{with .Server}}{{.Version}}{{end}}"), "0.1.0");
        assert_eq!(
            r("{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}"),
            "0=a:1;1=b:2;"
        );
        assert_eq!(r("{{.Driver | upper}}{{\"}}\"}}"), "OVERLAY2}}");
        assert_eq!(r("{{json .}}"), serde_json::to_string(&v).unwrap());
        assert!(matches!(Template::parse("{{.A"), Err(Error::Template(_))));
        assert!(matches!(
            Template::parse("{{nosuchfunc .}}"),
            Err(Error::Template(_))
        ));
    }

    #[test]
    fn lists_render_as_tables() {
        let header = json!({"A": "NAME", "B": "SIZE"});
        let rows = vec![
            json!({"A": "busybox", "B": "4MB"}),
            json!({"A": "x", "B": "1GB"}),
        ];
        let out = render_list(&Format::Default, "{{.A}}\t{{.B}}", &header, &rows).unwrap();
        assert_eq!(out, "NAME      SIZE\nbusybox   4MB\nx         1GB\n");
        let out = render_list(&Format::Template("{{.A}}".into()), "", &header, &rows).unwrap();
        assert_eq!(out, "busybox\nx\n");
        let out = render_list(&Format::Json, "", &header, &rows[..1]).unwrap();
        assert_eq!(out, "{\"A\":\"busybox\",\"B\":\"4MB\"}\n");
    }

    #[test]
    fn tabwriter_widths() {
        assert_eq!(
            tabwrite("REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\t0123456789ab\n"),
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n"
        );
    }

    #[test]
    fn go_percent_g() {
        assert_eq!(go_g(7.8, 3), "7.8");
        assert_eq!(go_g(187.654321, 3), "188");
        assert_eq!(go_g(999.9, 3), "1e+03");
        assert_eq!(go_g(23.5432, 4), "23.54");
        assert_eq!(go_g(1.0, 3), "1");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(4_261_550.0), "4.26MB");
        assert_eq!(human_size(187_654_321.0), "188MB");
        assert_eq!(human_size(1_230_000_000.0), "1.23GB");
        assert_eq!(bytes_size(25_278_640_128.0), "23.54GiB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5399), "About an hour");
        assert_eq!(human_duration(5400), "2 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(14 * 86400), "2 weeks");
        assert_eq!(human_duration(60 * 86400), "2 months");
        assert_eq!(human_duration(730 * 86400), "2 years");
        assert_eq!(ago(0), "N/A");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(ago(now - 2 * 3600), "2 hours ago");
    }

    #[test]
    fn dates() {
        assert_eq!(unix_to_utc(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(unix_to_rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(unix_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn inspect_json_indent_keeps_order() {
        let raw =
            r#"[{"Id":"x","RepoTags":[],"Config":{"Env":["A=b,c"],"Labels":{}},"Esc":"q\"{,}:"}]"#;
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"RepoTags\": [],\n        \"Config\": {\n            \"Env\": [\n                \"A=b,c\"\n            ],\n            \"Labels\": {}\n        },\n        \"Esc\": \"q\\\"{,}:\"\n    }\n]";
        assert_eq!(indent_json(raw), want);
    }
}
