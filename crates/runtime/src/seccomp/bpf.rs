//! A tiny classic-BPF assembler with symbolic forward labels.
//!
//! Conditional jumps in classic BPF have 8-bit offsets, so a filter with a few
//! hundred syscalls cannot jump directly from the dispatch code to far-away rule
//! blocks. The assembler lets the compiler target labels freely and then relaxes:
//! a branch whose target is more than 255 instructions away is rewritten to
//! branch to an adjacent `ja` (which has a 32-bit offset) that reaches the target.

use super::SeccompError;

/// Kernel limit on filter length (`BPF_MAXINSNS`).
pub(super) const MAX_INSNS: usize = 4096;

// Opcodes as `sock_filter::code` wants them (libc's BPF_* constants are u32).
pub(super) const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub(super) const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(super) const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(super) const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(super) const JMP_JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub(super) const JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub(super) const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// A forward jump target: a label, or the instruction right after the branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Next,
    Label(Label),
}

/// A position in the program, bound once with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Label(usize);

enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Bind(Label),
}

/// Builds a program from statements, branches and labels.
#[derive(Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub(super) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    pub(super) fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    pub(super) fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }

    pub(super) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }

    pub(super) fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    /// Resolves labels and emits the final program.
    pub(super) fn finish(self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        // far[i] = (true branch needs a trampoline, false branch needs one). Flags
        // only ever get set, so the loop terminates; each pass recomputes layout.
        let mut far = vec![(false, false); self.items.len()];
        loop {
            let (pos, labels) = self.layout(&far)?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let after = pos[i] + 1;
                    let f = &mut far[i];
                    for (target, is_far) in [(jt, &mut f.0), (jf, &mut f.1)] {
                        if let Target::Label(l) = target {
                            let dest = labels[l.0];
                            if dest < after {
                                return Err(SeccompError::Internal("backward jump"));
                            }
                            if !*is_far && dest - after > usize::from(u8::MAX) {
                                *is_far = true;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                return self.emit(&far, &pos, &labels);
            }
        }
    }

    /// Instruction index of every item and every label under the given relaxation.
    fn layout(&self, far: &[(bool, bool)]) -> Result<(Vec<usize>, Vec<usize>), SeccompError> {
        let mut pos = Vec::with_capacity(self.items.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut at = 0;
        for (item, &(ft, ff)) in self.items.iter().zip(far) {
            pos.push(at);
            at += match item {
                Item::Stmt { .. } => 1,
                Item::Jump { .. } => 1 + usize::from(ft) + usize::from(ff),
                Item::Bind(l) => {
                    labels[l.0] = at;
                    0
                }
            };
        }
        if labels.contains(&usize::MAX) {
            return Err(SeccompError::Internal("unbound label"));
        }
        // A jump to a label bound at the very end would leave the program.
        if labels.contains(&at) {
            return Err(SeccompError::Internal("label past the end of the program"));
        }
        if at > MAX_INSNS {
            return Err(SeccompError::TooLong {
                len: at,
                max: MAX_INSNS,
            });
        }
        Ok((pos, labels))
    }

    fn emit(
        &self,
        far: &[(bool, bool)],
        pos: &[usize],
        labels: &[usize],
    ) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let offset = |dest: usize, after: usize| -> Result<u32, SeccompError> {
            u32::try_from(dest - after).map_err(|_| SeccompError::Internal("jump too long"))
        };
        let mut out = Vec::with_capacity(labels.len() + self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            match *item {
                Item::Stmt { code, k } => out.push(insn(code, 0, 0, k)),
                Item::Bind(_) => {}
                Item::Jump { code, k, jt, jf } => {
                    let (ft, ff) = far[i];
                    let after = pos[i] + 1;
                    let tramps = usize::from(ft) + usize::from(ff);
                    // Near targets are measured from `after`; `Next` skips the
                    // trampolines that follow this branch.
                    let near = |t: Target| -> Result<u8, SeccompError> {
                        let dest = match t {
                            Target::Next => after + tramps,
                            Target::Label(l) => labels[l.0],
                        };
                        u8::try_from(dest - after)
                            .map_err(|_| SeccompError::Internal("relaxation missed a branch"))
                    };
                    let jt_off = if ft { 0 } else { near(jt)? };
                    let jf_off = if ff { u8::from(ft) } else { near(jf)? };
                    out.push(insn(code, jt_off, jf_off, k));
                    let mut tramp_at = after;
                    for (is_far, t) in [(ft, jt), (ff, jf)] {
                        if is_far {
                            let Target::Label(l) = t else {
                                return Err(SeccompError::Internal("far jump to next"));
                            };
                            out.push(insn(JMP_JA, 0, 0, offset(labels[l.0], tramp_at + 1)?));
                            tramp_at += 1;
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod sim {
    //! A classic-BPF interpreter for the subset the compiler emits, to check
    //! programs (including jump ranges) without installing them.

    use super::*;

    /// Runs `prog` on a `seccomp_data` and returns the filter's verdict.
    /// Panics on malformed programs (out-of-range jumps, falling off the end).
    pub(crate) fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            let cond = |c: bool| {
                if c {
                    usize::from(i.jt)
                } else {
                    usize::from(i.jf)
                }
            };
            match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    assert!(o & 3 == 0 && o + 4 <= 64, "bad load offset {o}");
                    a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                ALU_AND_K => a &= i.k,
                JMP_JA => pc += i.k as usize,
                JMP_JEQ_K => pc += cond(a == i.k),
                JMP_JGT_K => pc += cond(a > i.k),
                JMP_JGE_K => pc += cond(a >= i.k),
                RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
            assert!(pc < prog.len(), "jump past the end");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_branches_get_trampolines() {
        let mut asm = Asm::default();
        let far = asm.label();
        let near = asm.label();
        asm.load(0);
        asm.jump(JMP_JEQ_K, 1, Target::Label(far), Target::Next);
        asm.jump(JMP_JEQ_K, 2, Target::Label(near), Target::Label(far));
        asm.bind(near);
        for _ in 0..300 {
            asm.ret(7);
        }
        asm.bind(far);
        asm.ret(9);
        let prog = asm.finish().unwrap();
        // load, jeq+tramp, jeq+tramp, 300 rets, ret.
        assert_eq!(prog.len(), 1 + 2 + 2 + 300 + 1);
        assert_eq!(sim::run(&prog, 1, 0, [0; 6]), 9);
        assert_eq!(sim::run(&prog, 2, 0, [0; 6]), 7);
        assert_eq!(sim::run(&prog, 3, 0, [0; 6]), 9);
    }

    #[test]
    fn too_long_is_an_error() {
        let mut asm = Asm::default();
        for _ in 0..=MAX_INSNS {
            asm.ret(0);
        }
        assert!(matches!(
            asm.finish(),
            Err(SeccompError::TooLong {
                len: 4097,
                max: 4096
            })
        ));
    }
}
