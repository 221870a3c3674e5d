//! The process chain that builds a container. The runtime (P) forks an intermediate (I)
//! that joins and creates namespaces, then forks the container process (C) inside them
//! and exits; C becomes PID 1 of a new PID namespace and, since P is a child subreaper,
//! P's child again. P and C talk over a SEQPACKET socket ([`channel`]).
//!
//! ```text
//! P: fork I ─ add I to the cgroup ─ Go ─┐          ┌─ write uid/gid maps ─ MapsDone
//! I:          setns(paths) ─ unshare(user) ─ UserNs┘ ─ unshare(rest) ─ fork C ─ Pid(c) ─ exit
//! C:          (init: rootfs, hooks, pivot_root, tty ...) ─ Ready ─ wait on exec.fifo ─ execve
//! ```

pub mod channel;
pub mod finalize;
pub mod init;
pub mod sealed;
mod spawn;

pub use spawn::{spawn, Spawn};
