//! `cargo xtask ci`: the README's test command.

use std::process::Command;

use crate::boards::{firmware_dir, BOARDS};
use crate::tools::{add_targets, cargo, have, install_lavapipe, install_tools, step};

/// The runtime's bare-metal targets: no `std`, no `alloc`.
const THUMB_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"];

/// Formatting, no_std builds, clippy everywhere, every test, the demo, QEMU,
/// aarch64 under qemu-aarch64, the C ABI from C (x86-64, aarch64, Cortex-M4F),
/// ONNX export checked by ONNX Runtime.
pub fn ci() {
    let start = std::time::Instant::now();
    add_targets(&THUMB_TARGETS);
    if have("rustup", "--version") {
        step("install clippy and rustfmt", Command::new("rustup").args(["component", "add", "clippy", "rustfmt"]));
    }
    step("formatting", cargo().args(["fmt", "--all", "--", "--check"]));
    step(
        "formatting (firmware)",
        cargo().args(["fmt", "--manifest-path", &firmware_dir().join("Cargo.toml").to_string_lossy(), "--", "--check"]),
    );
    for t in THUMB_TARGETS {
        step(
            &format!("runtime builds for {t} (no std, no alloc)"),
            cargo().args(["build", "-p", "floe-runtime", "--target", t]),
        );
        step(
            &format!("runtime builds for {t} with defmt"),
            cargo().args(["build", "-p", "floe-runtime", "--features", "defmt", "--target", t]),
        );
    }
    step(
        "clippy: the runtime has no unwrap/expect/panic/indexing",
        cargo().args(["clippy", "-p", "floe-runtime", "--target", THUMB_TARGETS[0], "--", "-D", "warnings"]),
    );
    step(
        "clippy: the runtime with its DSP kernel (its one `unsafe` block) and defmt",
        cargo().args([
            "clippy",
            "-p",
            "floe-runtime",
            "--target",
            THUMB_TARGETS[0],
            "--features",
            "dsp,defmt",
            "--",
            "-D",
            "warnings",
        ]),
    );
    step(
        "clippy: the C ABI for bare metal (no std, its panic handler, the DSP kernels)",
        cargo().args([
            "clippy",
            "-p",
            "floe-ffi",
            "--target",
            THUMB_TARGETS[0],
            "--no-default-features",
            "--features",
            "panic-halt,dsp",
            "--",
            "-D",
            "warnings",
        ]),
    );
    step(
        "clippy: runtime, fuzz checks, C ABI and xtask, tests included",
        cargo().args([
            "clippy",
            "-p",
            "floe-runtime",
            "-p",
            "floe-fuzz-checks",
            "-p",
            "floe-ffi",
            "-p",
            "xtask",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    );
    step(
        "clippy: exporter and cross-crate tests",
        cargo().args([
            "clippy",
            "-p",
            "floe-exporter",
            "-p",
            "floe-tests",
            "--all-targets",
            "--features",
            "floe-tests/seeds",
            "--",
            "-D",
            "warnings",
        ]),
    );
    install_tools(&BOARDS.map(|b| b.target));
    for b in &BOARDS {
        step(
            &format!("clippy: firmware for {}", b.target),
            cargo().current_dir(firmware_dir()).args([
                "clippy",
                "--release",
                "--bins",
                "--target",
                b.target,
                "--",
                "-D",
                "warnings",
            ]),
        );
    }
    // The GPU-path tests (the fused spline kernel on `vulkan-cpu`) run on
    // lavapipe; FLOE_REQUIRE_GPU makes a missing adapter a failure, not a skip.
    // They include short training runs on lavapipe (about half a minute).
    install_lavapipe();
    step("tests", cargo().args(["test", "--workspace"]).env("FLOE_REQUIRE_GPU", "1"));
    step(
        "demo (the README's main command)",
        cargo().args([
            "run",
            "-p",
            "floe-exporter",
            "--bin",
            "floe",
            "--",
            "demo",
            "--quiet",
            "--out",
            "target/ci-demo",
        ]),
    );
    crate::qemu::qemu();
    crate::aarch64::aarch64();
    crate::ffi::ffi(&[]);
    crate::onnx::onnx();
    eprintln!("\n== xtask: ci passed in {:.0} s", start.elapsed().as_secs_f64());
}
