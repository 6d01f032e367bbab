//! The `linux.seccomp` object of the OCI runtime spec, as JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A seccomp profile: what happens to each system call a container makes.
///
/// Field names on the wire are the OCI ones (`defaultAction`, `syscalls`,
/// ...). Docker's profile format is a superset; its extra fields (`comment`,
/// `includes`, `excludes`) are ignored when read here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The action for every call no rule matches.
    pub default_action: Action,
    /// The errno for [`Action::Errno`] where a rule (or the default) sets none;
    /// `EPERM` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The ABIs the filter accepts besides the native one; calls from any
    /// other ABI kill the process. Empty means native only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    /// Flags passed to `seccomp(2)` when installing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// Unix socket for [`Action::Notify`]; notify is not supported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    /// Opaque data sent with the notify file descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// Rules, tried in order; for one call the first matching rule wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: an action for the named calls, optionally only when all of
/// `args` hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// Call names (`"openat"`); names the native ABI lacks are skipped.
    #[serde(default)]
    pub names: Vec<String>,
    pub action: Action,
    /// The errno for [`Action::Errno`], or the data for [`Action::Trace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions on the call's arguments, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

impl SyscallRule {
    /// A rule applying `action` to `names` unconditionally.
    pub fn new(names: &[&str], action: Action) -> Self {
        Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            action,
            errno_ret: None,
            args: Vec::new(),
        }
    }
}

