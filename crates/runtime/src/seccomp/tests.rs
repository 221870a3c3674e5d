//! Tests: the compiler is checked against a BPF interpreter (`bpf::sim`) and, for
//! the real thing, by installing filters in forked children that report through
//! their exit status, so the test process itself is never filtered.

use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompOperator as Op};
use serde_json::json;

use super::bpf::sim;
use super::*;

const DOCKER: &str = include_str!("testdata/docker-default.json");
const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;
const X32_BIT: u32 = 0x4000_0000;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid profile")
}

fn docker() -> LinuxSeccomp {
    serde_json::from_str(DOCKER).expect("fixture parses")
}

fn nr(name: &str) -> u32 {
    name.parse::<syscalls::Sysno>().unwrap().id() as u32
}

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

/// Verdict of the program for a native syscall.
fn verdict(p: &Program, name: &str, args: [u64; 6]) -> u32 {
    sim::run(p.instructions(), nr(name), X86_64, args)
}

/// How a filtered child ended.
#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
}

/// Forks; the child sets no_new_privs, installs `p` for `prof`, runs `body` and exits
/// with its return value (0 = success, otherwise the number of the failed check).
/// The child only makes raw syscalls, which is what a forked multithreaded process
/// may do.
fn in_filtered_child(
    p: &Program,
    prof: &LinuxSeccomp,
    body: impl FnOnce(Option<OwnedFd>) -> i32,
) -> Exit {
    // SAFETY: the child only calls async-signal-safe functions (prctl, seccomp,
    // raw syscalls, _exit) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain prctl/_exit calls in the forked child.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(200);
            }
            let code = match install(p, prof) {
                Ok(fd) => body(fd),
                Err(_) => 201,
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    }
}

/// A raw syscall; returns `Ok(ret)` or `Err(errno)`.
fn sys(nr: libc::c_long, a: [u64; 6]) -> Result<libc::c_long, i32> {
    // SAFETY: only used with syscalls whose arguments are plain integers or null, or
    // that fail before dereferencing anything.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn a0(v: u64) -> [u64; 6] {
    [v, 0, 0, 0, 0, 0]
}

#[test]
fn docker_profile_compiles_within_limits() {
    let p = compile(&docker()).unwrap();
    eprintln!("docker-like profile: {} BPF instructions", p.len());
    assert!(p.len() < bpf::MAX_INSNS);
    assert!(!p.is_empty());
}

#[test]
fn docker_profile_semantics_in_simulator() {
    let p = compile(&docker()).unwrap();
    let allow = libc::SECCOMP_RET_ALLOW;
    assert_eq!(verdict(&p, "read", [0; 6]), allow);
    assert_eq!(verdict(&p, "writev", [0; 6]), allow);
    assert_eq!(verdict(&p, "keyctl", [0; 6]), errno(libc::EPERM));
    assert_eq!(verdict(&p, "unshare", [0; 6]), errno(libc::EPERM));
    assert_eq!(verdict(&p, "clone3", [0; 6]), errno(libc::ENOSYS));
    assert_eq!(verdict(&p, "personality", a0(0xffff_ffff)), allow);
    assert_eq!(verdict(&p, "personality", a0(8)), allow);
    assert_eq!(
        verdict(&p, "personality", a0(0x0040_0000)),
        errno(libc::EPERM)
    );
    // The high word counts: 0x1_0000_0008 is not 8.
    assert_eq!(
        verdict(&p, "personality", a0(0x1_0000_0008)),
        errno(libc::EPERM)
    );
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(verdict(&p, "clone", a0(sigchld)), allow);
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(
        verdict(&p, "clone", a0(newuser | sigchld)),
        errno(libc::EPERM)
    );
    assert_eq!(verdict(&p, "socket", a0(libc::AF_UNIX as u64)), allow);
    assert_eq!(
        verdict(&p, "socket", a0(libc::AF_VSOCK as u64)),
        errno(libc::EPERM)
    );
    // Unknown numbers get the default action.
    assert_eq!(
        sim::run(p.instructions(), 4000, X86_64, [0; 6]),
        errno(libc::EPERM)
    );
    // -1 (a syscall skipped by a tracer) is not x32.
    assert_eq!(
        sim::run(p.instructions(), u32::MAX, X86_64, [0; 6]),
        errno(libc::EPERM)
    );

    // x32 is listed: its own numbers are used, 64-bit-only entries are not allowed.
    let x32 = |n: u32| sim::run(p.instructions(), n | X32_BIT, X86_64, [0; 6]);
    assert_eq!(x32(nr("getpid")), allow);
    assert_eq!(x32(514), allow); // x32 ioctl
    assert_eq!(x32(nr("ioctl")), errno(libc::EPERM));
    assert_eq!(x32(nr("keyctl")), errno(libc::EPERM));

    // i386: its own numbers, only low words compared.
    let i386 = |n: u32, a: u64| sim::run(p.instructions(), n, I386, a0(a));
    assert_eq!(i386(20, 0), allow); // getpid
    assert_eq!(i386(310, 0), errno(libc::EPERM)); // unshare
    assert_eq!(i386(435, 0), errno(libc::ENOSYS)); // clone3
    assert_eq!(i386(136, 0xffff_ffff), allow); // personality
    assert_eq!(i386(136, 7), errno(libc::EPERM));
    assert_eq!(i386(120, sigchld), allow); // clone
    assert_eq!(i386(120, newuser), errno(libc::EPERM));

    // Other architectures are bad arch → kill.
    let aarch64 = sim::run(p.instructions(), 172, 0xC000_00B7, [0; 6]);
    assert_eq!(aarch64, libc::SECCOMP_RET_KILL_THREAD);
}

