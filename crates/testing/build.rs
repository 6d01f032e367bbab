//! Compiles `probe/src/main.rs` into a static binary for test containers.
//!
//! The probe is built with a plain `rustc` rather than as a Cargo artifact,
//! because a dev-dependency cannot depend on a binary, and because it must be
//! static (`+crt-static`) to run in a busybox rootfs that has no libc. Its
//! path reaches the crate as `KILN_PROBE_PATH`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let source = manifest_dir.join("../../probe/src/main.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("probe");
    println!("cargo:rerun-if-changed={}", source.display());

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "-O",
        "-C",
        "target-feature=+crt-static",
        "-C",
        "strip=symbols",
    ]);
    // Build for the target the tests run on, not necessarily the host.
    if let Some(target) = env::var_os("TARGET") {
        cmd.arg("--target").arg(target);
    }
    cmd.arg(&source).arg("-o").arg(&out);
    let output = cmd.output().unwrap_or_else(|err| panic!("cannot run rustc for the probe: {err}"));
    if !output.status.success() {
        panic!(
            "compiling the static probe failed ({}):\n{}\n(a static glibc, libc.a from libc6-dev, is needed)",
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
    }
    println!("cargo:rustc-env=KILN_PROBE_PATH={}", out.display());
}
