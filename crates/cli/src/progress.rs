//! Docker's JSON progress messages (pull, push) drawn as the docker CLI draws them: on a
//! terminal, one line per layer id, with a bar, sizes and speed while bytes move
//! (indicatif); elsewhere, plain lines, one per change of a layer's status; with `-q`,
//! nothing. An error message in the stream (`errorDetail`) ends it as the command's
//! error.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::error::{Error, Result};

/// Where progress goes: `pull` writes to stdout, the pull of `run`/`create` to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
}

impl Target {
    fn is_terminal(self) -> bool {
        match self {
            Target::Stdout => io::stdout().is_terminal(),
            Target::Stderr => io::stderr().is_terminal(),
        }
    }

    fn write(self, text: &str) -> io::Result<()> {
        match self {
            Target::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(text.as_bytes())?;
                o.flush()
            }
            Target::Stderr => {
                let mut o = io::stderr().lock();
                o.write_all(text.as_bytes())?;
                o.flush()
            }
        }
    }
}

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars redrawn in place.
    Bars,
    /// One line per change.
    Plain,
    /// Nothing (errors still end the stream).
    Quiet,
}

impl Mode {
    /// Bars on a terminal, plain lines elsewhere, nothing when `quiet`.
    pub fn for_target(target: Target, quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if target.is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

/// The message of an error message: `errorDetail.message`, else `error`.
pub fn error_of(m: &Value) -> Option<String> {
    let detail = m
        .get("errorDetail")
        .and_then(|d| d.get("message"))
        .and_then(Value::as_str);
    let plain = m.get("error").and_then(Value::as_str);
    detail
        .or(plain)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn text<'a>(m: &'a Value, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `progressDetail`'s (current, total), when it has any.
fn detail(m: &Value) -> Option<(u64, u64)> {
    let d = m.get("progressDetail")?;
    let current = d.get("current").and_then(Value::as_u64).unwrap_or(0);
    let total = d.get("total").and_then(Value::as_u64).unwrap_or(0);
    (current > 0 || total > 0).then_some((current, total))
}

/// Statuses after which a layer's line does not change any more.
fn is_final(status: &str) -> bool {
    matches!(
        status,
        "Pull complete" | "Already exists" | "Pushed" | "Layer already exists"
    ) || status.starts_with("Mounted from")
}

/// Renders `messages` in `mode` on `target`; `aux` objects go to `on_aux`.
pub fn render(
    messages: impl Iterator<Item = Result<Value>>,
    target: Target,
    mode: Mode,
    mut on_aux: impl FnMut(&Value),
) -> Result<()> {
    let mut out: Box<dyn Renderer> = match mode {
        Mode::Bars => Box::new(Bars::new(target)),
        Mode::Plain => Box::new(Plain {
            target,
            last: HashMap::new(),
        }),
        Mode::Quiet => Box::new(Quiet),
    };
    for m in messages {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                out.end();
                return Err(e);
            }
        };
        if let Some(e) = error_of(&m) {
            out.end();
            return Err(Error::msg(e));
        }
        if let Some(aux) = m.get("aux") {
            on_aux(aux);
            continue;
        }
        out.message(&m)?;
    }
    out.end();
    Ok(())
}

trait Renderer {
    fn message(&mut self, m: &Value) -> Result<()>;
    /// Leaves every line as it stands.
    fn end(&mut self);
}

struct Quiet;

impl Renderer for Quiet {
    fn message(&mut self, _: &Value) -> Result<()> {
        Ok(())
    }
    fn end(&mut self) {}
}

/// One line per message, except repeats of a layer's status while bytes move.
struct Plain {
    target: Target,
    last: HashMap<String, String>,
}

impl Renderer for Plain {
    fn message(&mut self, m: &Value) -> Result<()> {
        if let Some(s) = m.get("stream").and_then(Value::as_str) {
            self.target.write(s)?;
            return Ok(());
        }
        let (id, status) = (text(m, "id"), text(m, "status"));
        if status.is_empty() {
            return Ok(());
        }
        if id.is_empty() {
            // As docker: a line without an id closes the group of layers before it.
            self.last.clear();
            self.target.write(&format!("{status}\n"))?;
            return Ok(());
        }
        let moving = detail(m).is_some();
        if moving && self.last.get(id).map(String::as_str) == Some(status) {
            return Ok(());
        }
        self.last.insert(id.to_string(), status.to_string());
        let line = match detail(m) {
            Some((_, total)) if total > 0 => format!("{id}: {status} {}\n", size(total)),
            _ => format!("{id}: {status}\n"),
        };
        self.target.write(&line)?;
        Ok(())
    }

    fn end(&mut self) {}
}

/// `1.2MB` as docker's go-units `HumanSize` (decimal units, 3 significant digits).
pub fn size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// A layer's line on a terminal.
struct Layer {
    bar: ProgressBar,
    status: String,
    /// Showing a bar (as opposed to the status alone).
    with_bar: bool,
}

struct Bars {
    target: Target,
    multi: MultiProgress,
    layers: HashMap<String, Layer>,
    plain: ProgressStyle,
    bar: ProgressStyle,
    bytes: ProgressStyle,
}

impl Bars {
    fn new(target: Target) -> Bars {
        let style = |t: &str| {
            ProgressStyle::with_template(t)
                .expect("a valid template")
                .progress_chars("=> ")
        };
        Bars {
            target,
            multi: Bars::multi(target),
            layers: HashMap::new(),
            plain: style("{prefix}: {msg}"),
            bar: style(
                "{prefix}: {msg:<12} [{wide_bar}] {decimal_bytes:>9}/{decimal_total_bytes:<9} {decimal_bytes_per_sec:>11}",
            ),
            bytes: style("{prefix}: {msg:<12} {decimal_bytes:>9} {decimal_bytes_per_sec}"),
        }
    }

