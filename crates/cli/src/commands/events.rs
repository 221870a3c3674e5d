//! `berth events` and `berth system df`, plus docker's `--since`/`--until` timestamps
//! (shared with `logs`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

use super::image::{filters_json, parse_filter, short_id, LIST_FORMAT_HELP};
use super::Ctx;
use crate::client::{query, RequestBody};
use crate::error::{Error, Result};
use crate::format::{self, Format, Template};

/// Go's `time.ParseDuration` (`1h30m`, `10s`, `1.5h`, `300ms`) in nanoseconds.
fn parse_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * mult;
    }
    let t = total as i128;
    Some(if neg { -t } else { t })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// RFC 3339-ish dates as docker's `GetTimestamp` accepts them, in nanoseconds.
fn parse_date(s: &str) -> Option<i128> {
    let num = |t: &str| t.parse::<i64>().ok();
    let (date, time) = s.split_once('T').unwrap_or((s, ""));
    let mut dp = date.splitn(3, '-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if date.len() != 10 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (mut time, mut offset) = (time, 0i64);
    if let Some(t) = time.strip_suffix('Z') {
        time = t;
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (t, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        offset = sign * (num(oh)? * 3600 + num(om)? * 60);
        time = t;
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.split(':');
    let h = tp.next().filter(|x| !x.is_empty()).map_or(Some(0), num)?;
    let mi = tp.next().map_or(Some(0), num)?;
    let se = tp.next().map_or(Some(0), num)?;
    let nanos: i128 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        f.parse().ok()?
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as i128 * 1_000_000_000 + nanos)
}

/// A `--since`/`--until` value as the API's `seconds.nanoseconds`: durations are
/// relative to now, dates are RFC 3339, and unix timestamps pass as they are.
pub fn timestamp(v: &str) -> Result<String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    let is_number = v.chars().all(|c| c.is_ascii_digit() || c == '.') && v.parse::<f64>().is_ok();
    if is_number {
        return Ok(v.to_string());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let ns = if let Some(d) = parse_duration(v) {
        now - d
    } else if let Some(t) = parse_date(v) {
        t
    } else {
        return Err(Error::msg(format!(
            "failed to parse value as time or duration: \"{v}\""
        )));
    };
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    Ok(format!("{secs}.{nanos:09}"))
}

/// `2024-01-02T15:04:05.000000000Z`: Go's `RFC3339NanoFixed` (in UTC).
fn rfc3339_nano_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000);
    let base = format::unix_to_rfc3339(secs);
    format!("{}.{frac:09}Z", base.trim_end_matches('Z'))
}

/// `berth events` / `berth system events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(
        long,
        value_name = "string",
        help = "Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
    )]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

