//! `berth cp` (also `container cp`): tar archives through `/containers/{id}/archive`
//! (GET to copy out, PUT to copy in, HEAD for the stat of the destination).

use std::io::{self, IsTerminal, Read};
use std::path::{Component, Path, PathBuf};

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::Ctx;
use crate::client::{path_segment, query, RequestBody};
use crate::error::{Error, Result};
use crate::format;

/// `berth cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC_PATH")]
    pub src: String,
    #[arg(value_name = "DEST_PATH")]
    pub dest: String,
}

/// `CONTAINER:PATH` split as docker's `splitCpArg`: an absolute or `./` path is local.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// Go's `os.ModeDir` bit in the stat header's mode.
const MODE_DIR: u64 = 1 << 31;

/// The stat of a path in the container, or None when it does not exist.
fn stat(ctx: &Ctx, container: &str, path: &str) -> Result<Option<Value>> {
    let r = ctx.client()?.request(
        Method::HEAD,
        &format!(
            "/containers/{}/archive{}",
            path_segment(container),
            query(&[("path", path)])
        ),
        RequestBody::Empty,
    );
    match r {
        Ok(resp) => {
            let v = resp
                .headers()
                .get("X-Docker-Container-Path-Stat")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(h).ok()
                })
                .and_then(|b| serde_json::from_slice(&b).ok());
            Ok(v.or(Some(Value::Null)))
        }
        Err(Error::Daemon { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) => b.to_string(),
        None => t.to_string(),
    }
}

fn parent_of(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_string(),
        None => ".".into(),
    }
}

/// `berth cp`.
pub fn cp(ctx: &Ctx, args: CpArgs) -> Result<()> {
    match (split(&args.src), split(&args.dest)) {
        ((Some(_), _), (Some(_), _)) => {
            Err(Error::msg("copying between containers is not supported"))
        }
        ((None, _), (None, _)) => Err(Error::msg("must specify at least one container source")),
        ((Some(c), p), (None, dest)) => copy_out(ctx, &args, c, p, dest),
        ((None, src), (Some(c), p)) => copy_in(ctx, &args, src, c, p),
    }
}

/// Rewrites an archive path's first component (`from`) to `to`; refuses `..`.
fn rename_entry(path: &Path, from: &str, to: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for (i, c) in path.components().enumerate() {
        match c {
            Component::Normal(n) if i == 0 && n == from => out.push(to),
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn copy_out(ctx: &Ctx, args: &CpArgs, container: &str, src: &str, dest: &str) -> Result<()> {
    let mut resp = ctx.client()?.request(
        Method::GET,
        &format!(
            "/containers/{}/archive{}",
            path_segment(container),
            query(&[("path", src)])
        ),
        RequestBody::Empty,
    )?;
    if dest == "-" {
        io::copy(&mut resp, &mut io::stdout().lock())?;
        return Ok(());
    }
    let src_name = base_name(src);
    let dest_path = Path::new(dest);
    // Into an existing directory under the source's name; otherwise as `dest` itself.
    let (dir, name) = if dest_path.is_dir() {
        (dest_path.to_path_buf(), src_name.clone())
    } else {
        if dest.ends_with('/') {
            return Err(Error::msg(format!(
                "destination directory \"{dest}\" must exist"
            )));
        }
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::msg(format!(
                "destination directory \"{}\" does not exist",
                parent.display()
            )));
        }
        (parent.to_path_buf(), base_name(dest))
    };
    let mut counted = Counting {
        inner: &mut resp,
        n: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut counted);
        archive.set_preserve_permissions(true);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            let Some(rel) = rename_entry(&path, &src_name, &name) else {
                continue;
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let target = dir.join(&rel);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p)?;
            }
            entry.unpack(&target)?;
        }
    }
    if !args.quiet && io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dest}",
            format::human_size(counted.n as f64)
        );
    }
    Ok(())
}

struct Counting<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn copy_in(ctx: &Ctx, args: &CpArgs, src: &str, container: &str, dest: &str) -> Result<()> {
    let put = |dir: &str, body: RequestBody| -> Result<()> {
        let mut q = vec![("path", dir), ("noOverwriteDirNonDir", "true")];
        if args.archive {
            q.push(("copyUIDGID", "true"));
        }
        ctx.client()?
            .request(
                Method::PUT,
                &format!(
                    "/containers/{}/archive{}",
                    path_segment(container),
                    query(&q)
                ),
                body,
            )?
            .discard()
    };
    if src == "-" {
        return put(dest, RequestBody::Tar(Box::new(io::stdin())));
    }
    let src_path = Path::new(src);
    let meta = if args.follow_link {
        std::fs::metadata(src_path)
    } else {
        std::fs::symlink_metadata(src_path)
    }
    .map_err(|e| Error::msg(format!("lstat {src}: {e}")))?;
    let dest_stat = stat(ctx, container, dest)?;
    let dest_is_dir = dest_stat
        .as_ref()
        .and_then(|v| v["mode"].as_u64())
        .is_some_and(|m| m & MODE_DIR != 0);
    let (dir, name) = match &dest_stat {
        Some(_) if dest_is_dir => (dest.to_string(), base_name(src)),
        Some(_) if meta.is_dir() => {
            return Err(Error::msg(format!(
                "cannot copy directory to existing file \"{dest}\""
            )))
        }
        None if dest.ends_with('/') => {
            return Err(Error::msg(format!(
            "Error response from daemon: Could not find the file {dest} in container {container}"
        )))
        }
        _ => (parent_of(dest), base_name(dest)),
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(args.follow_link);
    if meta.is_dir() {
        b.append_dir_all(&name, src_path)?;
    } else {
        b.append_path_with_name(src_path, &name)?;
    }
    let data = b.into_inner()?;
    let size = data.len();
    put(&dir, RequestBody::Tar(Box::new(io::Cursor::new(data))))?;
    if !args.quiet && io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {container}:{dest}",
            format::human_size(size as f64)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_and_paths() {
        assert_eq!(split("c1:/etc/hosts"), (Some("c1"), "/etc/hosts"));
        assert_eq!(split("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split("./x"), (None, "./x"));
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(parent_of("/etc"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(
            rename_entry(Path::new("hosts"), "hosts", "h2"),
            Some(PathBuf::from("h2"))
        );
        assert_eq!(rename_entry(Path::new("../x"), "x", "y"), None);
    }
}
