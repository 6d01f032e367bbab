//! The container process's own settings: executable lookup, environment,
//! rlimits, user and groups, capabilities. Applied last, right before exec.

use std::path::{Path, PathBuf};

use kiln_sys::caps::{self, CapSet, Capability};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};

use crate::setup_error::{Context, SetupError, SetupResult};
use crate::spec::{Capabilities, Process, Rlimit};

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Finds the program to run the way a shell would: a name with a `/` is
/// taken as is, anything else is searched in the process's PATH.
pub(crate) fn find_executable(name: &str, env: &[String]) -> SetupResult<PathBuf> {
    let not_found = |why: String| SetupError { message: why, exit_code: 127 };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(SetupError {
                message: format!("exec: {name:?}: is a directory"),
                exit_code: 126,
            }),
            Ok(meta) if !is_executable(&meta) => Err(SetupError {
                message: format!("exec: {name:?}: permission denied"),
                exit_code: 126,
            }),
            Ok(_) => Ok(path),
            Err(e) => Err(not_found(format!("exec: {name:?}: stat {name}: {}", os_error_text(&e)))),
        };
    }
    let search = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in search.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && is_executable(&meta) {
                return Ok(candidate);
            }
        }
    }
    Err(not_found(format!("exec: {name:?}: executable file not found in $PATH")))
}

/// An I/O error in Go's words, as Docker prints them: `no such file or
/// directory`, not `No such file or directory (os error 2)`.
fn os_error_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
        }
        None => err.to_string(),
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// The environment of the process: config.json's, plus HOME from
/// /etc/passwd when it is missing (as runc and Docker do).
pub(crate) fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env.clone();
    if env_value(&env, "HOME").is_none() {
        let home = home_of(process.user.uid).unwrap_or_else(|| "/".to_owned());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_owned())
    })
}

/// Maps an OCI rlimit name (`RLIMIT_NOFILE`) to its resource.
pub(crate) fn rlimit_resource(name: &str) -> Option<Resource> {
    use Resource as R;
    Some(match name {
        "RLIMIT_AS" => R::RLIMIT_AS,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => R::RLIMIT_NICE,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// Checks rlimit names before anything is started.
pub(crate) fn check_rlimits(rlimits: &[Rlimit]) -> Result<(), String> {
    for r in rlimits {
        if rlimit_resource(&r.kind).is_none() {
            return Err(format!("unknown rlimit {:?}", r.kind));
        }
        if r.soft > r.hard {
            return Err(format!(
                "rlimit {}: soft limit {} is above hard limit {}",
                r.kind, r.soft, r.hard
            ));
        }
    }
    Ok(())
}

pub(crate) fn apply_rlimits(rlimits: &[Rlimit]) -> SetupResult<()> {
    for r in rlimits {
        let Some(resource) = rlimit_resource(&r.kind) else { continue };
        setrlimit(resource, r.soft, r.hard)
            .context(|| format!("cannot set {} to {}:{}", r.kind, r.soft, r.hard))?;
    }
    Ok(())
}

/// The capability sets of a process, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct CapSets {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: Vec<Capability>,
}

/// Parses capability names; names unknown to the running kernel are left out.
pub(crate) fn parse_caps(caps: &Capabilities) -> Result<CapSets, String> {
    let last = caps::last_cap();
    let parse = |names: &[String]| -> Result<Vec<Capability>, String> {
        let mut out = Vec::new();
        for n in names {
            let cap: Capability = n.parse().map_err(|e: caps::UnknownCapability| e.to_string())?;
            if cap.number() <= last {
                out.push(cap);
            }
        }
        Ok(out)
    };
    Ok(CapSets {
        bounding: parse(&caps.bounding)?.into_iter().collect(),
        effective: parse(&caps.effective)?.into_iter().collect(),
        permitted: parse(&caps.permitted)?.into_iter().collect(),
        inheritable: parse(&caps.inheritable)?.into_iter().collect(),
        ambient: parse(&caps.ambient)?,
    })
}

/// Becomes the process's user with its capabilities: bounding set first
/// (needs CAP_SETPCAP), then groups and ids keeping capabilities across the
/// switch, then the final sets and the ambient ones.
pub(crate) fn switch_user(process: &Process, caps: &CapSets, set_groups: bool) -> SetupResult<()> {
    caps::limit_bounding_set(caps.bounding, caps::last_cap())
        .context(|| "cannot limit the capability bounding set".to_owned())?;
    nix::sys::prctl::set_keepcaps(true).context(|| "cannot keep capabilities".to_owned())?;
    let user = &process.user;
    if set_groups {
        let groups: Vec<Gid> = user.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups)
            .context(|| format!("cannot set groups {:?}", user.additional_gids))?;
    }
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).context(|| format!("cannot set gid {}", user.gid))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).context(|| format!("cannot set uid {}", user.uid))?;
    nix::sys::prctl::set_keepcaps(false).context(|| "cannot reset keepcaps".to_owned())?;
    caps::set_process_caps(caps.effective, caps.permitted, caps.inheritable)
        .context(|| "cannot set capabilities".to_owned())?;
    // Like runc, an ambient capability the kernel refuses (one not both
    // permitted and inheritable) is left out rather than failing the start.
    for cap in &caps.ambient {
        let _ = caps::raise_ambient(*cap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_in_path_like_a_shell() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_owned()];
        assert!(find_executable("sh", &env).unwrap().ends_with("sh"));
        let err = find_executable("no-such-program-kiln", &env).unwrap_err();
        assert_eq!(err.exit_code, 127);
        assert_eq!(
            err.message,
            "exec: \"no-such-program-kiln\": executable file not found in $PATH"
        );
        assert_eq!(find_executable("/etc/passwd", &env).unwrap_err().exit_code, 126);
        assert_eq!(find_executable("/nope/x", &env).unwrap_err().exit_code, 127);
    }

    #[test]
    fn rlimits_are_checked_by_name_and_order() {
        let ok = Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 10, hard: 20 };
        assert!(check_rlimits(&[ok]).is_ok());
        let bad = Rlimit { kind: "RLIMIT_FOO".into(), soft: 1, hard: 1 };
        assert!(check_rlimits(&[bad]).unwrap_err().contains("RLIMIT_FOO"));
        let inverted = Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 30, hard: 20 };
        assert!(check_rlimits(&[inverted]).is_err());
    }

    #[test]
    fn home_is_added_when_missing() {
        let p = Process { env: vec!["A=1".into()], ..Default::default() };
        let env = environment(&p);
        assert!(env.iter().any(|e| e.starts_with("HOME=")));
        let p = Process { env: vec!["HOME=/x".into()], ..Default::default() };
        assert_eq!(environment(&p), vec!["HOME=/x".to_owned()]);
    }

    #[test]
    fn unknown_capability_names_are_errors() {
        let caps = Capabilities { bounding: vec!["CAP_NOPE".into()], ..Default::default() };
        assert!(parse_caps(&caps).is_err());
        let caps = Capabilities { effective: vec!["CAP_KILL".into()], ..Default::default() };
        assert!(parse_caps(&caps).unwrap().effective.0 == 1 << 5);
    }
}
