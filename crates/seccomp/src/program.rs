//! Compiling a [`Profile`] into a classic BPF program for `seccomp(2)`.
//!
//! The program has three parts:
//!
//! 1. **Architecture check.** Calls from the native ABI go on. Calls from an
//!    ABI listed in `architectures` that has no table here (32-bit x86 on
//!    x86_64, 32-bit ARM on aarch64, ...) get the profile's default action:
//!    their numbers differ, so no rule can name them. Calls from any other
//!    ABI kill the process, as libseccomp's bad-arch action does. On x86_64
//!    a call number with bit 30 set is an x32 call: default action if
//!    `SCMP_ARCH_X32` is listed, else kill process.
//! 2. **Rules**, in profile order, so that for one call the first matching
//!    rule wins. Consecutive argument-free entries with the same action share
//!    one `ret` behind a chain of `jeq nr` tests (at most 255 to a chain);
//!    each entry with argument conditions is its own block that jumps past
//!    itself on any mismatch. No jump crosses more than one block, so the
//!    8-bit jump offsets of classic BPF hold however many rules there are.
//! 3. **Default action.**

use crate::error::SeccompError;
use crate::profile::{Action, Arch, ArgCondition, Op, Profile};
use crate::syscalls::{syscall_number, NATIVE_ARCH};

/// The most instructions the kernel accepts in one filter (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instruction {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

/// Instruction codes used here (`BPF_LD|BPF_W|BPF_ABS`, `BPF_JMP|BPF_JEQ|BPF_K`, ...).
pub(crate) mod code {
    pub(crate) const LD_ABS: u16 = 0x20;
    pub(crate) const AND: u16 = 0x54;
    pub(crate) const JEQ: u16 = 0x15;
    pub(crate) const JGT: u16 = 0x25;
    pub(crate) const JGE: u16 = 0x35;
    pub(crate) const JSET: u16 = 0x45;
    pub(crate) const RET: u16 = 0x06;
}

/// `SECCOMP_RET_*` values, the top 16 bits of a filter's answer.
pub(crate) mod ret {
    pub(crate) const KILL_PROCESS: u32 = 0x8000_0000;
    pub(crate) const KILL_THREAD: u32 = 0x0000_0000;
    pub(crate) const TRAP: u32 = 0x0003_0000;
    pub(crate) const ERRNO: u32 = 0x0005_0000;
    pub(crate) const TRACE: u32 = 0x7ff0_0000;
    pub(crate) const LOG: u32 = 0x7ffc_0000;
    pub(crate) const ALLOW: u32 = 0x7fff_0000;
    pub(crate) const DATA: u32 = 0x0000_ffff;
}

/// Offsets into `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

/// Bit 30 of the call number marks the x32 ABI on x86_64 kernels.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const EPERM: u32 = 1;

/// A compiled profile, ready to [`install`](Filter::install).
#[derive(Debug, Clone)]
pub struct Filter {
    pub(crate) program: Vec<Instruction>,
    pub(crate) flags: u32,
    unknown_syscalls: Vec<String>,
}

impl Filter {
    /// The program's length in BPF instructions.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Names in the profile that the native ABI does not have, in first-seen
    /// order. They were skipped, as runc does; callers log them.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown_syscalls
    }
}

/// One (call, rule) pair of the profile, in profile order.
struct Entry<'a> {
    name: &'a str,
    nr: u32,
    ret: u32,
    args: &'a [ArgCondition],
}

