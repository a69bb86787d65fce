//! `cargo xtask <task>`: the one place CI logic lives.
//!
//! - `ci`: install the thumb targets, build the runtime for both with no `std`
//!   or `alloc` (and with `defmt`), lint it, run every test, run the demo, then
//!   `qemu`.
//! - `qemu`: run the firmware programs in QEMU (Cortex-M4F and Cortex-M0) and diff
//!   their output bit for bit against the host runtime; print the cost table.
//! - `size`: build the firmware and print its section sizes.
//! - `bench`: host kernel benchmark and QEMU instruction counts, int8 vs f32.
//! - `assets`: regenerate `firmware/assets/` (model and input rows) from the demo.

mod firmware;

use std::process::{exit, Command};

const THUMB_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"];

fn run(what: &str, cmd: &mut Command) {
    eprintln!("\n== xtask: {what}\n   {cmd:?}");
    let status = cmd.status().unwrap_or_else(|e| {
        eprintln!("xtask: cannot start {cmd:?}: {e}");
        exit(1)
    });
    if !status.success() {
        eprintln!("xtask: {what} failed ({status})");
        exit(1);
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn have_rustup() -> bool {
    Command::new("rustup").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

fn ci() {
    if have_rustup() {
        run("install targets", Command::new("rustup").args(["target", "add"]).args(THUMB_TARGETS));
        run("install clippy and rustfmt", Command::new("rustup").args(["component", "add", "clippy", "rustfmt"]));
    }
    run("formatting", cargo().args(["fmt", "--all", "--", "--check"]));
    run(
        "formatting (firmware)",
        cargo().args([
            "fmt",
            "--manifest-path",
            &firmware::firmware_dir().join("Cargo.toml").to_string_lossy(),
            "--",
            "--check",
        ]),
    );
    for t in THUMB_TARGETS {
        run(
            &format!("runtime builds for {t} (no std, no alloc)"),
            cargo().args(["build", "-p", "floe-runtime", "--target", t]),
        );
        run(
            &format!("runtime builds for {t} with defmt"),
            cargo().args(["build", "-p", "floe-runtime", "--features", "defmt", "--target", t]),
        );
    }
    run(
        "clippy: the runtime has no unwrap/expect/panic/indexing",
        cargo().args(["clippy", "-p", "floe-runtime", "--target", THUMB_TARGETS[0], "--", "-D", "warnings"]),
    );
    run("clippy: xtask", cargo().args(["clippy", "-p", "xtask", "--", "-D", "warnings"]));
    run(
        "clippy: exporter and cross-crate tests",
        cargo().args(["clippy", "-p", "floe-exporter", "-p", "floe-tests", "--all-targets", "--", "-D", "warnings"]),
    );
    firmware::install_tools(&firmware::BOARDS.map(|b| b.target));
    for b in &firmware::BOARDS {
        run(
            &format!("clippy: firmware for {}", b.target),
            cargo().current_dir(firmware::firmware_dir()).args([
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
    run("tests", cargo().args(["test", "--workspace"]));
    run(
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
    firmware::qemu();
}

fn main() {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "ci" => ci(),
        "qemu" => firmware::qemu(),
        "size" => firmware::size(),
        "bench" => firmware::bench(),
        "assets" => firmware::assets(),
        _ => {
            eprintln!("usage: cargo xtask ci | qemu | size | bench | assets");
            exit(2);
        }
    }
}
