//! `cargo xtask aarch64`: the runtime on a 64-bit Arm CPU (a phone's), under
//! QEMU user mode (`qemu-aarch64`): its unit tests, then the host reference of
//! every firmware program (golden, the cost program's results, stream,
//! trajectory, bounds) computed by an aarch64 build of this xtask and diffed
//! line for line — every f32 by its bits — against the x86-64 build's.

use std::process::Command;

use crate::boards::{root, BOARDS};
use crate::host::{host_bounds_lines, host_lines, Assets};
use crate::tools::{add_targets, apt_install, cargo, fail, have, step};

const TARGET: &str = "aarch64-unknown-linux-gnu";
/// Where Debian's cross toolchain keeps the aarch64 C library (qemu's `-L`).
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// The programs whose host reference is compared.
const PROGRAMS: [&str; 6] = ["golden", "cost", "kernels", "stream", "trajectory", "bounds"];

/// The reference lines of `program` (`bounds`: for the first board's flash).
pub fn lines(program: &str, assets: &Assets) -> Vec<String> {
    let r = if program == "bounds" { host_bounds_lines(assets, BOARDS[0].target) } else { host_lines(program, assets) };
    r.unwrap_or_else(|e| fail(format!("host reference for {program}: {e:?}")))
}

/// `cargo xtask host-lines PROGRAM`: print [`lines`] (what the aarch64 build runs).
pub fn print_lines(program: &str) {
    for l in lines(program, &Assets::load()) {
        println!("{l}");
    }
}

/// The rustup target, QEMU user mode, and Debian's aarch64 cross compiler
/// with its C library (headers, `crt1.o`: a Recommends of the compiler, which
/// `apt_install` does not take), each when missing.
pub fn install_cross() {
    add_targets(&[TARGET]);
    let mut packages = Vec::new();
    if !have("qemu-aarch64", "--version") {
        packages.push("qemu-user");
    }
    if !have("aarch64-linux-gnu-gcc", "--version") {
        packages.push("gcc-aarch64-linux-gnu");
    }
    if !std::path::Path::new(SYSROOT).join("include").join("stdio.h").exists() {
        packages.push("libc6-dev-arm64-cross");
    }
    apt_install("install qemu-user and the aarch64 cross compiler", &packages);
}

/// `cargo xtask aarch64`.
pub fn aarch64() {
    install_cross();
    let target_dir = root().join("target").join("aarch64");
    let cross = |c: &mut Command| {
        c.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", format!("qemu-aarch64 -L {SYSROOT}"))
            .arg("--target")
            .arg(TARGET)
            .arg("--target-dir")
            .arg(&target_dir);
    };
    let mut tests = cargo();
    tests.current_dir(root()).args(["test", "-p", "floe-runtime"]);
    cross(&mut tests);
    step("runtime tests on aarch64 (qemu-aarch64)", &mut tests);
    let mut build = cargo();
    build.current_dir(root()).args(["build", "-p", "xtask"]);
    cross(&mut build);
    step("xtask builds for aarch64", &mut build);
    let exe = target_dir.join(TARGET).join("debug").join("xtask");
    let assets = Assets::load();
    let (mut n_lines, mut n_values) = (0, 0);
    for p in PROGRAMS {
        let native = lines(p, &assets);
        let out = Command::new("qemu-aarch64")
            .args(["-L", SYSROOT])
            .arg(&exe)
            .args(["host-lines", p])
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| fail(format!("cannot run {} under qemu-aarch64: {e}", exe.display())));
        if !out.status.success() {
            fail(format!("{p} on aarch64 exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
        }
        let arm: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
        if let Some((k, (a, b))) = native.iter().zip(&arm).enumerate().find(|(_, (a, b))| a != b) {
            fail(format!("{p}: line {} differs between x86-64 and aarch64:\n  x86-64:  {a}\n  aarch64: {b}", k + 1));
        }
        if native.len() != arm.len() {
            fail(format!("{p}: {} lines on x86-64, {} on aarch64", native.len(), arm.len()));
        }
        let values = native.iter().filter(|l| l.contains(" 0x")).count();
        eprintln!("   {p}: {} lines identical on aarch64 and x86-64 ({values} f32 bit for bit)", native.len());
        n_lines += native.len();
        n_values += values;
    }
    eprintln!("\n== xtask: aarch64 matches x86-64: {n_lines} lines, {n_values} f32 compared bit for bit");
}
