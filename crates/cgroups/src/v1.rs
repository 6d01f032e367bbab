//! What [`Resources`] become on cgroup v1: one file per setting, per controller.

use crate::plan::{self, Plan, Write};
use crate::resources::Resources;
use crate::CgroupError;

/// The ordered writes that apply `r` on cgroup v1.
///
/// `cpu.cfs_period_us` comes before `cpu.cfs_quota_us` and `cpu.rt_period_us`
/// before `cpu.rt_runtime_us`, since the kernel checks each against the
/// other. Device rules keep their order. `unified` settings come last with
/// controller `""`: they only apply to a hybrid host's cgroup2 hierarchy.
pub fn plan_v1(r: &Resources) -> Result<Vec<Write>, CgroupError> {
    plan(r).map(|p| p.writes)
}

pub(crate) fn plan(r: &Resources) -> Result<Plan, CgroupError> {
    let mut p = Plan::default();
    memory(r, &mut p)?;
    cpu(r, &mut p);
    if let Some(pids) = &r.pids {
        p.write("pids", "pids.max", pids_max(pids.limit));
    }
    for rule in &r.devices {
        let file = if rule.allow { "devices.allow" } else { "devices.deny" };
        p.write("devices", file, plan::device_rule(rule)?);
    }
    block_io(r, &mut p);
    for limit in &r.hugepage_limits {
        let size = plan::hugepage_size(&limit.page_size)?;
        p.write("hugetlb", format!("hugetlb.{size}.limit_in_bytes"), limit.limit);
    }
    if let Some(network) = &r.network {
        if let Some(class_id) = network.class_id {
            p.write("net_cls", "net_cls.classid", class_id);
        }
        for prio in &network.priorities {
            p.write("net_prio", "net_prio.ifpriomap", format!("{} {}", prio.name, prio.priority));
        }
    }
    for (key, value) in &r.unified {
        p.write("", plan::unified_key(key)?, value);
    }
    Ok(p)
}

pub(crate) fn pids_max(limit: i64) -> String {
    if limit <= 0 {
        "max".to_owned()
    } else {
        limit.to_string()
    }
}

fn memory(r: &Resources, p: &mut Plan) -> Result<(), CgroupError> {
    let Some(m) = &r.memory else { return Ok(()) };
    let limit = plan::memory_limit(m)?;
    if let Some(swappiness) = m.swappiness.filter(|s| *s > 100) {
        return Err(CgroupError::InvalidSwappiness { swappiness });
    }
    if let Some(use_hierarchy) = m.use_hierarchy {
        p.write("memory", "memory.use_hierarchy", u8::from(use_hierarchy));
    }
    if let Some(limit) = limit {
        p.write("memory", "memory.limit_in_bytes", limit);
    }
    match m.swap {
        None | Some(0) => {}
        Some(swap) if swap < 0 => p.write("memory", "memory.memsw.limit_in_bytes", -1),
        Some(swap) => {
            if let Some(limit) = limit.filter(|l| *l > swap) {
                return Err(CgroupError::SwapBelowMemory { swap, limit });
            }
            p.write("memory", "memory.memsw.limit_in_bytes", swap);
        }
    }
    match m.reservation {
        None | Some(0) => {}
        Some(reservation) => p.write("memory", "memory.soft_limit_in_bytes", reservation.max(-1)),
    }
    if let Some(swappiness) = m.swappiness {
        p.write("memory", "memory.swappiness", swappiness);
    }
    if m.disable_oom_killer == Some(true) {
        p.write("memory", "memory.oom_control", 1);
    }
    Ok(())
}

fn cpu(r: &Resources, p: &mut Plan) {
    let Some(cpu) = &r.cpu else { return };
    if let Some(shares) = cpu.shares.filter(|s| *s != 0) {
        p.write("cpu", "cpu.shares", shares);
    }
    if let Some(period) = cpu.period.filter(|p| *p != 0) {
        p.write("cpu", "cpu.cfs_period_us", period);
    }
    if let Some(quota) = cpu.quota {
        p.write("cpu", "cpu.cfs_quota_us", if quota > 0 { quota } else { -1 });
    }
    if let Some(burst) = cpu.burst {
        p.write("cpu", "cpu.cfs_burst_us", burst);
    }
    if let Some(period) = cpu.realtime_period.filter(|p| *p != 0) {
        p.write("cpu", "cpu.rt_period_us", period);
    }
    if let Some(runtime) = cpu.realtime_runtime {
        p.write("cpu", "cpu.rt_runtime_us", runtime);
    }
    if let Some(idle) = cpu.idle {
        p.write("cpu", "cpu.idle", idle);
    }
    if let Some(cpus) = cpu.cpus.as_deref().filter(|c| !c.is_empty()) {
        p.write("cpuset", "cpuset.cpus", cpus);
    }
    if let Some(mems) = cpu.mems.as_deref().filter(|m| !m.is_empty()) {
        p.write("cpuset", "cpuset.mems", mems);
    }
}

