//! seccomp: compiles an OCI seccomp profile to classic BPF and installs it.
//!
//! We compile profiles ourselves (pure Rust, no libseccomp) because the `seccompiler`
//! crate supports a single match action per filter, while OCI profiles need a
//! different action, and errno, per rule. The generated filter follows the
//! semantics of libseccomp as driven by runc, so profiles written for Docker/runc
//! behave the same here:
//!
//! * **Architectures.** The host's native ABI is always filtered. On x86_64,
//!   `SCMP_ARCH_X86` adds a section for the i386 compat ABI and `SCMP_ARCH_X32` one
//!   for x32 (syscall numbers with `__X32_SYSCALL_BIT`). Listed architectures the
//!   kernel can never present (e.g. `SCMP_ARCH_ARM` on x86_64) are ignored. A syscall
//!   from an ABI that is not filtered gets the "bad arch" action, which is
//!   `SECCOMP_RET_KILL_THREAD`: libseccomp's default `SCMP_FLTATR_ACT_BADARCH`,
//!   which runc leaves untouched (so x32 calls are killed unless x32 is listed).
//!   Like libseccomp, syscall number `-1` (a tracer skipping a call) is not treated
//!   as x32 but gets the default action.
//! * **Names** unknown to an ABI are skipped, as runc does: Docker's profile lists
//!   syscalls of every architecture.
//! * **Actions.** `SCMP_ACT_KILL` is `KILL_THREAD`. `errnoRet` (default `EPERM`) is
//!   the errno of `SCMP_ACT_ERRNO` and, as in runc, the message data of
//!   `SCMP_ACT_TRACE`. `errnoRet` on any other action is an error (runtime spec).
//!   `SCMP_ACT_NOTIFY` is refused as `defaultAction` (runc does the same: the runtime
//!   itself could no longer make syscalls to hand over the listener).
//! * **Rules.** Rules whose action equals `defaultAction` are dropped (runc does this
//!   because libseccomp rejects them). Conditions of one rule are ANDed, except that
//!   when two conditions name the same argument index every condition becomes a
//!   separate rule (ORed), which is runc's behaviour. For one syscall, an
//!   unconditional rule overrides conditional ones (libseccomp's "superset" rule);
//!   two unconditional rules with different actions are an error (libseccomp returns
//!   `EEXIST` there). Conditional rules are tried in profile order; the first one
//!   that matches decides, and when none matches the call gets the default action.
//! * **Arguments** are compared as 64-bit values, high word first. For the i386 ABI
//!   only the low 32 bits are compared, as libseccomp does for 32-bit ABIs.
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`.

mod bpf;
mod compile;

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

pub use compile::compile;

/// Errors from compiling or installing a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A syscall rule has an empty name.
    #[error("seccomp: syscall rule with an empty syscall name")]
    EmptyName,
    /// An argument condition names an index outside `0..6`.
    #[error("seccomp: syscall rule for {syscall:?} compares argument index {index}, but syscalls have 6 args (0-5)")]
    ArgIndex {
        /// Syscall the rule is for.
        syscall: String,
        /// The offending index.
        index: usize,
    },
    /// `errnoRet` does not fit the 16-bit data field of the seccomp return value.
    #[error("seccomp: errnoRet {value} for {what} is out of range (max 65535)")]
    ErrnoRange {
        /// `defaultAction` or the syscall name.
        what: String,
        /// The offending value.
        value: u32,
    },
    /// `errnoRet` was given for an action that has no errno/data.
    #[error("seccomp: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action} (for {what})")]
    ErrnoRetUnsupported {
        /// `defaultAction` or the syscall name.
        what: String,
        /// The action the errnoRet came with.
        action: LinuxSeccompAction,
    },
    /// `SCMP_ACT_NOTIFY` as default action.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as defaultAction")]
    NotifyDefault,
    /// The same syscall has two unconditional rules with different actions.
    #[error(
        "seccomp: syscall {syscall:?} has conflicting unconditional rules ({first} and {second})"
    )]
    Conflict {
        /// Syscall name.
        syscall: String,
        /// Action of the first rule.
        first: LinuxSeccompAction,
        /// Action of the later rule.
        second: LinuxSeccompAction,
    },
    /// The compiled program exceeds the kernel's `BPF_MAXINSNS`.
    #[error(
        "seccomp: compiled filter has {len} instructions, more than the kernel limit of {max}"
    )]
    TooLong {
        /// Program length.
        len: usize,
        /// The kernel limit (4096).
        max: usize,
    },
    /// The host architecture is not supported by the compiler.
    #[error("seccomp: unsupported host architecture {0}")]
    UnsupportedHost(&'static str),
    /// A bug in the compiler (e.g. a backward jump); never expected.
    #[error("seccomp: internal compiler error: {0}")]
    Internal(&'static str),
    /// The `seccomp(2)` call failed.
    #[error("seccomp: installing the filter failed: {0}")]
    Install(#[source] std::io::Error),
}

/// A compiled classic-BPF seccomp program, ready for [`install`].
#[derive(Clone)]
pub struct Program(Vec<libc::sock_filter>);

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the program has no instructions (never true for [`compile`]'s output).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The instructions, e.g. for dumping or for `seccomp_export_bpf`-style output.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.0
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // sock_filter's own Debug depends on libc features; print the classic
        // `{ code, jt, jf, k }` tuples instead.
        let mut list = f.debug_list();
        for i in &self.0 {
            list.entry(&format_args!(
                "{{ {:#06x}, {}, {}, {:#010x} }}",
                i.code, i.jt, i.jf, i.k
            ));
        }
        list.finish()
    }
}

/// Whether any rule of `profile` uses `SCMP_ACT_NOTIFY`, i.e. whether installing it
/// yields a listener fd.
pub fn uses_notify(profile: &LinuxSeccomp) -> bool {
    profile.default_action() == LinuxSeccompAction::ScmpActNotify
        || profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Installs `program` for the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER)`,
/// using the filter flags of `profile.flags`. If the profile uses `SCMP_ACT_NOTIFY`,
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` is added and the listener fd is returned.
///
/// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN`. This function
/// does not allocate, so it may run between `fork` and `exec` (e.g. in `pre_exec`).
pub fn install(program: &Program, profile: &LinuxSeccomp) -> Result<Option<OwnedFd>, SeccompError> {
    let mut flags: libc::c_ulong = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    let notify = uses_notify(profile);
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // TSYNC and NEW_LISTENER both want the return value (a thread id vs the fd);
        // TSYNC_ESRCH makes a sync failure an ESRCH error instead, which the kernel
        // requires for the combination.
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    let len = u16::try_from(program.0.len()).map_err(|_| SeccompError::TooLong {
        len: program.0.len(),
        max: bpf::MAX_INSNS,
    })?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the filter; the field is `*mut` for historical reasons.
        filter: program.0.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` valid instructions that outlive the call; the
    // kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(SeccompError::Install(std::io::Error::last_os_error()));
    }
    if notify {
        let fd = libc::c_int::try_from(ret)
            .map_err(|_| SeccompError::Internal("listener fd out of range"))?;
        // SAFETY: with NEW_LISTENER the kernel returns a fresh fd that nobody else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    } else {
        Ok(None)
    }
}

// The tests use x86_64 syscall numbers and ABIs.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
