//! The container's log driver: the log crate's [`log::Driver`], built from the command
//! line. The driver takes raw chunks and cuts them into messages itself (at newlines and
//! 16 KiB, as Docker does).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::args::Args;
use crate::error::{Error, Result};

/// The driver and what the shim needs to know about it.
pub struct Logger {
    driver: Box<dyn log::Driver>,
    /// The json-file log, which `attach` with `logs` replays.
    replay: Option<PathBuf>,
}

/// What the log options may refer to (`tag`, `env`, ...), taken from config.json.
fn container_info(args: &Args) -> log::ContainerInfo {
    let mut info = log::ContainerInfo {
        id: args.id.clone(),
        ..Default::default()
    };
    if let Ok(spec) = oci_spec::runtime::Spec::load(args.bundle.join("config.json")) {
        if let Some(p) = spec.process() {
            info.command = p.args().clone().unwrap_or_default();
            info.env = p.env().clone().unwrap_or_default();
        }
        info.hostname = spec.hostname().clone().unwrap_or_default();
    }
    info
}

impl Logger {
    /// Opens the driver named on the command line; `None` when there is none (or it is
    /// `none`), so the loop skips logging altogether.
    pub fn open(args: &Args) -> Result<Option<Logger>> {
        let name = match args.log_driver.as_deref() {
            None | Some("none") => return Ok(None),
            Some(n) => n,
        };
        let opts: HashMap<String, String> = args.log_opts.iter().cloned().collect();
        let path = args.log_path.clone().unwrap_or_default();
        if name == "json-file" && path.as_os_str().is_empty() {
            return Err(Error::Usage(
                "--log-driver json-file needs --log-path".into(),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let driver = <dyn log::Driver>::from_config_with(name, &opts, &path, &container_info(args))
            .map_err(|e| Error::Usage(e.to_string()))?;
        let replay = (name == "json-file").then_some(path);
        Ok(Some(Logger { driver, replay }))
    }

    /// Logs a chunk read at `time`. A failing log (disk full) must not stop the
    /// container or its attach clients: the output is lost, as with Docker.
    pub fn write(&mut self, stream: log::Stream, data: &[u8], time: SystemTime) {
        let _ = self.driver.write(stream, data, time);
    }

    /// A stream ended: its last, incomplete line is written as a partial message.
    pub fn stream_ended(&mut self) {
        let _ = self.driver.flush();
    }

    /// The container is gone: flush and close.
    pub fn close(&mut self) {
        let _ = self.driver.close();
    }

    /// The json-file log, for replay.
    pub fn replay_file(&self) -> Option<&Path> {
        self.replay.as_deref()
    }
}