#[test]
fn x32_is_bad_arch_unless_listed() {
    let p = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).unwrap();
    let run = |n, a| sim::run(p.instructions(), n, a, [0; 6]);
    assert_eq!(
        run(nr("getpid") | X32_BIT, X86_64),
        libc::SECCOMP_RET_KILL_THREAD
    );
    assert_eq!(run(u32::MAX, X86_64), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(20, I386), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(run(nr("getpid"), X86_64), libc::SECCOMP_RET_ALLOW);
}

#[test]
fn docker_profile_in_kernel() {
    let prof = docker();
    let p = compile(&prof).unwrap();
    let status = in_filtered_child(&p, &prof, |_| {
        use libc::*;
        let sigchld = SIGCHLD as u64;
        if sys(SYS_getpid, [0; 6]).is_err() {
            return 1;
        }
        if sys(SYS_unshare, a0(CLONE_NEWUSER as u64)) != Err(EPERM) {
            return 2;
        }
        if sys(SYS_keyctl, [0; 6]) != Err(EPERM) {
            return 3;
        }
        if sys(SYS_clone3, [0; 6]) != Err(ENOSYS) {
            return 4;
        }
        if sys(SYS_personality, a0(0xffff_ffff)).is_err() {
            return 5;
        }
        if sys(SYS_personality, a0(ADDR_NO_RANDOMIZE as u64)) != Err(EPERM) {
            return 6;
        }
        // MASKED_EQ both ways: a namespace flag is refused, a plain fork-like clone
        // works (the clone child exits right away).
        if sys(SYS_clone, a0(CLONE_NEWUSER as u64 | sigchld)) != Err(EPERM) {
            return 7;
        }
        match sys(SYS_clone, a0(sigchld)) {
            Ok(0) => {
                // SAFETY: exiting the clone child immediately.
                unsafe { _exit(0) }
            }
            Ok(child) => {
                let mut st = 0;
                // SAFETY: waiting for our own child.
                if unsafe { waitpid(child as pid_t, &mut st, 0) } != child as pid_t {
                    return 8;
                }
            }
            Err(_) => return 9,
        }
        // NE both ways.
        if sys(SYS_socket, a0(AF_VSOCK as u64)) != Err(EPERM) {
            return 10;
        }
        match sys(SYS_socket, [AF_UNIX as u64, SOCK_STREAM as u64, 0, 0, 0, 0]) {
            // SAFETY: closing the socket we just got.
            Ok(fd) => unsafe {
                close(fd as c_int);
            },
            Err(_) => return 11,
        }
        0
    });
    assert_eq!(status, Exit::Code(0));
}

#[test]
fn x32_syscall_is_killed_in_kernel() {
    let prof =
        profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}));
    let p = compile(&prof).unwrap();
    let status = in_filtered_child(&p, &prof, |_| {
        let _ = sys(
            libc::SYS_getpid | libc::c_long::from(X32_BIT as i32),
            [0; 6],
        );
        0
    });
    assert_eq!(status, Exit::Signal(libc::SIGSYS));
}

