//! What [`Resources`] become on cgroup v2: converted into the unified interface files.

use crate::plan::{self, Plan, Write};
use crate::resources::Resources;
use crate::v1::pids_max;
use crate::CgroupError;

/// The default `cpu.max` period, in microseconds.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// The ordered writes that apply `r` on cgroup v2; every controller is `""`.
///
/// v1 values are converted as runc does: shares to `cpu.weight`, blkio
/// weights to `io.weight`, memory+swap to `memory.swap.max`. `unified`
/// settings come last, so they override the converted ones.
pub fn plan_v2(r: &Resources) -> Result<Vec<Write>, CgroupError> {
    plan(r).map(|p| p.writes)
}

pub(crate) fn plan(r: &Resources) -> Result<Plan, CgroupError> {
    let mut p = Plan::default();
    memory(r, &mut p)?;
    cpu(r, &mut p);
    if let Some(pids) = &r.pids {
        p.write("", "pids.max", pids_max(pids.limit));
    }
    if !plan::allows_all_devices(&r.devices) {
        for rule in &r.devices {
            plan::device_rule(rule)?;
        }
        p.warn("device cgroup rules are not enforced on cgroup v2 yet");
    }
    block_io(r, &mut p);
    for limit in &r.hugepage_limits {
        let size = plan::hugepage_size(&limit.page_size)?;
        p.write("", format!("hugetlb.{size}.max"), limit.limit);
    }
    if r.network.as_ref().is_some_and(|n| n.class_id.is_some() || !n.priorities.is_empty()) {
        p.warn("network class and priorities are not supported on cgroup v2 and were ignored");
    }
    for (key, value) in &r.unified {
        p.write("", plan::unified_key(key)?, value);
    }
    Ok(p)
}

/// `cpu.shares` (2..=262144) to `cpu.weight` (1..=10000).
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    (1 + ((shares - 2) * 9999) / 262_142).clamp(1, 10_000)
}

/// `blkio.weight` (10..=1000) to `io.weight` (1..=10000).
pub(crate) fn io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

fn memory(r: &Resources, p: &mut Plan) -> Result<(), CgroupError> {
    let Some(m) = &r.memory else { return Ok(()) };
    let limit = plan::memory_limit(m)?;
    let max = |v: i64| if v < 0 { "max".to_owned() } else { v.to_string() };
    match m.reservation {
        None | Some(0) => {}
        Some(reservation) => p.write("", "memory.low", max(reservation)),
    }
    if let Some(limit) = limit {
        p.write("", "memory.max", max(limit));
    }
    // OCI swap is memory+swap, as on v1; memory.swap.max is the swap alone.
    match (m.swap.unwrap_or(0), limit) {
        (0, Some(-1)) => p.write("", "memory.swap.max", "max"),
        (0, _) => {}
        (swap, _) if swap < 0 => p.write("", "memory.swap.max", "max"),
        (swap, None | Some(-1)) => return Err(CgroupError::SwapWithoutMemory { swap }),
        (swap, Some(limit)) if swap < limit => {
            return Err(CgroupError::SwapBelowMemory { swap, limit })
        }
        (swap, Some(limit)) => p.write("", "memory.swap.max", swap - limit),
    }
    if m.swappiness.is_some() {
        p.warn("memory.swappiness is not supported on cgroup v2 and was ignored");
    }
    if m.disable_oom_killer == Some(true) {
        p.warn("memory.disableOOMKiller is not supported on cgroup v2 and was ignored");
    }
    if m.use_hierarchy == Some(false) {
        p.warn("memory.useHierarchy=false is not supported on cgroup v2 and was ignored");
    }
    Ok(())
}

