//! The C ABI check as Cortex-M4F firmware: `ffi/examples/check.c` with
//! `ffi/examples/m4f/` (vector table, semihosting, the files embedded),
//! built with `arm-none-eabi-gcc` against the `thumbv7em-none-eabihf` static
//! library and run in QEMU (`mps2-an386`).

use std::process::Command;

use crate::ffi::{m4f_library, paths};
use crate::tools::{apt_install, fail, have, step};

/// Build, run in QEMU, diff with `want`.
pub fn m4f(want: &[String]) {
    if !have("arm-none-eabi-gcc", "--version") {
        apt_install("install the Arm bare-metal C compiler", &["gcc-arm-none-eabi"]);
    }
    if !have("qemu-system-arm", "--version") {
        apt_install("install QEMU", &["qemu-system-arm"]);
    }
    let lib = m4f_library();
    let (ffi, assets, out) = paths();
    let ex = ffi.join("examples");
    let elf = out.join("check-m4f.elf");
    step(
        "C check builds as Cortex-M4F firmware (arm-none-eabi-gcc)",
        Command::new("arm-none-eabi-gcc")
            .args(["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"])
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-nostdlib"])
            .args(["-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections"])
            // Bare metal has no executable-stack marking (gcc emits no
            // .note.GNU-stack for arm-none-eabi); ld 2.40 would warn.
            .arg("-Wl,--no-warn-execstack")
            .arg("-I")
            .arg(ffi.join("include"))
            .arg("-I")
            .arg(&ex)
            .arg(format!("-Wa,-I{}", assets.display()))
            .arg(ex.join("check.c"))
            .arg(ex.join("m4f").join("board.c"))
            .arg(ex.join("m4f").join("assets.S"))
            .arg("-T")
            .arg(ex.join("m4f").join("link.ld"))
            .arg(&lib)
            .arg("-lgcc")
            .arg("-o")
            .arg(&elf),
    );
    eprintln!("\n== xtask: C check on the Cortex-M4F (QEMU mps2-an386)");
    let t = std::time::Instant::now();
    let o = Command::new("qemu-system-arm")
        .args([
            "-cpu",
            "cortex-m4",
            "-machine",
            "mps2-an386",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(&elf)
        .output()
        .unwrap_or_else(|e| fail(format!("cannot run qemu-system-arm: {e}")));
    let got = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        let tail: Vec<&str> = got.lines().rev().take(5).collect();
        fail(format!(
            "C firmware exited with {}: {} (last lines {tail:?})",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let n = crate::ffi::diff("C check on the Cortex-M4F", &got, want);
    eprintln!(
        "   Cortex-M4F: {} lines identical to the Rust runtime's ({n} f32 bit for bit) in {:.1} s",
        want.len(),
        t.elapsed().as_secs_f64()
    );
}