#[test]
fn kill_process_kills_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let prof = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]
        }));
        let p = compile(&prof).unwrap();
        let status = in_filtered_child(&p, &prof, |_| {
            if sys(libc::SYS_getpid, [0; 6]).is_err() {
                return 1;
            }
            let _ = sys(libc::SYS_getppid, [0; 6]);
            2
        });
        assert_eq!(status, Exit::Signal(libc::SIGSYS), "{action}");
    }
}

#[test]
fn notify_returns_listener() {
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["getuid"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    let p = compile(&prof).unwrap();
    assert!(uses_notify(&prof));
    let status = in_filtered_child(&p, &prof, |fd| {
        let Some(fd) = fd else { return 1 };
        if sys(libc::SYS_getuid, [0; 6]).is_err() {
            return 2;
        }
        // With nobody listening any more, notifying syscalls fail with ENOSYS.
        drop(fd);
        if sys(libc::SYS_getppid, [0; 6]) != Err(libc::ENOSYS) {
            return 3;
        }
        0
    });
    assert_eq!(status, Exit::Code(0));
}

#[test]
fn filter_flags_are_accepted() {
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]
    }));
    let p = compile(&prof).unwrap();
    let status = in_filtered_child(&p, &prof, |_| {
        if sys(libc::SYS_getppid, [0; 6]) != Err(77) {
            return 1;
        }
        0
    });
    assert_eq!(status, Exit::Code(0));
}

const OPS: [(&str, Op); 7] = [
    ("SCMP_CMP_NE", Op::ScmpCmpNe),
    ("SCMP_CMP_LT", Op::ScmpCmpLt),
    ("SCMP_CMP_LE", Op::ScmpCmpLe),
    ("SCMP_CMP_EQ", Op::ScmpCmpEq),
    ("SCMP_CMP_GE", Op::ScmpCmpGe),
    ("SCMP_CMP_GT", Op::ScmpCmpGt),
    ("SCMP_CMP_MASKED_EQ", Op::ScmpCmpMaskedEq),
];

const VALUE: u64 = 0x1_0000_0005;
const MASK_DATUM: u64 = 0x1_0000_0004;
const PROBES: [u64; 9] = [
    VALUE,
    VALUE - 1,
    VALUE + 1,
    0x6,
    0x5,
    0x2_0000_0000,
    0x1_0000_0007,
    u64::MAX,
    0,
];

fn expected(op: Op, a: u64) -> bool {
    match op {
        Op::ScmpCmpNe => a != VALUE,
        Op::ScmpCmpLt => a < VALUE,
        Op::ScmpCmpLe => a <= VALUE,
        Op::ScmpCmpEq => a == VALUE,
        Op::ScmpCmpGe => a >= VALUE,
        Op::ScmpCmpGt => a > VALUE,
        Op::ScmpCmpMaskedEq => a & VALUE == MASK_DATUM,
    }
}

fn op_profile(op: &str) -> LinuxSeccomp {
    profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
            "args": [{"index": 3, "value": VALUE, "valueTwo": MASK_DATUM, "op": op}]
        }]
    }))
}

