//! Cgroups on the real kernel, as root, with `KILN_PRIVILEGED_TESTS=1`.
//!
//! Every test works under its own `/kiln-t-<random>` parent, removed by a
//! guard even when an assertion fails.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use kiln_cgroups::{
    Cgroup, CgroupPath, Cpu, DeviceRule, Hierarchy, HugepageLimit, Memory, Pids, Resources,
};

/// Whether root tests run: with `KILN_PRIVILEGED_TESTS=1` they must, as root.
fn privileged() -> bool {
    if std::env::var("KILN_PRIVILEGED_TESTS").as_deref() != Ok("1") {
        println!("skipped: set KILN_PRIVILEGED_TESTS=1 and run as root");
        return false;
    }
    assert!(nix::unistd::geteuid().is_root(), "KILN_PRIVILEGED_TESTS=1 but not running as root");
    true
}

fn unique_name() -> String {
    let mut bytes = [0u8; 5];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("urandom");
    bytes.iter().fold("kiln-t-".to_owned(), |name, b| format!("{name}{b:02x}"))
}

/// Kills the test's process and removes its cgroups, parent included, on drop.
struct Guard {
    parents: Vec<PathBuf>,
    cgroups: Vec<Cgroup>,
    child: Option<Child>,
}

impl Guard {
    fn new(h: &Hierarchy, name: &str) -> Guard {
        let mounts: Vec<PathBuf> = match h {
            Hierarchy::V2 { root } => vec![root.clone()],
            Hierarchy::V1 { controllers, unified, .. } => {
                controllers.values().chain(unified).cloned().collect()
            }
        };
        Guard {
            parents: mounts.iter().map(|m| m.join(name)).collect(),
            cgroups: vec![],
            child: None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            for cg in &self.cgroups {
                let _ = cg.thaw();
            }
            let _ = child.wait();
        }
        for cg in self.cgroups.iter().rev() {
            let _ = cg.destroy();
        }
        for parent in &self.parents {
            let _ = fs::remove_dir(parent);
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
}

#[test]
fn cgroup_limits_join_freeze_and_destroy_on_the_host() {
    if !privileged() {
        return;
    }
    let h = Hierarchy::detect().expect("detect");
    let name = unique_name();
    let mut guard = Guard::new(&h, &name);
    let path = CgroupPath::parse(Some(&format!("/{name}/c")), "unused").expect("path");
    let cg = Cgroup::new(&h, &path).expect("cgroup");
    guard.cgroups.push(cg.clone());
    cg.create().expect("create");

    let has_hugetlb = cg.dir("hugetlb").is_some()
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let r = Resources {
        memory: Some(Memory { limit: Some(64 << 20), ..Memory::default() }),
        cpu: Some(Cpu {
            quota: Some(50000),
            period: Some(100000),
            cpus: Some("0".into()),
            ..Cpu::default()
        }),
        pids: Some(Pids { limit: 10 }),
        devices: vec![
            DeviceRule { allow: false, access: Some("rwm".into()), ..DeviceRule::default() },
            DeviceRule {
                allow: true,
                r#type: Some("c".into()),
                major: Some(1),
                minor: Some(3),
                access: Some("rwm".into()),
            },
        ],
        hugepage_limits: if has_hugetlb {
            vec![HugepageLimit { page_size: "2MB".into(), limit: 4 << 20 }]
        } else {
            vec![]
        },
        ..Resources::default()
    };
    let warnings = cg.apply(&r).expect("apply");
    println!("warnings: {warnings:?}");

    let file = |controller: &str, file: &str| cg.dir(controller).expect(controller).join(file);
    if h.is_v2() {
        assert_eq!(read(&file("memory", "memory.max")), "67108864");
        assert_eq!(read(&file("cpu", "cpu.max")), "50000 100000");
        assert_eq!(read(&file("pids", "pids.max")), "10");
        assert_eq!(read(&file("cpuset", "cpuset.cpus")), "0");
        assert_eq!(warnings, ["device cgroup rules are not enforced on cgroup v2 yet"]);
    } else {
        assert_eq!(read(&file("memory", "memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&file("cpu", "cpu.cfs_period_us")), "100000");
        assert_eq!(read(&file("cpu", "cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&file("pids", "pids.max")), "10");
        assert_eq!(read(&file("cpuset", "cpuset.cpus")), "0");
        assert_eq!(read(&file("devices", "devices.list")), "c 1:3 rwm");
        assert!(warnings.is_empty(), "{warnings:?}");
    }
    if has_hugetlb {
        let hugetlb = cg.dir("hugetlb").expect("hugetlb");
        let value = ["hugetlb.2MB.max", "hugetlb.2MB.limit_in_bytes"]
            .iter()
            .map(|f| hugetlb.join(f))
            .find(|p| p.exists())
            .map(|p| read(&p));
        assert_eq!(value.as_deref(), Some("4194304"));
    }

    // A sub-cgroup, as a container's own nested cgroups would be.
    let sub =
        Cgroup::new(&h, &CgroupPath::parse(Some(&format!("/{name}/c/sub")), "x").expect("path"))
            .expect("sub cgroup");
    guard.cgroups.push(sub.clone());
    sub.create().expect("create sub");

    let child = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
    let pid = i32::try_from(child.id()).expect("pid");
    guard.child = Some(child);
    sub.add_process(pid).expect("add process");
    assert!(cg.pids().expect("pids").contains(&pid), "pids() includes sub-cgroups");
    assert_eq!(sub.pids().expect("pids"), [pid]);

    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("is_frozen"));
    if !h.is_v2() {
        assert_eq!(read(&file("freezer", "freezer.state")), "FROZEN");
    }
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("is_frozen"));

    let mut child = guard.child.take().expect("child");
    child.kill().expect("kill");
    child.wait().expect("wait");
    let dirs: Vec<PathBuf> = ["memory", "cpu", "pids", "freezer", "name=systemd", ""]
        .iter()
        .filter_map(|c| cg.dir(c).map(Path::to_owned))
        .collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    cg.destroy().expect("destroy");
    for d in &dirs {
        assert!(!d.exists(), "{} is left", d.display());
        assert!(d.parent().expect("parent").is_dir(), "the shared parent stays");
    }
    cg.destroy().expect("destroying twice is fine");
}

#[test]
fn checked_memory_limit_above_usage_applies_and_tiny_limits_are_refused() {
    if !privileged() {
        return;
    }
    let h = Hierarchy::detect().expect("detect");
    let name = unique_name();
    let mut guard = Guard::new(&h, &name);
    let cg = Cgroup::new(&h, &CgroupPath::parse(Some(&format!("/{name}/m")), "x").expect("path"))
        .expect("cgroup");
    guard.cgroups.push(cg.clone());
    cg.create().expect("create");
    // An empty cgroup uses (almost) nothing, so any sane limit passes the check.
    let r = Resources {
        memory: Some(Memory {
            limit: Some(32 << 20),
            check_before_update: Some(true),
            ..Memory::default()
        }),
        ..Resources::default()
    };
    cg.apply(&r).expect("apply with check");
    let too_small = Resources {
        memory: Some(Memory { limit: Some(1 << 20), ..Memory::default() }),
        ..Resources::default()
    };
    assert!(cg.apply(&too_small).is_err(), "1 MiB is below the minimum");
}