/// One event as docker prints it without `--format`.
fn event_line(e: &Value) -> String {
    let mut out = String::new();
    if let Some(n) = e["timeNano"].as_i64().filter(|n| *n != 0) {
        out.push_str(&rfc3339_nano_fixed(n as i128));
        out.push(' ');
    } else if let Some(t) = e["time"].as_i64().filter(|n| *n != 0) {
        out.push_str(&rfc3339_nano_fixed(t as i128 * 1_000_000_000));
        out.push(' ');
    }
    out.push_str(&format!(
        "{} {} {}",
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or("")
    ));
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let sorted: BTreeMap<_, _> = attrs.iter().collect();
        let parts: Vec<String> = sorted
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

/// `berth events`: `GET /events`, one line per event as it arrives.
pub fn events(ctx: &Ctx, args: EventsArgs) -> Result<()> {
    let since = args.since.as_deref().map(timestamp).transpose()?;
    let until = args.until.as_deref().map(timestamp).transpose()?;
    let fj = filters_json(&args.filter);
    let mut q = Vec::new();
    if let Some(s) = since.as_deref().filter(|s| !s.is_empty()) {
        q.push(("since", s));
    }
    if let Some(u) = until.as_deref().filter(|s| !s.is_empty()) {
        q.push(("until", u));
    }
    if !args.filter.is_empty() {
        q.push(("filters", &fj));
    }
    let tmpl = match Format::parse(args.format.as_deref()) {
        Format::Default => None,
        Format::Json => Some(Template::parse("{{json .}}")?),
        Format::Table(t) | Format::Template(t) => Some(Template::parse(&t)?),
    };
    let resp = ctx.client()?.request(
        Method::GET,
        &format!("/events{}", query(&q)),
        RequestBody::Empty,
    )?;
    let mut out = io::stdout();
    for e in resp.json_lines() {
        let e = e?;
        let line = match &tmpl {
            Some(t) => t.render(&e)?,
            None => event_line(&e),
        };
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

/// `berth system df`.
#[derive(Args, Debug)]
pub struct DfArgs {
    #[arg(long, value_name = "string", help = LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

fn human(n: i64) -> String {
    format::human_size(n as f64)
}

fn reclaim(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human(reclaimable), reclaimable * 100 / total)
    } else {
        human(reclaimable)
    }
}

/// `berth system df`: `GET /system/df`.
pub fn df(ctx: &Ctx, args: DfArgs) -> Result<()> {
    let v: Value = ctx.client()?.get("/system/df")?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes, cache) = (
        arr("Images"),
        arr("Containers"),
        arr("Volumes"),
        arr("BuildCache"),
    );
    let i64_of = |x: &Value| x.as_i64().unwrap_or(0);
    let layers = i64_of(&v["LayersSize"]);
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(&i["Containers"]) != 0)
        .filter(|i| i64_of(&i["Size"]) != -1 && i64_of(&i["SharedSize"]) != -1)
        .map(|i| i64_of(&i["Size"]) - i64_of(&i["SharedSize"]))
        .sum();
    let active = |c: &Value| {
        matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        )
    };
    let csize: i64 = containers.iter().map(|c| i64_of(&c["SizeRw"])).sum();
    let creclaim: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| i64_of(&c["SizeRw"]))
        .sum();
    let vsize: i64 = volumes
        .iter()
        .map(|x| i64_of(&x["UsageData"]["Size"]).max(0))
        .sum();
    let vreclaim: i64 = volumes
        .iter()
        .filter(|x| i64_of(&x["UsageData"]["RefCount"]) == 0)
        .map(|x| i64_of(&x["UsageData"]["Size"]).max(0))
        .sum();
    let bsize: i64 = cache.iter().map(|b| i64_of(&b["Size"])).sum();
    let breclaim: i64 = cache
        .iter()
        .filter(|b| !b["InUse"].as_bool().unwrap_or(false))
        .map(|b| i64_of(&b["Size"]))
        .sum();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
            "Active": images.iter().filter(|i| i64_of(&i["Containers"]) > 0).count().to_string(),
            "Size": human(layers), "Reclaimable": reclaim(layers - used, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
            "Active": containers.iter().filter(|c| active(c)).count().to_string(),
            "Size": human(csize), "Reclaimable": reclaim(creclaim, csize)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
            "Active": volumes.iter().filter(|x| i64_of(&x["UsageData"]["RefCount"]) > 0).count().to_string(),
            "Size": human(vsize), "Reclaimable": reclaim(vreclaim, vsize)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(),
            "Active": cache.iter().filter(|b| b["InUse"].as_bool().unwrap_or(false)).count().to_string(),
            "Size": human(bsize), "Reclaimable": human(breclaim)}),
    ];
    if !args.verbose {
        let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
            "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
        print!(
            "{}",
            format::render_list(
                &Format::parse(args.format.as_deref()),
                "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                &header,
                &rows
            )?
        );
        return Ok(());
    }
    let mut out = String::from("Images space usage:\n\n");
    let mut t = String::from(
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n",
    );
    for i in &images {
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        let size = i64_of(&i["Size"]);
        let shared = i64_of(&i["SharedSize"]);
        for tag in tags {
            let (r, tg) = tag.rsplit_once(':').unwrap_or((&tag, "<none>"));
            t.push_str(&format!(
                "{r}\t{tg}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                short_id(i["Id"].as_str().unwrap_or("")),
                format::ago(i64_of(&i["Created"])),
                human(size),
                human(shared.max(0)),
                human(size - shared.max(0)),
                i64_of(&i["Containers"])
            ));
        }
    }
    out.push_str(&format::tabwrite(&t));
    out.push_str("\nContainers space usage:\n\n");
    let mut t =
        String::from("CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for c in &containers {
        let names: Vec<&str> = c["Names"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str())
                    .map(|n| n.trim_start_matches('/'))
                    .collect()
            })
            .unwrap_or_default();
        let cmd = c["Command"].as_str().unwrap_or("");
        let cmd: String = if cmd.chars().count() > 20 {
            cmd.chars().take(19).chain(std::iter::once('…')).collect()
        } else {
            cmd.to_string()
        };
        t.push_str(&format!(
            "{}\t{}\t\"{cmd}\"\t{}\t{}\t{}\t{}\t{}\n",
            short_id(c["Id"].as_str().unwrap_or("")),
            c["Image"].as_str().unwrap_or(""),
            c["Mounts"].as_array().map_or(0, Vec::len),
            human(i64_of(&c["SizeRw"])),
            format::ago(i64_of(&c["Created"])),
            c["Status"].as_str().unwrap_or(""),
            names.join(",")
        ));
    }
    out.push_str(&format::tabwrite(&t));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
    for x in &volumes {
        t.push_str(&format!(
            "{}\t{}\t{}\n",
            x["Name"].as_str().unwrap_or(""),
            i64_of(&x["UsageData"]["RefCount"]),
            human(i64_of(&x["UsageData"]["Size"]).max(0))
        ));
    }
    out.push_str(&format::tabwrite(&t));
    out.push_str(&format!("\nBuild cache usage: {}\n\n", human(bsize)));
    let mut t = String::from("CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n");
    for b in &cache {
        t.push_str(&format!(
            "{}\t{}\t{}\t\t\t{}\t{}\n",
            b["ID"].as_str().unwrap_or(""),
            b["Type"].as_str().unwrap_or(""),
            human(i64_of(&b["Size"])),
            i64_of(&b["UsageCount"]),
            b["Shared"].as_bool().unwrap_or(false)
        ));
    }
    out.push_str(&format::tabwrite(&t));
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp("1700000000").unwrap(), "1700000000");
        assert_eq!(
            timestamp("2013-01-02T13:23:37Z").unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(timestamp("2013-01-02").unwrap(), "1357084800.000000000");
        assert_eq!(
            timestamp("2013-01-02T13:23:37+01:00").unwrap(),
            "1357129417.000000000"
        );
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("10x"), None);
        assert!(timestamp("yesterday").is_err());
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc",
            "Attributes": {"name": "x", "image": "busybox"}}, "timeNano": 1_357_133_017_000_000_001i64});
        assert_eq!(
            event_line(&e),
            "2013-01-02T13:23:37.000000001Z container start abc (image=busybox, name=x)"
        );
    }
}
