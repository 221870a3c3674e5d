//! The command line, parsed by hand: the shim is meant to be small, and a dozen flags do
//! not need an argument parser.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The usage text printed for `--help`.
pub const USAGE: &str = "usage: berth-shim --id ID --bundle DIR --runtime-root DIR --socket PATH \
--exit-file PATH [--log-driver json-file|none --log-path PATH --log-opt KEY=VALUE ...] \
[--tty] [--stdin] [--runtime berth|PATH] [--linger SECONDS] [--exec PROCESS_JSON]";

/// Which runtime creates and drives the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeKind {
    /// berth's runtime library, in process.
    Builtin,
    /// A runc-compatible binary driven through its command line.
    External(PathBuf),
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// OCI bundle directory (absolute).
    pub bundle: PathBuf,
    /// The runtime's state root (absolute).
    pub runtime_root: PathBuf,
    /// Control socket path (absolute).
    pub socket: PathBuf,
    /// Exit status file path (absolute).
    pub exit_file: PathBuf,
    /// Log driver name; `None` when not given.
    pub log_driver: Option<String>,
    /// Log file for file-based drivers (absolute).
    pub log_path: Option<PathBuf>,
    /// `--log-opt key=value` pairs, in order.
    pub log_opts: Vec<(String, String)>,
    /// The container has a terminal.
    pub tty: bool,
    /// The container's stdin stays open for attach clients.
    pub stdin: bool,
    /// Which runtime to use.
    pub runtime: RuntimeKind,
    /// How long the shim stays after the exit is recorded while no client is connected.
    pub linger: Duration,
    /// Exec mode: run this OCI process (JSON file) in the running container `id`
    /// instead of creating a container. Its output is held until the first attach.
    pub exec: Option<PathBuf>,
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p);
    }
    // The shim changes to / when it daemonizes: relative paths are resolved first.
    let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
    Ok(cwd.join(p))
}

impl Args {
    /// Parses the arguments after the program name. `--flag value` and `--flag=value`
    /// are both accepted.
    pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args> {
        let mut it = argv.into_iter();
        let mut id = None;
        let mut bundle = None;
        let mut runtime_root = None;
        let mut socket = None;
        let mut exit_file = None;
        let mut log_driver = None;
        let mut log_path = None;
        let mut log_opts = Vec::new();
        let mut tty = false;
        let mut stdin = false;
        let mut runtime = RuntimeKind::Builtin;
        let mut linger = Duration::from_secs(10);
        let mut exec = None;
        while let Some(arg) = it.next() {
            let arg = arg
                .into_string()
                .map_err(|a| Error::Usage(format!("argument {a:?} is not UTF-8")))?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<OsString> {
                match &inline {
                    Some(v) => Ok(OsString::from(v)),
                    None => it
                        .next()
                        .ok_or_else(|| Error::Usage(format!("{name} needs a value\n{USAGE}"))),
                }
            };
            let path = |v: OsString| PathBuf::from(v);
            let string = |v: OsString| String::from_utf8_lossy(&v.into_vec()).into_owned();
            match flag.as_str() {
                "--id" => id = Some(string(value("--id")?)),
                "--bundle" => bundle = Some(path(value("--bundle")?)),
                "--runtime-root" => runtime_root = Some(path(value("--runtime-root")?)),
                "--socket" => socket = Some(path(value("--socket")?)),
                "--exit-file" => exit_file = Some(path(value("--exit-file")?)),
                "--log-driver" => log_driver = Some(string(value("--log-driver")?)),
                "--log-path" => log_path = Some(path(value("--log-path")?)),
                "--log-opt" => {
                    let kv = string(value("--log-opt")?);
                    let (k, v) = kv.split_once('=').ok_or_else(|| {
                        Error::Usage(format!("--log-opt {kv:?}: expected KEY=VALUE"))
                    })?;
                    log_opts.push((k.to_string(), v.to_string()));
                }
                "--runtime" => {
                    let v = path(value("--runtime")?);
                    runtime = if v == Path::new("berth") {
                        RuntimeKind::Builtin
                    } else {
                        RuntimeKind::External(v)
                    };
                }
                "--linger" => {
                    let v = string(value("--linger")?);
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| Error::Usage(format!("--linger {v:?}: expected seconds")))?;
                    linger = Duration::from_secs(secs);
                }
                "--exec" => exec = Some(path(value("--exec")?)),
                "--tty" if inline.is_none() => tty = true,
                "--stdin" if inline.is_none() => stdin = true,
                "-h" | "--help" => return Err(Error::Usage(USAGE.into())),
                _ => return Err(Error::Usage(format!("unknown argument {arg:?}\n{USAGE}"))),
            }
        }
        let need = |v: Option<PathBuf>, name: &str| {
            v.ok_or_else(|| Error::Usage(format!("{name} is required\n{USAGE}")))
                .and_then(absolute)
        };
        let id = id.ok_or_else(|| Error::Usage(format!("--id is required\n{USAGE}")))?;
        runtime::spec::validate_id(&id).map_err(|e| Error::Usage(e.to_string()))?;
        let runtime = match runtime {
            // A bare name is looked up in PATH when the command runs; a relative path
            // must not change meaning after chdir("/").
            RuntimeKind::External(p) if p.components().count() > 1 => {
                RuntimeKind::External(absolute(p)?)
            }
            r => r,
        };
        let args = Args {
            id,
            bundle: need(bundle, "--bundle")?,
            runtime_root: need(runtime_root, "--runtime-root")?,
            socket: need(socket, "--socket")?,
            exit_file: need(exit_file, "--exit-file")?,
            log_path: log_path.map(absolute).transpose()?,
            log_driver,
            log_opts,
            tty,
            stdin,
            runtime,
            linger,
            exec: exec.map(absolute).transpose()?,
        };
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Args> {
        Args::parse(v.iter().map(OsString::from))
    }

    #[test]
    fn full_command_line() {
        let a = parse(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--runtime-root",
            "/r",
            "--socket",
            "/s.sock",
            "--exit-file",
            "/s.exit",
            "--log-driver",
            "json-file",
            "--log-path",
            "/l.log",
            "--log-opt",
            "max-size=10m",
            "--log-opt=max-file=3",
            "--tty",
            "--stdin",
            "--runtime",
            "/usr/sbin/runc",
        ])
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(
            a.log_opts,
            vec![
                ("max-size".into(), "10m".into()),
                ("max-file".into(), "3".into())
            ]
        );
        assert!(a.tty && a.stdin);
        assert_eq!(a.runtime, RuntimeKind::External("/usr/sbin/runc".into()));
    }

    #[test]
    fn errors() {
        assert!(parse(&["--id", "c1"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--id"]).is_err());
        let base = [
            "--id",
            "c1",
            "--bundle",
            "b",
            "--runtime-root",
            "/r",
            "--socket",
            "/s",
            "--exit-file",
            "/e",
        ];
        let a = parse(&base).unwrap();
        assert!(a.bundle.is_absolute());
        assert_eq!(a.runtime, RuntimeKind::Builtin);
        let mut bad = base.to_vec();
        bad.extend(["--log-opt", "novalue"]);
        assert!(parse(&bad).is_err());
    }
}
