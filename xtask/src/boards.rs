//! The boards QEMU emulates, the firmware programs, and building them.

use std::path::{Path, PathBuf};

use crate::tools::{cargo, step};

/// A board QEMU emulates, with the Rust target that runs on it.
pub struct Board {
    /// Rust target triple.
    pub target: &'static str,
    /// QEMU machine.
    pub machine: &'static str,
    /// QEMU system emulator.
    pub qemu: &'static str,
    /// Extra QEMU arguments (CPU).
    pub cpu: &'static [&'static str],
    /// Human name.
    pub name: &'static str,
    /// Instructions per SysTick tick under `-icount shift=0` (1 ns per instruction):
    /// 1 GHz over the SysTick clock. Checked on every run with a loop of known length.
    pub instructions_per_tick: f64,
}

/// The boards `cargo xtask qemu` runs on.
pub const BOARDS: [Board; 3] = [
    Board {
        target: "thumbv7em-none-eabihf",
        machine: "mps2-an386",
        qemu: "qemu-system-arm",
        cpu: &["-cpu", "cortex-m4"],
        name: "Cortex-M4F (mps2-an386)",
        instructions_per_tick: 40.0, // 25 MHz
    },
    Board {
        target: "thumbv6m-none-eabi",
        machine: "microbit",
        qemu: "qemu-system-arm",
        cpu: &[],
        name: "Cortex-M0 (microbit)",
        instructions_per_tick: 62.5, // 16 MHz
    },
    Board {
        target: "riscv32imac-unknown-none-elf",
        machine: "virt",
        qemu: "qemu-system-riscv32",
        cpu: &["-bios", "none"],
        name: "RV32IMAC (virt)",
        instructions_per_tick: 1.0, // minstret
    },
];

/// The firmware programs (`firmware/src/bin`).
pub const PROGRAMS: [&str; 6] = ["golden", "cost", "kernels", "stream", "trajectory", "bounds"];

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The firmware workspace.
pub fn firmware_dir() -> PathBuf {
    root().join("firmware")
}

/// The release ELF of `program` for `target`.
pub fn elf_path(target: &str, program: &str) -> PathBuf {
    firmware_dir().join("target").join(target).join("release").join(program)
}

/// Build every firmware program for `target` (release), with `extra` arguments.
pub fn build_firmware(target: &str, extra: &[&str]) {
    step(
        &format!("firmware builds for {target} {}", extra.join(" ")),
        cargo().current_dir(firmware_dir()).args(["build", "--release", "--bins", "--target", target]).args(extra),
    );
}
