//! A container's status and the moves between them, shared by the engine
//! and what it reports.

use std::fmt;

/// Where a container is in its life, with Docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContainerStatus {
    /// Made, never started (or its start failed).
    #[default]
    Created,
    Running,
    Paused,
    /// Waiting to be started again by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended.
    Exited,
    /// Its supervisor died in a way that left it unusable.
    Dead,
}

impl ContainerStatus {
    /// Docker's name: `created`, `running`, `paused`, `restarting`,
    /// `removing`, `exited`, `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Parse Docker's name.
    pub fn parse(text: &str) -> Option<ContainerStatus> {
        Some(match text {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => return None,
        })
    }

    /// Whether a process of the container exists (running or frozen).
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }

    /// Whether `start` may move the container to running.
    pub fn can_start(self) -> bool {
        matches!(self, Self::Created | Self::Exited | Self::Restarting | Self::Dead)
    }

    /// Whether `pause` may freeze it.
    pub fn can_pause(self) -> bool {
        self == Self::Running
    }

    /// Whether `unpause` may thaw it.
    pub fn can_unpause(self) -> bool {
        self == Self::Paused
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in [
            ContainerStatus::Created,
            ContainerStatus::Running,
            ContainerStatus::Paused,
            ContainerStatus::Restarting,
            ContainerStatus::Removing,
            ContainerStatus::Exited,
            ContainerStatus::Dead,
        ] {
            assert_eq!(ContainerStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ContainerStatus::parse("up"), None);
    }

    #[test]
    fn only_stopped_containers_start() {
        assert!(ContainerStatus::Exited.can_start());
        assert!(!ContainerStatus::Running.can_start());
        assert!(!ContainerStatus::Paused.can_start());
        assert!(ContainerStatus::Paused.is_alive());
    }
}
