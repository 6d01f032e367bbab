//! A busybox root filesystem with the probe in it.
//!
//! The rootfs is planned once per test process (which runs `busybox --list`)
//! as a list of [`Entry`] values, and each call applies that plan to a new
//! directory. Files are copied, not hard-linked, so a test that writes into
//! its rootfs cannot change another test's.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian's busybox-static puts busybox; `KILN_BUSYBOX` overrides it.
const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// The static probe compiled by this crate's build script.
pub fn probe_path() -> &'static Path {
    Path::new(env!("KILN_PROBE_PATH"))
}

/// Populate `dest` (created if missing) with a minimal busybox system:
/// `/bin/busybox` and a link per applet in `/bin`, `/bin/probe`, `/etc/passwd`
/// (root, nobody, and `kiln` 1000:1000), `/etc/group`, `/etc/hostname`, and
/// empty `proc sys dev tmp root home run var`.
///
/// Needs a statically linked busybox (Debian's `busybox-static`), because the
/// rootfs has no libc; errors say so when it is missing or dynamic.
pub fn build_busybox_rootfs(dest: &Path) -> io::Result<()> {
    static PLAN: OnceLock<Result<Vec<Entry>, String>> = OnceLock::new();
    let plan = PLAN
        .get_or_init(|| {
            let busybox = busybox_path();
            let applets = busybox_applets(&busybox).map_err(|e| e.to_string())?;
            Ok(plan_rootfs(&busybox, &applets, probe_path()))
        })
        .as_ref()
        .map_err(|msg| io::Error::other(msg.clone()))?;
    fs::create_dir_all(dest)?;
    plan.iter().try_for_each(|entry| entry.apply(dest))
}

