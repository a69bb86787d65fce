//! `cargo xtask fuzz [SECONDS] [TARGET...]`: a coverage-guided campaign over
//! every runtime fuzz target (or the ones named; cargo-fuzz, libFuzzer),
//! SECONDS per target (default 60), then the corpus minimized and a table of
//! executions, coverage and crashes.
//!
//! libFuzzer's coverage instrumentation needs the nightly toolchain; without it
//! this says so and fails (the corpus replay, `cargo test -p floe-fuzz-checks`,
//! runs on stable in CI). cargo-fuzz is installed into `target/tools` when
//! missing. The targets run with debug assertions (integer overflow panics) and
//! without AddressSanitizer: the runtime has no `unsafe` on the host (its one
//! `unsafe` block is the Arm DSP loop), so a sanitizer would only slow it down.

use std::process::{Command, Stdio};

use crate::boards::root;
use crate::tools::{cargo, fail, have, step};

const TARGETS: [&str; 5] = ["load", "load_mutated", "eval", "stream", "tracker"];

/// One target's campaign figures.
struct Run {
    target: &'static str,
    seconds: u64,
    execs: u64,
    cov: u64,
    features: u64,
    corpus: usize,
    crashes: usize,
}

pub fn fuzz(args: &[String]) {
    let seconds: u64 = match args.first() {
        None => 60,
        Some(s) => s
            .parse()
            .unwrap_or_else(|_| fail(format!("usage: cargo xtask fuzz [SECONDS per target] [TARGET...], not {s:?}"))),
    };
    // Some targets only (two campaigns can then share a 2-core machine).
    let only: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if let Some(t) = only.iter().find(|t| !TARGETS.contains(t)) {
        fail(format!("no fuzz target {t:?}; the targets: {}", TARGETS.join(", ")));
    }
    if !have("rustup", "--version")
        || !Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        fail(
            "missing capability: libFuzzer's instrumentation needs the nightly toolchain \
             (`rustup toolchain install nightly`); `cargo test -p floe-fuzz-checks` replays the corpus on stable",
        );
    }
    let tools = root().join("target").join("tools");
    let bin = tools.join("bin");
    if !bin.join("cargo-fuzz").exists() && !have("cargo-fuzz", "--version") {
        step(
            "install cargo-fuzz",
            cargo().args(["install", "cargo-fuzz", "--locked", "--version", "0.13.2", "--root"]).arg(&tools),
        );
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let fuzz = |args: &[&str]| {
        let mut c = Command::new("rustup");
        c.args(["run", "nightly", "cargo", "fuzz"]).args(args).current_dir(root()).env("PATH", &path);
        c
    };
    let mut runs = Vec::new();
    for target in TARGETS.into_iter().filter(|t| only.is_empty() || only.contains(t)) {
        let corpus = root().join("fuzz").join("corpus").join(target);
        // Only this run's crashes count (an earlier one belongs in regressions/).
        let _ = std::fs::remove_dir_all(root().join("fuzz").join("artifacts").join(target));
        std::fs::create_dir_all(&corpus).unwrap_or_else(|e| fail(format!("{}: {e}", corpus.display())));
        let mut cmd = fuzz(&["run", "--sanitizer", "none", "--debug-assertions", target]);
        cmd.arg(&corpus);
        if target == "load" {
            // The bundled models and the small seeds as extra, read-only inputs.
            cmd.arg(root().join("firmware").join("assets")).arg(root().join("fuzz").join("seeds"));
        }
        cmd.args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1", "-max_len=262144"]);
        eprintln!("\n== xtask: fuzz {target} for {seconds} s\n   {cmd:?}");
        let out = cmd.stderr(Stdio::piped()).output().unwrap_or_else(|e| fail(format!("cannot start cargo fuzz: {e}")));
        let log = String::from_utf8_lossy(&out.stderr);
        let artifacts = root().join("fuzz").join("artifacts").join(target);
        let crashes = std::fs::read_dir(&artifacts).map(|d| d.flatten().count()).unwrap_or(0);
        if !out.status.success() || crashes > 0 {
            eprintln!("{}", tail(&log, 60));
            fail(format!(
                "fuzz {target}: {} — the input is in {}; add it to fuzz/regressions/{target}/ once fixed",
                out.status,
                artifacts.display()
            ));
        }
        step(&format!("minimize the {target} corpus"), fuzz(&["cmin", "--sanitizer", "none", target]).arg(&corpus));
        let (cov, features) = last_coverage(&log);
        let execs = stat(&log, "stat::number_of_executed_units:");
        eprintln!("== xtask: fuzz {target}: {execs} executions in {seconds} s, coverage {cov} edges, {features} features, no crash");
        runs.push(Run {
            target,
            seconds,
            execs,
            cov,
            features,
            corpus: std::fs::read_dir(&corpus).map(|d| d.flatten().count()).unwrap_or(0),
            crashes,
        });
    }
    println!("\n| target | seconds | executions | execs/s | coverage (edges) | features | corpus files | crashes |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut total = 0;
    for r in &runs {
        total += r.execs;
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            r.target,
            r.seconds,
            r.execs,
            r.execs as f64 / r.seconds.max(1) as f64,
            r.cov,
            r.features,
            r.corpus,
            r.crashes
        );
    }
    println!("\n{total} executions in all, no crash");
}

fn stat(log: &str, key: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| fail(format!("libFuzzer printed no {key}")))
}

/// `cov:` and `ft:` of libFuzzer's last status line.
fn last_coverage(log: &str) -> (u64, u64) {
    let field = |l: &str, key: &str| -> Option<u64> {
        let mut it = l.split_whitespace();
        it.find(|w| *w == key)?;
        it.next()?.parse().ok()
    };
    log.lines()
        .rev()
        .find_map(|l| Some((field(l, "cov:")?, field(l, "ft:")?)))
        .unwrap_or_else(|| fail("libFuzzer printed no coverage line"))
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `cargo xtask miri`: the runtime's tests under Miri (nightly), libm's
/// arch-specific code swapped for its portable twin (`force-soft-floats`:
/// Miri cannot run the inline `sqrtss`; both are IEEE-exact, so the bits are
/// the same).
pub fn miri() {
    if !Command::new("rustup")
        .args(["run", "nightly", "cargo", "miri", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        fail("missing capability: Miri needs the nightly toolchain with its miri component (`rustup +nightly component add miri rust-src`)");
    }
    let miri = |args: &[&str]| {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", "nightly", "cargo", "miri", "test", "--features", "libm/force-soft-floats"])
            .args(args)
            .current_dir(root());
        cmd
    };
    // The unit tests (the doc examples load the 144 KB demo model and run a
    // 768-sample tracker prediction: many minutes each under Miri).
    step("the runtime's unit tests under Miri", &mut miri(&["-p", "floe-runtime", "--lib"]));
    // The encoder against the decoder on every bundled and seed model, byte for
    // byte (the re-encoding check of the fuzz targets).
    step(
        "the encoder round trip of every seed under Miri",
        &mut miri(&[
            "-p",
            "floe-runtime",
            "-p",
            "floe-fuzz-checks",
            "--test",
            "corpus",
            "every_seed_is_its_own_canonical_encoding",
        ]),
    );
}