#[test]
fn comparisons_in_simulator() {
    for (name, op) in OPS {
        let p = compile(&op_profile(name)).unwrap();
        for a in PROBES {
            let want = if expected(op, a) {
                errno(99)
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(
                verdict(&p, "getpid", [0, 0, 0, a, 0, 0]),
                want,
                "{name} {a:#x}"
            );
        }
    }
}

#[test]
fn comparisons_in_kernel() {
    for (name, op) in OPS {
        let prof = op_profile(name);
        let p = compile(&prof).unwrap();
        let status = in_filtered_child(&p, &prof, |_| probe_all(op));
        assert_eq!(status, Exit::Code(0), "{name}");
    }
}

/// Child side of `comparisons_in_kernel`: 0, or 1 + the index of the failing probe.
fn probe_all(op: Op) -> i32 {
    for (i, a) in PROBES.iter().enumerate() {
        let r = sys(libc::SYS_getpid, [0, 0, 0, *a, 0, 0]);
        let ok = if expected(op, *a) {
            r == Err(99)
        } else {
            r.is_ok()
        };
        if !ok {
            return i as i32 + 1;
        }
    }
    0
}

#[test]
fn same_index_args_are_ored_and_rules_fall_through() {
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // Same index twice: runc turns every condition into its own rule.
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11, "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}
            ]},
            // Distinct indexes: ANDed.
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12, "args": [
                {"index": 2, "value": 4, "op": "SCMP_CMP_EQ"},
                {"index": 3, "value": 5, "op": "SCMP_CMP_EQ"}
            ]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [
                {"index": 2, "value": 4, "op": "SCMP_CMP_EQ"}
            ]},
            // Unconditional beats conditional, whatever the order.
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14, "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}
            ]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 15}
        ]
    }));
    let p = compile(&prof).unwrap();
    let v = |args| verdict(&p, "getpid", args);
    assert_eq!(v([1, 0, 0, 0, 0, 0]), errno(11));
    assert_eq!(v([2, 0, 0, 0, 0, 0]), errno(11));
    assert_eq!(v([0, 3, 0, 0, 0, 0]), errno(11));
    assert_eq!(v([0, 0, 4, 5, 0, 0]), errno(12));
    assert_eq!(v([0, 0, 4, 6, 0, 0]), errno(13));
    assert_eq!(v([0, 0, 0, 5, 0, 0]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(verdict(&p, "getppid", a0(1)), errno(15));
    assert_eq!(verdict(&p, "getppid", a0(0)), errno(15));

    let status = in_filtered_child(&p, &prof, |_| {
        let cases: [([u64; 6], Result<(), i32>); 5] = [
            ([2, 0, 0, 0, 0, 0], Err(11)),
            ([0, 3, 0, 0, 0, 0], Err(11)),
            ([0, 0, 4, 5, 0, 0], Err(12)),
            ([0, 0, 4, 6, 0, 0], Err(13)),
            ([0, 0, 0, 5, 0, 0], Ok(())),
        ];
        for (i, (args, want)) in cases.iter().enumerate() {
            if sys(libc::SYS_getpid, *args).map(|_| ()) != *want {
                return i as i32 + 1;
            }
        }
        0
    });
    assert_eq!(status, Exit::Code(0));
}

/// 600 conditional rules spread over many syscalls: blocks and tree nodes far
/// beyond the 255-instruction reach of conditional jumps.
fn many_rules(n: usize) -> (LinuxSeccomp, Vec<&'static str>) {
    let names: Vec<&'static str> = syscalls::Sysno::iter()
        .map(|s| s.name())
        .filter(|n| !matches!(*n, "exit" | "exit_group" | "wait4" | "rt_sigreturn"))
        .collect();
    let rules: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "names": [names[i % names.len()]], "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1000 + i,
                "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]
            })
        })
        .collect();
    let prof = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    (prof, names)
}

#[test]
fn six_hundred_rules_resolve_long_jumps() {
    let (prof, names) = many_rules(600);
    let p = compile(&prof).unwrap();
    eprintln!("600-rule profile: {} BPF instructions", p.len());
    assert!(p.len() > 600);
    for i in 0..600 {
        let name = names[i % names.len()];
        assert_eq!(
            verdict(&p, name, a0(i as u64)),
            errno(1000 + i as i32),
            "rule {i}"
        );
        assert_eq!(
            verdict(&p, name, a0(9999)),
            libc::SECCOMP_RET_ALLOW,
            "rule {i}"
        );
    }
    // The kernel accepts it, and a rule at the far end of the program works.
    let status = in_filtered_child(&p, &prof, |_| {
        match sys(libc::SYS_getpid, a0(nr_index("getpid"))) {
            Err(e) if e == 1000 + nr_index("getpid") as i32 => 0,
            _ => 1,
        }
    });
    assert_eq!(status, Exit::Code(0));
}

/// Index of `name` in `many_rules`'s name list (the rule for it has `arg0 == index`).
fn nr_index(name: &str) -> u64 {
    syscalls::Sysno::iter()
        .map(|s| s.name())
        .filter(|n| !matches!(*n, "exit" | "exit_group" | "wait4" | "rt_sigreturn"))
        .position(|n| n == name)
        .unwrap() as u64
}

#[test]
fn oversized_program_is_an_error() {
    let (prof, _) = many_rules(1000);
    match compile(&prof) {
        Err(SeccompError::TooLong { len, max: 4096 }) => assert!(len > 4096),
        other => panic!("expected TooLong, got {other:?}"),
    }
}