fn block_io(r: &Resources, p: &mut Plan) {
    let Some(bio) = &r.block_io else { return };
    if let Some(weight) = bio.weight.filter(|w| *w != 0) {
        p.write("blkio", "blkio.weight", weight);
    }
    if let Some(weight) = bio.leaf_weight.filter(|w| *w != 0) {
        p.write("blkio", "blkio.leaf_weight", weight);
    }
    for dev in &bio.weight_device {
        if let Some(weight) = dev.weight {
            p.write(
                "blkio",
                "blkio.weight_device",
                format!("{}:{} {weight}", dev.major, dev.minor),
            );
        }
        if let Some(weight) = dev.leaf_weight {
            let value = format!("{}:{} {weight}", dev.major, dev.minor);
            p.write("blkio", "blkio.leaf_weight_device", value);
        }
    }
    let throttles = [
        ("blkio.throttle.read_bps_device", &bio.throttle_read_bps_device),
        ("blkio.throttle.write_bps_device", &bio.throttle_write_bps_device),
        ("blkio.throttle.read_iops_device", &bio.throttle_read_iops_device),
        ("blkio.throttle.write_iops_device", &bio.throttle_write_iops_device),
    ];
    for (file, devices) in throttles {
        for dev in devices {
            p.write("blkio", file, format!("{}:{} {}", dev.major, dev.minor, dev.rate));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::*;

    fn files(writes: &[Write]) -> Vec<(&str, &str, &str)> {
        writes.iter().map(|w| (w.controller, w.file.as_str(), w.value.as_str())).collect()
    }

    #[test]
    fn memory_settings_map_to_v1_files() {
        let r = Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                reservation: Some(32 << 20),
                swap: Some(128 << 20),
                swappiness: Some(10),
                disable_oom_killer: Some(true),
                use_hierarchy: Some(true),
                kernel: Some(1),
                ..Memory::default()
            }),
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v1(&r).expect("plan")),
            [
                ("memory", "memory.use_hierarchy", "1"),
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("memory", "memory.swappiness", "10"),
                ("memory", "memory.oom_control", "1"),
            ]
        );
    }

    #[test]
    fn unlimited_memory_and_swap_write_minus_one() {
        let r = Resources {
            memory: Some(Memory { limit: Some(-1), swap: Some(-1), ..Memory::default() }),
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v1(&r).expect("plan")),
            [
                ("memory", "memory.limit_in_bytes", "-1"),
                ("memory", "memory.memsw.limit_in_bytes", "-1")
            ]
        );
    }

    #[test]
    fn invalid_memory_settings_are_refused() {
        let m = |m: Memory| Resources { memory: Some(m), ..Resources::default() };
        let small = m(Memory { limit: Some(4096), ..Memory::default() });
        assert!(matches!(plan_v1(&small), Err(CgroupError::MemoryBelowMinimum { limit: 4096 })));
        let swap = m(Memory { limit: Some(64 << 20), swap: Some(32 << 20), ..Memory::default() });
        assert!(matches!(plan_v1(&swap), Err(CgroupError::SwapBelowMemory { .. })));
        let swappiness = m(Memory { swappiness: Some(101), ..Memory::default() });
        assert!(matches!(plan_v1(&swappiness), Err(CgroupError::InvalidSwappiness { .. })));
    }

    #[test]
    fn cpu_period_is_written_before_quota() {
        let r = Resources {
            cpu: Some(Cpu {
                shares: Some(512),
                quota: Some(50000),
                period: Some(100000),
                burst: Some(1000),
                realtime_runtime: Some(950000),
                realtime_period: Some(1000000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
                idle: Some(0),
            }),
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v1(&r).expect("plan")),
            [
                ("cpu", "cpu.shares", "512"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("cpu", "cpu.cfs_burst_us", "1000"),
                ("cpu", "cpu.rt_period_us", "1000000"),
                ("cpu", "cpu.rt_runtime_us", "950000"),
                ("cpu", "cpu.idle", "0"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
            ]
        );
        let unlimited = Resources {
            cpu: Some(Cpu { quota: Some(0), ..Cpu::default() }),
            ..Resources::default()
        };
        assert_eq!(files(&plan_v1(&unlimited).expect("plan")), [("cpu", "cpu.cfs_quota_us", "-1")]);
    }

    #[test]
    fn pids_limit_of_zero_or_less_is_max() {
        for (limit, value) in [(10, "10"), (0, "max"), (-1, "max")] {
            let r = Resources { pids: Some(Pids { limit }), ..Resources::default() };
            assert_eq!(files(&plan_v1(&r).expect("plan")), [("pids", "pids.max", value)]);
        }
    }

    #[test]
    fn device_rules_are_written_in_order() {
        let r = Resources {
            devices: vec![
                DeviceRule { allow: false, access: Some("rwm".into()), ..DeviceRule::default() },
                DeviceRule {
                    allow: true,
                    r#type: Some("c".into()),
                    major: Some(1),
                    minor: Some(3),
                    access: Some("rwm".into()),
                },
                DeviceRule {
                    allow: true,
                    r#type: Some("c".into()),
                    major: Some(136),
                    ..DeviceRule::default()
                },
            ],
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v1(&r).expect("plan")),
            [
                ("devices", "devices.deny", "a *:* rwm"),
                ("devices", "devices.allow", "c 1:3 rwm"),
                ("devices", "devices.allow", "c 136:* rwm"),
            ]
        );
    }

    #[test]
    fn block_io_hugetlb_and_network_map_to_v1_files() {
        let throttle = |rate| vec![ThrottleDevice { major: 8, minor: 0, rate }];
        let r = Resources {
            block_io: Some(BlockIo {
                weight: Some(500),
                leaf_weight: Some(300),
                weight_device: vec![WeightDevice {
                    major: 8,
                    minor: 16,
                    weight: Some(200),
                    leaf_weight: Some(100),
                }],
                throttle_read_bps_device: throttle(1),
                throttle_write_bps_device: throttle(2),
                throttle_read_iops_device: throttle(3),
                throttle_write_iops_device: throttle(4),
            }),
            hugepage_limits: vec![HugepageLimit { page_size: "2MB".into(), limit: 4 << 20 }],
            network: Some(Network {
                class_id: Some(0x100001),
                priorities: vec![InterfacePriority { name: "eth0".into(), priority: 5 }],
            }),
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v1(&r).expect("plan")),
            [
                ("blkio", "blkio.weight", "500"),
                ("blkio", "blkio.leaf_weight", "300"),
                ("blkio", "blkio.weight_device", "8:16 200"),
                ("blkio", "blkio.leaf_weight_device", "8:16 100"),
                ("blkio", "blkio.throttle.read_bps_device", "8:0 1"),
                ("blkio", "blkio.throttle.write_bps_device", "8:0 2"),
                ("blkio", "blkio.throttle.read_iops_device", "8:0 3"),
                ("blkio", "blkio.throttle.write_iops_device", "8:0 4"),
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                ("net_cls", "net_cls.classid", "1048577"),
                ("net_prio", "net_prio.ifpriomap", "eth0 5"),
            ]
        );
        let bad = Resources {
            hugepage_limits: vec![HugepageLimit { page_size: "../2MB".into(), limit: 1 }],
            ..Resources::default()
        };
        assert!(matches!(plan_v1(&bad), Err(CgroupError::InvalidHugepageSize { .. })));
    }

    #[test]
    fn unified_settings_are_planned_for_the_hybrid_hierarchy() {
        let mut r = Resources::default();
        r.unified.insert("memory.high".into(), "100".into());
        assert_eq!(files(&plan_v1(&r).expect("plan")), [("", "memory.high", "100")]);
        r.unified.insert("../memory.max".into(), "1".into());
        assert!(matches!(plan_v1(&r), Err(CgroupError::InvalidUnifiedKey { .. })));
    }
}
