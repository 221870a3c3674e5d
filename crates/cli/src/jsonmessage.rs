//! Docker's JSON progress messages (pull, push, load, import, build): one JSON object
//! per line with `stream`, `status`/`id`/`progress`, `aux` or `error`. Printed as the
//! docker CLI prints them when stdout is not a terminal: one line per message, no
//! cursor movement (redrawing progress bars in place is left for a terminal mode).

use std::io::Write;

use crate::error::{Error, Result};

/// Prints each message of `messages` to `out`; stops at the first error message and
/// returns it as the command's error. `aux` objects (an image ID, for instance) are
/// handed to `on_aux`.
pub fn display(
    messages: impl Iterator<Item = Result<serde_json::Value>>,
    out: &mut impl Write,
    mut on_aux: impl FnMut(&serde_json::Value),
) -> Result<()> {
    for m in messages {
        let m = m?;
        if let Some(e) = error_of(&m) {
            return Err(Error::msg(e));
        }
        if let Some(aux) = m.get("aux") {
            on_aux(aux);
            continue;
        }
        if let Some(s) = m.get("stream").and_then(|s| s.as_str()) {
            out.write_all(s.as_bytes())?;
            continue;
        }
        let text = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let (id, status, progress) = (text("id"), text("status"), text("progress"));
        if status.is_empty() && progress.is_empty() {
            continue;
        }
        let mut line = String::new();
        if !id.is_empty() {
            line.push_str(id);
            line.push_str(": ");
        }
        line.push_str(status);
        if !progress.is_empty() {
            line.push(' ');
            line.push_str(progress);
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// The message of an error message: `errorDetail.message`, else `error`.
fn error_of(m: &serde_json::Value) -> Option<String> {
    let detail = m
        .get("errorDetail")
        .and_then(|d| d.get("message"))
        .and_then(|s| s.as_str());
    let plain = m.get("error").and_then(|s| s.as_str());
    detail
        .or(plain)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_streams_statuses_and_stops_at_errors() {
        let msgs = vec![
            json!({"stream": "Loaded image: busybox:latest\n"}),
            json!({"status": "Downloading", "id": "abc", "progress": "[==>  ] 1MB/2MB"}),
            json!({"status": "sha256:0123"}),
            json!({"aux": {"ID": "sha256:0123"}}),
            json!({"errorDetail": {"message": "boom"}, "error": "boom"}),
            json!({"stream": "never printed\n"}),
        ];
        let mut out = Vec::new();
        let mut aux = Vec::new();
        let r = display(msgs.into_iter().map(Ok), &mut out, |a| aux.push(a.clone()));
        assert!(matches!(r, Err(Error::Message(ref m)) if m == "boom"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Loaded image: busybox:latest\nabc: Downloading [==>  ] 1MB/2MB\nsha256:0123\n"
        );
        assert_eq!(aux, vec![json!({"ID": "sha256:0123"})]);
    }
}
