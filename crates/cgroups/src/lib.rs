//! Linux control groups for containers: cgroup v1, hybrid and v2 behind one interface.
//!
//! [`Hierarchy::detect`] finds where the host mounts its cgroup filesystems;
//! [`CgroupPath`] is the OCI `linux.cgroupsPath`; a [`Cgroup`] is that path
//! resolved in every hierarchy, and is created, given [`Resources`] (the OCI
//! `linux.resources`), joined, frozen and destroyed through its methods.
//!
//! What resources become is planned first, as plain data ([`plan_v1`],
//! [`plan_v2`] → [`Write`]s), and then written by [`Cgroup::apply`]; settings
//! a host cannot express come back as warnings rather than errors. Device
//! rules on cgroup v2 need an eBPF program, which is not built here yet.

mod cgroup;
mod error;
mod freezer;
mod hierarchy;
mod path;
mod plan;
mod resources;
mod stats;
mod v1;
mod v2;

pub use cgroup::Cgroup;
pub use error::CgroupError;
pub use hierarchy::Hierarchy;
pub use path::CgroupPath;
pub use plan::{Write, MIN_MEMORY_LIMIT};
pub use resources::{
    BlockIo, Cpu, DeviceRule, HugepageLimit, InterfacePriority, Memory, Network, Pids, Rdma,
    Resources, ThrottleDevice, WeightDevice,
};
pub use stats::Stats;
pub use v1::plan_v1;
pub use v2::plan_v2;