/// A condition on one 64-bit argument: `args[index] <op> value`, or
/// `args[index] & value == value_two` for [`Op::MaskedEqual`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCondition {
    /// Argument position, 0 to 5.
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: Op,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What the kernel does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Action {
    /// Kill the calling thread (the historical meaning of `SCMP_ACT_KILL`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    /// Send `SIGSYS`.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// Fail the call with an errno.
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// Notify a ptrace tracer; without one the call fails with `ENOSYS`.
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[default]
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Allow, and log the call.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Hand the call to a user-space supervisor; not supported here.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl Action {
    /// The OCI name, `"SCMP_ACT_ALLOW"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kill => "SCMP_ACT_KILL",
            Self::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Self::KillThread => "SCMP_ACT_KILL_THREAD",
            Self::Trap => "SCMP_ACT_TRAP",
            Self::Errno => "SCMP_ACT_ERRNO",
            Self::Trace => "SCMP_ACT_TRACE",
            Self::Allow => "SCMP_ACT_ALLOW",
            Self::Log => "SCMP_ACT_LOG",
            Self::Notify => "SCMP_ACT_NOTIFY",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison of an argument; all are unsigned and 64 bits wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_LE")]
    LessEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    EqualTo,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    /// `arg & value == value_two`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// A system call ABI, as libseccomp names it.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    /// The x32 ABI of x86_64 kernels (64-bit registers, 32-bit pointers).
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    #[serde(rename = "SCMP_ARCH_MIPS")]
    Mips,
    #[serde(rename = "SCMP_ARCH_MIPS64")]
    Mips64,
    #[serde(rename = "SCMP_ARCH_MIPS64N32")]
    Mips64n32,
    #[serde(rename = "SCMP_ARCH_MIPSEL")]
    Mipsel,
    #[serde(rename = "SCMP_ARCH_MIPSEL64")]
    Mipsel64,
    #[serde(rename = "SCMP_ARCH_MIPSEL64N32")]
    Mipsel64n32,
    #[serde(rename = "SCMP_ARCH_PPC")]
    Ppc,
    #[serde(rename = "SCMP_ARCH_PPC64")]
    Ppc64,
    #[serde(rename = "SCMP_ARCH_PPC64LE")]
    Ppc64le,
    #[serde(rename = "SCMP_ARCH_S390")]
    S390,
    #[serde(rename = "SCMP_ARCH_S390X")]
    S390x,
    #[serde(rename = "SCMP_ARCH_PARISC")]
    Parisc,
    #[serde(rename = "SCMP_ARCH_PARISC64")]
    Parisc64,
    #[serde(rename = "SCMP_ARCH_RISCV64")]
    Riscv64,
    #[serde(rename = "SCMP_ARCH_LOONGARCH64")]
    Loongarch64,
    #[serde(rename = "SCMP_ARCH_M68K")]
    M68k,
    /// SuperH, little-endian.
    #[serde(rename = "SCMP_ARCH_SH")]
    Sh,
    /// SuperH, big-endian.
    #[serde(rename = "SCMP_ARCH_SHEB")]
    Sheb,
}

impl Arch {
    /// Every architecture, in declaration order.
    pub const ALL: [Arch; 23] = [
        Self::X86,
        Self::X86_64,
        Self::X32,
        Self::Arm,
        Self::Aarch64,
        Self::Mips,
        Self::Mips64,
        Self::Mips64n32,
        Self::Mipsel,
        Self::Mipsel64,
        Self::Mipsel64n32,
        Self::Ppc,
        Self::Ppc64,
        Self::Ppc64le,
        Self::S390,
        Self::S390x,
        Self::Parisc,
        Self::Parisc64,
        Self::Riscv64,
        Self::Loongarch64,
        Self::M68k,
        Self::Sh,
        Self::Sheb,
    ];

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch` for a
    /// call from this ABI. x32 has none of its own: its calls carry
    /// `AUDIT_ARCH_X86_64` and set bit 30 of the call number.
    pub(crate) fn audit_arch(self) -> Option<u32> {
        const BITS64: u32 = 0x8000_0000;
        const LE: u32 = 0x4000_0000;
        const MIPS_N32: u32 = 0x2000_0000;
        let value = match self {
            Self::X86 => 3 | LE,
            Self::X86_64 => 62 | BITS64 | LE,
            Self::X32 => return None,
            Self::Arm => 40 | LE,
            Self::Aarch64 => 183 | BITS64 | LE,
            Self::Mips => 8,
            Self::Mips64 => 8 | BITS64,
            Self::Mips64n32 => 8 | BITS64 | MIPS_N32,
            Self::Mipsel => 8 | LE,
            Self::Mipsel64 => 8 | BITS64 | LE,
            Self::Mipsel64n32 => 8 | BITS64 | LE | MIPS_N32,
            Self::Ppc => 20,
            Self::Ppc64 => 21 | BITS64,
            Self::Ppc64le => 21 | BITS64 | LE,
            Self::S390 => 22,
            Self::S390x => 22 | BITS64,
            Self::Parisc => 15,
            Self::Parisc64 => 15 | BITS64,
            Self::Riscv64 => 243 | BITS64 | LE,
            Self::Loongarch64 => 258 | BITS64 | LE,
            Self::M68k => 4,
            Self::Sh => 42 | LE,
            Self::Sheb => 42,
        };
        Some(value)
    }
}

/// A flag for `seccomp(SECCOMP_SET_MODE_FILTER, ..)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Flag {
    /// Install the filter on every thread of the process.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    /// Log every action but `SECCOMP_RET_ALLOW`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// Leave speculative store bypass mitigation off.
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
    /// Wait killably for a notify supervisor's answer.
    #[serde(rename = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")]
    WaitKillableRecv,
}

impl Flag {
    /// The `SECCOMP_FILTER_FLAG_*` bit.
    pub(crate) fn bit(self) -> u32 {
        match self {
            Self::Tsync => 1,
            Self::Log => 2,
            Self::SpecAllow => 4,
            Self::WaitKillableRecv => 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}], "comment": "docker field"}
        ]
    }"#;

    #[test]
    fn oci_json_round_trips() {
        let profile: Profile = serde_json::from_str(OCI_PROFILE).expect("parse");
        assert_eq!(profile.default_action, Action::Errno);
        assert_eq!(profile.default_errno_ret, Some(1));
        assert_eq!(profile.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        assert_eq!(profile.flags, [Flag::Log]);
        assert_eq!(profile.syscalls.len(), 4);
        assert_eq!(profile.syscalls[1].args[0].op, Op::MaskedEqual);
        assert_eq!(profile.syscalls[1].args[0].value, 0x7E02_0000);
        assert_eq!(profile.syscalls[2].errno_ret, Some(38));

        let json = serde_json::to_value(&profile).expect("serialize");
        assert_eq!(json["syscalls"][0]["names"][1], "write");
        assert_eq!(json["syscalls"][2]["errnoRet"], 38);
        assert!(json.get("listenerPath").is_none());
        assert!(json["syscalls"][0].get("args").is_none());
        let back: Profile = serde_json::from_value(json).expect("reparse");
        assert_eq!(back, profile);
    }

    #[test]
    fn minimal_profile_fills_defaults() {
        let profile: Profile =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("parse");
        assert_eq!(profile, Profile::default());
    }

    #[test]
    fn unknown_arch_is_rejected() {
        let err = serde_json::from_str::<Profile>(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#,
        );
        assert!(err.is_err());
    }

    #[test]
    fn every_arch_name_parses_and_has_an_audit_value_but_x32() {
        for arch in Arch::ALL {
            let json = serde_json::to_string(&arch).expect("serialize");
            assert_eq!(serde_json::from_str::<Arch>(&json).expect("parse"), arch);
            assert_eq!(arch.audit_arch().is_none(), arch == Arch::X32);
        }
        assert_eq!(Arch::X86_64.audit_arch(), Some(0xc000_003e));
        assert_eq!(Arch::Aarch64.audit_arch(), Some(0xc000_00b7));
        assert_eq!(Arch::X86.audit_arch(), Some(0x4000_0003));
    }

    #[test]
    fn action_names_match_their_json() {
        let all = [
            Action::Kill,
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Errno,
            Action::Trace,
            Action::Allow,
            Action::Log,
            Action::Notify,
        ];
        for action in all {
            let json = serde_json::to_string(&action).expect("serialize");
            assert_eq!(json, format!("\"{action}\""));
        }
    }
}