    fn multi(target: Target) -> MultiProgress {
        MultiProgress::with_draw_target(match target {
            Target::Stdout => ProgressDrawTarget::stdout(),
            Target::Stderr => ProgressDrawTarget::stderr(),
        })
    }

    /// Freezes the current group of lines where it is, so what follows is printed below.
    fn close_group(&mut self) {
        for l in self.layers.values() {
            if !l.bar.is_finished() {
                l.bar.abandon();
            }
        }
        self.layers.clear();
        self.multi = Bars::multi(self.target);
    }

    fn print(&mut self, s: &str) -> Result<()> {
        if self.layers.is_empty() {
            self.target.write(s)?;
        } else {
            // Above the bars while they run.
            let s = s.strip_suffix('\n').unwrap_or(s);
            self.multi.println(s)?;
        }
        Ok(())
    }
}

impl Renderer for Bars {
    fn message(&mut self, m: &Value) -> Result<()> {
        if let Some(s) = m.get("stream").and_then(Value::as_str) {
            return self.print(s);
        }
        let (id, status) = (text(m, "id"), text(m, "status"));
        if status.is_empty() {
            return Ok(());
        }
        if id.is_empty() {
            self.close_group();
            self.target.write(&format!("{status}\n"))?;
            return Ok(());
        }
        let progress = detail(m);
        let layer = self.layers.entry(id.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(self.plain.clone());
            bar.set_prefix(id.to_string());
            Layer {
                bar,
                status: String::new(),
                with_bar: false,
            }
        });
        let changed = layer.status != status;
        if let Some((_, total)) = progress.filter(|(_, t)| *t > 0) {
            layer.bar.set_length(total);
        }
        // Length and style first, then message and position: each of them may redraw the line.
        match progress {
            Some((_, total)) => {
                layer.bar.set_style(if total > 0 {
                    self.bar.clone()
                } else {
                    self.bytes.clone()
                });
                layer.with_bar = true;
            }
            None if layer.with_bar => {
                layer.bar.set_style(self.plain.clone());
                layer.with_bar = false;
            }
            None => {}
        }
        if changed {
            layer.status = status.to_string();
            if progress.is_some() {
                // A new phase (download, then extract): speed from its own start.
                layer.bar.reset();
            }
            layer.bar.set_message(status.to_string());
        }
        match progress {
            Some((current, _)) => layer.bar.set_position(current),
            None if is_final(status) => layer.bar.finish(),
            None => layer.bar.tick(),
        }
        Ok(())
    }

    fn end(&mut self) {
        self.close_group();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_as_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1_234_567), "1.23MB");
        assert_eq!(size(12_345_678), "12.3MB");
        assert_eq!(size(2_000_000), "2MB");
        assert_eq!(size(123_456_789_000), "123GB");
    }

    #[test]
    fn errors_end_the_stream() {
        let msgs = vec![
            json!({"status": "Pulling from library/busybox", "id": "latest"}),
            json!({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}),
            json!({"status": "never"}),
        ];
        let mut aux = 0;
        let r = render(
            msgs.into_iter().map(Ok),
            Target::Stdout,
            Mode::Quiet,
            |_| aux += 1,
        );
        assert!(matches!(r, Err(Error::Message(ref m)) if m == "manifest unknown"));
        let msgs = vec![json!({"aux": {"Tag": "v1"}}), json!({"status": "done"})];
        render(
            msgs.into_iter().map(Ok),
            Target::Stdout,
            Mode::Quiet,
            |_| aux += 1,
        )
        .unwrap();
        assert_eq!(aux, 1);
    }

    #[test]
    fn bars_take_any_order_of_messages() {
        // Drawn to a hidden target when stdout is no terminal: exercises the state only.
        let msgs = vec![
            json!({"status": "Pulling from a/b", "id": "v1"}),
            json!({"status": "Pulling fs layer", "id": "aaa"}),
            json!({"status": "Downloading", "id": "aaa", "progressDetail": {"current": 10, "total": 100}}),
            json!({"status": "Downloading", "id": "aaa", "progressDetail": {"current": 100, "total": 100}}),
            json!({"status": "Extracting", "id": "aaa", "progressDetail": {"current": 5}}),
            json!({"status": "Pull complete", "id": "aaa"}),
            json!({"status": "Digest: sha256:00"}),
            json!({"status": "Downloading", "id": "bbb", "progressDetail": {"current": 1, "total": 0}}),
        ];
        let mut b = Bars::new(Target::Stdout);
        for m in &msgs {
            b.message(m).unwrap();
        }
        assert_eq!(b.layers.len(), 1);
        b.end();
        assert!(b.layers.is_empty());
    }
}
