//! What applying [`Resources`](crate::Resources) writes, as plain values.

use crate::resources::{DeviceRule, Memory};
use crate::CgroupError;

/// One value written to one cgroup interface file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The v1 controller whose hierarchy holds `file` (`memory`, `cpu`,
    /// `cpuset`, `pids`, `devices`, `blkio`, `hugetlb`, `net_cls`,
    /// `net_prio`); `""` for cgroup v2 files and for `unified` settings.
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

impl Write {
    pub(crate) fn new(
        controller: &'static str,
        file: impl Into<String>,
        value: impl ToString,
    ) -> Write {
        Write { controller, file: file.into(), value: value.to_string() }
    }
}

/// Writes in order, and the settings a hierarchy cannot express.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) writes: Vec<Write>,
    pub(crate) warnings: Vec<String>,
}

impl Plan {
    pub(crate) fn write(
        &mut self,
        controller: &'static str,
        file: impl Into<String>,
        value: impl ToString,
    ) {
        self.writes.push(Write::new(controller, file, value));
    }

    pub(crate) fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}

/// The smallest memory limit accepted: 6 MiB, as Docker requires.
pub const MIN_MEMORY_LIMIT: i64 = 6 * 1024 * 1024;

/// The memory limit to write, if any: `Some(-1)` is unlimited; 0 is unset.
pub(crate) fn memory_limit(m: &Memory) -> Result<Option<i64>, CgroupError> {
    match m.limit {
        None | Some(0) => Ok(None),
        Some(limit) if limit < 0 => Ok(Some(-1)),
        Some(limit) if limit < MIN_MEMORY_LIMIT => Err(CgroupError::MemoryBelowMinimum { limit }),
        Some(limit) => Ok(Some(limit)),
    }
}

/// `TYPE MAJOR:MINOR ACCESS`, as `devices.allow` and `devices.deny` take it.
pub(crate) fn device_rule(rule: &DeviceRule) -> Result<String, CgroupError> {
    let shown = format!("{rule:?}");
    let invalid = |reason| CgroupError::InvalidDeviceRule { rule: shown.clone(), reason };
    let kind = rule.r#type.as_deref().unwrap_or("a");
    if !matches!(kind, "a" | "b" | "c") {
        return Err(invalid("type must be a, b or c"));
    }
    let number = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_owned()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(_) => Err(invalid("device numbers must not be negative")),
    };
    let (major, minor) = (number(rule.major)?, number(rule.minor)?);
    let access = rule.access.as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid("access must be made of r, w and m"));
    }
    Ok(format!("{kind} {major}:{minor} {access}"))
}

/// Whether the rules leave every device allowed, as with no rules at all.
pub(crate) fn allows_all_devices(rules: &[DeviceRule]) -> bool {
    rules.iter().all(|r| {
        r.allow
            && matches!(r.r#type.as_deref(), None | Some("a"))
            && matches!(r.major, None | Some(-1))
            && matches!(r.minor, None | Some(-1))
            && r.access
                .as_deref()
                .is_none_or(|a| a.is_empty() || ['r', 'w', 'm'].iter().all(|c| a.contains(*c)))
    })
}

/// A hugepage size as the kernel spells it in file names: `2MB`, `1GB`, `64KB`.
pub(crate) fn hugepage_size(size: &str) -> Result<&str, CgroupError> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(CgroupError::InvalidHugepageSize { size: size.to_owned() });
    }
    Ok(size)
}

/// A `unified` key must be a plain file name in the container's cgroup.
pub(crate) fn unified_key(key: &str) -> Result<&str, CgroupError> {
    if key.is_empty() || key.contains('/') || key.contains("..") || key.contains('\0') {
        return Err(CgroupError::InvalidUnifiedKey { key: key.to_owned() });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            r#type: kind.map(str::to_owned),
            major,
            minor,
            access: access.map(str::to_owned),
        }
    }

    #[test]
    fn device_rules_fill_in_wildcards() {
        assert_eq!(device_rule(&rule(false, None, None, None, None)).expect("rule"), "a *:* rwm");
        assert_eq!(
            device_rule(&rule(true, Some("c"), Some(1), Some(3), Some("rw"))).expect("rule"),
            "c 1:3 rw"
        );
        assert_eq!(
            device_rule(&rule(true, Some("b"), Some(8), None, Some("m"))).expect("rule"),
            "b 8:* m"
        );
        assert!(device_rule(&rule(true, Some("x"), None, None, None)).is_err());
        assert!(device_rule(&rule(true, Some("c"), Some(-5), None, None)).is_err());
        assert!(device_rule(&rule(true, Some("c"), None, None, Some("rx"))).is_err());
    }

    #[test]
    fn allow_all_is_recognised() {
        assert!(allows_all_devices(&[]));
        assert!(allows_all_devices(&[rule(true, Some("a"), None, None, Some("rwm"))]));
        assert!(!allows_all_devices(&[rule(false, None, None, None, Some("rwm"))]));
        assert!(!allows_all_devices(&[rule(true, Some("c"), Some(1), Some(3), Some("rwm"))]));
        assert!(!allows_all_devices(&[rule(true, None, None, None, Some("r"))]));
    }

    #[test]
    fn memory_limits_below_six_mib_are_refused() {
        let m = |limit| Memory { limit: Some(limit), ..Memory::default() };
        assert_eq!(memory_limit(&m(0)).expect("unset"), None);
        assert_eq!(memory_limit(&m(-1)).expect("unlimited"), Some(-1));
        assert_eq!(memory_limit(&m(MIN_MEMORY_LIMIT)).expect("minimum"), Some(MIN_MEMORY_LIMIT));
        let err = memory_limit(&m(4096)).expect_err("too small");
        assert_eq!(err.to_string(), "memory limit 4096 is below the minimum of 6291456 bytes");
    }

    #[test]
    fn hugepage_sizes_and_unified_keys_are_file_name_safe() {
        assert!(hugepage_size("2MB").is_ok() && hugepage_size("1GB").is_ok());
        for bad in ["", "MB", "2", "2MB/x", "../2MB", "2mb"] {
            assert!(hugepage_size(bad).is_err(), "{bad}");
        }
        assert!(unified_key("memory.high").is_ok());
        for bad in ["", "a/b", "..", "x..y", "/memory.max"] {
            assert!(unified_key(bad).is_err(), "{bad}");
        }
    }
}
