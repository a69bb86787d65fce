//! `cargo xtask qemu`: every program on every board under QEMU, decoded and
//! diffed bit for bit against the host reference, the diff's own sensitivity
//! checked, and the cost table.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::boards::{build_firmware, elf_path, firmware_dir, root, Board, BOARDS, PROGRAMS};
use crate::elf::{count_smlad, sizes};
use crate::host::{host_bounds_lines, host_lines, tampered_model, Assets};
use crate::report::{check_clock, parse_measurements, table, Measured};
use crate::tools::{cargo, defmt_print, fail, install_tools, step};

/// Seconds a program may run in QEMU.
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

/// Run `elf` in QEMU; returns (exit status code, decoded defmt lines).
pub fn run_qemu(board: &Board, elf: &Path) -> (i32, Vec<String>) {
    let mut qemu = Command::new(board.qemu);
    qemu.args(board.cpu)
        .args(["-machine", board.machine, "-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = qemu.spawn().unwrap_or_else(|e| fail(format!("cannot start {qemu:?}: {e}")));
    let mut out = child.stdout.take().unwrap_or_else(|| fail("no stdout from QEMU"));
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap_or_else(|e| fail(format!("waiting for QEMU: {e}"))) {
            break s;
        }
        if start.elapsed() > QEMU_TIMEOUT {
            let _ = child.kill();
            fail(format!("{} did not finish in {} s under QEMU", elf.display(), QEMU_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let raw = reader.join().ok().and_then(|r| r.ok()).unwrap_or_else(|| fail("reading QEMU's output failed"));
    let mut dp = Command::new(defmt_print())
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start defmt-print: {e}")));
    let mut stdin = dp.stdin.take().unwrap_or_else(|| fail("no stdin for defmt-print"));
    let writer = std::thread::spawn(move || stdin.write_all(&raw));
    let decoded = dp.wait_with_output().unwrap_or_else(|e| fail(format!("defmt-print: {e}")));
    let _ = writer.join();
    let text = String::from_utf8_lossy(&decoded.stdout).into_owned();
    let code = status.code().unwrap_or(-1);
    (code, text.lines().map(str::to_owned).collect())
}

/// Lines that carry measurements (differ by target; not diffed).
pub fn is_measurement(line: &str) -> bool {
    line.starts_with("cost ") || line.starts_with("measure ")
}

/// First difference between expected and actual, if any.
pub fn first_difference(expected: &[String], actual: &[String]) -> Option<String> {
    let n = expected.len().max(actual.len());
    for k in 0..n {
        let (e, a) = (expected.get(k), actual.get(k));
        if e != a {
            return Some(format!(
                "line {}:\n  host:   {}\n  device: {}",
                k + 1,
                e.map_or("<end of output>", |s| s),
                a.map_or("<end of output>", |s| s)
            ));
        }
    }
    None
}

pub fn count_differences(expected: &[String], actual: &[String]) -> usize {
    let n = expected.len().max(actual.len());
    (0..n).filter(|&k| expected.get(k) != actual.get(k)).count()
}

/// `cargo xtask qemu`.
pub fn qemu() {
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    install_tools(&targets);
    let committed = Assets::committed();
    let assets = Assets::load();
    let out_dir = root().join("target").join("qemu");
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| fail(format!("cannot create {}: {e}", out_dir.display())));

    // 1. The host reference, from the host runtime on the same model and inputs.
    let mut expected = BTreeMap::new();
    for p in PROGRAMS.into_iter().filter(|&p| p != "bounds") {
        let lines = host_lines(p, &assets).unwrap_or_else(|e| fail(format!("host reference for {p}: {e:?}")));
        // The stored requantization words change no result: on the committed
        // files (bf16 scales) the program prints the same lines but the files'
        // lengths.
        let plain = host_lines(p, &committed).unwrap_or_else(|e| fail(format!("host reference for {p}: {e:?}")));
        let file_line = |l: &String| l.starts_with("model bytes=");
        let differ = (0..lines.len().max(plain.len()))
            .filter(|&k| match (lines.get(k), plain.get(k)) {
                (Some(a), Some(b)) => a != b && !(file_line(a) && file_line(b)),
                _ => true,
            })
            .count();
        if differ > 0 {
            fail(format!("{p}: {differ} host lines differ between the files with requantization words and without"));
        }
        eprintln!("   {p}: the host's {} lines are the same with and without requantization words", lines.len());
        let file = out_dir.join(format!("{p}.expected"));
        std::fs::write(&file, lines.join("\n") + "\n").unwrap_or_else(|e| fail(format!("{}: {e}", file.display())));
        expected.insert(p, lines);
    }

    // 2. The comparison catches a wrong model on the device: the golden program
    //    built with one weight changed (a file the runtime loads: CRC fixed) must
    //    fail the diff against the genuine host reference.
    let tampered = tampered_model(&assets.models[0].1);
    let tampered_path = out_dir.join("tampered.floe");
    std::fs::write(&tampered_path, &tampered).unwrap_or_else(|e| fail(format!("{}: {e}", tampered_path.display())));
    let board = &BOARDS[0];
    step(
        &format!("golden built with a tampered model for {}", board.target),
        cargo()
            .current_dir(firmware_dir())
            .args(["build", "--release", "--bin", "golden", "--target", board.target])
            .env("FLOE_MODEL", &tampered_path),
    );
    let (code, lines) = run_qemu(board, &elf_path(board.target, "golden"));
    let results: Vec<String> = lines.iter().filter(|l| !is_measurement(l)).cloned().collect();
    let n_device = count_differences(&expected["golden"], &results);
    eprintln!("   the tampered firmware (exit {code}) differs from the host reference in {n_device} lines");
    if code != 0 || n_device == 0 {
        fail("the device diff did not detect a firmware built with a changed model");
    }

    // 3. Each program on each board, decoded and diffed.
    let mut report = Vec::new();
    let mut golden_device = Vec::new();
    let mut bounds_tables = Vec::new();
    for board in &BOARDS {
        build_firmware(board.target, &[]);
        let mut measured = Measured::default();
        // The bounds program's models depend on the board's flash.
        let bounds = host_bounds_lines(&assets, board.target)
            .unwrap_or_else(|e| fail(format!("host reference for bounds: {e:?}")));
        let file = out_dir.join(format!("bounds.{}.expected", board.target));
        std::fs::write(&file, bounds.join("\n") + "\n").unwrap_or_else(|e| fail(format!("{}: {e}", file.display())));
        expected.insert("bounds", bounds);
        for p in PROGRAMS {
            let elf = elf_path(board.target, p);
            eprintln!("\n== xtask: run {p} on {} under QEMU", board.name);
            let t = Instant::now();
            let (code, lines) = run_qemu(board, &elf);
            let log = out_dir.join(format!("{p}.{}.out", board.target));
            std::fs::write(&log, lines.join("\n") + "\n").unwrap_or_else(|e| fail(format!("{}: {e}", log.display())));
            if code != 0 {
                let tail: Vec<&String> = lines.iter().rev().take(5).collect();
                fail(format!("{p} on {} exited with status {code}; last lines: {tail:?}", board.name));
            }
            let results: Vec<String> = lines.iter().filter(|l| !is_measurement(l)).cloned().collect();
            let exp = &expected[p];
            if let Some(d) = first_difference(exp, &results) {
                fail(format!(
                    "{p} on {} differs from the host ({} of {} lines; {} vs {}):\n{d}",
                    board.name,
                    count_differences(exp, &results),
                    exp.len(),
                    out_dir
                        .join(if p == "bounds" {
                            format!("bounds.{}.expected", board.target)
                        } else {
                            format!("{p}.expected")
                        })
                        .display(),
                    log.display()
                ));
            }
            let n_values = results.iter().filter(|l| l.contains(" 0x")).count();
            eprintln!(
                "   ok: {} lines identical to the host ({n_values} f32 compared bit for bit), {:.1} s",
                results.len(),
                t.elapsed().as_secs_f64()
            );
            parse_measurements(&lines, &mut measured);
            if p == "bounds" {
                bounds_tables.push(crate::bounds::check(board, &lines, &assets));
            }
            if p == "golden" {
                measured.sizes = Some(sizes(&elf));
            }
            if p == "cost" && board.target.starts_with("thumb") {
                // The int8 kernel uses the DSP extension on the Cortex-M4F, and
                // nothing else does (the Cortex-M0 has none).
                let n = count_smlad(&elf);
                eprintln!("   {n} SMLAD instructions in {}", elf.display());
                let dsp = board.target.starts_with("thumbv7em");
                if dsp != (n > 0) {
                    fail(format!("{n} SMLAD instructions in the {} build", board.name));
                }
            }
            if p == "golden" && board.target == BOARDS[0].target {
                golden_device = results;
            }
        }
        check_clock(board, &measured);
        report.push((board, measured));
    }

    // 4. The comparison is sensitive on the host side too: the reference from the
    //    changed model, or from an input moved by 0.01 %, fails the device output.
    let lines =
        host_lines("golden", &assets.with_first_model(tampered)).unwrap_or_else(|e| fail(format!("tampered: {e:?}")));
    let n_model = count_differences(&lines, &golden_device);
    let lines = host_lines("golden", &assets.with_nudged_input()).unwrap_or_else(|e| fail(format!("nudged: {e:?}")));
    let n_input = count_differences(&lines, &golden_device);
    eprintln!(
        "\n== xtask: sensitivity: one weight changed -> {n_model} lines differ; first input moved by 0.01 % -> {n_input} lines differ"
    );
    if n_model == 0 || n_input == 0 {
        fail("the comparison did not detect a changed model or input");
    }

    // 5. The RTT transport (real boards) builds; in its own target directory, so
    //    the ELFs QEMU runs stay the semihosting ones.
    let rtt_dir = firmware_dir().join("target").join("rtt");
    build_firmware(
        BOARDS[0].target,
        &["--no-default-features", "--features", "rtt", "--target-dir", &rtt_dir.to_string_lossy()],
    );

    let minimal = minimal_program();

    println!("{}", table(&report, &assets));
    for t in bounds_tables {
        println!("{t}");
    }
    println!("{minimal}");
}

/// The minimal program (load the int8 demo model, one `log_prob`, no logging) on
/// every board: as built with the others (opt-level 3) and built for size
/// (opt-level "z", its own target directory). Each must exit 0, which it does
/// only if its log-density has the host's bits; returns the `.text` table.
fn minimal_program() -> String {
    let z_dir = firmware_dir().join("target").join("size-z");
    let mut out = String::from(
        "minimal program (Model::load + one log_prob of the int8 demo model, no logging), bytes; \
         issue 12's target: .text <= 24 KiB (24,576)\n\n\
         | board | .text, opt-level 3 | .text, opt-level \"z\" | .rodata (model) |\n|---|---:|---:|---:|\n",
    );
    let mut over = Vec::new();
    for board in &BOARDS {
        step(
            &format!("minimal program built for size for {}", board.target),
            cargo().current_dir(firmware_dir()).args([
                "build",
                "--release",
                "--bin",
                "minimal",
                "--target",
                board.target,
                "--config",
                "profile.release.opt-level=\"z\"",
                "--target-dir",
                &z_dir.to_string_lossy(),
            ]),
        );
        let o3 = elf_path(board.target, "minimal");
        let oz = z_dir.join(board.target).join("release").join("minimal");
        for elf in [&o3, &oz] {
            let (code, lines) = run_qemu(board, elf);
            if code != 0 {
                fail(format!(
                    "{} on {} exited with status {code} (1: log_prob differs from the host's bits; 2: error; \
                     3: panic); output {lines:?}",
                    elf.display(),
                    board.name
                ));
            }
        }
        let (a, b) = (sizes(&o3), sizes(&oz));
        eprintln!(
            "   minimal on {}: exit 0 (the host's bits), .text {} / {} (opt-level 3 / z)",
            board.name, a.text, b.text
        );
        out += &format!("| {} | {} | {} | {} |\n", board.name, a.text, b.text, a.rodata);
        if b.text == 0 || b.text > MINIMAL_TEXT_BUDGET {
            over.push(format!("{}: {} bytes", board.name, b.text));
        }
    }
    // The flash budget is a check, not only a figure: a change that pushes
    // the size-built program past it fails here, after every board is
    // measured and the table printed (RV32 went to 24,832 once, unnoticed
    // until the table was read). No `.text` at all is an error too.
    if !over.is_empty() {
        println!("{out}");
        fail(format!(
            "the minimal program's .text at opt-level z is missing or over the {MINIMAL_TEXT_BUDGET}-byte budget \
             (issue 12) on {}",
            over.join(", ")
        ));
    }
    out
}

/// The minimal program's `.text` budget at opt-level "z" (issue 12: 24 KiB).
const MINIMAL_TEXT_BUDGET: u64 = 24 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_the_first_differing_line() {
        let e: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let d: Vec<String> = ["a", "x", "c", "d"].map(String::from).to_vec();
        assert!(first_difference(&e, &e).is_none());
        let msg = first_difference(&e, &d).expect("differs");
        assert!(msg.starts_with("line 2:") && msg.contains("host:   b") && msg.contains("device: x"), "{msg}");
        assert_eq!(count_differences(&e, &d), 2);
    }
}
