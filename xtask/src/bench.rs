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
         int8 MAC: weights in the row-pair layout (what the Cortex-M4F firmware embeds; `floe repack`);\n\
         plain: row-major (what the exporter writes and every build reads)\n\n\
         | board | f32 MAC | int8 MAC | int8 MAC, plain | int8 / f32 | log_prob f32 | log_prob int8 | int8 / f32 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut targets_out = String::new();
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        let mut m = Measured::default();
        for program in ["cost", "kernels"] {
            let (code, lines) = run_qemu(board, &elf_path(board.target, program));
            if code != 0 {
                fail(format!("{program} on {} exited with status {code}", board.name));
            }
            parse_measurements(&lines, &mut m);
        }
        check_clock(board, &m);
        let (fm, im) = (per_call(board, &m, "dense-f32-mac"), per_call(board, &m, "dense-int8-pairs-mac"));
        let plain = per_call(board, &m, "dense-int8-mac");
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
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            board.name,
            g(fm, 2),
            g(im, 2),
            g(plain, 2),
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

/// `cargo xtask bench-peers`: floe against FlowJAX 19 (JAX, CPU) on the demo
/// model's architecture, measured side by side in one run: `log_prob` at batch 1
/// and per row at batch 4096, on one thread and on every CPU. Creates a Python
/// virtual environment under `target/peers/` with FlowJAX from the package
/// registry the first time. Not part of CI.
pub fn bench_peers() {
    let python = crate::tools::venv("peers", "flowjax, jax", &["flowjax==19.*", "jax[cpu]"]);
    let script = root().join("xtask").join("peers").join("flowjax_bench.py");
    let run_py = |threads: &str| -> std::collections::BTreeMap<String, String> {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(threads)
            .output()
            .unwrap_or_else(|e| fail(format!("cannot run {}: {e}", script.display())));
        if !out.status.success() {
            fail(format!("FlowJAX benchmark failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        key_values(&String::from_utf8_lossy(&out.stdout))
    };
    eprintln!("\n== xtask: FlowJAX, one thread");
    let fj1 = run_py("1");
    eprintln!("== xtask: FlowJAX, all threads");
    let fja = run_py("all");
    eprintln!("== xtask: floe (release)");
    let out = cargo()
        .current_dir(root())
        .args(["bench", "-q", "-p", "floe-runtime", "--bench", "peers"])
        .output()
        .unwrap_or_else(|e| fail(format!("cannot run the floe benchmark: {e}")));
    if !out.status.success() {
        fail(format!("floe benchmark failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let fl = key_values(&String::from_utf8_lossy(&out.stdout));
    let num = |m: &std::collections::BTreeMap<String, String>, k: &str| -> f64 {
        m.get(k).and_then(|v| v.parse().ok()).unwrap_or_else(|| fail(format!("benchmark printed no {k}")))
    };
    let threads = fl.get("threads").cloned().unwrap_or_default();
    let rows = [
        ("batch 1, one thread (µs per call)", num(&fl, "batch1_us"), num(&fj1, "batch1_us"), 20.0),
        (
            "batch 4096, one thread (µs per row)",
            num(&fl, "batch4096_us_per_row_1"),
            num(&fj1, "batch4096_us_per_row"),
            1.0,
        ),
        (
            "batch 4096, all threads (µs per row)",
            num(&fl, "batch4096_us_per_row_all"),
            num(&fja, "batch4096_us_per_row"),
            1.0,
        ),
    ];
    let mut t = format!(
        "\nfloe vs FlowJAX ({}), demo architecture (D = 6, 4 spline couplings, 2 x 64, K = 8), this CPU \
         ({threads} threads), measured in one run; speedup = FlowJAX / floe\n\n\
         | figure | floe | FlowJAX | speedup | target (issue 12) |\n|---|---:|---:|---:|---:|\n",
        fj1.get("versions").map_or("versions unknown", String::as_str)
    );
    for (name, f, j, target) in rows {
        let _ = writeln!(t, "| {name} | {f:.3} | {j:.3} | {:.2} | >= {target} |", j / f);
    }
    let (single, batch) = (num(&fl, "rows4096_us_per_row_1"), num(&fl, "batch4096_us_per_row_1"));
    let _ = write!(
        t,
        "\nfloe alone, 4096 rows on one thread: log_prob row by row {single:.3} µs per row, log_prob_batch \
         {batch:.3}: {:.2}x (target >= 6x). floe's batch 4096 figures above are log_prob_batch (all threads: \
         rows split over scoped threads); 16 rows per pass in vector lanes (AVX-512F or AVX2 when the CPU has them): \
         the conditioners (f32, int8), the splines, the LU and MADE layers, each lane with its row's single-row bits.",
        single / batch
    );
    println!("{t}");
}

/// `key value` lines into a map.
fn key_values(s: &str) -> std::collections::BTreeMap<String, String> {
    s.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}