fn cpu(r: &Resources, p: &mut Plan) {
    let Some(cpu) = &r.cpu else { return };
    if let Some(shares) = cpu.shares.filter(|s| *s != 0) {
        p.write("", "cpu.weight", cpu_weight(shares));
    }
    let period = cpu.period.filter(|p| *p != 0);
    if cpu.quota.is_some() || period.is_some() {
        let quota = match cpu.quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        p.write("", "cpu.max", format!("{quota} {}", period.unwrap_or(DEFAULT_CPU_PERIOD)));
    }
    if let Some(burst) = cpu.burst {
        p.write("", "cpu.max.burst", burst);
    }
    if cpu.realtime_period.is_some() || cpu.realtime_runtime.is_some() {
        p.warn("realtime cpu settings are not supported on cgroup v2 and were ignored");
    }
    if let Some(idle) = cpu.idle {
        p.write("", "cpu.idle", idle);
    }
    if let Some(cpus) = cpu.cpus.as_deref().filter(|c| !c.is_empty()) {
        p.write("", "cpuset.cpus", cpus);
    }
    if let Some(mems) = cpu.mems.as_deref().filter(|m| !m.is_empty()) {
        p.write("", "cpuset.mems", mems);
    }
}

fn block_io(r: &Resources, p: &mut Plan) {
    let Some(bio) = &r.block_io else { return };
    if let Some(weight) = bio.weight.filter(|w| *w != 0) {
        p.write("", "io.weight", io_weight(weight));
    }
    let has_leaf =
        bio.leaf_weight.is_some() || bio.weight_device.iter().any(|d| d.leaf_weight.is_some());
    if has_leaf {
        p.warn("block io leaf weights are not supported on cgroup v2 and were ignored");
    }
    for dev in &bio.weight_device {
        if let Some(weight) = dev.weight {
            p.write("", "io.weight", format!("{}:{} {}", dev.major, dev.minor, io_weight(weight)));
        }
    }
    let throttles = [
        ("rbps", &bio.throttle_read_bps_device),
        ("wbps", &bio.throttle_write_bps_device),
        ("riops", &bio.throttle_read_iops_device),
        ("wiops", &bio.throttle_write_iops_device),
    ];
    for (key, devices) in throttles {
        for dev in devices {
            let rate = if dev.rate == 0 { "max".to_owned() } else { dev.rate.to_string() };
            p.write("", "io.max", format!("{}:{} {key}={rate}", dev.major, dev.minor));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::*;

    fn files(writes: &[Write]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file.as_str(), w.value.as_str())).collect()
    }

    fn memory(m: Memory) -> Resources {
        Resources { memory: Some(m), ..Resources::default() }
    }

    #[test]
    fn memory_swap_is_converted_to_swap_alone() {
        let r = memory(Memory {
            limit: Some(64 << 20),
            reservation: Some(32 << 20),
            swap: Some(96 << 20),
            ..Memory::default()
        });
        let p = plan(&r).expect("plan");
        assert_eq!(
            files(&p.writes),
            [
                ("memory.low", "33554432"),
                ("memory.max", "67108864"),
                ("memory.swap.max", "33554432")
            ]
        );
        assert!(p.writes.iter().all(|w| w.controller.is_empty()));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn unlimited_memory_is_max_and_takes_swap_along() {
        let r = memory(Memory { limit: Some(-1), ..Memory::default() });
        assert_eq!(
            files(&plan_v2(&r).expect("plan")),
            [("memory.max", "max"), ("memory.swap.max", "max")]
        );
        let r = memory(Memory { limit: Some(64 << 20), swap: Some(-1), ..Memory::default() });
        assert_eq!(
            files(&plan_v2(&r).expect("plan")),
            [("memory.max", "67108864"), ("memory.swap.max", "max")]
        );
    }

    #[test]
    fn invalid_swap_is_refused() {
        let r = memory(Memory { swap: Some(64 << 20), ..Memory::default() });
        assert!(matches!(plan_v2(&r), Err(CgroupError::SwapWithoutMemory { .. })));
        let r = memory(Memory { limit: Some(64 << 20), swap: Some(32 << 20), ..Memory::default() });
        assert!(matches!(plan_v2(&r), Err(CgroupError::SwapBelowMemory { .. })));
        let r = memory(Memory { limit: Some(1 << 20), ..Memory::default() });
        assert!(matches!(plan_v2(&r), Err(CgroupError::MemoryBelowMinimum { .. })));
    }

    #[test]
    fn v1_only_memory_settings_become_warnings() {
        let r = memory(Memory {
            swappiness: Some(60),
            disable_oom_killer: Some(true),
            ..Memory::default()
        });
        let p = plan(&r).expect("plan");
        assert!(p.writes.is_empty());
        assert_eq!(p.warnings.len(), 2);
    }

    #[test]
    fn shares_convert_to_weight() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(1), 1);
        assert_eq!(cpu_weight(1_000_000), 10_000);
    }

    #[test]
    fn cpu_quota_and_period_share_cpu_max() {
        let cpu = |c: Cpu| Resources { cpu: Some(c), ..Resources::default() };
        let r = cpu(Cpu {
            shares: Some(1024),
            quota: Some(50000),
            period: Some(200000),
            burst: Some(1000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            idle: Some(1),
            ..Cpu::default()
        });
        assert_eq!(
            files(&plan_v2(&r).expect("plan")),
            [
                ("cpu.weight", "39"),
                ("cpu.max", "50000 200000"),
                ("cpu.max.burst", "1000"),
                ("cpu.idle", "1"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
            ]
        );
        let r = cpu(Cpu { quota: Some(50000), ..Cpu::default() });
        assert_eq!(files(&plan_v2(&r).expect("plan")), [("cpu.max", "50000 100000")]);
        let r = cpu(Cpu { quota: Some(-1), ..Cpu::default() });
        assert_eq!(files(&plan_v2(&r).expect("plan")), [("cpu.max", "max 100000")]);
        let r = cpu(Cpu { realtime_runtime: Some(1), ..Cpu::default() });
        let p = plan(&r).expect("plan");
        assert!(p.writes.is_empty() && p.warnings.len() == 1);
    }

    #[test]
    fn pids_and_hugetlb_map_to_v2_files() {
        let r = Resources {
            pids: Some(Pids { limit: -1 }),
            hugepage_limits: vec![HugepageLimit { page_size: "1GB".into(), limit: 1 << 30 }],
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v2(&r).expect("plan")),
            [("pids.max", "max"), ("hugetlb.1GB.max", "1073741824")]
        );
    }

    #[test]
    fn block_io_converts_to_io_weight_and_io_max() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(io_weight(1000), 10_000);
        let throttle = |rate| vec![ThrottleDevice { major: 8, minor: 0, rate }];
        let r = Resources {
            block_io: Some(BlockIo {
                weight: Some(1000),
                weight_device: vec![WeightDevice {
                    major: 8,
                    minor: 16,
                    weight: Some(10),
                    leaf_weight: None,
                }],
                throttle_read_bps_device: throttle(1),
                throttle_write_bps_device: throttle(2),
                throttle_read_iops_device: throttle(3),
                throttle_write_iops_device: throttle(0),
                ..BlockIo::default()
            }),
            ..Resources::default()
        };
        assert_eq!(
            files(&plan_v2(&r).expect("plan")),
            [
                ("io.weight", "10000"),
                ("io.weight", "8:16 1"),
                ("io.max", "8:0 rbps=1"),
                ("io.max", "8:0 wbps=2"),
                ("io.max", "8:0 riops=3"),
                ("io.max", "8:0 wiops=max"),
            ]
        );
    }

    #[test]
    fn device_rules_other_than_allow_all_warn() {
        let deny = DeviceRule { allow: false, access: Some("rwm".into()), ..DeviceRule::default() };
        let p = plan(&Resources { devices: vec![deny], ..Resources::default() }).expect("plan");
        assert!(p.writes.is_empty());
        assert_eq!(p.warnings, ["device cgroup rules are not enforced on cgroup v2 yet"]);
        let allow = DeviceRule { allow: true, access: Some("rwm".into()), ..DeviceRule::default() };
        let p = plan(&Resources { devices: vec![allow], ..Resources::default() }).expect("plan");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn unified_settings_are_written_last_as_is() {
        let mut r = Resources { pids: Some(Pids { limit: 5 }), ..Resources::default() };
        r.unified.insert("pids.max".into(), "7".into());
        assert_eq!(files(&plan_v2(&r).expect("plan")), [("pids.max", "5"), ("pids.max", "7")]);
        r.unified.insert("a/b".into(), "1".into());
        assert!(matches!(plan_v2(&r), Err(CgroupError::InvalidUnifiedKey { .. })));
    }
}
