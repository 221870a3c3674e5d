//! The `Driver` trait and its factory.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use crate::jsonfile::JsonFileWriter;
use crate::opts::{validate_log_opts, JsonFileConfig};
use crate::{Error, Result, Stream};

/// A log driver: where a container's output goes.
///
/// The shim hands it raw chunks as they are read from the container's pipes;
/// line splitting is the driver's business (most use [`crate::LineSplitter`]),
/// because drivers differ in how they treat long and partial lines. Methods
/// block: the shim has no async runtime, and network drivers (syslog, fluentd)
/// are expected to buffer internally to honour Docker's `mode=non-blocking`.
pub trait Driver: Send {
    /// Docker's name for the driver (`json-file`, `none`, ...).
    fn name(&self) -> &'static str;

    /// Logs a raw chunk of `stream` read at `time`.
    fn write(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<()>;

    /// Pushes out buffered data, including any incomplete line as a partial
    /// message; call when a stream ends.
    fn flush(&mut self) -> Result<()>;

    /// Flushes and releases the driver's resources; later writes fail.
    fn close(&mut self) -> Result<()>;

    /// Whether `docker logs` can read back what this driver wrote (Docker's
    /// `LogReader` capability: json-file, local, journald). Defaults to false.
    fn readable(&self) -> bool {
        false
    }
}

impl dyn Driver {
    /// Builds driver `name` from its `--log-opt`s, writing to `path` if it
    /// keeps a file. Options are validated as Docker does; `labels`, `env` and
    /// `tag` expand against an empty container (see `from_config_with`).
    pub fn from_config(
        name: &str,
        opts: &HashMap<String, String>,
        path: &Path,
    ) -> Result<Box<dyn Driver>> {
        Self::from_config_with(name, opts, path, &ContainerInfo::default())
    }

    /// Like `from_config`, with the container's labels, environment and
    /// names for the `labels`, `env`, `env-regex` and `tag` options.
    pub fn from_config_with(
        name: &str,
        opts: &HashMap<String, String>,
        path: &Path,
        info: &ContainerInfo,
    ) -> Result<Box<dyn Driver>> {
        validate_log_opts(name, opts)?;
        match name {
            "none" => Ok(Box::new(NoneDriver)),
            "json-file" => {
                let cfg = JsonFileConfig::parse(opts, info)?;
                Ok(Box::new(JsonFileDriver(JsonFileWriter::open(
                    path,
                    cfg.options,
                )?)))
            }
            _ => Err(Error::UnknownDriver(name.to_string())),
        }
    }
}

/// The `none` driver: output is discarded.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoneDriver;

impl Driver for NoneDriver {
    fn name(&self) -> &'static str {
        "none"
    }
    fn write(&mut self, _: Stream, _: &[u8], _: SystemTime) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The `json-file` driver, Docker's default.
#[derive(Debug)]
pub struct JsonFileDriver(pub JsonFileWriter);

impl Driver for JsonFileDriver {
    fn name(&self) -> &'static str {
        "json-file"
    }
    fn write(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<()> {
        self.0.write(stream, data, time)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
    fn readable(&self) -> bool {
        true
    }
}

/// What a driver may know about its container (Docker's `logger.Info`), used
/// by the `labels`, `env`, `env-regex` and `tag` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// Container name, with or without Docker's leading `/`.
    pub name: String,
    /// Full image ID (`sha256:...`).
    pub image_id: String,
    /// Image name as the user gave it.
    pub image_name: String,
    /// Entrypoint and arguments.
    pub command: Vec<String>,
    /// Container hostname.
    pub hostname: String,
    /// Daemon name (`docker` in Docker).
    pub daemon_name: String,
    /// Container labels.
    pub labels: HashMap<String, String>,
    /// Container environment, `KEY=value` entries.
    pub env: Vec<String>,
}

fn short(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

impl ContainerInfo {
    fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "ID" => short(&self.id),
            "FullID" => self.id.clone(),
            "Name" => self.name.trim_start_matches('/').to_string(),
            "ImageID" => short(&self.image_id),
            "ImageFullID" => self.image_id.clone(),
            "ImageName" => self.image_name.clone(),
            "Command" => self.command.join(" "),
            "Hostname" => self.hostname.clone(),
            "DaemonName" => self.daemon_name.clone(),
            _ => return None,
        })
    }

    /// Expands a `tag` template. Supports the `{{.Field}}` actions Docker
    /// documents (ID, FullID, Name, ImageID, ImageFullID, ImageName, Command,
    /// Hostname, DaemonName), optionally piped to `upper` or `lower`; anything
    /// else is refused rather than silently producing a wrong tag.
    pub fn expand_tag(&self, template: &str) -> Result<String> {
        let bad = |why: &str| Error::InvalidOpt(format!("template: log-tag: {why}"));
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| bad("unclosed action"))?
                + start;
            let action = rest[start + 2..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
            let mut parts = action.split('|').map(str::trim);
            let field = parts.next().unwrap_or("");
            let name = field
                .strip_prefix('.')
                .ok_or_else(|| bad(&format!("unsupported action {action:?}")))?;
            let mut value = self
                .field(name)
                .ok_or_else(|| bad(&format!("can't evaluate field {name}")))?;
            for f in parts {
                value = match f {
                    "upper" => value.to_uppercase(),
                    "lower" => value.to_lowercase(),
                    _ => return Err(bad(&format!("function {f:?} not supported"))),
                };
            }
            out.push_str(&value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
