//! OCI bundles for runtime tests.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::rootfs::build_busybox_rootfs;
use crate::scratch::ScratchDir;

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// An OCI bundle in a fresh temp dir (`$TMPDIR/kiln-t-<random>`), removed on
/// drop: `rootfs/` and, once written, `config.json`.
///
/// ```no_run
/// let bundle = kiln_testing::Bundle::busybox();
/// let mut config = bundle.config(&["/bin/probe", "report"]);
/// config["process"]["user"]["uid"] = 1000.into();
/// bundle.write_config(&config);
/// ```
#[derive(Debug)]
pub struct Bundle {
    dir: ScratchDir,
}

impl Bundle {
    /// A bundle whose rootfs is [`build_busybox_rootfs`]; panics if it cannot
    /// be built (see that function for what it needs).
    pub fn busybox() -> Bundle {
        let dir = ScratchDir::new().unwrap_or_else(|err| panic!("cannot create bundle dir: {err}"));
        let bundle = Bundle { dir };
        build_busybox_rootfs(&bundle.rootfs())
            .unwrap_or_else(|err| panic!("cannot build busybox rootfs: {err}"));
        bundle
    }

    /// The bundle directory (give this to `--bundle`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// The bundle's unique name, `kiln-t-<random>`; a good container id.
    pub fn name(&self) -> &str {
        self.dir.name()
    }

    /// A config like `runc spec` writes, with Docker's default capabilities,
    /// running `args` as root in `/`, in cgroup `/kiln-t/<name>`.
    pub fn config(&self, args: &[&str]) -> Value {
        base_config(args, &format!("/kiln-t/{}", self.name()))
    }

    /// Write `config` as the bundle's `config.json`; panics on failure.
    pub fn write_config(&self, config: &Value) {
        let path = self.path().join("config.json");
        let text = serde_json::to_string_pretty(config)
            .unwrap_or_else(|err| panic!("cannot encode config: {err}"));
        std::fs::write(&path, text)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }
}

fn base_config(args: &[&str], cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPABILITIES,
                "effective": DEFAULT_CAPABILITIES,
                "permitted": DEFAULT_CAPABILITIES
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "kiln-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                "/proc/sys", "/proc/sysrq-trigger"
            ],
            "cgroupsPath": cgroups_path
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_runs_args_with_docker_caps_in_own_cgroup() {
        let config = base_config(&["/bin/probe", "report"], "/kiln-t/x");
        assert_eq!(config["process"]["args"], json!(["/bin/probe", "report"]));
        assert_eq!(
            config["process"]["capabilities"]["effective"].as_array().map(Vec::len),
            Some(14)
        );
        assert_eq!(config["linux"]["cgroupsPath"], "/kiln-t/x");
        assert_eq!(config["root"]["path"], "rootfs");
        let destinations: Vec<&str> = config["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        assert_eq!(
            destinations,
            ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
        );
    }

    #[test]
    fn bundle_writes_config_and_is_removed_on_drop() {
        let bundle = Bundle::busybox();
        let path = bundle.path().to_owned();
        assert!(bundle.rootfs().join("bin/probe").is_file());
        let config = bundle.config(&["true"]);
        assert_eq!(config["linux"]["cgroupsPath"], format!("/kiln-t/{}", bundle.name()));
        bundle.write_config(&config);
        let written: Value =
            serde_json::from_slice(&std::fs::read(path.join("config.json")).expect("read"))
                .expect("json");
        assert_eq!(written, config);
        drop(bundle);
        assert!(!path.exists());
    }
}
