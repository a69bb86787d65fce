//! `cargo xtask interop`: the ground truth of `floe import`, made by the real
//! libraries. A Python virtual environment under `target/interop/` gets torch,
//! zuko 1.6.0, nflows 0.14 and safetensors from the package registry (PyPI's
//! torch is the CUDA build, about 5 GB with its libraries, and runs on the CPU;
//! the CPU-only wheels live on download.pytorch.org, which this machine cannot
//! reach); `interop/make_fixtures.py` trains small NSF / MAF / spline-coupling
//! flows on the bundled thyroid set and writes their state dicts, rows, the
//! libraries' own `log_prob` and samples to `tests/fixtures/interop/`; then the
//! interop tests run on them. CI runs only the tests, on the committed fixtures.

use std::process::Command;

use crate::boards::root;
use crate::tools::{cargo, step, venv};

/// The libraries, pinned as the issue asks.
const PACKAGES: &[&str] = &["torch", "zuko==1.6.0", "nflows==0.14", "safetensors", "numpy"];

/// `cargo xtask interop`.
pub fn interop() {
    let python = venv("interop", "torch, zuko, nflows, safetensors", PACKAGES);
    let fixtures = root().join("tests").join("fixtures").join("interop");
    std::fs::create_dir_all(&fixtures).unwrap_or_else(|e| crate::tools::fail(format!("{}: {e}", fixtures.display())));
    step(
        "train with zuko and nflows, write the fixtures",
        Command::new(&python)
            .arg(root().join("xtask").join("interop").join("make_fixtures.py"))
            .arg(root().join("data").join("adbench").join("38_thyroid.npz"))
            .arg(&fixtures),
    );
    step(
        "floe import against the libraries (tests/tests/all/interop.rs)",
        cargo().current_dir(root()).args([
            "test",
            "-p",
            "floe-tests",
            "--test",
            "all",
            "interop::",
            "--",
            "--nocapture",
        ]),
    );
}
