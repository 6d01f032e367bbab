//! Gating of tests that need root.

/// The variable that turns root tests on.
const VAR: &str = "KILN_PRIVILEGED_TESTS";

/// Whether root tests should run.
///
/// With `KILN_PRIVILEGED_TESTS=1` this is true, and it panics when the process
/// is not root, so that CI cannot pass by skipping. Otherwise it says on
/// stderr that the test is skipped and returns false.
pub fn privileged_tests_enabled() -> bool {
    let requested = std::env::var(VAR).ok();
    match decide(requested.as_deref(), nix::unistd::geteuid().is_root()) {
        Gate::Run => true,
        Gate::Skip => {
            eprintln!("skipped: set {VAR}=1 and run as root");
            false
        }
        Gate::NotRoot => panic!(
            "{VAR}=1 but this test is not running as root (euid {}): run the tests as root, \
             or unset {VAR} to skip privileged tests",
            nix::unistd::geteuid()
        ),
    }
}

/// Return early from a test unless root tests are enabled (see
/// [`privileged_tests_enabled`]).
///
/// ```no_run
/// #[test]
/// fn container_sees_its_own_hostname() {
///     kiln_testing::require_privileged!();
///     // ... runs only as root with KILN_PRIVILEGED_TESTS=1
/// }
/// ```
#[macro_export]
macro_rules! require_privileged {
    () => {
        if !$crate::privileged_tests_enabled() {
            return;
        }
    };
}

#[derive(Debug, PartialEq, Eq)]
enum Gate {
    Run,
    Skip,
    NotRoot,
}

fn decide(requested: Option<&str>, is_root: bool) -> Gate {
    match (requested, is_root) {
        (Some("1"), true) => Gate::Run,
        (Some("1"), false) => Gate::NotRoot,
        _ => Gate::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_without_root_is_a_failure_not_a_skip() {
        assert_eq!(decide(Some("1"), false), Gate::NotRoot);
    }

    #[test]
    fn enabled_as_root_runs() {
        assert_eq!(decide(Some("1"), true), Gate::Run);
    }

    #[test]
    fn unset_or_other_values_skip_even_as_root() {
        assert_eq!(decide(None, true), Gate::Skip);
        assert_eq!(decide(Some("0"), true), Gate::Skip);
        assert_eq!(decide(None, false), Gate::Skip);
    }
}
