//! Drives `Cgroup` against temp directories laid out like cgroup hierarchies.
//!
//! Plain files stand in for interface files, so the kernel's part (files
//! appearing in a new cgroup) is played by `kernel_files`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_cgroups::{
    Cgroup, CgroupError, CgroupPath, Cpu, DeviceRule, Hierarchy, HugepageLimit, Memory, Pids,
    Resources,
};

/// Creates interface files with contents, as the kernel would in a new cgroup.
fn kernel_files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).expect("mkdir");
    for (name, value) in files {
        fs::write(dir.join(name), value).expect("write");
    }
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resources() -> Resources {
    Resources {
        memory: Some(Memory { limit: Some(64 << 20), swap: Some(128 << 20), ..Memory::default() }),
        cpu: Some(Cpu {
            shares: Some(1024),
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
        hugepage_limits: vec![HugepageLimit { page_size: "2MB".into(), limit: 4 << 20 }],
        ..Resources::default()
    }
}

#[test]
fn v2_create_enables_controllers_and_apply_writes_converted_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_owned();
    kernel_files(
        &root,
        &[
            ("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc"),
            ("cgroup.subtree_control", ""),
        ],
    );
    let h = Hierarchy::V2 { root: root.clone() };
    let path = CgroupPath::parse(None, "c1").expect("path");
    let cg = Cgroup::new(&h, &path).expect("cgroup");
    assert_eq!(cg.relative_path(), Path::new("/kiln/c1"));
    let dir = root.join("kiln/c1");
    assert_eq!(cg.dir("memory"), Some(dir.as_path()));
    assert_eq!(cg.dir("anything"), Some(dir.as_path()));

    cg.create().expect("create");
    assert!(dir.is_dir());
    assert_eq!(
        read(root.join("cgroup.subtree_control")),
        "+cpu +memory +pids +io +cpuset +hugetlb"
    );

    kernel_files(
        &dir,
        &[
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("cpuset.cpus", ""),
            ("pids.max", "max"),
            ("hugetlb.2MB.max", "max"),
            ("cgroup.procs", ""),
            ("cgroup.freeze", "0"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
        ],
    );
    let warnings = cg.apply(&resources()).expect("apply");
    assert_eq!(warnings, ["device cgroup rules are not enforced on cgroup v2 yet"]);
    assert_eq!(read(dir.join("memory.max")), "67108864");
    assert_eq!(read(dir.join("memory.swap.max")), "67108864");
    assert_eq!(read(dir.join("cpu.weight")), "39");
    assert_eq!(read(dir.join("cpu.max")), "50000 100000");
    assert_eq!(read(dir.join("cpuset.cpus")), "0");
    assert_eq!(read(dir.join("pids.max")), "10");
    assert_eq!(read(dir.join("hugetlb.2MB.max")), "4194304");

    cg.add_process(4242).expect("add");
    assert_eq!(read(dir.join("cgroup.procs")), "4242");
    kernel_files(&dir.join("sub"), &[("cgroup.procs", "7\n4242\n")]);
    assert_eq!(cg.pids().expect("pids"), [7, 4242]);

    assert!(!cg.is_frozen().expect("state"));
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").expect("events");
    cg.freeze().expect("freeze");
    assert_eq!(read(dir.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().expect("state"));
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("events");
    cg.thaw().expect("thaw");
    assert_eq!(read(dir.join("cgroup.freeze")), "0");
}

#[test]
fn v2_missing_required_file_is_an_error_and_optional_one_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = Hierarchy::V2 { root: tmp.path().to_owned() };
    let cg =
        Cgroup::new(&h, &CgroupPath::parse(Some("/t/c2"), "x").expect("path")).expect("cgroup");
    cg.create().expect("create");
    let dir = tmp.path().join("t/c2");

    let hugetlb = Resources {
        hugepage_limits: vec![HugepageLimit { page_size: "2MB".into(), limit: 1 << 21 }],
        ..Resources::default()
    };
    let warnings = cg.apply(&hugetlb).expect("apply");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("hugetlb.2MB.max"), "{warnings:?}");

    let pids = Resources { pids: Some(Pids { limit: 3 }), ..Resources::default() };
    let err = cg.apply(&pids).expect_err("pids.max is required");
    assert!(matches!(err, CgroupError::ControllerMissing { .. }), "{err:?}");

    kernel_files(&dir, &[("pids.max", "max")]);
    assert!(cg.apply(&pids).expect("apply").is_empty());
    assert_eq!(read(dir.join("pids.max")), "3");
}

#[test]
fn apply_to_a_cgroup_that_was_never_created_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = Hierarchy::V2 { root: tmp.path().to_owned() };
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "never").expect("path")).expect("cgroup");
    let pids = Resources { pids: Some(Pids { limit: 3 }), ..Resources::default() };
    let err = cg.apply(&pids).expect_err("no directory");
    assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot write 3 to "), "{err}");
    assert!(err.to_string().ends_with("/kiln/never/pids.max"), "{err}");
}

