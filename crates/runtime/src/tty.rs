//! The container's terminal: a pty opened inside the container, its master handed to
//! whoever listens on `--console-socket` (SCM_RIGHTS, as runc does).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::{Error, Result, SysContext};

/// Sends `fd` over a connected unix socket with `name` as the payload.
pub fn send_fd(sock: RawFd, name: &str, fd: RawFd) -> Result<()> {
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [fd];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "sending the pty master over the console socket".into())?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .ctx(|| "receiving the pty master".into())?;
    for c in msg.cmsgs().ctx(|| "reading control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table; we own it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Other(
        "console socket: no file descriptor received".into(),
    ))
}

/// Connects to the console socket given on the command line.
pub fn connect(path: &std::path::Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| Error::io("connecting to console socket", path, e))
}

/// Opens a new pty in the current mount namespace's /dev/ptmx. Returns the master and
/// the slave, both close-on-exec.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "opening /dev/ptmx".into())?;
    nix::pty::grantpt(&master).ctx(|| "grantpt".into())?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt".into())?;
    // TIOCGPTPEER opens the slave through the master, immune to a swapped /dev/pts.
    // SAFETY: ioctl on an fd we own; the flags argument is a plain integer.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(Error::Other(format!(
            "opening pty slave: {}",
            std::io::Error::last_os_error()
        )));
    }
    let master: OwnedFd = master.into();
    // SAFETY: ioctl returned a new fd that we now own.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Sets the window size of a terminal.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass; failure is harmless.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Reads the window size of a terminal.
pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into the winsize we own.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Makes `slave` the stdio and controlling terminal of the calling process, which must
/// be a session leader.
pub fn make_controlling(slave: &OwnedFd) -> Result<()> {
    nix::unistd::dup2_stdin(slave).ctx(|| "dup2 of the pty slave".into())?;
    nix::unistd::dup2_stdout(slave).ctx(|| "dup2 of the pty slave".into())?;
    nix::unistd::dup2_stderr(slave).ctx(|| "dup2 of the pty slave".into())?;
    // SAFETY: TIOCSCTTY on our own session's terminal; the argument is an integer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::Other(format!(
            "setting controlling terminal: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Opens a pty in the container, sizes it, sends its master over the console socket and
/// returns the slave, which the caller makes its terminal.
pub fn hand_over_pty(
    console: &UnixStream,
    size: Option<oci_spec::runtime::Box>,
) -> Result<OwnedFd> {
    let (master, slave) = open_pty()?;
    if let Some(size) = size {
        set_size(
            master.as_raw_fd(),
            size.height() as u16,
            size.width() as u16,
        );
    }
    send_fd(console.as_raw_fd(), "/dev/ptmx", master.as_raw_fd())?;
    Ok(slave)
}
