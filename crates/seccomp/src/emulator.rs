//! A classic BPF interpreter for tests: runs a compiled filter against a
//! made-up `seccomp_data` the way the kernel would, and checks the program
//! is one the kernel's verifier accepts.

use crate::program::{code, Instruction};

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeccompData {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) args: [u64; 6],
}

impl SeccompData {
    pub(crate) fn new(arch: u32, nr: u32, args: &[u64]) -> Self {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        Self { nr, arch, args: all }
    }

    fn bytes(&self) -> [u8; 64] {
        let mut out = [0; 64];
        out[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        out[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        out[8..16].copy_from_slice(&0x1234_5678u64.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        out
    }
}

/// Panics where the kernel would reject the program: empty or too long,
/// an unknown code, a jump out of bounds, a load outside `seccomp_data`,
/// or a last instruction that is not a `ret`.
pub(crate) fn check(program: &[Instruction]) {
    assert!(!program.is_empty() && program.len() <= 4096, "length {}", program.len());
    for (pc, insn) in program.iter().enumerate() {
        match insn.code {
            code::LD_ABS => assert!(insn.k < 64 && insn.k % 4 == 0, "load at {pc}"),
            code::AND | code::RET => {}
            code::JEQ | code::JGT | code::JGE | code::JSET => {
                let far = pc + 1 + usize::from(insn.jt.max(insn.jf));
                assert!(far < program.len(), "jump out of bounds at {pc}");
            }
            other => panic!("unknown code {other:#x} at {pc}"),
        }
    }
    assert_eq!(program[program.len() - 1].code, code::RET, "last instruction is not ret");
}

/// The filter's answer (`SECCOMP_RET_*` | data) for `data`.
pub(crate) fn run(program: &[Instruction], data: &SeccompData) -> u32 {
    check(program);
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0;
    loop {
        let insn = program[pc];
        let branch = |taken: bool| pc + 1 + usize::from(if taken { insn.jt } else { insn.jf });
        pc = match insn.code {
            code::LD_ABS => {
                let k = insn.k as usize;
                a = u32::from_ne_bytes(bytes[k..k + 4].try_into().expect("4 bytes"));
                pc + 1
            }
            code::AND => {
                a &= insn.k;
                pc + 1
            }
            code::JEQ => branch(a == insn.k),
            code::JGT => branch(a > insn.k),
            code::JGE => branch(a >= insn.k),
            code::JSET => branch(a & insn.k != 0),
            code::RET => return insn.k,
            other => panic!("unknown code {other:#x}"),
        };
    }
}

/// The filter's answer for the native-ABI call `name` with `args`.
pub(crate) fn answer(filter: &crate::Filter, name: &str, args: &[u64]) -> u32 {
    let nr = crate::syscall_number(name).unwrap_or_else(|| panic!("no syscall {name}"));
    run(&filter.program, &SeccompData::new(native_audit_arch(), nr, args))
}

pub(crate) fn native_audit_arch() -> u32 {
    crate::syscalls::NATIVE_ARCH.and_then(|a| a.audit_arch()).expect("native arch")
}
