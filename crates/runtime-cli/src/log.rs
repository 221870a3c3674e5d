//! Errors go to stderr and, with `--log`, to a log file in runc's shapes (JSON lines with
//! level/msg/time, or logfmt text), which is where containerd-style callers read them.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::LogFormat;

pub struct Log {
    file: Option<PathBuf>,
    format: LogFormat,
}

impl Log {
    pub fn new(file: Option<&Path>, format: LogFormat) -> Log {
        Log {
            file: file.map(Path::to_path_buf),
            format,
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        let Some(path) = &self.file else { return };
        let time = humantime_now();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            }
            LogFormat::Text => format!("time={time:?} level=error msg={msg:?}"),
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn humantime_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}
