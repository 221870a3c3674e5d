//! cgroup v2 device access control: a `BPF_PROG_TYPE_CGROUP_DEVICE` program compiled from
//! the spec's device rules and attached to the container's cgroup with bpf(2).
//!
//! Rules are evaluated last to first; the first match decides, so later rules override
//! earlier ones as with v1 `devices.allow`/`devices.deny`. An allow rule matches when the
//! requested access is a subset of its access; a deny rule matches when they overlap.
//! Unmatched requests are denied.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{CgroupError, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61;
const AND_K: u8 = 0x57;
const RSH_K: u8 = 0x77;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

/// Compile device rules to a program. `r2` = device type, `r3` = requested access,
/// `r4` = major, `r5` = minor; `r1` is scratch after the prologue.
pub(super) fn compile(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let typ = match rule.typ() {
            None | Some(LinuxDeviceType::A) => None,
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(DEV_CHAR),
            Some(LinuxDeviceType::P) => continue,
        };
        let access = parse_access(rule.access().as_deref().unwrap_or(""))?;
        // Each conditional jump's offset is patched to the end of the block below.
        let mut block: Vec<Insn> = Vec::new();
        if let Some(t) = typ {
            block.push(insn(JNE_K, 2, 0, 0, t));
        }
        if access != ACC_ALL {
            block.push(insn(MOV_X, 1, 3, 0, 0));
            block.push(insn(AND_K, 1, 0, 0, access));
            if rule.allow() {
                block.push(insn(JNE_X, 1, 3, 0, 0));
            } else {
                block.push(insn(JEQ_K, 1, 0, 0, 0));
            }
        }
        for (reg, num) in [(4u8, rule.major()), (5u8, rule.minor())] {
            if let Some(n) = num.filter(|&n| n >= 0) {
                let n = i32::try_from(n).map_err(|_| CgroupError::InvalidValue {
                    setting: "linux.resources.devices major/minor".into(),
                    value: n.to_string(),
                    reason: "out of range".into(),
                })?;
                block.push(insn(JNE_K, reg, 0, 0, n));
            }
        }
        let unconditional = block.is_empty();
        block.push(insn(MOV_K, 0, 0, 0, i32::from(rule.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        if unconditional {
            // Earlier rules and the default are unreachable; the verifier rejects dead code.
            prog.extend(block);
            return Ok(prog);
        }
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if matches!(ins.code, JNE_K | JNE_X | JEQ_K) {
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(insn(MOV_K, 0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

fn parse_access(s: &str) -> Result<i32> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    s.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(CgroupError::InvalidValue {
            setting: "linux.resources.devices access".into(),
            value: s.into(),
            reason: "only r, w and m are allowed".into(),
        }),
    })
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-padded repr(C) prefix of `union bpf_attr` for `cmd`, valid
    // for reads and writes of `size_of::<T>()` bytes; pointers inside it are live for the
    // duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load a program; on failure the verifier log is appended to the error.
pub(super) fn load(prog: &[Insn]) -> io::Result<OwnedFd> {
    let license = CString::new("Apache-2.0").expect("no NUL");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(owned_fd(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    if text.trim().is_empty() {
                        Err(first)
                    } else {
                        Err(io::Error::new(
                            first.kind(),
                            format!("{first}; verifier log: {}", text.trim()),
                        ))
                    }
                }
            }
        }
    }
}

/// Replace the device programs attached to cgroup `dir` with one built from `rules`.
/// An empty rule list leaves the cgroup unrestricted, as on v1.
pub(super) fn apply_device_rules(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let prog = compile(rules)?;
    let err = |op: &str| {
        let path = dir.to_path_buf();
        let op = op.to_string();
        move |source| CgroupError::Bpf { path, op, source }
    };
    let cgroup = std::fs::File::open(dir).map_err(err("open cgroup directory"))?;
    let cg_fd = cgroup.as_raw_fd() as u32;
    let prog_fd = load(&prog).map_err(err("BPF_PROG_LOAD"))?;

    let mut ids = [0u32; 64];
    let mut query = QueryAttr {
        target_fd: cg_fd,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut query).map_err(err("BPF_PROG_QUERY"))?;
    let old: Vec<u32> = ids[..query.prog_cnt.min(64) as usize].to_vec();
    let flags = if old.is_empty() {
        BPF_F_ALLOW_MULTI
    } else {
        query.attach_flags
    };

    let mut attach = AttachAttr {
        target_fd: cg_fd,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(err("BPF_PROG_ATTACH"))?;

    if flags & BPF_F_ALLOW_MULTI != 0 {
        for id in old {
            let mut get = GetFdByIdAttr {
                prog_id: id,
                ..Default::default()
            };
            let old_fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
                Ok(fd) => owned_fd(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(err("BPF_PROG_GET_FD_BY_ID")(e)),
            };
            let mut detach = AttachAttr {
                target_fd: cg_fd,
                attach_bpf_fd: old_fd.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                attach_flags: 0,
            };
            match bpf(BPF_PROG_DETACH, &mut detach) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(err("BPF_PROG_DETACH")(e)),
            }
        }
    }
    Ok(())
}