/// A hybrid host like this one: separate cpu and cpuacct, hugetlb only in cgroup2.
fn hybrid(root: &Path) -> Hierarchy {
    let mut controllers = BTreeMap::new();
    for name in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids"] {
        controllers.insert(name.to_owned(), root.join(name));
    }
    controllers.insert("name=systemd".into(), root.join("systemd"));
    for dir in controllers.values() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    kernel_files(&root.join("cpuset"), &[("cpuset.cpus", "0-3"), ("cpuset.mems", "0")]);
    kernel_files(
        &root.join("unified"),
        &[("cgroup.controllers", "hugetlb"), ("cgroup.subtree_control", "")],
    );
    Hierarchy::V1 {
        controllers,
        unified: Some(root.join("unified")),
        unified_controllers: vec!["hugetlb".into()],
    }
}

#[test]
fn v1_create_copies_cpusets_and_apply_writes_every_hierarchy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let h = hybrid(root);
    // /kiln exists already, with the empty cpuset files of a fresh cgroup.
    kernel_files(&root.join("cpuset/kiln"), &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "c3").expect("path")).expect("cgroup");
    assert_eq!(cg.dir("cpuacct"), Some(root.join("cpuacct/kiln/c3").as_path()));
    assert_eq!(cg.dir("name=systemd"), Some(root.join("systemd/kiln/c3").as_path()));
    assert_eq!(cg.dir("hugetlb"), Some(root.join("unified/kiln/c3").as_path()));
    assert_eq!(cg.dir("blkio"), None);

    cg.create().expect("create");
    for sub in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "systemd"] {
        assert!(root.join(sub).join("kiln/c3").is_dir(), "{sub}");
    }
    assert_eq!(read(root.join("cpuset/kiln/cpuset.cpus")), "0-3");
    assert_eq!(read(root.join("cpuset/kiln/cpuset.mems")), "0");
    // The hybrid host's cgroup2 tree is left alone until a setting needs it.
    assert!(!root.join("unified/kiln/c3").exists());
    assert_ne!(read(root.join("unified/cgroup.subtree_control")), "+hugetlb");

    // The kernel fills the new cgroups; creating again copies the leaf's cpuset.
    let leaf = |c: &str| root.join(c).join("kiln/c3");
    kernel_files(
        &leaf("cpuset"),
        &[("cpuset.cpus", ""), ("cpuset.mems", ""), ("cgroup.procs", "")],
    );
    cg.create().expect("create again");
    assert_eq!(read(leaf("cpuset").join("cpuset.cpus")), "0-3");
    kernel_files(
        &leaf("memory"),
        &[("memory.limit_in_bytes", ""), ("memory.usage_in_bytes", "1000"), ("cgroup.procs", "")],
    );
    kernel_files(
        &leaf("cpu"),
        &[
            ("cpu.shares", ""),
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_quota_us", ""),
            ("cgroup.procs", ""),
        ],
    );
    kernel_files(&leaf("pids"), &[("pids.max", ""), ("cgroup.procs", "12\n")]);
    kernel_files(
        &leaf("devices"),
        &[("devices.allow", ""), ("devices.deny", ""), ("cgroup.procs", "")],
    );
    kernel_files(&leaf("freezer"), &[("freezer.state", "THAWED"), ("cgroup.procs", "")]);
    for c in ["cpuacct", "systemd", "unified"] {
        kernel_files(&leaf(c), &[("cgroup.procs", "")]);
    }
    kernel_files(&leaf("unified"), &[("hugetlb.2MB.max", "max")]);

    let mut r = resources();
    r.block_io = Some(kiln_cgroups::BlockIo { weight: Some(500), ..Default::default() });
    let warnings = cg.apply(&r).expect("apply");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("memory.memsw.limit_in_bytes")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("blkio")), "{warnings:?}");
    assert_eq!(read(leaf("memory").join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(leaf("cpu").join("cpu.shares")), "1024");
    assert_eq!(read(leaf("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(leaf("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(leaf("cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(leaf("pids").join("pids.max")), "10");
    assert_eq!(read(leaf("devices").join("devices.deny")), "a *:* rwm");
    assert_eq!(read(leaf("devices").join("devices.allow")), "c 1:3 rwm");
    assert_eq!(read(leaf("unified").join("hugetlb.2MB.max")), "4194304");

    cg.add_process(99).expect("add");
    for c in
        ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "systemd", "unified"]
    {
        assert_eq!(read(leaf(c).join("cgroup.procs")), "99", "{c}");
    }
    // pids() reads the pids hierarchy.
    assert_eq!(cg.pids().expect("pids"), [99]);

    assert!(!cg.is_frozen().expect("state"));
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("state"));
    cg.thaw().expect("thaw");
    assert_eq!(read(leaf("freezer").join("freezer.state")), "THAWED");
}

#[test]
fn v1_check_before_update_refuses_a_limit_below_usage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = hybrid(tmp.path());
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "c4").expect("path")).expect("cgroup");
    cg.create().expect("create");
    let dir = tmp.path().join("memory/kiln/c4");
    kernel_files(&dir, &[("memory.limit_in_bytes", ""), ("memory.usage_in_bytes", "104857600")]);
    let r = Resources {
        memory: Some(Memory {
            limit: Some(64 << 20),
            check_before_update: Some(true),
            ..Memory::default()
        }),
        ..Resources::default()
    };
    let err = cg.apply(&r).expect_err("below usage");
    assert!(matches!(err, CgroupError::MemoryBelowUsage { usage: 104857600, .. }), "{err:?}");
    assert_eq!(read(dir.join("memory.limit_in_bytes")), "");
}

