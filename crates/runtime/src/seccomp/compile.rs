//! OCI profile → classic BPF. See the module docs of `seccomp` for the semantics.
//!
//! Layout of the generated program:
//!
//! ```text
//!   ld arch
//!   jeq <native audit arch> ? next : check_i386
//!     ld nr
//!     jge X32_BIT ? high : next          (x86_64 only)
//!     <dispatch tree over native numbers>
//!   high:                                (x86_64 only)
//!     <dispatch tree over x32 numbers>   or   nr == -1 ? default : bad_arch
//!   check_i386:
//!   jeq AUDIT_ARCH_I386 ? next : bad_arch
//!     ld nr; <dispatch tree over i386 numbers>
//!   bad_arch:
//!   ret KILL_THREAD
//! ```
//!
//! A dispatch tree is a binary search (`jge`) over the boundaries of runs of syscall
//! numbers with the same outcome; its leaves are a `ret` or the argument checks of one
//! syscall. Lookups are logarithmic, and the left child always follows its parent,
//! so only jumps to right subtrees near the root need trampolines.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::bpf::{Asm, Label, Target, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K};
use super::{Program, SeccompError};

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a syscall from an ABI the profile does not cover gets (libseccomp's default
/// bad-arch action, which runc keeps).
const BAD_ARCH_ACTION: u32 = libc::SECCOMP_RET_KILL_THREAD;

/// Syscalls whose x32 entry is not the x86_64 one (`syscall_64.tbl`, "x32" rows):
/// x32 numbers them from 512 because their compat structs differ.
pub(super) const X32_SPECIAL: &[(&str, u32)] = &[
    ("execve", 520),
    ("execveat", 545),
    ("get_robust_list", 531),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("ioctl", 514),
    ("kexec_load", 528),
    ("move_pages", 533),
    ("mq_notify", 527),
    ("preadv", 534),
    ("preadv2", 546),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("ptrace", 521),
    ("pwritev", 535),
    ("pwritev2", 547),
    ("readv", 515),
    ("recvfrom", 517),
    ("recvmmsg", 537),
    ("recvmsg", 519),
    ("rt_sigaction", 512),
    ("rt_sigpending", 522),
    ("rt_sigqueueinfo", 524),
    ("rt_sigreturn", 513),
    ("rt_sigtimedwait", 523),
    ("rt_tgsigqueueinfo", 536),
    ("sendmmsg", 538),
    ("sendmsg", 518),
    ("set_robust_list", 530),
    ("setsockopt", 541),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("vmsplice", 532),
    ("waitid", 529),
    ("writev", 516),
];

/// A syscall ABI that gets its own section in the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abi {
    Native,
    I386,
    X32,
}

impl Abi {
    fn resolve(self, name: &str) -> Option<u32> {
        let native = || {
            name.parse::<syscalls::Sysno>()
                .ok()
                .and_then(|s| u32::try_from(s.id()).ok())
        };
        match self {
            Abi::Native => native(),
            // An x86_64 kernel also takes i386 syscalls (IA32 emulation).
            Abi::I386 => name
                .parse::<syscalls::x86::Sysno>()
                .ok()
                .and_then(|s| u32::try_from(s.id()).ok()),
            Abi::X32 => X32_SPECIAL
                .binary_search_by(|(n, _)| n.cmp(&name))
                .map(|i| X32_SPECIAL[i].1)
                .ok()
                .or_else(native)
                .map(|nr| nr | X32_SYSCALL_BIT),
        }
    }

    /// The i386 ABI has 32-bit registers, so (like libseccomp) only low words are
    /// compared; the kernel zero-extends them into `seccomp_data.args`.
    fn args64(self) -> bool {
        self != Abi::I386
    }
}

fn native_audit_arch() -> Result<u32, SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(AUDIT_ARCH_X86_64),
        "aarch64" => Ok(AUDIT_ARCH_AARCH64),
        other => Err(SeccompError::UnsupportedHost(other)),
    }
}

/// ABIs to filter: always the native one, plus the compat ABIs the profile lists and
/// this kernel can present.
fn abis(profile: &LinuxSeccomp) -> Vec<Abi> {
    use oci_spec::runtime::Arch;
    let mut out = vec![Abi::Native];
    if cfg!(target_arch = "x86_64") {
        for arch in profile.architectures().iter().flatten() {
            let abi = match arch {
                Arch::ScmpArchX86 => Abi::I386,
                Arch::ScmpArchX32 => Abi::X32,
                _ => continue,
            };
            if !out.contains(&abi) {
                out.push(abi);
            }
        }
    }
    out
}

