//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`):
//! when a container comes back, and how long it waits first.

use std::time::Duration;

use kiln_types::ContainerStatus;

use super::model::RestartPolicy;

/// The first delay, and the most.
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long counts as healthy: the back-off starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// Whether a container that just exited with `code` restarts.
pub fn should_restart(
    policy: &RestartPolicy,
    code: i64,
    restarts: i64,
    stopped_by_user: bool,
) -> bool {
    if stopped_by_user {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (policy.maximum_retry_count <= 0 || restarts < policy.maximum_retry_count)
        }
        _ => false,
    }
}

/// Whether a stopped container starts when the daemon does.
pub fn starts_on_boot(
    policy: &RestartPolicy,
    status: ContainerStatus,
    stopped_by_user: bool,
) -> bool {
    match policy.name.as_str() {
        "always" => status != ContainerStatus::Created || status == ContainerStatus::Restarting,
        "unless-stopped" => !stopped_by_user && status != ContainerStatus::Created,
        "on-failure" => status == ContainerStatus::Restarting,
        _ => false,
    }
}

/// The delay before the next restart, after the last one and a run of `ran`.
pub fn next_delay(last: Duration, ran: Duration) -> Duration {
    if last.is_zero() || ran >= HEALTHY_RUN {
        FIRST_DELAY
    } else {
        (last * 2).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy { name: name.into(), maximum_retry_count: max }
    }

    #[test]
    fn policies_decide_like_docker() {
        assert!(!should_restart(&policy("no", 0), 1, 0, false));
        assert!(should_restart(&policy("always", 0), 0, 5, false));
        assert!(!should_restart(&policy("always", 0), 0, 5, true));
        assert!(should_restart(&policy("on-failure", 0), 1, 100, false));
        assert!(!should_restart(&policy("on-failure", 0), 0, 0, false));
        assert!(should_restart(&policy("on-failure", 2), 1, 1, false));
        assert!(!should_restart(&policy("on-failure", 2), 1, 2, false));
    }

    #[test]
    fn boot_brings_back_always_and_unstopped_unless_stopped() {
        assert!(starts_on_boot(&policy("always", 0), ContainerStatus::Exited, true));
        assert!(!starts_on_boot(&policy("unless-stopped", 0), ContainerStatus::Exited, true));
        assert!(starts_on_boot(&policy("unless-stopped", 0), ContainerStatus::Exited, false));
        assert!(!starts_on_boot(&policy("always", 0), ContainerStatus::Created, false));
        assert!(!starts_on_boot(&policy("no", 0), ContainerStatus::Exited, false));
    }

    #[test]
    fn the_delay_doubles_while_failing_fast_and_resets_after_a_good_run() {
        let d1 = next_delay(Duration::ZERO, Duration::ZERO);
        assert_eq!(d1, FIRST_DELAY);
        assert_eq!(next_delay(d1, Duration::from_secs(1)), FIRST_DELAY * 2);
        assert_eq!(next_delay(Duration::from_secs(50), Duration::ZERO), MAX_DELAY);
        assert_eq!(next_delay(Duration::from_secs(50), Duration::from_secs(11)), FIRST_DELAY);
    }
}
