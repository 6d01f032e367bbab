//! `kiln shim …`: the hidden per-container supervisor that the daemon
//! starts; the work is in `kiln-shim`.

use std::process::ExitCode;

pub use kiln_shim::ShimArgs;

pub fn main(args: ShimArgs) -> ExitCode {
    kiln_shim::main(args)
}
