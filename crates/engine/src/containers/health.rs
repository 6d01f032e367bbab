//! Health checks (`HEALTHCHECK`, `--health-*`): which check a container
//! runs, and how each result moves its health, as Docker does it. Pure; the
//! container service runs the probes.

use std::collections::VecDeque;
use std::time::Duration;

use kiln_image::Healthcheck;

/// Docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept for inspect.
const KEPT_RESULTS: usize = 5;
/// Bytes of a probe's output kept.
pub const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result: unix nanoseconds, exit code (-1: timed out or
/// could not run), output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub start: i64,
    pub end: i64,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: i64,
    pub log: VecDeque<ProbeResult>,
}

impl Default for HealthState {
    fn default() -> HealthState {
        HealthState { status: HealthStatus::Starting, failing_streak: 0, log: VecDeque::new() }
    }
}

/// When and how long probes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: i64,
}

/// The check a container runs: the container's own fields, falling back to
/// the image's field by field; `None` without one or with `NONE`.
pub fn effective(
    container: Option<&Healthcheck>,
    image: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    let mut check = match (container, image) {
        (Some(c), Some(i)) => Healthcheck {
            test: if c.test.is_empty() { i.test.clone() } else { c.test.clone() },
            interval: c.interval.filter(|v| *v > 0).or(i.interval),
            timeout: c.timeout.filter(|v| *v > 0).or(i.timeout),
            start_period: c.start_period.filter(|v| *v > 0).or(i.start_period),
            start_interval: c.start_interval.filter(|v| *v > 0).or(i.start_interval),
            retries: c.retries.filter(|v| *v > 0).or(i.retries),
        },
        (Some(c), None) => c.clone(),
        (None, Some(i)) => i.clone(),
        (None, None) => return None,
    };
    if check.test.is_empty() || check.test[0] == "NONE" {
        return None;
    }
    check.test = check.test.clone();
    Some(check)
}

/// The command of a check: `CMD args…` as is, `CMD-SHELL cmd` through
/// `/bin/sh -c`.
pub fn probe_args(check: &Healthcheck) -> Option<Vec<String>> {
    match check.test.split_first()? {
        (kind, rest) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        (kind, [command]) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), command.clone()])
        }
        _ => None,
    }
}

fn nanos(value: Option<i64>, default: Duration) -> Duration {
    value.filter(|v| *v > 0).map_or(default, |v| Duration::from_nanos(v as u64))
}

pub fn timing(check: &Healthcheck) -> Timing {
    Timing {
        interval: nanos(check.interval, DEFAULT_INTERVAL),
        timeout: nanos(check.timeout, DEFAULT_TIMEOUT),
        start_period: nanos(check.start_period, Duration::ZERO),
        retries: check.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
    }
}

/// Apply one result. A failure during the start period does not count; a
/// success always makes the container healthy.
pub fn record(state: &mut HealthState, result: ProbeResult, in_start_period: bool, retries: i64) {
    let ok = result.exit_code == 0;
    state.log.push_back(result);
    while state.log.len() > KEPT_RESULTS {
        state.log.pop_front();
    }
    if ok {
        state.status = HealthStatus::Healthy;
        state.failing_streak = 0;
    } else if !in_start_period {
        state.failing_streak += 1;
        if state.failing_streak >= retries {
            state.status = HealthStatus::Unhealthy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(test: &[&str]) -> Healthcheck {
        Healthcheck { test: test.iter().map(|s| s.to_string()).collect(), ..Healthcheck::default() }
    }

    fn result(code: i64) -> ProbeResult {
        ProbeResult { start: 0, end: 1, exit_code: code, output: String::new() }
    }

    #[test]
    fn the_containers_check_wins_and_none_disables() {
        let image = Healthcheck { interval: Some(5), ..check(&["CMD", "true"]) };
        let mine = check(&["CMD-SHELL", "exit 0"]);
        let merged = effective(Some(&mine), Some(&image)).expect("check");
        assert_eq!(merged.test, ["CMD-SHELL", "exit 0"]);
        assert_eq!(merged.interval, Some(5));
        assert!(effective(Some(&check(&["NONE"])), Some(&image)).is_none());
        assert!(effective(None, None).is_none());
        assert_eq!(probe_args(&mine).expect("args"), ["/bin/sh", "-c", "exit 0"]);
        assert_eq!(probe_args(&check(&["CMD", "x", "y"])).expect("args"), ["x", "y"]);
        assert!(probe_args(&check(&["CMD"])).is_none());
    }

    #[test]
    fn failures_count_after_the_start_period_up_to_the_retries() {
        let mut state = HealthState::default();
        record(&mut state, result(1), true, 2);
        assert_eq!((state.status, state.failing_streak), (HealthStatus::Starting, 0));
        record(&mut state, result(1), false, 2);
        assert_eq!(state.status, HealthStatus::Starting);
        record(&mut state, result(1), false, 2);
        assert_eq!(state.status, HealthStatus::Unhealthy);
        record(&mut state, result(0), false, 2);
        assert_eq!((state.status, state.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            record(&mut state, result(0), false, 2);
        }
        assert_eq!(state.log.len(), KEPT_RESULTS);
    }

    #[test]
    fn timing_has_dockers_defaults() {
        let t = timing(&check(&["CMD", "true"]));
        assert_eq!((t.interval, t.timeout, t.retries), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, 3));
    }
}
