//! The parent/child socket of the process chain: one JSON message per SEQPACKET datagram.
//! Both ends are close-on-exec, so the container's execve closes its end: the parent
//! reading EOF after `Ready` knows the exec happened.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// What the processes of the chain tell each other.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// P → I: the cgroup is joined, go on.
    Go,
    /// I → P: a user namespace exists; write its uid/gid maps.
    UserNs,
    /// P → I: the maps are written.
    MapsDone,
    /// I → P: the host pid of the container process.
    Pid(i32),
    /// C → P: mounts are done; run the createRuntime (and prestart) hooks.
    CreateRuntime,
    /// P → C: those hooks ran.
    HooksDone,
    /// C → P: something the user should know that is not an error.
    Warning(String),
    /// C → P: the container is created and waits for start (or exec is about to execve).
    Ready,
    /// Any → P: setting up failed; the message says why.
    Error(String),
}

/// One end of the chain's socket.
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair: (parent end, child end).
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "creating sync socket".into())?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Other(e.to_string()))?;
        // MSG_NOSIGNAL: a parent that already left must not kill us with SIGPIPE.
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &data,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )
        .ctx(|| "writing to sync socket".into())?;
        Ok(())
    }

    /// The next message, or None when the other side closed its end.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Err(nix::Error::EINTR) => continue,
                r => break r.ctx(|| "reading sync socket".into())?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Other(format!("bad sync message: {e}")))
    }

    /// Waits for `want`; an `Error` from the other side becomes this call's error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Init(e)),
            Some(m) => Err(Error::Other(format!("sync: expected {want:?}, got {m:?}"))),
            None => Err(Error::Init(format!(
                "the container process exited before {want:?}"
            ))),
        }
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