/// Compiles `profile` for the native architecture. Pure: no system calls.
///
/// Unknown call names are skipped (see [`Filter::unknown_syscalls`]); rules
/// with no names are ignored. Fails on [`Action::Notify`], on an argument
/// index above 5, and on programs longer than [`MAX_INSTRUCTIONS`].
pub fn compile(profile: &Profile) -> Result<Filter, SeccompError> {
    let native = NATIVE_ARCH.ok_or(SeccompError::UnsupportedPlatform)?;
    let default_ret = return_value(profile.default_action, None, profile.default_errno_ret)?;

    let mut unknown_syscalls: Vec<String> = Vec::new();
    let mut entries = Vec::with_capacity(profile.syscalls.iter().map(|r| r.names.len()).sum());
    for rule in &profile.syscalls {
        let ret = return_value(rule.action, rule.errno_ret, profile.default_errno_ret)?;
        for name in &rule.names {
            if let Some(bad) = rule.args.iter().find(|a| a.index > 5) {
                return Err(SeccompError::ArgumentIndexOutOfRange {
                    index: bad.index,
                    syscall: name.clone(),
                });
            }
            match syscall_number(name) {
                Some(nr) => entries.push(Entry { name, nr, ret, args: &rule.args }),
                None if unknown_syscalls.contains(name) => {}
                None => unknown_syscalls.push(name.clone()),
            }
        }
    }

    let mut program = Vec::with_capacity(entries.len() + 32);
    emit_arch_check(&mut program, native, &profile.architectures, default_ret);
    emit_rules(&mut program, &entries)?;
    program.push(ret_insn(default_ret));
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::ProgramTooLong { instructions: program.len() });
    }

    let flags = profile.flags.iter().fold(0, |bits, flag| bits | flag.bit());
    Ok(Filter { program, flags, unknown_syscalls })
}

/// The filter's answer for `action`; `errno_ret` falls back to
/// `default_errno_ret`, then `EPERM`, for [`Action::Errno`].
fn return_value(
    action: Action,
    errno_ret: Option<u32>,
    default_errno_ret: Option<u32>,
) -> Result<u32, SeccompError> {
    Ok(match action {
        Action::Kill | Action::KillThread => ret::KILL_THREAD,
        Action::KillProcess => ret::KILL_PROCESS,
        Action::Trap => ret::TRAP,
        Action::Errno => {
            ret::ERRNO | (errno_ret.or(default_errno_ret).unwrap_or(EPERM) & ret::DATA)
        }
        Action::Trace => ret::TRACE | (errno_ret.unwrap_or(0) & ret::DATA),
        Action::Allow => ret::ALLOW,
        Action::Log => ret::LOG,
        Action::Notify => return Err(SeccompError::UnsupportedAction { action }),
    })
}