#[test]
fn unified_settings_need_a_cgroup2_hierarchy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let controllers = BTreeMap::from([("memory".to_owned(), tmp.path().join("memory"))]);
    fs::create_dir(tmp.path().join("memory")).expect("mkdir");
    let h = Hierarchy::V1 { controllers, unified: None, unified_controllers: vec![] };
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "c5").expect("path")).expect("cgroup");
    cg.create().expect("create");
    let mut r = Resources::default();
    r.unified.insert("memory.high".into(), "1".into());
    assert!(matches!(cg.apply(&r), Err(CgroupError::UnifiedOnV1)));
    assert!(cg.freeze().is_err(), "no freezer hierarchy");
}

#[test]
fn destroy_removes_leaves_only_and_tolerates_missing_dirs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = Hierarchy::V2 { root: tmp.path().to_owned() };
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "c6").expect("path")).expect("cgroup");
    cg.create().expect("create");
    fs::create_dir_all(tmp.path().join("kiln/c6/sub/deeper")).expect("mkdir");
    cg.destroy().expect("destroy");
    assert!(!tmp.path().join("kiln/c6").exists());
    assert!(tmp.path().join("kiln").is_dir());
    cg.destroy().expect("destroy again");
    assert_eq!(cg.pids().expect("pids of a removed cgroup"), Vec::<i32>::new());
}

#[test]
fn stats_read_v1_and_v2_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let h = hybrid(root);
    let cg = Cgroup::new(&h, &CgroupPath::parse(None, "s1").expect("path")).expect("cgroup");
    cg.create().expect("create");
    kernel_files(
        &root.join("memory/kiln/s1"),
        &[
            ("memory.usage_in_bytes", "1048576"),
            ("memory.max_usage_in_bytes", "2097152"),
            ("memory.limit_in_bytes", "67108864"),
            ("memory.stat", "cache 4096\ntotal_inactive_file 4096\n"),
        ],
    );
    kernel_files(
        &root.join("cpuacct/kiln/s1"),
        &[
            ("cpuacct.usage", "5000000"),
            ("cpuacct.usage_percpu", "3000000 2000000 \n"),
            ("cpuacct.stat", "user 1\nsystem 2\n"),
        ],
    );
    kernel_files(&root.join("pids/kiln/s1"), &[("pids.current", "3"), ("pids.max", "max")]);
    let s = cg.stats();
    assert_eq!((s.memory_usage, s.memory_max_usage, s.memory_limit), (1 << 20, 2 << 20, 64 << 20));
    assert_eq!(s.memory_stat["total_inactive_file"], 4096);
    assert_eq!((s.cpu_total, s.cpu_per_cpu.clone()), (5_000_000, vec![3_000_000, 2_000_000]));
    assert_eq!((s.cpu_user, s.cpu_system), (10_000_000, 20_000_000));
    assert_eq!((s.pids_current, s.pids_limit), (3, 0));

    let tmp2 = tempfile::tempdir().expect("tempdir");
    let h2 = Hierarchy::V2 { root: tmp2.path().to_owned() };
    let cg2 = Cgroup::new(&h2, &CgroupPath::parse(None, "s2").expect("path")).expect("cgroup");
    cg2.create().expect("create");
    kernel_files(
        &tmp2.path().join("kiln/s2"),
        &[
            ("memory.current", "4096"),
            ("memory.max", "max"),
            ("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n"),
            ("pids.current", "1"),
            ("pids.max", "100"),
        ],
    );
    let s = cg2.stats();
    assert_eq!((s.memory_usage, s.memory_limit), (4096, u64::MAX));
    assert_eq!((s.cpu_total, s.cpu_user, s.cpu_system), (7000, 5000, 2000));
    assert_eq!((s.pids_current, s.pids_limit), (1, 100));
}
