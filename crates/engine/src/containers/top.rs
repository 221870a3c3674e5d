//! `top`: the host's `ps`, limited to the container's processes, as dockerd does it.

use std::process::Command;

use super::Status;
use crate::error::{Error, Result};
use crate::Engine;

/// `ps` output split in columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// Runs `ps <ps_args>` (default `-ef`) and keeps the rows of the container's
    /// processes.
    pub fn top_container(&self, name: &str, ps_args: &str) -> Result<Top> {
        let c = self.lookup_container(name)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = pid_namespace_members(c.state.pid)?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// The host pids of the processes in the pid namespace of `init`: the container's,
/// whichever runtime made it, execs included.
fn pid_namespace_members(init: i32) -> Result<Vec<i32>> {
    use std::os::unix::fs::MetadataExt;
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let want = ns(&init.to_string())
        .ok_or_else(|| Error::Conflict(format!("the process {init} of the container is gone")))?;
    let dir = std::fs::read_dir("/proc").map_err(|e| Error::io("reading", "/proc", e))?;
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            let pid: i32 = name.parse().ok()?;
            (ns(name)? == want).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`; the last column
/// (the command) keeps its spaces.
fn parse_ps(text: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidParameter("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            return Err(Error::Internal(format!("unexpected ps output: {line}")));
        };
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len();
        let mut row: Vec<String> = fields.iter().take(n - 1).map(|f| f.to_string()).collect();
        row.push(fields.get(n - 1..).map(|r| r.join(" ")).unwrap_or_default());
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_and_the_command_keeps_spaces() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                    root 42 1 0 10:01 ? 00:00:00 sleep 100 --x\n";
        let t = parse_ps(text, &[42]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], "42");
        assert_eq!(t.processes[0][7], "sleep 100 --x");
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
    }
}