/// One thing to create in the rootfs, at a path relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir { path: &'static str, mode: u32 },
    Copy { path: &'static str, from: PathBuf, mode: u32 },
    Text { path: &'static str, text: &'static str },
    Symlink { path: String, target: &'static str },
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
kiln:x:1000:1000:kiln:/home/kiln:/bin/sh
";
const GROUP: &str = "root:x:0:
nogroup:x:65534:
kiln:x:1000:
";

/// The rootfs as data: directories first, then files and links.
fn plan_rootfs(busybox: &Path, applets: &[String], probe: &Path) -> Vec<Entry> {
    let dirs = [
        ("bin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("home/kiln", 0o755),
        ("run", 0o755),
        ("var", 0o755),
    ];
    let mut plan: Vec<Entry> = dirs.iter().map(|&(path, mode)| Entry::Dir { path, mode }).collect();
    plan.push(Entry::Copy { path: "bin/busybox", from: busybox.to_owned(), mode: 0o755 });
    plan.push(Entry::Copy { path: "bin/probe", from: probe.to_owned(), mode: 0o755 });
    plan.push(Entry::Text { path: "etc/passwd", text: PASSWD });
    plan.push(Entry::Text { path: "etc/group", text: GROUP });
    plan.push(Entry::Text { path: "etc/hostname", text: "kiln-test\n" });
    plan.extend(
        applets
            .iter()
            .filter(|a| !matches!(a.as_str(), "busybox" | "probe"))
            .map(|a| Entry::Symlink { path: format!("bin/{a}"), target: "busybox" }),
    );
    plan
}

impl Entry {
    fn apply(&self, root: &Path) -> io::Result<()> {
        let with_path = |path: &Path, err: io::Error| {
            io::Error::new(err.kind(), format!("cannot create {}: {err}", path.display()))
        };
        match self {
            Entry::Dir { path, mode } => {
                let path = root.join(path);
                match fs::create_dir(&path) {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(with_path(&path, err))
                    }
                    _ => {}
                }
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(|e| with_path(&path, e))
            }
            Entry::Copy { path, from, mode } => {
                let path = root.join(path);
                fs::copy(from, &path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot copy {} to {}: {e}", from.display(), path.display()),
                    )
                })?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(|e| with_path(&path, e))
            }
            Entry::Text { path, text } => {
                let path = root.join(path);
                fs::write(&path, text).map_err(|e| with_path(&path, e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                    .map_err(|e| with_path(&path, e))
            }
            Entry::Symlink { path, target } => {
                let path = root.join(path);
                match std::os::unix::fs::symlink(target, &path) {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                        Err(with_path(&path, err))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn busybox_path() -> PathBuf {
    std::env::var_os("KILN_BUSYBOX").map_or_else(|| PathBuf::from(DEFAULT_BUSYBOX), PathBuf::from)
}

/// The applet names of a static busybox; errors explain how to get one.
fn busybox_applets(busybox: &Path) -> io::Result<Vec<String>> {
    let install = "install Debian's busybox-static (apt-get install busybox-static)";
    let bytes = fs::read(busybox).map_err(|err| {
        io::Error::new(err.kind(), format!("cannot read {}: {err}; {install}", busybox.display()))
    })?;
    match is_static_elf(&bytes) {
        Some(true) => {}
        Some(false) => {
            return Err(io::Error::other(format!(
                "{} is dynamically linked and cannot run in a rootfs without libc; {install}",
                busybox.display()
            )))
        }
        None => {
            return Err(io::Error::other(format!(
                "{} is not an ELF executable; {install}",
                busybox.display()
            )))
        }
    }
    let output = Command::new(busybox).arg("--list").output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "`{} --list` failed: {}",
            busybox.display(),
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect())
}

/// Whether an ELF file is statically linked (has no PT_INTERP program
/// header, like `file` reports "statically linked" or "static-pie linked").
/// None when `bytes` is not a little-endian ELF file.
fn is_static_elf(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(5)? != 1 {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    // (e_phoff, e_phentsize, e_phnum) for ELF32 and ELF64.
    let (phoff, phentsize, phnum) = match bytes.get(4)? {
        1 => (u64::from(u32_at(0x1c)?), u16_at(0x2a)?, u16_at(0x2c)?),
        2 => (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?),
        _ => return None,
    };
    let phoff = usize::try_from(phoff).ok()?;
    let mut has_interp = false;
    for i in 0..usize::from(phnum) {
        has_interp |= u32_at(phoff + i * usize::from(phentsize))? == PT_INTERP;
    }
    Some(!has_interp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScratchDir;

    #[test]
    fn probe_is_built_static() {
        let bytes = fs::read(probe_path()).expect("probe built by build.rs");
        assert_eq!(is_static_elf(&bytes), Some(true));
    }

    #[test]
    fn this_test_binary_is_not_static() {
        let bytes = fs::read(std::env::current_exe().expect("exe")).expect("read exe");
        assert_eq!(is_static_elf(&bytes), Some(false));
    }

    #[test]
    fn non_elf_is_not_judged() {
        assert_eq!(is_static_elf(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn plan_links_applets_to_busybox_but_never_over_the_probe() {
        let applets = ["sh", "busybox", "ls", "probe"].map(String::from);
        let plan = plan_rootfs(Path::new("/bb"), &applets, Path::new("/p"));
        let links: Vec<&str> = plan
            .iter()
            .filter_map(|e| match e {
                Entry::Symlink { path, target: "busybox" } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(links, ["bin/sh", "bin/ls"]);
        assert!(plan.contains(&Entry::Dir { path: "tmp", mode: 0o1777 }));
    }

    #[test]
    fn busybox_rootfs_has_shell_probe_users_and_sticky_tmp() {
        let dir = ScratchDir::new().expect("scratch");
        let root = dir.path().join("rootfs");
        build_busybox_rootfs(&root).expect("build rootfs (needs busybox-static)");

        for applet in
            ["sh", "ls", "cat", "sleep", "true", "false", "id", "echo", "hostname", "mount", "ps"]
        {
            let link = fs::read_link(root.join("bin").join(applet)).expect(applet);
            assert_eq!(link, Path::new("busybox"), "{applet}");
        }
        let probe = fs::metadata(root.join("bin/probe")).expect("probe");
        assert_eq!(probe.permissions().mode() & 0o7777, 0o755);
        let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
        assert!(passwd.contains("kiln:x:1000:1000:"), "{passwd}");
        assert!(fs::read_to_string(root.join("etc/group"))
            .expect("group")
            .contains("nogroup:x:65534:"));
        let tmp = fs::metadata(root.join("tmp")).expect("tmp");
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        for dir in ["proc", "sys", "dev", "root", "home", "etc", "run", "var"] {
            assert!(root.join(dir).is_dir(), "{dir}");
        }

        // The shell and the probe run on their own: both are static.
        let out = Command::new(root.join("bin/sh")).args(["-c", "echo hi"]).output().expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        let out =
            Command::new(root.join("bin/probe")).args(["echo", "a", "b"]).output().expect("probe");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b\n");
    }

    #[test]
    fn rootfs_built_twice_gives_independent_copies() {
        let dir = ScratchDir::new().expect("scratch");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        build_busybox_rootfs(&a).expect("a");
        build_busybox_rootfs(&b).expect("b");
        fs::write(a.join("bin/probe"), "changed").expect("overwrite");
        assert_ne!(fs::read(b.join("bin/probe")).expect("b probe"), b"changed");
    }
}