/// The seccomp return value for an OCI action and its optional `errnoRet`.
fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &dyn Fn() -> String,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    let data = || -> Result<u32, SeccompError> {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        if v > libc::SECCOMP_RET_DATA {
            return Err(SeccompError::ErrnoRange {
                what: what(),
                value: v,
            });
        }
        Ok(v)
    };
    if errno_ret.is_some() && !matches!(action, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(SeccompError::ErrnoRetUnsupported {
            what: what(),
            action,
        });
    }
    Ok(match action {
        A::ScmpActKill | A::ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        A::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        A::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        A::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data()?,
        // runc passes errnoRet (default EPERM) as the trace message data.
        A::ScmpActTrace => libc::SECCOMP_RET_TRACE | data()?,
        A::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        A::ScmpActLog => libc::SECCOMP_RET_LOG,
        A::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    })
}

#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// Condition sets of one OCI rule; each set is ANDed, the sets are ORed.
fn condition_sets(name: &str, args: &[LinuxSeccompArg]) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let mut seen = [0usize; 6];
    let mut conds = Vec::with_capacity(args.len());
    for a in args {
        let index = a.index();
        if index >= seen.len() {
            return Err(SeccompError::ArgIndex {
                syscall: name.to_owned(),
                index,
            });
        }
        seen[index] += 1;
        conds.push(Cond {
            index: index as u32,
            op: a.op(),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    if seen.iter().any(|&n| n > 1) {
        // runc's fallback: libseccomp cannot AND two conditions on one argument, so
        // every condition becomes its own rule.
        Ok(conds.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conds])
    }
}

struct CondRule {
    conds: Vec<Cond>,
    action: u32,
}

/// Everything the profile says about one syscall number of one ABI.
#[derive(Default)]
struct SyscallRules {
    unconditional: Option<(u32, LinuxSeccompAction)>,
    conditional: Vec<CondRule>,
}

/// Compiles `profile` to a seccomp BPF program for the host.
///
/// Syscall names the host does not know are skipped (Docker's default profile lists
/// syscalls of other architectures); that is not an error. The semantics follow
/// runc + libseccomp, see the [module docs](super).
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action_value(
        profile.default_action(),
        profile.default_errno_ret(),
        &|| "defaultAction".to_owned(),
    )?;
    let native_arch = native_audit_arch()?;
    let abis = abis(profile);
    let mut tables: Vec<BTreeMap<u32, SyscallRules>> =
        abis.iter().map(|_| BTreeMap::new()).collect();

    for rule in profile.syscalls().iter().flatten() {
        let first = rule.names().first().map(String::as_str).unwrap_or("");
        let action = action_value(rule.action(), rule.errno_ret(), &|| {
            format!("syscall {first:?}")
        })?;
        let sets = condition_sets(first, rule.args().as_deref().unwrap_or_default())?;
        if rule.names().iter().any(String::is_empty) {
            return Err(SeccompError::EmptyName);
        }
        // Redundant with the default; runc drops these because libseccomp rejects them.
        if action == default {
            continue;
        }
        for name in rule.names() {
            for (abi, table) in abis.iter().zip(tables.iter_mut()) {
                let Some(nr) = abi.resolve(name) else {
                    continue;
                };
                let entry = table.entry(nr).or_default();
                for conds in &sets {
                    if !conds.is_empty() {
                        entry.conditional.push(CondRule {
                            conds: conds.clone(),
                            action,
                        });
                        continue;
                    }
                    match entry.unconditional {
                        None => entry.unconditional = Some((action, rule.action())),
                        Some((a, _)) if a == action => {}
                        Some((_, first)) => {
                            return Err(SeccompError::Conflict {
                                syscall: name.clone(),
                                first,
                                second: rule.action(),
                            })
                        }
                    }
                }
            }
        }
    }

    let table_of = |abi: Abi| abis.iter().position(|&a| a == abi).map(|i| &tables[i]);
    let (x32, i386) = (table_of(Abi::X32), table_of(Abi::I386));

    let mut asm = Asm::default();
    let bad_arch = asm.label();
    let check_i386 = if i386.is_some() {
        asm.label()
    } else {
        bad_arch
    };
    asm.load(OFF_ARCH);
    asm.jump(
        JMP_JEQ_K,
        native_arch,
        Target::Next,
        Target::Label(check_i386),
    );
    asm.load(OFF_NR);
    if native_arch == AUDIT_ARCH_X86_64 {
        // x32 shares AUDIT_ARCH_X86_64 and is told apart by the syscall number.
        let high = asm.label();
        asm.jump(
            JMP_JGE_K,
            X32_SYSCALL_BIT,
            Target::Label(high),
            Target::Next,
        );
        emit_tree(&mut asm, &tables[0], default, true);
        asm.bind(high);
        match x32 {
            Some(table) => emit_tree(&mut asm, table, default, Abi::X32.args64()),
            None => {
                // nr == -1 is a syscall a tracer skipped, not an x32 call.
                asm.jump(JMP_JEQ_K, u32::MAX, Target::Next, Target::Label(bad_arch));
                asm.ret(default);
            }
        }
    } else {
        emit_tree(&mut asm, &tables[0], default, true);
    }
    if let Some(table) = i386 {
        asm.bind(check_i386);
        asm.jump(
            JMP_JEQ_K,
            AUDIT_ARCH_I386,
            Target::Next,
            Target::Label(bad_arch),
        );
        asm.load(OFF_NR);
        emit_tree(&mut asm, table, default, Abi::I386.args64());
    }
    asm.bind(bad_arch);
    asm.ret(BAD_ARCH_ACTION);
    Ok(Program(asm.finish()?))
}

