//! Device nodes in the container's /dev: the default set every container gets and the
//! spec's `linux.devices`, then the /dev symlinks.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use pathrs::{InodeType, Root};

use super::{pathrs_err, Ctx};
use crate::error::{Error, Result, SysContext};

/// The nodes runc creates in every container (and Docker expects).
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn from_spec(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidSpec(format!(
                "device {}: type \"a\" is only valid in cgroup rules",
                d.path().display()
            )))
        }
    };
    if !d.path().starts_with("/dev") {
        return Err(Error::InvalidSpec(format!(
            "device {} must be under /dev",
            d.path().display()
        )));
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

pub fn create_all(root: &Root, ctx: &Ctx) -> Result<()> {
    let mut nodes: Vec<Node> = DEFAULTS
        .iter()
        .map(|&(p, major, minor)| Node {
            path: p.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    if let Some(devs) = ctx.spec.linux().as_ref().and_then(|l| l.devices().as_ref()) {
        for d in devs {
            let n = from_spec(d)?;
            nodes.retain(|x| x.path != n.path);
            nodes.push(n);
        }
    }
    for n in &nodes {
        create(root, n, ctx.userns)?;
    }
    Ok(())
}

fn create(root: &Root, n: &Node, userns: bool) -> Result<()> {
    let perm = std::fs::Permissions::from_mode(0o755);
    if let Some(parent) = n.path.parent() {
        root.mkdir_all(parent, &perm)
            .map_err(|e| pathrs_err("creating", parent, e))?;
    }
    // A user namespace may not mknod: bind the host's node over an empty file instead.
    let made = !userns && n.kind != SFlag::S_IFIFO && mknod(root, n).is_ok();
    if !made && n.kind == SFlag::S_IFIFO {
        let _ = root.create(
            &n.path,
            &InodeType::Fifo(std::fs::Permissions::from_mode(n.mode)),
        );
    } else if !made {
        bind_host(root, n)?;
        return Ok(());
    }
    let h = root
        .resolve_nofollow(&n.path)
        .map_err(|e| pathrs_err("resolving", &n.path, e))?;
    let proc = format!("/proc/self/fd/{}", h.as_fd().as_raw_fd());
    std::fs::set_permissions(&proc, std::fs::Permissions::from_mode(n.mode))
        .map_err(|e| Error::io("chmod", &n.path, e))?;
    nix::unistd::chown(Path::new(&proc), Some(n.uid.into()), Some(n.gid.into()))
        .ctx(|| format!("chown {}", n.path.display()))?;
    Ok(())
}

fn mknod(root: &Root, n: &Node) -> Result<()> {
    let dev = makedev(n.major, n.minor);
    let perm = std::fs::Permissions::from_mode(n.mode);
    let typ = if n.kind == SFlag::S_IFBLK {
        InodeType::BlockDevice(perm, dev)
    } else {
        InodeType::CharacterDevice(perm, dev)
    };
    // An image may ship its own node (or anything) there: replace it.
    let _ = root.remove_file(&n.path);
    root.create(&n.path, &typ)
        .map_err(|e| pathrs_err("mknod", &n.path, e))
}

fn bind_host(root: &Root, n: &Node) -> Result<()> {
    let _ = root.create(
        &n.path,
        &InodeType::File(std::fs::Permissions::from_mode(0o644)),
    );
    let h = root
        .resolve_nofollow(&n.path)
        .map_err(|e| pathrs_err("resolving", &n.path, e))?;
    let proc = format!("/proc/self/fd/{}", h.as_fd().as_raw_fd());
    nix::mount::mount(
        Some(&n.path),
        proc.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting host device {}", n.path.display()))
}

/// /dev/fd, stdin, stdout, stderr (and core when the host has /proc/kcore), and
/// /dev/ptmx pointing into the container's own devpts.
pub fn symlinks(root: &Root, devpts: bool) -> Result<()> {
    let mut links = vec![
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/dev/core", "/proc/kcore"));
    }
    if devpts {
        let _ = root.remove_file("/dev/ptmx");
        links.push(("/dev/ptmx", "pts/ptmx"));
    }
    for (link, to) in links {
        match root.create(link, &InodeType::Symlink(to.into())) {
            Ok(()) => {}
            Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::EEXIST)) => {}
            Err(e) => return Err(pathrs_err("creating symlink", Path::new(link), e)),
        }
    }
    Ok(())
}
