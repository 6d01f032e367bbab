//! The `kiln` binary under test, and state roots for `kiln runtime`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::scratch::ScratchDir;

/// The built `kiln` executable: `CARGO_BIN_EXE_kiln` when set, else `kiln`
/// in the target dir of the running test (`target/debug/deps/t-…` →
/// `target/debug/kiln`). Panics when it has not been built.
pub fn kiln_bin() -> PathBuf {
    let path = kiln_bin_path();
    assert!(
        path.is_file(),
        "kiln binary not found at {}: run `cargo build -p kiln` first",
        path.display()
    );
    path
}

/// Where [`kiln_bin`] looks, whether or not it exists.
fn kiln_bin_path() -> PathBuf {
    match std::env::var_os("CARGO_BIN_EXE_kiln") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe()
                .unwrap_or_else(|err| panic!("cannot find the test binary: {err}"));
            beside_target_dir(&exe)
        }
    }
}

/// `…/target/PROFILE/deps/test-binary` → `…/target/PROFILE/kiln`; a binary
/// outside `deps/` (examples, nextest archives) looks in its own dir.
fn beside_target_dir(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    dir.join("kiln")
}

/// A `kiln runtime …` command with `--root root` already set.
pub fn runtime(root: &Path) -> Command {
    runtime_command(&kiln_bin(), root)
}

fn runtime_command(kiln: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(kiln);
    cmd.arg("runtime").arg("--root").arg(root);
    cmd
}

/// A fresh state dir for `kiln runtime --root`, removed on drop.
///
/// On drop, each container still recorded there (a subdirectory, as runc
/// lays out its root) is first force-deleted with `kiln runtime delete
/// --force`, so a failing test does not leave processes or cgroups behind.
#[derive(Debug)]
pub struct RuntimeRoot {
    dir: ScratchDir,
}

impl RuntimeRoot {
    pub fn new() -> RuntimeRoot {
        let dir =
            ScratchDir::new().unwrap_or_else(|err| panic!("cannot create runtime root: {err}"));
        RuntimeRoot { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// [`runtime`] with this root.
    pub fn runtime(&self) -> Command {
        runtime(self.path())
    }
}

impl Default for RuntimeRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RuntimeRoot {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.path()) else { return };
        let leftovers: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        let kiln = kiln_bin_path();
        if leftovers.is_empty() || !kiln.is_file() {
            return;
        }
        for id in leftovers {
            let _ = runtime_command(&kiln, self.path())
                .args(["delete", "--force"])
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_in_deps_find_kiln_one_level_up() {
        assert_eq!(
            beside_target_dir(Path::new("/w/target/debug/deps/runtime-0123abcd")),
            Path::new("/w/target/debug/kiln")
        );
    }

    #[test]
    fn other_binaries_find_kiln_beside_them() {
        assert_eq!(
            beside_target_dir(Path::new("/w/target/debug/examples/x")),
            Path::new("/w/target/debug/examples/kiln")
        );
    }

    #[test]
    fn runtime_command_is_preset_with_root() {
        let root = RuntimeRoot::new();
        let path = root.path().to_owned();
        let cmd = runtime_command(Path::new("/usr/bin/kiln"), root.path());
        assert_eq!(cmd.get_program(), "/usr/bin/kiln");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, [std::ffi::OsStr::new("runtime"), "--root".as_ref(), path.as_os_str()]);
        drop(root);
        assert!(!path.exists());
    }
}