/// What one stretch of syscall numbers leads to.
enum Seg<'a> {
    Ret(u32),
    Rules(&'a SyscallRules),
}

/// Splits the number space into stretches with the same outcome. Docker-style
/// allow lists are mostly runs of consecutive numbers, so this is far smaller than
/// one comparison per syscall.
fn segments(table: &BTreeMap<u32, SyscallRules>, default: u32) -> Vec<(u32, Seg<'_>)> {
    fn push<'a>(segs: &mut Vec<(u32, Seg<'a>)>, start: u32, seg: Seg<'a>) {
        if let (Some((_, Seg::Ret(prev))), Seg::Ret(action)) = (segs.last(), &seg) {
            if prev == action {
                return;
            }
        }
        segs.push((start, seg));
    }
    let mut segs = Vec::new();
    let mut next: u64 = 0;
    for (&nr, rules) in table {
        if u64::from(nr) > next {
            push(&mut segs, next as u32, Seg::Ret(default));
        }
        push(
            &mut segs,
            nr,
            match rules.unconditional {
                // An unconditional rule is a superset of any conditional one.
                Some((action, _)) => Seg::Ret(action),
                None => Seg::Rules(rules),
            },
        );
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(&mut segs, next as u32, Seg::Ret(default));
    }
    segs
}

/// Emits a binary search over the stretch boundaries; the accumulator holds the
/// syscall number. Every path ends in a `ret`.
fn emit_tree(asm: &mut Asm, table: &BTreeMap<u32, SyscallRules>, default: u32, args64: bool) {
    emit_segments(asm, &segments(table, default), default, args64);
}

fn emit_segments(asm: &mut Asm, segs: &[(u32, Seg<'_>)], default: u32, args64: bool) {
    if let [(_, seg)] = segs {
        match seg {
            Seg::Ret(action) => asm.ret(*action),
            Seg::Rules(rules) => emit_rules(asm, rules, default, args64),
        }
        return;
    }
    let mid = segs.len() / 2;
    let right = asm.label();
    asm.jump(JMP_JGE_K, segs[mid].0, Target::Label(right), Target::Next);
    emit_segments(asm, &segs[..mid], default, args64);
    asm.bind(right);
    emit_segments(asm, &segs[mid..], default, args64);
}

/// Conditional rules of one syscall, tried in order, then the default.
fn emit_rules(asm: &mut Asm, rules: &SyscallRules, default: u32, args64: bool) {
    for rule in &rules.conditional {
        let fail = asm.label();
        for c in &rule.conds {
            emit_cond(asm, c, fail, args64);
        }
        asm.ret(rule.action);
        asm.bind(fail);
    }
    asm.ret(default);
}

/// Offsets of the low and high 32-bit words of syscall argument `index`.
fn arg_words(index: u32) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Emits one 64-bit comparison: falls through when it holds, jumps to `fail` when not.
/// The high words decide unless they are equal, then the low words decide.
fn emit_cond(asm: &mut Asm, c: &Cond, fail: Label, args64: bool) {
    use LinuxSeccompOperator as Op;
    let ok = asm.label();
    let (f, s, n) = (Target::Label(fail), Target::Label(ok), Target::Next);
    let (lo_off, hi_off) = arg_words(c.index);
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    let (t_hi, t_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
    match c.op {
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            let (hit, miss) = if c.op == Op::ScmpCmpEq {
                (s, f)
            } else {
                (f, s)
            };
            if args64 {
                asm.load(hi_off);
                asm.jump(JMP_JEQ_K, v_hi, n, miss);
            }
            asm.load(lo_off);
            asm.jump(JMP_JEQ_K, v_lo, hit, miss);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // LT/LE are the negations of GE/GT.
            let (lo_code, above, below) = match c.op {
                Op::ScmpCmpGt => (JMP_JGT_K, s, f),
                Op::ScmpCmpGe => (JMP_JGE_K, s, f),
                Op::ScmpCmpLt => (JMP_JGE_K, f, s),
                _ => (JMP_JGT_K, f, s),
            };
            if args64 {
                asm.load(hi_off);
                asm.jump(JMP_JGT_K, v_hi, above, n);
                asm.jump(JMP_JEQ_K, v_hi, n, below);
            }
            asm.load(lo_off);
            asm.jump(lo_code, v_lo, above, below);
        }
        Op::ScmpCmpMaskedEq => {
            if args64 {
                asm.load(hi_off);
                asm.and(v_hi);
                asm.jump(JMP_JEQ_K, t_hi, n, f);
            }
            asm.load(lo_off);
            asm.and(v_lo);
            asm.jump(JMP_JEQ_K, t_lo, s, f);
        }
    }
    asm.bind(ok);
}