fn load(offset: u32) -> Instruction {
    Instruction { code: code::LD_ABS, jt: 0, jf: 0, k: offset }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

fn ret_insn(value: u32) -> Instruction {
    Instruction { code: code::RET, jt: 0, jf: 0, k: value }
}

/// Part 1 of the layout (see the module docs); ends with the call number in A.
fn emit_arch_check(
    program: &mut Vec<Instruction>,
    native: Arch,
    listed: &[Arch],
    default_ret: u32,
) {
    let native_audit = native.audit_arch().unwrap_or_default();
    let mut foreign: Vec<u32> = Vec::new();
    for audit in listed.iter().filter(|a| **a != native).filter_map(|a| a.audit_arch()) {
        if audit != native_audit && !foreign.contains(&audit) {
            foreign.push(audit);
        }
    }
    // At most 22 foreign ABIs exist, so these offsets stay far below 255.
    let f = foreign.len();
    let skip_to_native = if f == 0 { 1 } else { f + 2 };
    program.push(load(ARCH_OFFSET));
    program.push(jump(code::JEQ, native_audit, skip_to_native as u8, 0));
    for (i, audit) in foreign.iter().enumerate() {
        program.push(jump(code::JEQ, *audit, (f - i) as u8, 0));
    }
    program.push(ret_insn(ret::KILL_PROCESS));
    if f > 0 {
        program.push(ret_insn(default_ret));
    }
    program.push(load(NR_OFFSET));

    #[cfg(target_arch = "x86_64")]
    {
        let x32_ret = if listed.contains(&Arch::X32) { default_ret } else { ret::KILL_PROCESS };
        // nr == -1 (a tracer skipping the call) has bit 30 set but is not x32.
        program.push(jump(code::JSET, X32_SYSCALL_BIT, 0, 2));
        program.push(jump(code::JEQ, u32::MAX, 1, 0));
        program.push(ret_insn(x32_ret));
    }
}

/// Part 2 of the layout (see the module docs); expects the call number in A.
fn emit_rules(program: &mut Vec<Instruction>, entries: &[Entry<'_>]) -> Result<(), SeccompError> {
    const MAX_CHAIN: usize = 255;
    let mut a_holds_nr = true;
    let mut i = 0;
    while i < entries.len() {
        if !a_holds_nr {
            program.push(load(NR_OFFSET));
            a_holds_nr = true;
        }
        let first = &entries[i];
        if first.args.is_empty() {
            let chain = entries[i..]
                .iter()
                .take(MAX_CHAIN)
                .take_while(|e| e.args.is_empty() && e.ret == first.ret)
                .count();
            for (n, entry) in entries[i..i + chain].iter().enumerate() {
                let is_last = n + 1 == chain;
                program.push(jump(code::JEQ, entry.nr, (chain - 1 - n) as u8, u8::from(is_last)));
            }
            program.push(ret_insn(first.ret));
            i += chain;
        } else {
            emit_conditional_entry(program, first)?;
            a_holds_nr = false;
            i += 1;
        }
    }
    Ok(())
}

/// A jump target inside one conditional block before its end is known.
#[derive(Clone, Copy)]
enum Target {
    Skip(u8),
    /// Past the block's `ret`: the entry does not match.
    Mismatch,
}

struct Pending {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

/// `jeq nr` → conditions (each falls through when it holds) → `ret`; any
/// mismatch jumps past the `ret`. Leaves an argument half in A.
fn emit_conditional_entry(
    program: &mut Vec<Instruction>,
    entry: &Entry<'_>,
) -> Result<(), SeccompError> {
    use Target::{Mismatch, Skip};
    let mut block = vec![Pending { code: code::JEQ, k: entry.nr, jt: Skip(0), jf: Mismatch }];
    for cond in entry.args {
        emit_condition(&mut block, cond);
    }
    // Block positions: 0..len are `block`, len is the `ret`, len + 1 the end.
    let end = block.len() + 1;
    let too_many = || SeccompError::TooManyConditions {
        syscall: entry.name.to_owned(),
        count: entry.args.len(),
    };
    for (pos, p) in block.iter().enumerate() {
        let resolve = |t: Target| match t {
            Skip(n) => Some(n),
            Mismatch => u8::try_from(end - (pos + 1)).ok(),
        };
        let (jt, jf) = match (resolve(p.jt), resolve(p.jf)) {
            (Some(jt), Some(jf)) => (jt, jf),
            _ => return Err(too_many()),
        };
        program.push(Instruction { code: p.code, jt, jf, k: p.k });
    }
    program.push(ret_insn(entry.ret));
    Ok(())
}

/// Appends a test of one 64-bit argument that falls through when it holds.
/// Each half is compared as a 32-bit word: the high half decides unless it
/// equals the operand's high half.
fn emit_condition(block: &mut Vec<Pending>, cond: &ArgCondition) {
    use Target::{Mismatch, Skip};
    let (lo_off, hi_off) = arg_offsets(cond.index);
    let ld = |off| Pending { code: code::LD_ABS, k: off, jt: Skip(0), jf: Skip(0) };
    let j = |code, k, jt, jf| Pending { code, k, jt, jf };
    let and = |k| Pending { code: code::AND, k, jt: Skip(0), jf: Skip(0) };
    let (v_hi, v_lo) = ((cond.value >> 32) as u32, cond.value as u32);
    let insns = match cond.op {
        Op::EqualTo => vec![
            ld(hi_off),
            j(code::JEQ, v_hi, Skip(0), Mismatch),
            ld(lo_off),
            j(code::JEQ, v_lo, Skip(0), Mismatch),
        ],
        Op::NotEqual => vec![
            ld(hi_off),
            j(code::JEQ, v_hi, Skip(0), Skip(2)),
            ld(lo_off),
            j(code::JEQ, v_lo, Mismatch, Skip(0)),
        ],
        Op::GreaterThan | Op::GreaterEqual => {
            let lo_code = if cond.op == Op::GreaterThan { code::JGT } else { code::JGE };
            vec![
                ld(hi_off),
                j(code::JGT, v_hi, Skip(3), Skip(0)),
                j(code::JEQ, v_hi, Skip(0), Mismatch),
                ld(lo_off),
                j(lo_code, v_lo, Skip(0), Mismatch),
            ]
        }
        Op::LessThan | Op::LessEqual => {
            // a < v is !(a >= v); a <= v is !(a > v).
            let lo_code = if cond.op == Op::LessThan { code::JGE } else { code::JGT };
            vec![
                ld(hi_off),
                j(code::JGT, v_hi, Mismatch, Skip(0)),
                j(code::JEQ, v_hi, Skip(0), Skip(2)),
                ld(lo_off),
                j(lo_code, v_lo, Mismatch, Skip(0)),
            ]
        }
        Op::MaskedEqual => {
            let (want_hi, want_lo) = ((cond.value_two >> 32) as u32, cond.value_two as u32);
            vec![
                ld(hi_off),
                and(v_hi),
                j(code::JEQ, want_hi, Skip(0), Mismatch),
                ld(lo_off),
                and(v_lo),
                j(code::JEQ, want_lo, Skip(0), Mismatch),
            ]
        }
    };
    block.extend(insns);
}

/// Offsets of the low and high 32-bit halves of `args[index]`.
fn arg_offsets(index: u32) -> (u32, u32) {
    let base = ARGS_OFFSET + 8 * index;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{answer, check, native_audit_arch, run, SeccompData};
    use crate::profile::{Flag, SyscallRule};

    const DENIED: u32 = ret::ERRNO | 1;

    fn profile(default_action: Action, syscalls: Vec<SyscallRule>) -> Profile {
        Profile { default_action, syscalls, ..Profile::default() }
    }

    fn rule(names: &[&str], action: Action, args: &[(u32, Op, u64)]) -> SyscallRule {
        SyscallRule {
            args: args
                .iter()
                .map(|&(index, op, value)| ArgCondition { index, value, value_two: 0, op })
                .collect(),
            ..SyscallRule::new(names, action)
        }
    }

    fn errno_rule(names: &[&str], errno: u32, args: &[(u32, Op, u64)]) -> SyscallRule {
        SyscallRule { errno_ret: Some(errno), ..rule(names, Action::Errno, args) }
    }

    fn nr(name: &str) -> u32 {
        syscall_number(name).expect(name)
    }

    #[test]
    fn unmatched_calls_get_the_default_action() {
        let filter = compile(&profile(Action::Errno, vec![rule(&["getpid"], Action::Allow, &[])]))
            .expect("compile");
        assert_eq!(answer(&filter, "getpid", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "getppid", &[]), DENIED);
        let filter = compile(&profile(Action::Allow, vec![])).expect("compile");
        assert_eq!(answer(&filter, "unshare", &[]), ret::ALLOW);
    }

    const EDGES: [u64; 12] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x8000_0000_0000_0000,
        0xffff_ffff_0000_0000,
        u64::MAX,
    ];

    fn holds(op: Op, arg: u64, value: u64, value_two: u64) -> bool {
        match op {
            Op::NotEqual => arg != value,
            Op::LessThan => arg < value,
            Op::LessEqual => arg <= value,
            Op::EqualTo => arg == value,
            Op::GreaterEqual => arg >= value,
            Op::GreaterThan => arg > value,
            Op::MaskedEqual => arg & value == value_two,
        }
    }

    #[test]
    fn every_op_compares_all_64_bits_unsigned() {
        let ops = [
            Op::NotEqual,
            Op::LessThan,
            Op::LessEqual,
            Op::EqualTo,
            Op::GreaterEqual,
            Op::GreaterThan,
            Op::MaskedEqual,
        ];
        for op in ops {
            let seconds: &[u64] = if op == Op::MaskedEqual { &EDGES } else { &[0] };
            for &value in &EDGES {
                for &value_two in seconds {
                    // Index 3 so that neighbouring arguments are distinct.
                    let cond = ArgCondition { index: 3, value, value_two, op };
                    let allow =
                        SyscallRule { args: vec![cond], ..rule(&["getpid"], Action::Allow, &[]) };
                    let filter = compile(&profile(Action::Errno, vec![allow])).expect("compile");
                    for &arg in &EDGES {
                        let args = [!arg, arg ^ 1, !arg, arg, arg ^ 1, !arg];
                        let want =
                            if holds(op, arg, value, value_two) { ret::ALLOW } else { DENIED };
                        assert_eq!(
                            answer(&filter, "getpid", &args),
                            want,
                            "{op:?} arg {arg:#x} value {value:#x} value_two {value_two:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let filter = compile(&profile(
            Action::Allow,
            vec![
                errno_rule(&["getpid"], 11, &[(0, Op::EqualTo, 1)]),
                errno_rule(&["getpid"], 22, &[]),
                errno_rule(&["getpid"], 33, &[(0, Op::EqualTo, 2)]),
                errno_rule(&["getppid"], 44, &[]),
                errno_rule(&["getppid"], 55, &[]),
            ],
        ))
        .expect("compile");
        assert_eq!(answer(&filter, "getpid", &[1]), ret::ERRNO | 11);
        assert_eq!(answer(&filter, "getpid", &[2]), ret::ERRNO | 22);
        assert_eq!(answer(&filter, "getppid", &[]), ret::ERRNO | 44);
        assert_eq!(answer(&filter, "gettid", &[]), ret::ALLOW);
    }

    #[test]
    fn conditions_of_one_rule_must_all_hold() {
        let filter = compile(&profile(
            Action::Errno,
            vec![rule(&["kill"], Action::Allow, &[(0, Op::EqualTo, 1), (1, Op::LessThan, 10)])],
        ))
        .expect("compile");
        assert_eq!(answer(&filter, "kill", &[1, 9]), ret::ALLOW);
        assert_eq!(answer(&filter, "kill", &[1, 10]), DENIED);
        assert_eq!(answer(&filter, "kill", &[2, 9]), DENIED);
    }

    #[test]
    fn rule_names_share_its_conditions() {
        let filter = compile(&profile(
            Action::Errno,
            vec![
                rule(&["getpid", "gettid"], Action::Allow, &[(0, Op::EqualTo, 7)]),
                rule(&["read", "write"], Action::Allow, &[]),
            ],
        ))
        .expect("compile");
        for name in ["getpid", "gettid"] {
            assert_eq!(answer(&filter, name, &[7]), ret::ALLOW, "{name}");
            assert_eq!(answer(&filter, name, &[8]), DENIED, "{name}");
        }
        assert_eq!(answer(&filter, "read", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "write", &[]), ret::ALLOW);
    }

    #[test]
    fn errno_falls_back_to_default_errno_then_eperm() {
        let rules = vec![
            errno_rule(&["getpid"], 5, &[]),
            rule(&["getppid"], Action::Errno, &[]),
            SyscallRule { errno_ret: Some(0x1_0005), ..rule(&["gettid"], Action::Errno, &[]) },
        ];
        let mut p = profile(Action::Errno, rules);
        let filter = compile(&p).expect("compile");
        assert_eq!(answer(&filter, "getpid", &[]), ret::ERRNO | 5);
        assert_eq!(answer(&filter, "getppid", &[]), ret::ERRNO | 1);
        assert_eq!(answer(&filter, "gettid", &[]), ret::ERRNO | 5);
        assert_eq!(answer(&filter, "read", &[]), ret::ERRNO | 1);

        p.default_errno_ret = Some(38);
        let filter = compile(&p).expect("compile");
        assert_eq!(answer(&filter, "getpid", &[]), ret::ERRNO | 5);
        assert_eq!(answer(&filter, "getppid", &[]), ret::ERRNO | 38);
        assert_eq!(answer(&filter, "read", &[]), ret::ERRNO | 38);
    }

    #[test]
    fn actions_map_to_seccomp_returns() {
        let cases = [
            (Action::Kill, ret::KILL_THREAD),
            (Action::KillThread, ret::KILL_THREAD),
            (Action::KillProcess, ret::KILL_PROCESS),
            (Action::Trap, ret::TRAP),
            (Action::Trace, ret::TRACE),
            (Action::Allow, ret::ALLOW),
            (Action::Log, ret::LOG),
        ];
        for (action, want) in cases {
            let filter =
                compile(&profile(action, vec![rule(&["getpid"], action, &[])])).expect("compile");
            assert_eq!(answer(&filter, "getpid", &[]), want, "{action}");
            assert_eq!(answer(&filter, "read", &[]), want, "default {action}");
        }
        let trace = SyscallRule { errno_ret: Some(7), ..rule(&["getpid"], Action::Trace, &[]) };
        let filter = compile(&profile(Action::Allow, vec![trace])).expect("compile");
        assert_eq!(answer(&filter, "getpid", &[]), ret::TRACE | 7);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_get_the_default_action_only_when_x32_is_listed() {
        let x32_read = SeccompData::new(native_audit_arch(), 0x4000_0000, &[]);
        let mut p = profile(Action::Errno, vec![rule(&["read"], Action::Allow, &[])]);
        p.architectures = vec![Arch::X86_64];
        let filter = compile(&p).expect("compile");
        assert_eq!(run(&filter.program, &x32_read), ret::KILL_PROCESS);
        p.architectures = vec![Arch::X86_64, Arch::X32];
        let filter = compile(&p).expect("compile");
        assert_eq!(run(&filter.program, &x32_read), DENIED);
        // -1, a call a tracer skipped, is not an x32 call.
        let skipped = SeccompData::new(native_audit_arch(), u32::MAX, &[]);
        assert_eq!(run(&filter.program, &skipped), DENIED);
        p.architectures = vec![Arch::X86_64];
        let filter = compile(&p).expect("compile");
        assert_eq!(run(&filter.program, &skipped), DENIED);
        assert_eq!(answer(&filter, "read", &[]), ret::ALLOW);
    }

    #[test]
    fn listed_foreign_abis_get_the_default_action_and_others_are_killed() {
        let x86 = Arch::X86.audit_arch().expect("x86");
        let arm = Arch::Arm.audit_arch().expect("arm");
        let s390x = Arch::S390x.audit_arch().expect("s390x");
        let read = nr("read");
        let mut p = profile(Action::Errno, vec![rule(&["read"], Action::Allow, &[])]);
        p.architectures = vec![Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm, Arch::X86];
        let filter = compile(&p).expect("compile");
        assert_eq!(run(&filter.program, &SeccompData::new(x86, read, &[])), DENIED);
        assert_eq!(run(&filter.program, &SeccompData::new(arm, read, &[])), DENIED);
        assert_eq!(run(&filter.program, &SeccompData::new(s390x, read, &[])), ret::KILL_PROCESS);
        assert_eq!(answer(&filter, "read", &[]), ret::ALLOW);

        // No architectures: native only.
        p.architectures.clear();
        let filter = compile(&p).expect("compile");
        assert_eq!(run(&filter.program, &SeccompData::new(x86, read, &[])), ret::KILL_PROCESS);
        assert_eq!(answer(&filter, "read", &[]), ret::ALLOW);
    }

    #[test]
    fn unknown_names_are_skipped_and_reported_once() {
        let filter = compile(&profile(
            Action::Errno,
            vec![
                rule(&["chown32", "read", "no_such_call"], Action::Allow, &[]),
                rule(&["chown32", "write"], Action::Allow, &[(0, Op::EqualTo, 1)]),
                rule(&[], Action::Allow, &[]),
            ],
        ))
        .expect("compile");
        assert_eq!(filter.unknown_syscalls(), ["chown32", "no_such_call"]);
        assert_eq!(answer(&filter, "read", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "write", &[1]), ret::ALLOW);
        assert_eq!(answer(&filter, "write", &[2]), DENIED);
    }

    #[test]
    fn argument_index_above_five_is_refused() {
        let err = compile(&profile(
            Action::Allow,
            vec![rule(&["clone"], Action::Errno, &[(7, Op::EqualTo, 0)])],
        ))
        .expect_err("index 7");
        assert_eq!(
            err.to_string(),
            "seccomp argument index 7 is out of range (0-5) for syscall clone"
        );
        assert_eq!(kiln_types::HasKind::kind(&err), kiln_types::ErrorKind::InvalidArgument);
    }

    #[test]
    fn notify_is_refused_as_default_and_in_rules() {
        for p in [
            profile(Action::Notify, vec![]),
            profile(Action::Allow, vec![rule(&["getpid"], Action::Notify, &[])]),
            profile(Action::Allow, vec![rule(&[], Action::Notify, &[])]),
        ] {
            let err = compile(&p).expect_err("notify");
            assert_eq!(err.to_string(), "seccomp action SCMP_ACT_NOTIFY is not supported");
            assert_eq!(kiln_types::HasKind::kind(&err), kiln_types::ErrorKind::Unsupported);
        }
    }

    #[test]
    fn hundreds_of_rules_keep_jumps_in_range() {
        // Even rules test getpid's or gettid's second argument; odd rules
        // name one other call each, plainly.
        let others: Vec<&str> = crate::syscalls::tests_support::all_names()
            .into_iter()
            .filter(|n| !["getpid", "gettid"].contains(n))
            .collect();
        let rules: Vec<SyscallRule> = (0..400u32)
            .map(|i| {
                if i % 2 == 0 {
                    let name = if i % 4 == 0 { "getpid" } else { "gettid" };
                    errno_rule(&[name], 1000 + i, &[(1, Op::EqualTo, u64::from(i))])
                } else {
                    errno_rule(&[others[i as usize / 2]], 1000 + i, &[])
                }
            })
            .collect();
        let filter = compile(&profile(Action::Allow, rules)).expect("compile");
        check(&filter.program);
        assert_eq!(answer(&filter, "getpid", &[0, 0]), ret::ERRNO | 1000);
        assert_eq!(answer(&filter, "getpid", &[0, 396]), ret::ERRNO | 1396);
        assert_eq!(answer(&filter, "gettid", &[0, 398]), ret::ERRNO | 1398);
        assert_eq!(answer(&filter, "gettid", &[0, 396]), ret::ALLOW);
        assert_eq!(answer(&filter, others[0], &[]), ret::ERRNO | 1001);
        assert_eq!(answer(&filter, others[199], &[]), ret::ERRNO | 1399);
        assert_eq!(answer(&filter, others[200], &[]), ret::ALLOW);
    }

    #[test]
    fn long_chains_of_plain_names_are_split() {
        let all: Vec<&str> = crate::syscalls::tests_support::all_names();
        let mut rules = vec![rule(&all, Action::Allow, &[]), rule(&all, Action::Allow, &[])];
        rules.push(errno_rule(&["getpid"], 9, &[]));
        let filter = compile(&profile(Action::KillProcess, rules)).expect("compile");
        check(&filter.program);
        for name in &all {
            assert_eq!(answer(&filter, name, &[]), ret::ALLOW, "{name}");
        }
        assert_eq!(
            run(&filter.program, &SeccompData::new(native_audit_arch(), 1000, &[])),
            ret::KILL_PROCESS
        );
    }

    #[test]
    fn programs_over_4096_instructions_are_refused() {
        let rules: Vec<SyscallRule> =
            (0..700u64).map(|i| rule(&["getpid"], Action::Errno, &[(0, Op::EqualTo, i)])).collect();
        let err = compile(&profile(Action::Allow, rules)).expect_err("too long");
        assert!(err.to_string().starts_with("seccomp filter is too long: "), "{err}");
    }

    #[test]
    fn too_many_conditions_in_one_rule_are_refused() {
        let conds: Vec<(u32, Op, u64)> = (0..60).map(|i| (0, Op::GreaterThan, i)).collect();
        let err = compile(&profile(Action::Allow, vec![rule(&["getpid"], Action::Errno, &conds)]))
            .expect_err("too many");
        assert!(err.to_string().contains("getpid"), "{err}");
        let conds: Vec<(u32, Op, u64)> = (0..40).map(|i| (0, Op::NotEqual, i)).collect();
        let filter =
            compile(&profile(Action::Allow, vec![rule(&["getpid"], Action::Errno, &conds)]))
                .expect("40 conditions fit");
        assert_eq!(answer(&filter, "getpid", &[40]), DENIED);
        assert_eq!(answer(&filter, "getpid", &[39]), ret::ALLOW);
    }

    #[test]
    fn flags_become_seccomp_filter_flag_bits() {
        let mut p = profile(Action::Allow, vec![]);
        p.flags = vec![Flag::Tsync, Flag::Log, Flag::SpecAllow, Flag::WaitKillableRecv];
        assert_eq!(compile(&p).expect("compile").flags, 1 | 2 | 4 | 32);
    }
}