#[test]
fn profile_errors() {
    let err = |v| compile(&profile(v)).unwrap_err().to_string();
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]})),
        "seccomp: syscall rule for \"read\" compares argument index 7, but syscalls have 6 args (0-5)"
    );
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]})),
        "seccomp: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW (for syscall \"read\")"
    );
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
        "seccomp: SCMP_ACT_NOTIFY cannot be used as defaultAction"
    );
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]})),
        "seccomp: syscall \"read\" has conflicting unconditional rules (SCMP_ACT_ERRNO and SCMP_ACT_KILL_PROCESS)"
    );
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000})),
        "seccomp: errnoRet 70000 for defaultAction is out of range (max 65535)"
    );
    assert_eq!(
        err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_LOG"}]})
        ),
        "seccomp: syscall rule with an empty syscall name"
    );
    // Unknown actions never reach the compiler: the OCI types reject them.
    let bad = serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_FOO"}));
    assert!(bad.is_err());
}

#[test]
fn actions_and_defaults() {
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_TRACE"},
            {"names": ["write"], "action": "SCMP_ACT_TRACE", "errnoRet": 42},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getuid"], "action": "SCMP_ACT_KILL"},
            {"names": ["gettid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["no_such_syscall", "close"], "action": "SCMP_ACT_ALLOW"},
            // Same as the default (EPERM): dropped, not an error.
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    }));
    let p = compile(&prof).unwrap();
    assert_eq!(verdict(&p, "read", [0; 6]), libc::SECCOMP_RET_TRACE | 1);
    assert_eq!(verdict(&p, "write", [0; 6]), libc::SECCOMP_RET_TRACE | 42);
    assert_eq!(verdict(&p, "getpid", [0; 6]), libc::SECCOMP_RET_LOG);
    assert_eq!(verdict(&p, "getppid", [0; 6]), libc::SECCOMP_RET_TRAP);
    assert_eq!(verdict(&p, "getuid", [0; 6]), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(verdict(&p, "gettid", [0; 6]), libc::SECCOMP_RET_USER_NOTIF);
    assert_eq!(verdict(&p, "close", [0; 6]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(verdict(&p, "open", [0; 6]), errno(libc::EPERM));
    assert_eq!(verdict(&p, "mmap", [0; 6]), errno(libc::EPERM));
    assert_eq!(
        prof.syscalls().as_ref().unwrap()[0].action(),
        A::ScmpActTrace
    );
}

#[test]
fn arch_tables_are_sorted() {
    let sorted = |t: &[(&str, u32)]| t.windows(2).all(|w| w[0].0 < w[1].0);
    assert!(sorted(compile::X32_SPECIAL));
}

/// An i386-ABI syscall through `int 0x80` (IA32 emulation).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a0: u32) -> i32 {
    let ret: i32;
    // SAFETY: `int 0x80` with integer arguments only; the kernel clobbers r8-r11 on
    // this path, so they are declared as clobbered.
    unsafe {
        std::arch::asm!(
            // rbx is reserved by LLVM: swap the argument in and out around the call.
            "xchg {a0:r}, rbx",
            "int 0x80",
            "xchg {a0:r}, rbx",
            a0 = inout(reg) u64::from(a0) => _,
            inlateout("eax") nr as i32 => ret,
            in("ecx") 0u32,
            in("edx") 0u32,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_abi_in_kernel() {
    let unfiltered =
        profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}));
    let p = compile(&unfiltered).unwrap();
    // The kernel may run without IA32 emulation; then there is nothing to test.
    let supported = in_filtered_child(&p, &unfiltered, |_| i32::from(int80(20, 0) <= 0));
    if supported != Exit::Code(0) {
        eprintln!("skipping: no IA32 emulation ({supported:?})");
        return;
    }
    let prof = docker();
    let p = compile(&prof).unwrap();
    let status = in_filtered_child(&p, &prof, |_| {
        if int80(20, 0) <= 0 {
            return 1; // getpid
        }
        if int80(310, libc::CLONE_NEWUSER as u32) != -libc::EPERM {
            return 2; // unshare
        }
        if int80(435, 0) != -libc::ENOSYS {
            return 3; // clone3
        }
        if int80(136, 0xffff_ffff) < 0 {
            return 4; // personality query
        }
        if int80(136, libc::ADDR_NO_RANDOMIZE as u32) != -libc::EPERM {
            return 5;
        }
        0
    });
    assert_eq!(status, Exit::Code(0));

    // Without SCMP_ARCH_X86 an i386 syscall is a bad arch: the thread is killed.
    let prof = profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let p = compile(&prof).unwrap();
    let status = in_filtered_child(&p, &prof, |_| {
        int80(20, 0);
        0
    });
    assert_eq!(status, Exit::Signal(libc::SIGSYS));
}
