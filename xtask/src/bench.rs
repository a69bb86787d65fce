//! `cargo xtask bench`: the host kernel benchmark, then the cost program on every
//! board under QEMU.

use std::fmt::Write as _;

use crate::boards::{build_firmware, elf_path, root, BOARDS};
use crate::host::Assets;
use crate::qemu::run_qemu;
use crate::report::{check_clock, parse_measurements, per_call, Measured};
use crate::tools::{cargo, fail, install_tools, step};

/// `cargo xtask bench`: the host kernel benchmark, then the cost program on every
/// board under QEMU; prints instructions per MAC and per `log_prob`, int8 against
/// f32, measured in the same run.
pub fn bench() {
    step(
        "host kernel benchmark",
        cargo().current_dir(root()).args(["bench", "-p", "floe-runtime", "--bench", "kernels"]),
    );
    step(
        "host trajectory benchmark",
        cargo().current_dir(root()).args(["bench", "-p", "floe-runtime", "--bench", "trajectory"]),
    );
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    install_tools(&targets);
    let assets = Assets::load();
    let mut out = String::from(
        "\nQEMU (-icount shift=0), instructions per call, ratios int8 / f32 from the same run\n\n\
         | board | f32 MAC | int8 MAC | int8 / f32 | log_prob f32 | log_prob int8 | int8 / f32 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut targets_out = String::new();
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        let (code, lines) = run_qemu(board, &elf_path(board.target, "cost"));
        if code != 0 {
            fail(format!("cost on {} exited with status {code}", board.name));
        }
        let mut m = Measured::default();
        parse_measurements(&lines, &mut m);
        check_clock(board, &m);
        let (fm, im) = (per_call(board, &m, "dense-f32-mac"), per_call(board, &m, "dense-int8-mac"));
        let names: Vec<&str> = assets.models.iter().map(|(n, _, _)| n.as_str()).collect();
        let lp = |suffix: &str| {
            names.iter().find(|n| n.ends_with(suffix)).and_then(|n| per_call(board, &m, &format!("{n}/log_prob")))
        };
        let (fl, il) = (lp("-f32"), lp("-int8"));
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}", b / a),
            _ => "n/a".into(),
        };
        let g = |v: Option<f64>, p: usize| v.map_or("n/a".into(), |x| format!("{x:.p$}"));
        if board.target == "thumbv7em-none-eabihf" {
            targets_out = m4f_targets(&[fm, im, fl, il]);
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            board.name,
            g(fm, 2),
            g(im, 2),
            r(fm, im),
            g(fl, 0),
            g(il, 0),
            r(fl, il)
        );
    }
    println!("{out}");
    println!("{targets_out}");
}

/// Issue 12's Cortex-M4F targets against this run's figures (f32 MAC, int8
/// MAC, log_prob f32, log_prob int8), with the figures before the blocked
/// kernels and f32-only `exp` (README at a2d8551) for scale.
fn m4f_targets(measured: &[Option<f64>; 4]) -> String {
    const ROWS: [(&str, f64, f64, usize); 4] = [
        ("f32 dense, instructions/MAC", 2.5, 5.05, 2),
        ("int8 dense, instructions/MAC", 1.2, 2.59, 2),
        ("demo f32 log_prob, instructions", 130_000.0, 218_955.0, 0),
        ("demo int8 log_prob, instructions", 90_000.0, 181_134.0, 0),
    ];
    let mut out = String::from(
        "Cortex-M4F targets (issue 12): measured / target > 1 is a miss by that factor\n\n\
         | figure | before | now | target | now / before | now / target |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (&(name, target, before, p), m) in ROWS.iter().zip(measured) {
        let now = m.map_or("n/a".into(), |v| format!("{v:.p$}"));
        let r = |d: f64| m.map_or("n/a".into(), |v| format!("{:.2}", v / d));
        let _ = writeln!(out, "| {name} | {before:.p$} | {now} | {target:.p$} | {} | {} |", r(before), r(target));
    }
    out
}

/// `cargo xtask bench-train [ARGS…]`: `floe bench-train` in release (training
/// rows/s per device, fused spline vs Burn ops, the spline op alone), with
/// lavapipe installed for the default `vulkan-cpu` device. Extra arguments go to
/// `floe bench-train` (e.g. `--devices cpu,vulkan --batches 4096`).
pub fn bench_train(extra: &[String]) {
    crate::tools::install_lavapipe();
    step(
        "training benchmark (release)",
        cargo()
            .current_dir(root())
            .args(["run", "--release", "-p", "floe-exporter", "--bin", "floe", "--", "bench-train"])
            .args(extra),
    );
}
